#include "support/datasets.hpp"
#include "support/image.hpp"

#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <random>
#include <sstream>
#include <vector>

namespace fs = std::filesystem;

namespace rar {
namespace examples {

namespace {

// ---- files ---------------------------------------------------------------------------------

/// All bytes of `path`, decompressed if it is gzipped (zlib's gzread passes plain files
/// through unchanged).
std::vector<std::uint8_t> read_file_bytes(const std::string& path) {
  if (!fs::is_regular_file(path)) fail_with_file(path, "no such file");
  std::unique_ptr<gzFile_s, int (*)(gzFile)> file(gzopen(path.c_str(), "rb"), gzclose);
  if (!file) fail_with_file(path, "cannot open");
  std::vector<std::uint8_t> bytes;
  constexpr unsigned kChunk = 1u << 20;
  for (int got = -1; got != 0;) {
    const size_t old = bytes.size();
    bytes.resize(old + kChunk);
    got = gzread(file.get(), bytes.data() + old, kChunk);
    bytes.resize(old + static_cast<size_t>(std::max(got, 0)));
    int code = Z_OK;
    const char* message = gzerror(file.get(), &code);
    if (code == Z_BUF_ERROR) fail_with_file(path, "truncated gzip stream");
    if (got < 0 || code != Z_OK) fail_with_file(path, std::string("cannot read: ") + message);
  }
  return bytes;
}

void require_directory(const std::string& path, const std::string& expected) {
  if (!fs::is_directory(path))
    fail_with_file(path, "no such directory (expected " + expected + ")");
}

// ---- IDX ---------------------------------------------------------------------------------

std::uint32_t big_endian_u32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

/// Checks an IDX file of unsigned bytes with `rank` dimensions (magic 0x800 + rank) and
/// returns its dimensions; its data are the bytes from 4 + 4 * rank to the end.
std::vector<int64_t> idx_dimensions(const std::string& path, const std::vector<std::uint8_t>& bytes,
                                    int rank, const char* kind) {
  const size_t header = 4 + 4 * static_cast<size_t>(rank);
  if (bytes.size() < header)
    fail_with_file(path,
                   "truncated header (" + std::to_string(bytes.size()) + " bytes, " + kind + ")");
  const std::uint32_t magic = big_endian_u32(bytes.data()), expected = 0x800u + rank;
  if (magic != expected)
    fail_with_file(path, "bad magic " + std::to_string(magic) + ", expected " +
                             std::to_string(expected) + " (" + kind + ")");
  std::vector<int64_t> dims;
  std::string shape;
  std::uint64_t need = 1;
  for (int d = 0; d < rank; ++d) {
    dims.push_back(big_endian_u32(bytes.data() + 4 + 4 * d));
    shape += (d ? "x" : "") + std::to_string(dims.back());
    const auto n = static_cast<std::uint64_t>(dims.back());
    constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
    need = n != 0 && need > kMax / n ? kMax : need * n;  // saturates on absurd headers
  }
  if (need == 0) fail_with_file(path, "empty dimensions " + shape);
  const std::uint64_t have = bytes.size() - header;
  if (have < need)
    fail_with_file(path, "truncated: " + std::to_string(have) + " data bytes, dimensions " + shape +
                             " need " + std::to_string(need));
  if (have > need)
    fail_with_file(path,
                   std::to_string(have - need) + " trailing bytes after the " + shape + " data");
  return dims;
}

// ---- decoding many images ------------------------------------------------------------------

/// One image to load: a file, where it was listed (for messages), and optionally the size the
/// listing states and an inclusive ROI to crop to.
struct ImageJob {
  std::string path;
  std::string listed_at;                 ///< "<csv>:<line>", or empty
  int width = 0, height = 0;             ///< expected size; 0 = any
  bool roi = false;                      ///< crop to the ROI below (else the whole image)
  int x1 = 0, y1 = 0, x2 = 0, y2 = 0;    ///< ROI corners, inclusive
};

/// Decodes, crops and resizes every job to size x size RGB, in parallel: `[N, 3, size, size]`.
torch::Tensor load_images(const std::vector<ImageJob>& jobs, int64_t size) {
  TORCH_CHECK(size > 0 && size <= 4096, "image size must be in 1..4096, got ", size);
  const int side = static_cast<int>(size);
  torch::Tensor out = torch::empty({static_cast<int64_t>(jobs.size()), 3, size, size});
  at::parallel_for(0, static_cast<int64_t>(jobs.size()), 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const ImageJob& job = jobs[static_cast<size_t>(i)];
      Raster image = read_raster(job.path, 3);
      const std::string name = fs::path(job.path).filename().string();
      const std::string found = std::to_string(image.width) + "x" + std::to_string(image.height);
      if (job.width > 0 && (image.width != job.width || image.height != job.height))
        fail_with_file(job.listed_at, name + " is " + found + ", the listing says " +
                                          std::to_string(job.width) + "x" +
                                          std::to_string(job.height));
      if (job.roi) {
        if (job.x1 < 0 || job.y1 < 0 || job.x1 > job.x2 || job.y1 > job.y2 ||
            job.x2 >= image.width || job.y2 >= image.height) {
          std::ostringstream roi;
          roi << "ROI (" << job.x1 << "," << job.y1 << ")-(" << job.x2 << "," << job.y2
              << ") is outside the " << found << " image " << name;
          fail_with_file(job.listed_at, roi.str());
        }
        image = crop(image, job.x1, job.y1, job.x2 - job.x1 + 1, job.y2 - job.y1 + 1);
      }
      out[i].copy_(raster_to_tensor(resize(image, side, side)));
    }
  });
  return out;
}

// ---- GTSRB csv -----------------------------------------------------------------------------

std::vector<std::string> split_fields(std::string line) {
  if (!line.empty() && line.back() == '\r') line.pop_back();
  std::vector<std::string> fields;
  std::stringstream stream(line);
  for (std::string field; std::getline(stream, field, ';');) fields.push_back(field);
  return fields;
}

/// The rows of a GTSRB annotation csv as image jobs in `directory`, with their ClassId.
std::vector<std::pair<ImageJob, int64_t>> read_gtsrb_csv(const std::string& csv,
                                                         const std::string& directory) {
  std::ifstream in(csv);
  if (!fs::is_regular_file(csv) || !in) fail_with_file(csv, "no such file");
  std::string line;
  std::getline(in, line);
  if (line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // UTF-8 byte order mark
  const std::vector<std::string> header = split_fields(line);
  const char* names[] = {"Filename", "Width",  "Height", "Roi.X1",
                         "Roi.Y1",   "Roi.X2", "Roi.Y2", "ClassId"};
  size_t column[8];
  for (int k = 0; k < 8; ++k) {
    const auto it = std::find(header.begin(), header.end(), names[k]);
    if (it == header.end()) fail_with_file(csv, std::string("header lacks the column ") + names[k]);
    column[k] = static_cast<size_t>(it - header.begin());
  }
  std::vector<std::pair<ImageJob, int64_t>> rows;
  for (int number = 2; std::getline(in, line); ++number) {
    const std::vector<std::string> fields = split_fields(line);
    if (fields.empty() || (fields.size() == 1 && fields[0].empty())) continue;
    const std::string where = csv + ":" + std::to_string(number);
    if (fields.size() != header.size())
      fail_with_file(where, std::to_string(fields.size()) + " fields, the header has " +
                                std::to_string(header.size()));
    int value[8] = {};
    for (int k = 1; k < 8; ++k) {
      const std::string& text = fields[column[k]];
      const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value[k]);
      if (error != std::errc() || end != text.data() + text.size())
        fail_with_file(where, std::string(names[k]) + " is not a number: '" + text + "'");
    }
    if (value[7] < 0 || value[7] >= kGtsrbClasses)
      fail_with_file(where, "ClassId " + std::to_string(value[7]) + " is not below the " +
                                std::to_string(kGtsrbClasses) + " classes");
    ImageJob job{(fs::path(directory) / fields[column[0]]).string(),
                 where,
                 value[1],
                 value[2],
                 true,
                 value[3],
                 value[4],
                 value[5],
                 value[6]};
    rows.emplace_back(std::move(job), value[7]);
  }
  if (rows.empty()) fail_with_file(csv, "no rows");
  return rows;
}

}  // namespace

