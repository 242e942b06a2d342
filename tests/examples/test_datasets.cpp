// The examples' data and image layer: IDX (MNIST / Fashion-MNIST), GTSRB and Flower-17
// loaders on fixture files written here in the real formats, and PNG / heatmap output.

#include "support/datasets.hpp"
#include "support/fixtures.hpp"
#include "support/image.hpp"

#include <rar/core/random.hpp>

#include <catch2/catch.hpp>
#include "support/skip.hpp"
#include <torch/torch.h>
#include <zlib.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

using namespace rar::examples;
using Catch::Contains;

// ---- IDX -----------------------------------------------------------------------------------

TEST_CASE("IDX loader reads plain and gzipped files exactly", "[examples][idx]") {
  TempDir tmp;
  const bool gzip = GENERATE(false, true);
  write_idx_pair(tmp / "mnist", "t10k", gzip);
  const Dataset data = load_mnist(tmp / "mnist", Split::test);
  REQUIRE(data.images.sizes() == torch::IntArrayRef({3, 1, 4, 5}));
  CHECK(data.images.scalar_type() == torch::kFloat);
  CHECK(data.classes == 10);
  CHECK(data.size() == 3);
  const auto expected =
      torch::from_blob(const_cast<std::uint8_t*>(kPixels.data()), {3, 1, 4, 5}, torch::kUInt8)
          .to(torch::kFloat) /
      255.0f;
  CHECK(data.images.equal(expected));
  CHECK(data.images.flatten()[7].item<float>() == 1.0f);  // byte 255
  CHECK(data.images.flatten()[8].item<float>() == 0.0f);  // byte 0
  CHECK(data.labels.scalar_type() == torch::kLong);
  CHECK(data.labels.equal(torch::tensor({7, 0, 9}, torch::kLong)));
}

TEST_CASE("find_idx_files prefers .gz, falls back to plain files, names what is missing",
          "[examples][idx]") {
  TempDir tmp;
  write_idx_pair(tmp / "d", "train", false);
  CHECK(find_idx_files(tmp / "d", Split::train).images == tmp / "d/train-images-idx3-ubyte");
  write_idx_pair(tmp / "d", "train", true);
  const IdxFiles files = find_idx_files(tmp / "d", Split::train);
  CHECK(files.images == tmp / "d/train-images-idx3-ubyte.gz");
  CHECK(files.labels == tmp / "d/train-labels-idx1-ubyte.gz");
  CHECK_THROWS_WITH(find_idx_files(tmp / "d", Split::test),
                    Contains("no t10k-images-idx3-ubyte[.gz]"));
  CHECK_THROWS_WITH(find_idx_files(tmp / "nowhere", Split::test),
                    Contains("nowhere: no such directory"));
}

