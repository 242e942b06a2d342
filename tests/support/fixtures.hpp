#pragma once
// Fixture files in the real formats of the examples' data sets (IDX plain/gzip, GTSRB ppm+csv,
// Flower-17 jpg tree), written into temporary directories by the tests.

#include "support/datasets.hpp"
#include "support/image.hpp"
#include "support/temp_dir.hpp"

#include <torch/torch.h>
#include <zlib.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

// Internal linkage: each test translation unit gets its own copy of these small helpers.
namespace {
using namespace rar::examples;

void write_file(const std::string& path, const Bytes& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
}

void write_gzip(const std::string& path, const Bytes& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  REQUIRE(file != nullptr);
  REQUIRE(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())) ==
          static_cast<int>(bytes.size()));
  REQUIRE(gzclose(file) == Z_OK);
}

Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

/// An IDX file of unsigned bytes: magic, big-endian dimensions, data.
Bytes idx_file(std::uint32_t magic, const std::vector<std::uint32_t>& dims, const Bytes& data) {
  Bytes out;
  auto put = [&](std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8)
      out.push_back(static_cast<std::uint8_t>(v >> shift));
  };
  put(magic);
  for (auto d : dims) put(d);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

/// Three 4 x 5 images whose bytes cover 0 and 255, and their labels.
const Bytes kPixels = [] {
  Bytes p(3 * 4 * 5);
  for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<std::uint8_t>(i * 37 % 256);
  p[7] = 255;
  p[8] = 0;
  return p;
}();
const Bytes kLabels = {7, 0, 9};

/// Writes the fixture as `<prefix>-{images-idx3,labels-idx1}-ubyte[.gz]` into `dir`.
void write_idx_pair(const std::string& dir, const std::string& prefix, bool gzip,
                    const Bytes& images = idx_file(2051, {3, 4, 5}, kPixels),
                    const Bytes& labels = idx_file(2049, {3}, kLabels)) {
  fs::create_directories(dir);
  const std::string ext = gzip ? ".gz" : "";
  auto write = gzip ? write_gzip : write_file;
  write(dir + "/" + prefix + "-images-idx3-ubyte" + ext, images);
  write(dir + "/" + prefix + "-labels-idx1-ubyte" + ext, labels);
}

/// A binary PPM (P6) of `width` x `height` with pixel (x, y) = color(x, y).
template <class Color>
void write_ppm(const std::string& path, int width, int height, Color color) {
  Bytes bytes;
  const std::string header =
      "P6\n" + std::to_string(width) + " " + std::to_string(height) + "\n255\n";
  bytes.assign(header.begin(), header.end());
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (std::uint8_t c : color(x, y)) bytes.push_back(c);
  write_file(path, bytes);
}

using Rgb = std::array<std::uint8_t, 3>;

/// The sign color of GTSRB fixture image `k` of class `c` (uniform inside the ROI).
Rgb sign_color(int c, int k) {
  return {static_cast<std::uint8_t>(200 - 40 * k), static_cast<std::uint8_t>(100 + c), 50};
}

/// A GTSRB image: red border, uniform `inside` color on the inclusive ROI (x1, y1)-(x2, y2).
void write_sign(const std::string& path, int w, int h, int x1, int y1, int x2, int y2, Rgb inside) {
  write_ppm(path, w, h, [&](int x, int y) {
    return x >= x1 && x <= x2 && y >= y1 && y <= y2 ? inside : Rgb{255, 0, 0};
  });
}

const std::string kGtsrbHeader = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\r\n";

/// GTSRB tree: train classes 0 and 2 with two images each, a test set of three images.
void write_gtsrb(const TempDir& root) {
  for (int c : {0, 2}) {
    const std::string folder = root / ("Final_Training/Images/0000" + std::to_string(c));
    std::string csv = kGtsrbHeader;
    for (int k = 0; k < 2; ++k) {
      const std::string name = "0000" + std::to_string(k) + "_00000.ppm";
      const int w = k ? 30 : 40, h = k ? 30 : 36;
      write_sign(folder + "/" + name, w, h, 5, 4, w - 6, h - 5, sign_color(c, k));
      csv += name + ";" + std::to_string(w) + ";" + std::to_string(h) + ";5;4;" +
             std::to_string(w - 6) + ";" + std::to_string(h - 5) + ";" + std::to_string(c) + "\r\n";
    }
    write_file(folder + "/GT-0000" + std::to_string(c) + ".csv", Bytes(csv.begin(), csv.end()));
  }
  std::string csv = kGtsrbHeader;
  const int test_classes[] = {42, 0, 2};
  for (int k = 0; k < 3; ++k) {
    const std::string name = "0000" + std::to_string(k) + ".ppm";
    write_sign(root / ("Final_Test/Images/" + name), 20, 20, 2, 2, 17, 17,
               sign_color(test_classes[k], 0));
    csv += name + ";20;20;2;2;17;17;" + std::to_string(test_classes[k]) + "\r\n";
  }
  write_file(root / "Final_Test/Images/GT-final_test.csv", Bytes(csv.begin(), csv.end()));
}

/// `[3, size, size]` filled with `color` / 255.
torch::Tensor uniform_image(Rgb color, int64_t size) {
  return torch::tensor({color[0] / 255.0f, color[1] / 255.0f, color[2] / 255.0f})
      .view({3, 1, 1})
      .expand({3, size, size});
}

/// The Flower-17 fixture image `index` (0-based): 8 x 6, uniform, red = class, green = place
/// in the class.
Rgb flower_color(int index) {
  return {static_cast<std::uint8_t>(index / 80 * 14), static_cast<std::uint8_t>(index % 80 * 3),
          128};
}

void write_flowers(const TempDir& dir) {
  for (int i = 0; i < 1360; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "jpg/image_%04d.jpg", i + 1);
    write_image(dir / name, uniform_image(flower_color(i), 1).expand({3, 6, 8}));
  }
}

/// The grey level (0..255) of pixel `p` of digit `i` of class `c` in the mnist-package fixture:
/// pixels 0 and 1 name the class and the index, the rest cover all 256 levels.
std::uint8_t mnist_json_level(int c, int i, int p) {
  if (p == 0) return static_cast<std::uint8_t>(c);
  if (p == 1) return static_cast<std::uint8_t>(i);
  return static_cast<std::uint8_t>((c * 31 + i * 7 + p) % 256);
}

/// The mnist package's layout in `root`: `src/digits/<c>.json` = {"data": [...]}, 784 values per
/// digit written with 3 decimals as the package does; `counts[c]` digits of class c.
void write_mnist_package(const std::string& root, const std::vector<int>& counts) {
  const fs::path digits = fs::path(root) / "src" / "digits";
  fs::create_directories(digits);
  for (int c = 0; c < static_cast<int>(counts.size()); ++c) {
    std::string text = "{ \"data\": [";
    for (int i = 0; i < counts[c]; ++i)
      for (int p = 0; p < 784; ++p) {
        char value[16];
        std::snprintf(value, sizeof value, "%.3f", mnist_json_level(c, i, p) / 255.0);
        std::string v = value;
        // The package writes 0 and 1 as integers and drops trailing zeros (0.5, 0.25).
        while (v.find('.') != std::string::npos && (v.back() == '0' || v.back() == '.')) {
          const bool dot = v.back() == '.';
          v.pop_back();
          if (dot) break;
        }
        text += (i || p ? "," : "") + v;
      }
    text += "]}\n";
    write_file((digits / (std::to_string(c) + ".json")).string(), Bytes(text.begin(), text.end()));
  }
}

}  // namespace
