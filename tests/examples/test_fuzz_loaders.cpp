// Randomized ("fuzz") tests of the examples' data loaders on corrupted fixture files: random
// byte edits, truncations and appends of IDX files (plain and gzip, before and after
// compression), GTSRB csv rows and PPM headers. Every load must either succeed with a valid
// data set or throw std::runtime_error whose message starts with the offending file's path
// (`<path>: ...` or `<csv>:<line>: ...`) — never crash, hang or throw anything else.
//
// Seeded: a failing case prints its index, the mutations and the file (CAPTURE);
// RAR_FUZZ_SEED=<n> in the environment shifts every seed, to explore other cases.

#include "support/datasets.hpp"
#include "support/fixtures.hpp"
#include "support/image.hpp"

#include <catch2/catch.hpp>
#include <torch/torch.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using Rng = std::mt19937_64;

/// The generator of one test: seeded with `seed`, or with `seed` + $RAR_FUZZ_SEED when that is
/// set (to explore other cases: `RAR_FUZZ_SEED=7 rar_tests_... "[fuzz]"`).
Rng fuzz_rng(std::uint64_t seed) {
  if (const char* extra = std::getenv("RAR_FUZZ_SEED")) seed += std::strtoull(extra, nullptr, 10);
  return Rng(seed);
}

size_t uniform_size(Rng& rng, size_t lo, size_t hi) {
  return std::uniform_int_distribution<size_t>(lo, hi)(rng);
}
bool coin(Rng& rng, double p = 0.5) { return std::bernoulli_distribution(p)(rng); }
std::uint8_t random_byte(Rng& rng) { return static_cast<std::uint8_t>(uniform_size(rng, 0, 255)); }

template <class T>
const T& pick(Rng& rng, const std::vector<T>& from) {
  return from[uniform_size(rng, 0, from.size() - 1)];
}

/// Printable form of bytes for messages: text as is, other bytes as \xNN.
std::string printable(const Bytes& bytes, size_t limit = 96) {
  std::ostringstream out;
  for (size_t i = 0; i < std::min(bytes.size(), limit); ++i) {
    const auto c = bytes[i];
    if (c >= 32 && c < 127) {
      out << static_cast<char>(c);
    } else {
      static const char* hex = "0123456789abcdef";
      out << "\\x" << hex[c >> 4] << hex[c & 15];
    }
  }
  if (bytes.size() > limit) out << "... (" << bytes.size() << " bytes)";
  return out.str();
}

/// Applies one random edit to `bytes`, the first `header` bytes being the likeliest target;
/// appends what it did to `log`.
void mutate(Rng& rng, Bytes& bytes, size_t header, std::string& log) {
  const size_t size = bytes.size();
  auto position = [&](bool in_header) {
    const size_t end = in_header && header > 0 ? std::min(header, size) : size;
    return end == 0 ? 0 : uniform_size(rng, 0, end - 1);
  };
  switch (uniform_size(rng, 0, 7)) {
    case 0:
    case 1: {  // overwrite a byte, twice as often in the header
      if (size == 0) break;
      const size_t at = position(coin(rng, 0.6));
      bytes[at] = random_byte(rng);
      log += " set[" + std::to_string(at) + "]=" + std::to_string(bytes[at]);
      break;
    }
    case 2: {  // flip one bit
      if (size == 0) break;
      const size_t at = position(coin(rng, 0.5));
      bytes[at] ^= static_cast<std::uint8_t>(1u << uniform_size(rng, 0, 7));
      log += " flip[" + std::to_string(at) + "]";
      break;
    }
    case 3: {  // truncate
      const size_t keep = coin(rng, 0.3) ? position(true) : uniform_size(rng, 0, size);
      bytes.resize(keep);
      log += " truncate(" + std::to_string(keep) + ")";
      break;
    }
    case 4: {  // append
      const size_t n = uniform_size(rng, 1, 8);
      for (size_t i = 0; i < n; ++i) bytes.push_back(random_byte(rng));
      log += " append(" + std::to_string(n) + ")";
      break;
    }
    case 5: {  // insert a byte
      const size_t at = size == 0 ? 0 : position(coin(rng, 0.5));
      bytes.insert(bytes.begin() + static_cast<std::ptrdiff_t>(at), random_byte(rng));
      log += " insert[" + std::to_string(at) + "]";
      break;
    }
    case 6: {  // delete a byte
      if (size == 0) break;
      const size_t at = position(coin(rng, 0.5));
      bytes.erase(bytes.begin() + static_cast<std::ptrdiff_t>(at));
      log += " erase[" + std::to_string(at) + "]";
      break;
    }
    default: {  // a big-endian u32 at a 4-byte boundary of the header: a dimension or the magic
      if (size < 4 || header < 4) break;
      const size_t at = 4 * uniform_size(rng, 0, std::min(header, size) / 4 - 1);
      const std::uint32_t values[] = {0u, 1u, 2u, 3u, 4u, 5u, 255u, 65536u, 0x7FFFFFFFu,
                                      0x80000000u, 0xFFFFFFFFu, 2049u, 2051u};
      const std::uint32_t v = values[uniform_size(rng, 0, std::size(values) - 1)];
      for (int k = 0; k < 4; ++k) bytes[at + k] = static_cast<std::uint8_t>(v >> (24 - 8 * k));
      log += " u32[" + std::to_string(at) + "]=" + std::to_string(v);
      break;
    }
  }
}