// ---- MNIST ---------------------------------------------------------------------------------

IdxFiles find_idx_files(const std::string& directory, Split split) {
  require_directory(directory, "the MNIST / Fashion-MNIST IDX files");
  const std::string prefix = split == Split::train ? "train" : "t10k";
  auto find = [&](const std::string& stem) {
    for (const std::string& name : {stem + ".gz", stem}) {
      const fs::path path = fs::path(directory) / name;
      if (fs::is_regular_file(path)) return path.string();
    }
    fail_with_file(directory, "no " + stem +
                                  "[.gz] (the MNIST / Fashion-MNIST IDX files; "
                                  "Debian: apt install dataset-fashion-mnist)");
  };
  return {find(prefix + "-images-idx3-ubyte"), find(prefix + "-labels-idx1-ubyte")};
}

Dataset load_idx(const std::string& images_path, const std::string& labels_path, int64_t classes) {
  TORCH_CHECK(classes >= 1 && classes <= 256, "load_idx: classes must be in 1..256, got ", classes);
  const std::vector<std::uint8_t> image_bytes = read_file_bytes(images_path);
  const auto image_dims = idx_dimensions(images_path, image_bytes, 3, "an IDX image file");
  const std::vector<std::uint8_t> label_bytes = read_file_bytes(labels_path);
  const auto label_dims = idx_dimensions(labels_path, label_bytes, 1, "an IDX label file");
  if (label_dims[0] != image_dims[0])
    fail_with_file(labels_path, std::to_string(label_dims[0]) + " labels for the " +
                                    std::to_string(image_dims[0]) + " images of " + images_path);
  const std::uint8_t* labels = label_bytes.data() + 8;
  for (int64_t i = 0; i < label_dims[0]; ++i)
    if (labels[i] >= classes)
      fail_with_file(labels_path, "label " + std::to_string(labels[i]) + " at index " +
                                      std::to_string(i) + " is not below the " +
                                      std::to_string(classes) + " classes");
  Dataset out;
  out.images = torch::from_blob(const_cast<std::uint8_t*>(image_bytes.data()) + 16,
                                {image_dims[0], 1, image_dims[1], image_dims[2]}, torch::kUInt8)
                   .to(torch::kFloat)
                   .div_(255.0f);
  out.labels = torch::from_blob(const_cast<std::uint8_t*>(labels), {label_dims[0]}, torch::kUInt8)
                   .to(torch::kLong);
  out.classes = classes;
  return out;
}