TEST_CASE("IDX loader rejects corrupt files with a message naming the file", "[examples][idx]") {
  TempDir tmp;
  const std::string dir = tmp / "bad";
  const Bytes images = idx_file(2051, {3, 4, 5}, kPixels);
  auto load = [&] { return load_mnist(dir, Split::test); };

  SECTION("bad magic in the label file") {
    write_idx_pair(dir, "t10k", true, images, idx_file(2051, {3}, kLabels));
    CHECK_THROWS_WITH(
        load(),
        Contains("t10k-labels-idx1-ubyte.gz: bad magic 2051, expected 2049 (an IDX label file)"));
  }
  SECTION("bad magic in the image file") {
    write_idx_pair(dir, "t10k", false, idx_file(2049, {3, 4, 5}, kPixels));
    CHECK_THROWS_WITH(
        load(),
        Contains("t10k-images-idx3-ubyte: bad magic 2049, expected 2051 (an IDX image file)"));
  }
  SECTION("truncated image data") {
    write_idx_pair(dir, "t10k", true, Bytes(images.begin(), images.end() - 1));
    CHECK_THROWS_WITH(
        load(),
        Contains("t10k-images-idx3-ubyte.gz: truncated: 59 data bytes, dimensions 3x4x5 need 60"));
  }
  SECTION("truncated header") {
    write_idx_pair(dir, "t10k", false, Bytes(images.begin(), images.begin() + 10));
    CHECK_THROWS_WITH(load(), Contains("t10k-images-idx3-ubyte: truncated header"));
  }
  SECTION("truncated gzip stream") {
    write_idx_pair(dir, "t10k", true);
    const std::string path = dir + "/t10k-images-idx3-ubyte.gz";
    const Bytes gz = read_file(path);
    write_file(path, Bytes(gz.begin(), gz.begin() + static_cast<std::ptrdiff_t>(gz.size() / 2)));
    CHECK_THROWS_WITH(load(), Contains("t10k-images-idx3-ubyte.gz: truncated gzip stream"));
  }
  SECTION("trailing bytes") {
    Bytes longer = images;
    longer.push_back(1);
    write_idx_pair(dir, "t10k", false, longer);
    CHECK_THROWS_WITH(load(), Contains("t10k-images-idx3-ubyte: 1 trailing bytes"));
  }
  SECTION("label count differs from the image count") {
    write_idx_pair(dir, "t10k", true, images, idx_file(2049, {2}, {7, 0}));
    CHECK_THROWS_WITH(load(), Contains("t10k-labels-idx1-ubyte.gz: 2 labels for the 3 images of"));
  }
  SECTION("label out of range") {
    write_idx_pair(dir, "t10k", true, images, idx_file(2049, {3}, {7, 10, 9}));
    CHECK_THROWS_WITH(
        load(),
        Contains("t10k-labels-idx1-ubyte.gz: label 10 at index 1 is not below the 10 classes"));
  }
  SECTION("missing file") {
    CHECK_THROWS_WITH(load_idx(dir + "/x-images", dir + "/x-labels"),
                      Contains("x-images: no such file"));
  }
}

TEST_CASE("Fashion-MNIST test set from Debian's dataset-fashion-mnist loads whole",
          "[examples][idx][real]") {
  if (!fs::exists(std::string(kDebianFashionMnistDir) + "/t10k-images-idx3-ubyte.gz")) {
    RAR_SKIP(kDebianFashionMnistDir << " not present (apt install dataset-fashion-mnist)");
  }
  const Dataset test = load_mnist(kDebianFashionMnistDir, Split::test);
  REQUIRE(test.images.sizes() == torch::IntArrayRef({10000, 1, 28, 28}));
  CHECK(test.classes == 10);
  CHECK(test.images.min().item<float>() == 0.0f);
  CHECK(test.images.max().item<float>() == 1.0f);
  CHECK(torch::bincount(test.labels).equal(torch::full({10}, 1000, torch::kLong)));
}

// ---- MNIST from the mnist package's JSON -----------------------------------------------------