/// `bytes` as a gzip stream (in memory: deflate with a gzip header, as gzwrite writes it).
Bytes gzip_bytes(const Bytes& bytes) {
  z_stream z{};
  REQUIRE(deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) ==
          Z_OK);
  Bytes out(deflateBound(&z, static_cast<uLong>(bytes.size())) + 32);
  z.next_in = const_cast<Bytef*>(bytes.data());
  z.avail_in = static_cast<uInt>(bytes.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  deflateEnd(&z);
  REQUIRE(rc == Z_STREAM_END);
  out.resize(z.total_out);
  return out;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

/// Runs `load`; passes when it returns (and `check` accepts the result) or when it throws
/// std::runtime_error whose message starts with `<path>:` for one of `paths` (a path ending in
/// '/' is a folder: any file in it). Returns whether the load succeeded.
template <class Load, class Check>
bool load_or_named_error(const std::vector<std::string>& paths, Load&& load, Check&& check) {
  try {
    check(load());
    return true;
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    INFO("std::runtime_error: " << what);
    CHECK(std::any_of(paths.begin(), paths.end(), [&](const std::string& p) {
      return starts_with(what, p + ":") || (p.back() == '/' && starts_with(what, p));
    }));
    CHECK(what.find('\n') == std::string::npos);  // one line
  } catch (const c10::Error& e) {
    FAIL("c10::Error instead of a std::runtime_error naming the file: "
         << e.what_without_backtrace());
  } catch (const std::exception& e) {
    FAIL("unexpected exception: " << e.what());
  }
  return false;
}

/// A loaded data set is well formed: images [N, C, H, W] in [0, 1], labels [N] in [0, classes).
void check_dataset(const Dataset& data, int64_t channels) {
  REQUIRE(data.images.defined());
  REQUIRE(data.labels.defined());
  REQUIRE(data.images.dim() == 4);
  CHECK(data.images.size(1) == channels);
  CHECK(data.images.size(0) == data.size());
  CHECK(data.images.scalar_type() == torch::kFloat);
  CHECK(data.labels.scalar_type() == torch::kLong);
  if (data.size() == 0) return;
  CHECK(data.images.min().item<float>() >= 0.0f);
  CHECK(data.images.max().item<float>() <= 1.0f);
  CHECK(data.labels.min().item<int64_t>() >= 0);
  CHECK(data.labels.max().item<int64_t>() < data.classes);
}

std::string text_of(const Bytes& b) { return std::string(b.begin(), b.end()); }
Bytes bytes_of(const std::string& s) { return Bytes(s.begin(), s.end()); }

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string join_lines(const std::vector<std::string>& lines, const std::string& eol) {
  std::string out;
  for (const auto& line : lines) out += line + eol;
  return out;
}

}  // namespace