Dataset load_mnist(const std::string& directory, Split split) {
  const IdxFiles files = find_idx_files(directory, split);
  return load_idx(files.images, files.labels, 10);
}

// ---- MNIST from the mnist package's JSON -------------------------------------------------

std::string default_mnist_dir() {
  if (const char* dir = std::getenv("RAR_MNIST_DIR"); dir && *dir) return dir;
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg)
    return (fs::path(xdg) / "rar" / "mnist").string();
  const char* home = std::getenv("HOME");
  return (fs::path(home && *home ? home : ".") / ".local" / "share" / "rar" / "mnist").string();
}

std::string find_mnist_digits(const std::string& directory) {
  for (const fs::path& dir : {fs::path(directory), fs::path(directory) / "src" / "digits",
                              fs::path(directory) / "package" / "src" / "digits"})
    if (fs::is_regular_file(dir / "0.json")) return dir.string();
  return "";
}

namespace {

constexpr int64_t kMnistPixels = 28 * 28;

/// The digits of one class file as grey levels 0..255, row-major, 784 per digit.
std::vector<std::uint8_t> read_mnist_class(const std::string& path) {
  const std::vector<std::uint8_t> bytes = read_file_bytes(path);
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(bytes.begin(), bytes.end());
  } catch (const nlohmann::json::parse_error& e) {
    fail_with_file(path, "not valid JSON (" + std::string(e.what()) + ")");
  }
  if (!doc.is_object() || !doc.contains("data") || !doc["data"].is_array())
    fail_with_file(path, "expected {\"data\": [...]} (the mnist package's digit file)");
  const nlohmann::json& data = doc["data"];
  const int64_t values = static_cast<int64_t>(data.size());
  if (values == 0) fail_with_file(path, "\"data\" holds no digit");
  if (values % kMnistPixels != 0)
    fail_with_file(path, "\"data\" holds " + std::to_string(values) + " values, not a whole " +
                             "number of 784-pixel digits: digit " +
                             std::to_string(values / kMnistPixels) + " is cut short");
  std::vector<std::uint8_t> levels(static_cast<size_t>(values));
  for (int64_t i = 0; i < values; ++i) {
    const nlohmann::json& v = data[static_cast<size_t>(i)];
    const double x = v.is_number() ? v.get<double>() : std::nan("");
    if (!(x >= 0.0 && x <= 1.0))
      fail_with_file(path, "digit " + std::to_string(i / kMnistPixels) + ", pixel " +
                               std::to_string(i % kMnistPixels) +
                               ": expected a number in [0, 1], got " + v.dump());
    levels[static_cast<size_t>(i)] = static_cast<std::uint8_t>(std::lround(x * 255.0));
  }
  return levels;
}

}  // namespace