TEST_CASE("mnist package loader: shapes, levels, a stratified disjoint split, a fixed order",
          "[examples][mnist-json]") {
  TempDir tmp;
  const std::vector<int> counts = {5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
  write_mnist_package(tmp / "mnist", counts);
  const Dataset train = load_mnist_json(tmp / "mnist", Split::train);
  const Dataset test = load_mnist_json(tmp / "mnist", Split::test);
  // Every 5th digit of a class (indices 4, 9, ...) is a test digit: floor(n / 5) of n.
  int64_t expected_test = 0, total = 0;
  for (int n : counts) expected_test += n / 5, total += n;
  REQUIRE(test.size() == expected_test);
  REQUIRE(train.size() == total - expected_test);
  CHECK(train.images.sizes() == torch::IntArrayRef({total - expected_test, 1, 28, 28}));
  CHECK(test.images.scalar_type() == torch::kFloat);
  CHECK(test.labels.scalar_type() == torch::kLong);
  CHECK(train.classes == 10);
  // Each image is the digit its label names, at the levels written (k / 255), and each (class,
  // index) lands in the split the rule says, once.
  std::set<std::pair<int, int>> seen;
  for (const Dataset* d : {&train, &test}) {
    const auto levels = d->images.mul(255).round().to(torch::kInt).view({d->size(), 784});
    CHECK(d->images.mul(255).sub(levels.view_as(d->images).to(torch::kFloat)).abs().max().item<float>() <
          1e-4f);
    for (int64_t k = 0; k < d->size(); ++k) {
      const int c = levels[k][0].item<int>(), i = levels[k][1].item<int>();
      REQUIRE(c == d->labels[k].item<int64_t>());
      CHECK((i % 5 == 4) == (d == &test));
      CHECK(seen.insert({c, i}).second);
      for (int p : {2, 100, 783}) CHECK(levels[k][p].item<int>() == mnist_json_level(c, i, p));
    }
  }
  CHECK(seen.size() == static_cast<size_t>(total));
  // Per class in the test split: n / 5 digits.
  for (int c = 0; c < 10; ++c) CHECK(test.labels.eq(c).sum().item<int64_t>() == counts[c] / 5);
  // Shuffled (not class by class), and the same every time.
  CHECK_FALSE(train.labels.equal(std::get<0>(train.labels.sort())));
  const Dataset again = load_mnist_json((fs::path(tmp / "mnist") / "src" / "digits").string(), Split::train);
  CHECK(again.labels.equal(train.labels));
  CHECK(again.images.equal(train.images));
  // The unpacked tarball (package/src/digits) and the digits folder itself are found too.
  fs::create_directories(tmp / "tarball");
  fs::rename(tmp / "mnist", fs::path(tmp / "tarball") / "package");
  CHECK(find_mnist_digits(tmp / "tarball") == (fs::path(tmp / "tarball") / "package" / "src" / "digits").string());
  CHECK(load_mnist_json(tmp / "tarball", Split::test).labels.equal(test.labels));
  CHECK(find_mnist_digits(tmp / "nowhere").empty());
}

TEST_CASE("load_mnist_any takes IDX files first, then the mnist package, and names the fix",
          "[examples][mnist-json]") {
  TempDir tmp;
  write_mnist_package(tmp / "json", std::vector<int>(10, 5));
  CHECK(load_mnist_any(tmp / "json", Split::test).size() == 10);
  write_idx_pair(tmp / "idx", "t10k", true);
  CHECK(load_mnist_any(tmp / "idx", Split::test).size() == 3);
  fs::create_directories(tmp / "empty");
  CHECK_THROWS_WITH(load_mnist_any(tmp / "empty", Split::test),
                    Contains(tmp / "empty") && Contains("neither MNIST's IDX files nor the mnist package") &&
                        Contains("scripts/fetch-mnist"));
  CHECK_THROWS_WITH(load_mnist_any(tmp / "missing", Split::test),
                    Contains("missing: no such directory") && Contains("scripts/fetch-mnist"));
}

TEST_CASE("mnist package loader: a malformed file gets one line naming the file and the digit",
          "[examples][mnist-json]") {
  TempDir tmp;
  write_mnist_package(tmp / "m", std::vector<int>(10, 3));
  const std::string three = (fs::path(tmp / "m") / "src" / "digits" / "3.json").string();
  auto text = read_file(three);
  std::string json(text.begin(), text.end());
  auto expect = [&](const std::string& content, const std::string& message) {
    write_file(three, Bytes(content.begin(), content.end()));
    try {
      (void)load_mnist_json(tmp / "m", Split::train);
      FAIL("no error for: " << message);
    } catch (const std::runtime_error& e) {
      const std::string what = e.what();
      INFO(what);
      CHECK_THAT(what, Contains(three + ": ") && Contains(message));
      CHECK(what.find('\n') == std::string::npos);
    }
  };
  expect(json.substr(0, json.size() / 2), "not valid JSON");              // truncated
  expect("{\"digits\": []}", "expected {\"data\": [...]}");
  expect("{\"data\": []}", "holds no digit");
  // Two digits and half of a third: the third (index 2) is cut short.
  expect(json.substr(0, json.find(',', json.size() * 5 / 6)) + "]}", "digit 2 is cut short");
  std::string bad = json;
  // Pixel 300 of digit 1 (the 1084th value) becomes 1.5, then a string.
  size_t at = bad.find('[') + 1;
  for (int k = 0; k < 784 + 300; ++k) at = bad.find(',', at) + 1;
  const size_t end = bad.find(',', at);
  expect(bad.substr(0, at) + "1.5" + bad.substr(end), "digit 1, pixel 300: expected a number in [0, 1], got 1.5");
  expect(bad.substr(0, at) + "\"x\"" + bad.substr(end), "digit 1, pixel 300: expected a number in [0, 1], got \"x\"");
  fs::remove(three);
  CHECK_THROWS_WITH(load_mnist_json(tmp / "m", Split::test), Contains("3.json: no such file"));
}

// ---- GTSRB ---------------------------------------------------------------------------------

TEST_CASE("GTSRB loader crops to the ROI, resizes and labels in folder and csv order",
          "[examples][gtsrb]") {
  TempDir tmp;
  write_gtsrb(tmp);
  const Dataset train = load_gtsrb(tmp.path.string(), Split::train, GtsrbOptions().equalize(false));
  REQUIRE(train.images.sizes() == torch::IntArrayRef({4, 3, 32, 32}));
  CHECK(train.classes == 43);
  CHECK(train.labels.equal(torch::tensor({0, 0, 2, 2}, torch::kLong)));
  for (int i = 0; i < 4; ++i)  // a uniform sign: the red border was cropped away
    CHECK(train.images[i].equal(uniform_image(sign_color(i / 2 * 2, i % 2), 32)));

  const Dataset test =
      load_gtsrb(tmp.path.string(), Split::test, GtsrbOptions().size(16).equalize(false));
  REQUIRE(test.images.sizes() == torch::IntArrayRef({3, 3, 16, 16}));
  CHECK(test.labels.equal(torch::tensor({42, 0, 2}, torch::kLong)));
  CHECK(test.images[1].equal(uniform_image(sign_color(0, 0), 16)));

  // Equalized, a uniform image gets V = 1 with hue and saturation kept: (200, 100, 50) -> (1, .5,
  // .25).
  const Dataset equalized = load_gtsrb(tmp.path.string(), Split::train);
  const auto hue_kept = torch::tensor({1.0f, 0.5f, 0.25f}).view({3, 1, 1}).expand({3, 32, 32});
  CHECK(torch::allclose(equalized.images[0], hue_kept, 0, 1e-6));
}

TEST_CASE("GTSRB loader names the file for missing or bad input", "[examples][gtsrb]") {
  TempDir tmp;
  write_gtsrb(tmp);
  const std::string root = tmp.path.string();
  const std::string class2 = tmp / "Final_Training/Images/00002";
  auto train = [&] { return load_gtsrb(root, Split::train); };

  SECTION("missing csv") {
    fs::remove(class2 + "/GT-00002.csv");
    CHECK_THROWS_WITH(train(), Contains("00002/GT-00002.csv: no such file"));
  }
  SECTION("missing image") {
    fs::remove(class2 + "/00001_00000.ppm");
    CHECK_THROWS_WITH(train(), Contains("00002/00001_00000.ppm: no such file"));
  }
  SECTION("bad ppm") {
    write_file(class2 + "/00001_00000.ppm", {'P', '6', '\n', 'x'});
    CHECK_THROWS_WITH(train(), Contains("00002/00001_00000.ppm: cannot decode image"));
  }
  SECTION("ROI outside the image") {
    std::string csv = kGtsrbHeader + "00000_00000.ppm;40;36;5;4;40;31;2\r\n";
    write_file(class2 + "/GT-00002.csv", Bytes(csv.begin(), csv.end()));
    CHECK_THROWS_WITH(
        train(),
        Contains("GT-00002.csv:2: ROI (5,4)-(40,31) is outside the 40x36 image 00000_00000.ppm"));
  }
  SECTION("negative ROI corner") {  // not "no ROI": every GTSRB row has one
    std::string csv = kGtsrbHeader + "00000_00000.ppm;40;36;5;4;-1;31;2\r\n";
    write_file(class2 + "/GT-00002.csv", Bytes(csv.begin(), csv.end()));
    CHECK_THROWS_WITH(
        train(),
        Contains("GT-00002.csv:2: ROI (5,4)-(-1,31) is outside the 40x36 image 00000_00000.ppm"));
  }
  SECTION("image size differs from the csv") {
    std::string csv = kGtsrbHeader + "00000_00000.ppm;41;36;5;4;30;31;2\r\n";
    write_file(class2 + "/GT-00002.csv", Bytes(csv.begin(), csv.end()));
    CHECK_THROWS_WITH(train(),
                      Contains("GT-00002.csv:2: 00000_00000.ppm is 40x36, the listing says 41x36"));
  }
  SECTION("ClassId of another folder") {
    std::string csv = kGtsrbHeader + "00000_00000.ppm;40;36;5;4;30;31;3\r\n";
    write_file(class2 + "/GT-00002.csv", Bytes(csv.begin(), csv.end()));
    CHECK_THROWS_WITH(train(), Contains("GT-00002.csv:2: ClassId 3 in the folder of class 00002"));
  }
  SECTION("bad number and missing column") {
    std::string csv = kGtsrbHeader + "00000_00000.ppm;40;3x6;5;4;30;31;2\r\n";
    write_file(class2 + "/GT-00002.csv", Bytes(csv.begin(), csv.end()));
    CHECK_THROWS_WITH(train(), Contains("GT-00002.csv:2: Height is not a number: '3x6'"));
    csv = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2\r\n";
    write_file(tmp / "Final_Test/Images/GT-final_test.csv", Bytes(csv.begin(), csv.end()));
    CHECK_THROWS_WITH(load_gtsrb(root, Split::test),
                      Contains("GT-final_test.csv: header lacks the column ClassId"));
  }
  SECTION("missing test csv") {
    fs::remove(tmp / "Final_Test/Images/GT-final_test.csv");
    CHECK_THROWS_WITH(load_gtsrb(root, Split::test),
                      Contains("Final_Test/Images/GT-final_test.csv: no such file"));
  }
  SECTION("missing layout") {
    CHECK_THROWS_WITH(load_gtsrb(tmp / "none", Split::train),
                      Contains("none/Final_Training/Images: no such directory"));
  }
}

TEST_CASE("equalize_histogram maps V to its rank fraction and keeps hue", "[examples][gtsrb]") {
  // Four pixels with V = 0, 64, 128, 255 (levels): V' = 1/4, 2/4, 3/4, 1.
  // clang-format off
  const auto image = torch::tensor({0.0f, 64.0f, 0.0f, 255.0f,     // R
                                    0.0f, 32.0f, 128.0f, 255.0f,   // G
                                    0.0f, 0.0f, 64.0f, 0.0f})      // B
                         .view({3, 2, 2}) / 255.0f;
  const auto expected = torch::tensor({0.25f, 0.5f, 0.0f, 1.0f,
                                       0.25f, 0.25f, 0.75f, 1.0f,
                                       0.25f, 0.0f, 0.375f, 0.0f}).view({3, 2, 2});
  // clang-format on
  CHECK(torch::allclose(equalize_histogram(image), expected, 0, 1e-6));
  const auto batch = equalize_histogram(torch::stack({image, image.flip({2})}));
  CHECK(torch::allclose(batch[1], expected.flip({2}), 0, 1e-6));  // each image on its own histogram
  CHECK_THROWS_WITH(equalize_histogram(torch::zeros({1, 4, 4})), Contains("expected RGB images"));
}

// ---- Flower-17 -----------------------------------------------------------------------------

TEST_CASE("Flower-17 loader splits 72 / 8 per class in file order", "[examples][flower]") {
  TempDir tmp;
  write_flowers(tmp);
  const std::string dir = tmp / "jpg";
  const double jpeg_tolerance = 3.0 / 255;

  const Dataset train = load_flower17(dir, Split::train, 12);
  REQUIRE(train.images.sizes() == torch::IntArrayRef({1224, 3, 12, 12}));
  CHECK(train.classes == 17);
  CHECK(torch::bincount(train.labels).equal(torch::full({17}, 72, torch::kLong)));
  CHECK(train.labels[72].item<int64_t>() == 1);
  CHECK(torch::allclose(train.images[72 * 5 + 3], uniform_image(flower_color(80 * 5 + 3), 12), 0,
                        jpeg_tolerance));

  const Dataset test = load_flower17(dir, Split::test, 12);
  REQUIRE(test.images.sizes() == torch::IntArrayRef({136, 3, 12, 12}));
  CHECK(torch::bincount(test.labels).equal(torch::full({17}, 8, torch::kLong)));
  for (int i : {0, 7, 8 * 16 + 7})  // test image i is image 72 + i % 8 of class i / 8
    CHECK(torch::allclose(test.images[i], uniform_image(flower_color(i / 8 * 80 + 72 + i % 8), 12),
                          0, jpeg_tolerance));

  write_file(dir + "/image_0500.jpg", {0xFF, 0xD8, 0x00});  // fails inside the parallel decode
  CHECK_THROWS_WITH(load_flower17(dir, Split::train, 12),
                    Contains("image_0500.jpg: cannot decode image"));
  fs::copy_file(dir + "/image_0001.jpg", dir + "/image_1361.jpg");
  CHECK_THROWS_WITH(load_flower17(dir, Split::train),
                    Contains("jpg: holds 1361 image_*.jpg files, expected 1360"));
  fs::remove(dir + "/image_0100.jpg");
  CHECK_THROWS_WITH(load_flower17(dir, Split::test), Contains("image_0100.jpg: no such file"));
  CHECK_THROWS_WITH(load_flower17(tmp / "none", Split::test), Contains("none: no such directory"));
}

TEST_CASE("augment_batch crops windows of the padded image, flips, and follows the seed",
          "[examples][flower]") {
  const auto images = torch::rand({16, 3, 10, 12}, rar::seeded_generator(3));
  auto gen = rar::seeded_generator(11);
  CHECK(
      augment_batch(images, gen, AugmentOptions().padding(0).horizontal_flip(false)).equal(images));

  auto a = rar::seeded_generator(5), b = rar::seeded_generator(5);
  const auto out = augment_batch(images, a, AugmentOptions().padding(3));
  CHECK(out.sizes() == images.sizes());
  CHECK(out.equal(augment_batch(images, b, AugmentOptions().padding(3))));
  CHECK(!out.equal(augment_batch(images, b, AugmentOptions().padding(3))));  // the stream moved on

  // Every output is some window of the zero-padded input, possibly mirrored.
  const auto padded = torch::constant_pad_nd(images, {3, 3, 3, 3}, 0);
  int flipped = 0;
  for (int64_t i = 0; i < 16; ++i) {
    bool found = false;
    for (int64_t dy = 0; dy <= 6 && !found; ++dy)
      for (int64_t dx = 0; dx <= 6 && !found; ++dx) {
        const auto window = padded[i].narrow(1, dy, 10).narrow(2, dx, 12);
        if (out[i].equal(window)) found = true;
        if (out[i].equal(window.flip({2}))) found = true, ++flipped;
      }
    CHECK(found);
  }
  CHECK(flipped > 0);
  CHECK(flipped < 16);

  auto c = rar::seeded_generator(5);
  const auto flips_only = augment_batch(images, c, AugmentOptions().padding(0));
  for (int64_t i = 0; i < 16; ++i)
    CHECK((flips_only[i].equal(images[i]) || flips_only[i].equal(images[i].flip({2}))));
}

// ---- image files ---------------------------------------------------------------------------

TEST_CASE("write_image round-trips PNG exactly and writes atomically", "[examples][image]") {
  TempDir tmp;
  const auto rgb =
      torch::randint(0, 256, {3, 7, 5}, rar::seeded_generator(1)).to(torch::kFloat) / 255;
  write_image(tmp / "sub/dir/rgb.png", rgb);
  CHECK(read_image(tmp / "sub/dir/rgb.png").equal(rgb));
  CHECK(!fs::exists(tmp / "sub/dir/rgb.png.tmp"));

  const auto gray = torch::linspace(0, 1, 6 * 4).view({6, 4});
  write_image(tmp / "gray.png", gray);
  const auto back = read_image(tmp / "gray.png");
  REQUIRE(back.sizes() == torch::IntArrayRef({1, 6, 4}));
  CHECK(torch::allclose(back[0], gray, 0, 0.5 / 255 + 1e-6));
  CHECK(read_image(tmp / "gray.png", 3).sizes() == torch::IntArrayRef({3, 6, 4}));

  write_image(tmp / "rgb.jpg", rgb);  // lossy: only the size is exact
  CHECK(read_image(tmp / "rgb.jpg").sizes() == rgb.sizes());

  write_file(tmp / "file", {1});
  CHECK_THROWS_WITH(write_image(tmp / "file/x.png", rgb),
                    Contains("file/x.png: cannot create directory"));
  CHECK_THROWS_WITH(write_image(tmp / "x.bmp", rgb),
                    Contains("x.bmp: unsupported image extension"));
  CHECK_THROWS_WITH(read_image(tmp / "missing.png"), Contains("missing.png: no such file"));
}

TEST_CASE("heatmap normalizes each map and colors it with inferno", "[examples][image]") {
  const auto map = torch::tensor({0.0f, 1.0f, 2.0f, 4.0f}).view({2, 2});
  const auto colored = heatmap(map);
  REQUIRE(colored.sizes() == torch::IntArrayRef({3, 2, 2}));
  CHECK(torch::allclose(colored.select(1, 0).select(1, 0),
                        torch::tensor({0.0015f, 0.0005f, 0.0139f})));  // inferno(0)
  CHECK(torch::allclose(colored.select(1, 1).select(1, 1),
                        torch::tensor({0.9884f, 0.9984f, 0.6449f})));  // inferno(1)
  CHECK(
      torch::allclose(heatmap(map.unsqueeze(0).to(torch::kDouble) * 7), colored));  // per-map scale
  const auto inferno0 = colored.select(2, 0).select(1, 0).view({3, 1, 1});
  CHECK(heatmap(torch::zeros({3, 3})).equal(inferno0.expand({3, 3, 3})));  // all-zero map: black
  const auto luminance = colored.mean(0).flatten();  // inferno grows brighter with the value
  CHECK((luminance.slice(0, 1) > luminance.slice(0, 0, 3)).all().item<bool>());
  CHECK_THROWS_WITH(heatmap(-map), Contains("non-negative"));
}

TEST_CASE("make_panel lays tiles out in rows with white gaps and write_panel stores it",
          "[examples][image]") {
  const auto image = torch::full({1, 4, 5}, 0.2f);
  const auto color = torch::tensor({1.0f, 0.0f, 0.0f}).view({3, 1, 1}).expand({3, 4, 5});
  const auto panel = make_panel({image, color, image}, 2, 2, 3);
  REQUIRE(panel.sizes() == torch::IntArrayRef({3, 2 * 8 + 3, 2 * 10 + 3}));
  CHECK(panel.narrow(1, 0, 8).narrow(2, 0, 10).eq(0.2f).all().item<bool>());      // gray -> RGB
  CHECK(panel.narrow(1, 0, 8).narrow(2, 13, 10).equal(color.repeat({1, 2, 2})));  // top right
  CHECK(panel.narrow(1, 11, 8).narrow(2, 0, 10).eq(0.2f).all().item<bool>());     // second row
  CHECK(panel.narrow(1, 8, 3).eq(1).all().item<bool>());                          // gap row
  CHECK(panel.narrow(1, 11, 8).narrow(2, 10, 13).eq(1).all().item<bool>());       // empty cell

  TempDir tmp;
  write_panel(tmp / "panel.png", {image, color, image}, 2, 2, 3);
  CHECK(read_image(tmp / "panel.png").equal(panel.mul(255).round().div(255)));
  CHECK_THROWS_WITH(make_panel({image, torch::zeros({4, 4})}, 2),
                    Contains("tiles must share H x W"));
}