TEST_CASE("fuzz: corrupted IDX files (plain and gzip) load or name the file",
          "[examples][idx][fuzz]") {
  Rng rng = fuzz_rng(1234);
  TempDir tmp;
  const Bytes images = idx_file(2051, {3, 4, 5}, kPixels);
  const Bytes labels = idx_file(2049, {3}, kLabels);
  int loaded = 0, rejected = 0;
  for (int c = 0; c < 400; ++c) {
    const bool gzip = coin(rng);
    const std::string dir = tmp / (gzip ? "gzip" : "plain");  // one kind per folder
    fs::create_directories(dir);
    // Which bytes are corrupted: the IDX content (gzip: before compression) or, for gzip,
    // the compressed stream itself.
    const bool corrupt_stream = gzip && coin(rng, 0.4);
    std::string log;
    auto make = [&](const Bytes& content, size_t header, bool corrupt, const std::string& name) {
      Bytes b = content;
      const size_t edits = corrupt ? uniform_size(rng, 1, 3) : 0;
      if (!corrupt_stream)
        for (size_t i = 0; i < edits; ++i) mutate(rng, b, header, log += " " + name + ":");
      if (gzip) b = gzip_bytes(b);
      if (corrupt_stream)  // the gzip header is 10 bytes
        for (size_t i = 0; i < edits; ++i) mutate(rng, b, 10, log += " " + name + ".gz:");
      return b;
    };
    const int target = static_cast<int>(uniform_size(rng, 0, 2));  // images, labels, both
    const Bytes image_file = make(images, 16, target != 1, "images");
    const Bytes label_file = make(labels, 8, target != 0, "labels");
    const std::string ext = gzip ? ".gz" : "";
    const std::string image_path = dir + "/t10k-images-idx3-ubyte" + ext;
    const std::string label_path = dir + "/t10k-labels-idx1-ubyte" + ext;
    write_file(image_path, image_file);
    write_file(label_path, label_file);
    CAPTURE(c, gzip, corrupt_stream, log, printable(image_file), printable(label_file));

    const bool ok = load_or_named_error(
        {image_path, label_path},
        [&] {
          return coin(rng) ? load_idx(image_path, label_path) : load_mnist(dir, Split::test);
        },
        [](const Dataset& data) {
          check_dataset(data, 1);
          CHECK(data.classes == 10);
        });
    ok ? ++loaded : ++rejected;
  }
  INFO("loaded " << loaded << ", rejected " << rejected);
  CHECK(rejected > 300);  // nearly every corruption is caught...
  CHECK(loaded > 0);      // ...but some are harmless (a pixel byte, gzip trailing garbage)
}