Dataset load_mnist_json(const std::string& directory, Split split) {
  require_directory(directory, "the mnist package's folder or its src/digits");
  const std::string digits = find_mnist_digits(directory);
  if (digits.empty())
    fail_with_file(directory, "no 0.json here nor in src/digits (the mnist package " +
                                  std::string(kMnistPackageVersion) + "; run scripts/fetch-mnist)");
  // (class, index within the class file) of every digit of the split, class by class.
  std::vector<std::vector<std::uint8_t>> classes(10);
  std::vector<std::pair<int64_t, int64_t>> picks;
  for (int64_t c = 0; c < 10; ++c) {
    classes[c] = read_mnist_class((fs::path(digits) / (std::to_string(c) + ".json")).string());
    const int64_t count = static_cast<int64_t>(classes[c].size()) / kMnistPixels;
    for (int64_t i = 0; i < count; ++i)
      if ((i % kMnistJsonTestEvery == kMnistJsonTestEvery - 1) == (split == Split::test))
        picks.emplace_back(c, i);
  }
  // A fixed Fisher-Yates shuffle: mt19937_64's output is specified by the standard, unlike
  // std::shuffle's use of it, so every platform gets the same order.
  std::mt19937_64 engine(split == Split::train ? 20190527u : 20191208u);
  for (size_t i = picks.size(); i > 1; --i) std::swap(picks[i - 1], picks[engine() % i]);
  const auto n = static_cast<int64_t>(picks.size());
  torch::Tensor levels = torch::empty({n, 1, 28, 28}, torch::kUInt8);
  torch::Tensor labels = torch::empty({n}, torch::kLong);
  std::uint8_t* out = levels.data_ptr<std::uint8_t>();
  int64_t* label = labels.data_ptr<int64_t>();
  for (int64_t k = 0; k < n; ++k) {
    const auto [c, i] = picks[static_cast<size_t>(k)];
    std::memcpy(out + k * kMnistPixels, classes[c].data() + i * kMnistPixels, kMnistPixels);
    label[k] = c;
  }
  Dataset result;
  result.images = levels.to(torch::kFloat).div_(255.0f);
  result.labels = labels;
  result.classes = 10;
  return result;
}