TEST_CASE("fuzz: corrupted GTSRB csv rows load or name the csv", "[examples][gtsrb][fuzz]") {
  Rng rng = fuzz_rng(5678);
  const std::vector<std::string> tokens = {
      "",       "-1",         "0",           "1",           "2",     "17",
      "30",     "39",         "40",          "41",          "42",    "43",
      "99999",  "2147483647", "2147483648",  "-2147483649", "abc",   "1e3",
      " 5",     "5 ",         "+3",          "0x10",        "3.5",   "\xFF\xFE",
      "-0",     "00000_00000.ppm", "00001_00000.ppm", "missing.ppm", ".", "GT-00000.csv"};
  const std::vector<std::string> header_names = {"Filename", "Width",  "Height", "Roi.X1",
                                                 "Roi.Y1",   "Roi.X2", "Roi.Y2", "ClassId"};
  TempDir tmp;
  write_gtsrb(tmp);
  const std::string root = tmp.path.string();
  const std::vector<std::string> csvs = {tmp / "Final_Training/Images/00000/GT-00000.csv",
                                         tmp / "Final_Training/Images/00002/GT-00002.csv",
                                         tmp / "Final_Test/Images/GT-final_test.csv"};
  std::vector<Bytes> originals;
  for (const auto& csv : csvs) originals.push_back(read_file(csv));
  int loaded = 0, rejected = 0;
  for (int c = 0; c < 200; ++c) {
    const size_t which = uniform_size(rng, 0, 2);
    const std::string csv = csvs[which];
    std::vector<std::string> lines = split_lines(text_of(originals[which]));
    std::string eol = "\n", log;  // lines keep their '\r'
    const size_t edits = uniform_size(rng, 1, 3);
    for (size_t e = 0; e < edits; ++e) {
      const size_t row = uniform_size(rng, 0, lines.size() - 1);
      switch (uniform_size(rng, 0, 9)) {
        case 0:
        case 1:
        case 2: {  // one field of a row becomes a token
          std::vector<std::string> fields;
          std::stringstream in(lines[row]);
          for (std::string f; std::getline(in, f, ';');) fields.push_back(f);
          if (fields.empty()) break;
          const size_t col = uniform_size(rng, 0, fields.size() - 1);
          fields[col] = row == 0 && coin(rng) ? pick(rng, header_names) : pick(rng, tokens);
          std::string joined;
          for (size_t i = 0; i < fields.size(); ++i) joined += (i ? ";" : "") + fields[i];
          lines[row] = joined;
          log += " field(" + std::to_string(row) + "," + std::to_string(col) + ")";
          break;
        }
        case 3:  // a ';' more or less
          if (const auto at = lines[row].find(';'); at != std::string::npos && coin(rng)) {
            lines[row].erase(at, 1);
            log += " drop;(" + std::to_string(row) + ")";
          } else {
            lines[row].insert(uniform_size(rng, 0, lines[row].size()), ";");
            log += " add;(" + std::to_string(row) + ")";
          }
          break;
        case 4:  // a row cut short
          lines[row].resize(uniform_size(rng, 0, lines[row].size()));
          log += " cut(" + std::to_string(row) + ")";
          break;
        case 5:  // a row duplicated or removed
          if (coin(rng)) {
            lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(row), lines[row]);
            log += " dup(" + std::to_string(row) + ")";
          } else if (lines.size() > 1) {
            lines.erase(lines.begin() + static_cast<std::ptrdiff_t>(row));
            log += " del(" + std::to_string(row) + ")";
          }
          break;
        case 6:  // blank lines, a BOM, LF line ends
          if (coin(rng)) lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(row), "");
          if (coin(rng)) lines[0] = "\xEF\xBB\xBF" + lines[0];
          if (coin(rng)) eol = "\r\n";  // then rows end in "\r\r\n"
          log += " layout";
          break;
        case 7:  // only the header
          lines.resize(1);
          log += " header-only";
          break;
        default: {  // a random byte somewhere in a row
          auto& line = lines[row];
          const char b = static_cast<char>(random_byte(rng));
          if (line.empty() || coin(rng)) {
            line.insert(uniform_size(rng, 0, line.size()), 1, b);
          } else {
            line[uniform_size(rng, 0, line.size() - 1)] = b;
          }
          log += " byte(" + std::to_string(row) + ")";
          break;
        }
      }
    }
    std::string text = join_lines(lines, eol);
    if (coin(rng, 0.1)) text.resize(uniform_size(rng, 0, text.size()));  // file cut short
    write_file(csv, bytes_of(text));
    const auto options =
        GtsrbOptions().size(static_cast<int64_t>(uniform_size(rng, 1, 12))).equalize(coin(rng));
    CAPTURE(c, csv, log, printable(bytes_of(text), 400));
    // Errors name the csv (with its line) or an image it lists, all under the root.
    const bool ok = load_or_named_error(
        {csv, root + "/Final_Training/Images/00000/", root + "/Final_Training/Images/00002/",
         root + "/Final_Test/Images/"},
        [&] { return load_gtsrb(root, which == 2 ? Split::test : Split::train, options); },
        [&](const Dataset& data) {
          check_dataset(data, 3);
          CHECK(data.classes == 43);
          CHECK(data.images.size(2) == options.size());
        });
    ok ? ++loaded : ++rejected;
    write_file(csv, originals[which]);  // the next case starts from the intact tree
  }
  INFO("loaded " << loaded << ", rejected " << rejected);
  CHECK(rejected > 100);
  CHECK(loaded > 0);
}

TEST_CASE("fuzz: PPM files with corrupted headers decode or name the file",
          "[examples][gtsrb][image][fuzz]") {
  Rng rng = fuzz_rng(91011);
  // Header numbers to try: the real ones, their neighbours, zero and absurd ones (stb refuses
  // more than 2^24 per side and more than 2^31 bytes, so nothing here allocates much).
  const std::vector<std::string> numbers = {"0",   "1",     "19",       "20",        "21",
                                            "39",  "40",    "41",       "100",       "255",
                                            "256", "65535", "65536",    "99999",     "16777217",
                                            "-1",  "x",     "2147483647", "4294967296"};
  const std::vector<std::string> magics = {"P6", "P5", "P3", "P1", "P4", "P7", "p6", "P", "PF"};
  const std::vector<std::string> separators = {" ", "\t", "\n# comment\n", "", "\r\n"};
  int decoded = 0, rejected = 0;
  TempDir tmp;
  write_gtsrb(tmp);
  const std::string root = tmp.path.string();
  const std::string image = tmp / "Final_Test/Images/00001.ppm";  // 20 x 20 in the csv
  const Bytes original = read_file(image);
  const std::string header = "P6\n20 20\n255\n";
  REQUIRE(text_of(Bytes(original.begin(), original.begin() + 13)) == header);
  const Bytes pixels(original.begin() + 13, original.end());
  for (int c = 0; c < 300; ++c) {
    std::string magic = "P6", width = "20", height = "20", maxval = "255", sep = "\n";
    std::string log;
    const size_t edits = uniform_size(rng, 1, 2);
    for (size_t e = 0; e < edits; ++e) {
      switch (uniform_size(rng, 0, 5)) {
        case 0: magic = pick(rng, magics); break;
        case 1: width = pick(rng, numbers); break;
        case 2: height = pick(rng, numbers); break;
        case 3: maxval = pick(rng, numbers); break;
        case 4: sep = pick(rng, separators); break;
        default: break;  // edited below, as bytes
      }
    }
    Bytes file = bytes_of(magic + sep + width + " " + height + sep + maxval + "\n");
    const size_t header_size = file.size();
    file.insert(file.end(), pixels.begin(), pixels.end());
    if (coin(rng, 0.4)) mutate(rng, file, header_size, log);
    write_file(image, file);
    CAPTURE(c, log, printable(file, 40), file.size());

    // Decoding alone: the error names the image.
    const bool ok = load_or_named_error(
        {image}, [&] { return read_raster(image, 3); },
        [](const Raster& r) {
          CHECK(r.width > 0);
          CHECK(r.height > 0);
          CHECK(r.channels == 3);
          CHECK(r.pixels.size() == static_cast<size_t>(r.width) * r.height * 3);
        });
    ok ? ++decoded : ++rejected;
    // Through the GTSRB loader: the error names the image or the csv line that lists it.
    load_or_named_error(
        {image, tmp / "Final_Test/Images/GT-final_test.csv"},
        [&] { return load_gtsrb(root, Split::test, GtsrbOptions().size(8).equalize(false)); },
        [](const Dataset& data) { check_dataset(data, 3); });
  }
  INFO("decoded " << decoded << ", rejected " << rejected);
  CHECK(rejected > 80);
  CHECK(decoded > 20);
}