Dataset load_mnist_any(const std::string& directory, Split split) {
  const std::string dir = directory.empty() ? default_mnist_dir() : directory;
  const std::string prefix = split == Split::train ? "train" : "t10k";
  for (const char* suffix : {".gz", ""})
    if (fs::is_regular_file(fs::path(dir) / (prefix + "-images-idx3-ubyte" + suffix)))
      return load_mnist(dir, split);
  if (!find_mnist_digits(dir).empty()) return load_mnist_json(dir, split);
  const std::string fix = "; run scripts/fetch-mnist, or give --data";
  if (!fs::is_directory(dir))
    fail_with_file(dir, "no such directory (expected MNIST's IDX files or the mnist package" + fix +
                            ")");
  fail_with_file(dir, "holds neither MNIST's IDX files nor the mnist package's digits (0.json ... "
                      "9.json)" + fix);
}

// ---- GTSRB ---------------------------------------------------------------------------------

Dataset load_gtsrb(const std::string& root, Split split, const GtsrbOptions& options) {
  std::vector<std::pair<ImageJob, int64_t>> rows;
  if (split == Split::train) {
    const fs::path images = fs::path(root) / "Final_Training" / "Images";
    require_directory(images.string(), "GTSRB's Final_Training/Images/<class>/ layout");
    std::vector<std::string> folders;
    for (const auto& entry : fs::directory_iterator(images)) {
      const std::string name = entry.path().filename().string();
      if (entry.is_directory() && name.size() == 5 &&
          std::all_of(name.begin(), name.end(), [](unsigned char c) { return std::isdigit(c); }))
        folders.push_back(name);
    }
    std::sort(folders.begin(), folders.end());
    if (folders.empty()) fail_with_file(images.string(), "no class folders 00000 ... 00042");
    for (const std::string& folder : folders) {
      const fs::path directory = images / folder;
      const std::string csv = (directory / ("GT-" + folder + ".csv")).string();
      for (auto& row : read_gtsrb_csv(csv, directory.string())) {
        if (row.second != std::stoll(folder))
          fail_with_file(row.first.listed_at, "ClassId " + std::to_string(row.second) +
                                                  " in the folder of class " + folder);
        rows.push_back(std::move(row));
      }
    }
  } else {
    const fs::path test = fs::path(root) / "Final_Test";
    require_directory((test / "Images").string(), "GTSRB's Final_Test/Images/ layout");
    const fs::path candidates[] = {test / "Images" / "GT-final_test.csv",
                                   test / "GT-final_test.csv",
                                   fs::path(root) / "GT-final_test.csv"};
    const auto csv = std::find_if(std::begin(candidates), std::end(candidates),
                                  [](const fs::path& p) { return fs::is_regular_file(p); });
    if (csv == std::end(candidates))
      fail_with_file(candidates[0].string(),
                     "no such file (the test labels with ClassId, from GTSRB_Final_Test_GT.zip; "
                     "also looked for " +
                         candidates[1].string() + " and " + candidates[2].string() + ")");
    rows = read_gtsrb_csv(csv->string(), (test / "Images").string());
  }

  std::vector<ImageJob> jobs;
  std::vector<int64_t> labels;
  for (auto& row : rows) {
    jobs.push_back(std::move(row.first));
    labels.push_back(row.second);
  }
  Dataset out;
  out.images = load_images(jobs, options.size());
  if (options.equalize()) out.images = equalize_histogram(out.images);
  out.labels = torch::tensor(labels, torch::kLong);
  out.classes = kGtsrbClasses;
  return out;
}