// Found by the PPM cases above: stb_image 2.27 (Debian's libstb-dev) ignores a short read of
// PNM pixel data (a truncated .ppm decoded "successfully" with uninitialized pixels) and, asked
// for 3 channels of a 16-bit PGM, read past its buffer (AddressSanitizer: heap-buffer-overflow).
// read_raster now decodes binary PNM itself.
TEST_CASE("read_raster rejects a PPM whose pixel data is truncated", "[examples][image][fuzz]") {
  TempDir tmp;
  const std::string path = tmp / "cut.ppm";
  Bytes file = bytes_of("P6\n20 20\n255\n");
  file.resize(file.size() + 20 * 20 * 3 / 2, 128);  // half of the pixels
  write_file(path, file);
  CHECK_THROWS_WITH(read_raster(path, 3),
                    path + ": truncated: 600 bytes of pixel data, 20x20x3 at maxval 255 need 1200");
  // A 16-bit file needs two bytes per sample.
  file = bytes_of("P5\n20 20\n65535\n");
  file.resize(file.size() + 20 * 20, 7);
  write_file(path, file);
  CHECK_THROWS_WITH(read_raster(path, 3),
                    path + ": truncated: 400 bytes of pixel data, 20x20x1 at maxval 65535 need 800");
}

TEST_CASE("read_raster decodes 16-bit and low-maxval PNM, header comments, and converts channels",
          "[examples][image]") {
  using namespace std::string_literals;
  TempDir tmp;
  const std::string path = tmp / "deep.pgm";
  // The ASan reproducer: a 16-bit 20 x 20 PGM read as RGB. Samples big-endian, rescaled by
  // 255 / 65535 and rounded; gray is replicated to the three channels.
  Bytes file = bytes_of("P5\n20 20\n65535\n");
  std::vector<int> expected;
  for (int i = 0; i < 400; ++i) {
    const unsigned v = static_cast<unsigned>(i * 163 % 65536);
    file.push_back(static_cast<std::uint8_t>(v >> 8));
    file.push_back(static_cast<std::uint8_t>(v & 255));
    expected.push_back(static_cast<int>((v * 255 + 32767) / 65535));
  }
  write_file(path, file);
  const Raster rgb = read_raster(path, 3);
  REQUIRE(rgb.width == 20);
  REQUIRE(rgb.height == 20);
  REQUIRE(rgb.channels == 3);
  for (int i = 0; i < 400; ++i)
    for (int c = 0; c < 3; ++c) CHECK(rgb.pixels[3 * i + c] == expected[i]);
  CHECK(read_raster(path).channels == 1);

  // maxval 15 with comments in the header: 15 is white, 5 is a third of it.
  write_file(path, bytes_of("P6 # a comment\n2 1\n# another\n15\n\x00\x05\x0f\x0f\x05\x00"s));
  const Raster low = read_raster(path);
  CHECK(low.channels == 3);
  CHECK(low.pixels == Bytes{0, 85, 255, 255, 85, 0});
  // RGB to gray as stb_image does it: (77 R + 150 G + 29 B) >> 8.
  CHECK(read_raster(path, 1).pixels == Bytes{(150 * 85 + 29 * 255) >> 8, (77 * 255 + 150 * 85) >> 8});
  // ...and to RGBA with an opaque alpha.
  CHECK(read_raster(path, 4).pixels == Bytes{0, 85, 255, 255, 255, 85, 0, 255});

  // A sample above maxval, ASCII PNM, and a header number out of range are named errors.
  write_file(path, bytes_of("P5\n1 1\n15\n\x10"));
  CHECK_THROWS_WITH(read_raster(path), path + ": cannot decode image (sample 16 above maxval 15)");
  write_file(path, bytes_of("P2\n1 1\n15\n7\n"));
  CHECK_THROWS_WITH(read_raster(path), Catch::StartsWith(path + ": cannot decode image (plain-text"));
  write_file(path, bytes_of("P5\n1 1\n65536\n\x00\x00"s));
  CHECK_THROWS_WITH(read_raster(path),
                    path + ": cannot decode image (PNM header: maxval 65536 is not in 1..65535)");
}