torch::Tensor equalize_histogram(const torch::Tensor& images) {
  TORCH_CHECK(images.defined() && (images.dim() == 3 || images.dim() == 4) && images.size(-3) == 3,
              "equalize_histogram: expected RGB images [N, 3, H, W] or [3, H, W], got ",
              images.defined() ? images.sizes() : c10::IntArrayRef{});
  const torch::Tensor x = images.detach().to(torch::kCPU, torch::kFloat);
  const torch::Tensor batch = x.dim() == 3 ? x.unsqueeze(0) : x;
  const int64_t n = batch.size(0);
  const torch::Tensor value = std::get<0>(batch.max(1));  // [N, H, W]
  const torch::Tensor level =
      value.mul(255).round().clamp(0, 255).to(torch::kLong).reshape({n, -1});  // [N, P]
  const torch::Tensor offset = torch::arange(n, torch::kLong).unsqueeze(1) * 256;
  const torch::Tensor counts =
      torch::bincount((level + offset).reshape(-1), {}, n * 256).reshape({n, 256});
  const torch::Tensor cdf = counts.cumsum(1).to(torch::kFloat) / level.size(1);
  const torch::Tensor equalized = cdf.gather(1, level).reshape_as(value).unsqueeze(1);
  const torch::Tensor v = value.unsqueeze(1);
  const torch::Tensor safe_v = torch::where(v > 0, v, torch::ones_like(v));
  const torch::Tensor out =
      torch::where(v > 0, batch * (equalized / safe_v), equalized.expand_as(batch));
  return images.dim() == 3 ? out[0] : out;
}

// ---- Flower-17 -----------------------------------------------------------------------------

Dataset load_flower17(const std::string& directory, Split split, int64_t size) {
  require_directory(directory, "Flower-17's image_0001.jpg ... image_1360.jpg");
  const int64_t total = kFlowerClasses * kFlowerImagesPerClass;
  auto path_of = [&](int64_t index) {
    char name[32];
    std::snprintf(name, sizeof name, "image_%04lld.jpg", static_cast<long long>(index + 1));
    return (fs::path(directory) / name).string();
  };
  for (int64_t i = 0; i < total; ++i)
    if (!fs::is_regular_file(path_of(i)))
      fail_with_file(path_of(i), "no such file (Flower-17 has image_0001.jpg ... image_1360.jpg)");
  int64_t found = 0;
  for (const auto& entry : fs::directory_iterator(directory)) {
    const std::string name = entry.path().filename().string();
    found += name.rfind("image_", 0) == 0 && entry.path().extension() == ".jpg";
  }
  if (found != total)
    fail_with_file(directory, "holds " + std::to_string(found) + " image_*.jpg files, expected " +
                                  std::to_string(total) + " (17 classes x 80)");

  const bool train = split == Split::train;
  std::vector<ImageJob> jobs;
  std::vector<int64_t> labels;
  for (int64_t c = 0; c < kFlowerClasses; ++c)
    for (int64_t k = train ? 0 : kFlowerTrainPerClass;
         k < (train ? kFlowerTrainPerClass : kFlowerImagesPerClass); ++k) {
      ImageJob job;
      job.path = path_of(c * kFlowerImagesPerClass + k);
      jobs.push_back(job);
      labels.push_back(c);
    }
  Dataset out;
  out.images = load_images(jobs, size);
  out.labels = torch::tensor(labels, torch::kLong);
  out.classes = kFlowerClasses;
  return out;
}

torch::Tensor augment_batch(const torch::Tensor& images, at::Generator& generator,
                            const AugmentOptions& options) {
  TORCH_CHECK(images.defined() && images.dim() == 4,
              "augment_batch: expected images [N, C, H, W], got ",
              images.defined() ? images.sizes() : c10::IntArrayRef{});
  const int64_t pad = options.padding(), n = images.size(0), h = images.size(2), w = images.size(3);
  TORCH_CHECK(pad >= 0, "augment_batch: padding must be >= 0, got ", pad);
  if (n == 0) return images.clone();
  const torch::Tensor offsets = torch::randint(0, 2 * pad + 1, {n, 2}, generator, torch::kLong);
  const torch::Tensor flips = torch::randint(0, 2, {n}, generator, torch::kLong);
  const torch::Tensor padded =
      pad > 0 ? torch::constant_pad_nd(images, {pad, pad, pad, pad}, 0) : images;
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < n; ++i) {
    torch::Tensor image = padded[i]
                              .narrow(1, offsets[i][0].item<int64_t>(), h)
                              .narrow(2, offsets[i][1].item<int64_t>(), w);
    if (options.horizontal_flip() && flips[i].item<int64_t>() == 1) image = image.flip({2});
    out.push_back(image);
  }
  return torch::stack(out);
}

}  // namespace examples
}  // namespace rar
