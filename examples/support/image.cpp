#include "support/image.hpp"

#include <stb_image.h>
#include <stb_image_resize.h>
#include <stb_image_write.h>
// stb_easy_font is all static functions: no implementation macro, nothing to link.
#include <stb_easy_font.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <system_error>

namespace fs = std::filesystem;

namespace rar {
namespace examples {

namespace {

/// Matplotlib's 'inferno' (CC0) at 16 evenly spaced points: entries 0, 17, ..., 255.
constexpr float kInferno[16][3] = {
    {0.0015f, 0.0005f, 0.0139f}, {0.0469f, 0.0303f, 0.1502f}, {0.1424f, 0.0462f, 0.3086f},
    {0.2582f, 0.0386f, 0.4065f}, {0.3665f, 0.0716f, 0.4320f}, {0.4723f, 0.1105f, 0.4283f},
    {0.5783f, 0.1480f, 0.4044f}, {0.6827f, 0.1895f, 0.3608f}, {0.7805f, 0.2433f, 0.2995f},
    {0.8650f, 0.3168f, 0.2261f}, {0.9296f, 0.4115f, 0.1454f}, {0.9709f, 0.5229f, 0.0584f},
    {0.9876f, 0.6453f, 0.0399f}, {0.9788f, 0.7745f, 0.1760f}, {0.9500f, 0.9034f, 0.3803f},
    {0.9884f, 0.9984f, 0.6449f}};

std::string lowercase_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

/// `image` as float32 `[C, H, W]` on the CPU; `[H, W]` becomes `[1, H, W]`.
torch::Tensor as_chw(const torch::Tensor& image, const char* fn) {
  TORCH_CHECK(image.defined() && (image.dim() == 2 || image.dim() == 3), fn,
              ": expected an image [C, H, W] or [H, W], got ",
              image.defined() ? image.sizes() : c10::IntArrayRef{});
  torch::Tensor chw = image.detach().to(torch::kCPU, torch::kFloat);
  return chw.dim() == 2 ? chw.unsqueeze(0) : chw;
}

/// Converts interleaved 8-bit pixels from `from` to `to` channels (1 gray, 2 gray+alpha, 3 RGB,
/// 4 RGBA), with stb_image's rules: gray is replicated, alpha dropped or set opaque, RGB to gray
/// is (77 R + 150 G + 29 B) >> 8.
std::vector<std::uint8_t> convert_channels(const std::vector<std::uint8_t>& in, int from, int to) {
  if (from == to) return in;
  const size_t pixels = in.size() / static_cast<size_t>(from);
  std::vector<std::uint8_t> out(pixels * static_cast<size_t>(to));
  for (size_t i = 0; i < pixels; ++i) {
    const std::uint8_t* p = in.data() + i * from;
    std::uint8_t* q = out.data() + i * to;
    const bool color = from >= 3;
    const int r = p[0], g = color ? p[1] : p[0], b = color ? p[2] : p[0];
    const int alpha = from == 2 ? p[1] : from == 4 ? p[3] : 255;
    const auto gray = static_cast<std::uint8_t>(color ? (r * 77 + g * 150 + b * 29) >> 8 : r);
    switch (to) {
      case 1: q[0] = gray; break;
      case 2: q[0] = gray, q[1] = static_cast<std::uint8_t>(alpha); break;
      case 3: q[0] = static_cast<std::uint8_t>(r), q[1] = static_cast<std::uint8_t>(g),
              q[2] = static_cast<std::uint8_t>(b); break;
      default: q[0] = static_cast<std::uint8_t>(r), q[1] = static_cast<std::uint8_t>(g),
               q[2] = static_cast<std::uint8_t>(b), q[3] = static_cast<std::uint8_t>(alpha);
    }
  }
  return out;
}

/// Decodes a binary PGM (P5) or PPM (P6) with any maxval in 1..65535 (values rescaled to
/// 0..255, 16-bit samples big-endian as Netpbm says). stb_image 2.27 neither notices truncated
/// pixel data nor converts 16-bit samples correctly, so rar reads this simple format itself.
Raster decode_pnm(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  size_t at = 2;
  auto skip_space_and_comments = [&] {
    while (at < bytes.size()) {
      if (bytes[at] == '#') {
        while (at < bytes.size() && bytes[at] != '\n' && bytes[at] != '\r') ++at;
      } else if (std::isspace(bytes[at])) {
        ++at;
      } else {
        break;
      }
    }
  };
  auto number = [&](const char* what, long max) {
    skip_space_and_comments();
    long value = 0;
    const size_t first = at;
    while (at < bytes.size() && std::isdigit(bytes[at]) && value <= max)
      value = value * 10 + (bytes[at++] - '0');
    if (at == first) fail_with_file(path, std::string("cannot decode image (PNM header: no ") +
                                              what + ")");
    if (value < 1 || value > max)
      fail_with_file(path, "cannot decode image (PNM header: " + std::string(what) + " " +
                               std::to_string(value) + " is not in 1.." + std::to_string(max) +
                               ")");
    return static_cast<int>(value);
  };
  const int channels = bytes[1] == '5' ? 1 : 3;
  const int width = number("width", 1 << 24), height = number("height", 1 << 24);
  const int maxval = number("maxval", 65535);
  if (at >= bytes.size() || !std::isspace(bytes[at]))
    fail_with_file(path, "cannot decode image (PNM header: no whitespace after maxval)");
  ++at;
  const size_t sample_bytes = maxval > 255 ? 2 : 1;
  const size_t samples = static_cast<size_t>(width) * height * channels;
  const size_t need = samples * sample_bytes, have = bytes.size() - at;
  if (have < need)
    fail_with_file(path, "truncated: " + std::to_string(have) + " bytes of pixel data, " +
                             std::to_string(width) + "x" + std::to_string(height) + "x" +
                             std::to_string(channels) + " at maxval " + std::to_string(maxval) +
                             " need " + std::to_string(need));
  Raster raster{width, height, channels, std::vector<std::uint8_t>(samples)};
  const std::uint8_t* data = bytes.data() + at;
  for (size_t i = 0; i < samples; ++i) {
    const unsigned v = sample_bytes == 2 ? (data[2 * i] << 8) | data[2 * i + 1] : data[i];
    if (v > static_cast<unsigned>(maxval))
      fail_with_file(path, "cannot decode image (sample " + std::to_string(v) +
                               " above maxval " + std::to_string(maxval) + ")");
    raster.pixels[i] = static_cast<std::uint8_t>((v * 255u + maxval / 2) / maxval);
  }
  return raster;
}

}  // namespace

Raster read_raster(const std::string& path, int channels) {
  TORCH_CHECK(channels >= 0 && channels <= 4, "read_raster: channels must be 0..4, got ", channels);
  if (!fs::is_regular_file(path)) fail_with_file(path, "no such file");
  std::ifstream file(path, std::ios::binary);
  const std::vector<std::uint8_t> bytes{std::istreambuf_iterator<char>(file), {}};
  if (!file && !file.eof()) fail_with_file(path, "cannot read file");
  Raster raster;
  if (bytes.size() >= 2 && bytes[0] == 'P' && (bytes[1] == '5' || bytes[1] == '6')) {
    raster = decode_pnm(path, bytes);
  } else {
    if (bytes.size() >= 2 && bytes[0] == 'P' && bytes[1] >= '1' && bytes[1] <= '4')
      fail_with_file(path, "cannot decode image (plain-text and bitmap PNM, P1..P4, are not "
                           "supported: convert to binary P5/P6)");
    TORCH_CHECK(bytes.size() <= static_cast<size_t>(std::numeric_limits<int>::max()),
                path, ": file too large to decode (", bytes.size(), " bytes)");
    int width = 0, height = 0, in_file = 0;
    // Decoded in the file's own channels: rar converts (stb's converter is wrong for 16 bits).
    std::unique_ptr<stbi_uc, void (*)(void*)> data(
        stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &width, &height,
                              &in_file, 0),
        stbi_image_free);
    if (!data)
      fail_with_file(path, std::string("cannot decode image (") + stbi_failure_reason() + ")");
    if (width <= 0 || height <= 0 || in_file < 1 || in_file > 4)
      fail_with_file(path, "cannot decode image (empty image)");
    raster = {width, height, in_file, {}};
    raster.pixels.assign(data.get(),
                         data.get() + static_cast<size_t>(width) * height * in_file);
  }
  if (channels != 0 && channels != raster.channels) {
    raster.pixels = convert_channels(raster.pixels, raster.channels, channels);
    raster.channels = channels;
  }
  return raster;
}

Raster crop(const Raster& image, int x, int y, int width, int height) {
  TORCH_CHECK(x >= 0 && y >= 0 && width > 0 && height > 0 && x + width <= image.width &&
                  y + height <= image.height,
              "crop: window ", width, "x", height, " at (", x, ", ", y, ") is outside the ",
              image.width, "x", image.height, " image");
  Raster out{width, height, image.channels, {}};
  out.pixels.resize(static_cast<size_t>(width) * height * image.channels);
  const size_t row_bytes = static_cast<size_t>(width) * image.channels;
  for (int row = 0; row < height; ++row) {
    const size_t from = (static_cast<size_t>(y + row) * image.width + x) * image.channels;
    std::memcpy(out.pixels.data() + row * row_bytes, image.pixels.data() + from, row_bytes);
  }
  return out;
}

Raster resize(const Raster& image, int width, int height) {
  TORCH_CHECK(width > 0 && height > 0, "resize: target size must be positive, got ", width, "x",
              height);
  if (image.width == width && image.height == height) return image;
  Raster out{width, height, image.channels, {}};
  out.pixels.resize(static_cast<size_t>(width) * height * image.channels);
  const int ok = stbir_resize_uint8(image.pixels.data(), image.width, image.height, 0,
                                    out.pixels.data(), width, height, 0, image.channels);
  TORCH_CHECK(ok, "resize: stb_image_resize failed for ", image.width, "x", image.height, " -> ",
              width, "x", height);
  return out;
}

torch::Tensor raster_to_tensor(const Raster& image) {
  const auto hwc = torch::from_blob(const_cast<std::uint8_t*>(image.pixels.data()),
                                    {image.height, image.width, image.channels}, torch::kUInt8);
  return hwc.permute({2, 0, 1}).to(torch::kFloat).div_(255.0f).contiguous();
}

Raster tensor_to_raster(const torch::Tensor& image) {
  const torch::Tensor chw = as_chw(image, "tensor_to_raster");
  TORCH_CHECK(chw.size(0) == 1 || chw.size(0) == 3 || chw.size(0) == 4,
              "tensor_to_raster: expected 1, 3 or 4 channels, got ", chw.size(0));
  const torch::Tensor hwc =
      chw.clamp(0, 1).mul(255).round().to(torch::kUInt8).permute({1, 2, 0}).contiguous();
  Raster out{static_cast<int>(chw.size(2)),
             static_cast<int>(chw.size(1)),
             static_cast<int>(chw.size(0)),
             {}};
  out.pixels.assign(hwc.data_ptr<std::uint8_t>(), hwc.data_ptr<std::uint8_t>() + hwc.numel());
  return out;
}

torch::Tensor read_image(const std::string& path, int channels) {
  return raster_to_tensor(read_raster(path, channels));
}

void write_image(const std::string& path, const torch::Tensor& image, int jpeg_quality) {
  const std::string ext = lowercase_extension(path);
  const bool png = ext == ".png", jpeg = ext == ".jpg" || ext == ".jpeg";
  if (!png && !jpeg) fail_with_file(path, "unsupported image extension (use .png or .jpg)");
  const Raster raster = tensor_to_raster(image);

  std::error_code error;
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) fs::create_directories(parent, error);
  if (error)
    fail_with_file(path, "cannot create directory " + parent.string() + ": " + error.message());
  const std::string tmp = path + ".tmp";
  const int ok = png ? stbi_write_png(tmp.c_str(), raster.width, raster.height, raster.channels,
                                      raster.pixels.data(), raster.width * raster.channels)
                     : stbi_write_jpg(tmp.c_str(), raster.width, raster.height, raster.channels,
                                      raster.pixels.data(), std::clamp(jpeg_quality, 1, 100));
  if (ok) fs::rename(tmp, path, error);
  if (!ok || error) {
    fs::remove(tmp, error);
    fail_with_file(path, ok ? "cannot rename " + tmp + " over it" : "cannot write image");
  }
}

torch::Tensor heatmap(const torch::Tensor& map) {
  torch::Tensor m = as_chw(map, "heatmap");
  TORCH_CHECK(m.size(0) == 1, "heatmap: expected a map [H, W] or [1, H, W], got ", map.sizes());
  m = m[0];
  const float low = m.min().item<float>(), high = m.max().item<float>();
  TORCH_CHECK(low >= 0, "heatmap: the map must be non-negative (rar::attribution_map), got ", low);
  if (high > 0) m = m / high;
  const auto lut = torch::from_blob(const_cast<float*>(&kInferno[0][0]), {16, 3}, torch::kFloat);
  const torch::Tensor t = m * 15;
  const torch::Tensor k = t.floor().clamp(0, 14).to(torch::kLong);
  const torch::Tensor f = (t - k).unsqueeze(-1);
  const torch::Tensor rgb = lut.index({k}) * (1 - f) + lut.index({k + 1}) * f;  // [H, W, 3]
  return rgb.permute({2, 0, 1}).contiguous();
}

torch::Tensor make_panel(const std::vector<torch::Tensor>& tiles, int64_t columns, int64_t scale,
                         int64_t gap) {
  TORCH_CHECK(!tiles.empty(), "make_panel: no tiles");
  TORCH_CHECK(columns >= 1 && scale >= 1 && gap >= 0,
              "make_panel: need columns >= 1, scale >= 1, gap >= 0, got ", columns, ", ", scale,
              ", ", gap);
  std::vector<torch::Tensor> chw;
  int64_t channels = 1;
  for (const auto& tile : tiles) {
    chw.push_back(as_chw(tile, "make_panel"));
    TORCH_CHECK(chw.back().size(0) == 1 || chw.back().size(0) == 3,
                "make_panel: tiles must have 1 or 3 channels, got ", tile.sizes());
    TORCH_CHECK(chw.back().sizes().slice(1) == chw.front().sizes().slice(1),
                "make_panel: tiles must share H x W, got ", chw.front().sizes(), " and ",
                tile.sizes());
    channels = std::max(channels, chw.back().size(0));
  }
  const int64_t h = chw[0].size(1) * scale, w = chw[0].size(2) * scale;
  const int64_t count = static_cast<int64_t>(chw.size());
  const int64_t cols = std::min(columns, count), rows = (count + columns - 1) / columns;
  torch::Tensor panel = torch::ones({channels, rows * (h + gap) - gap, cols * (w + gap) - gap});
  for (int64_t i = 0; i < count; ++i) {
    const torch::Tensor big =
        chw[i].repeat_interleave(scale, 1).repeat_interleave(scale, 2).expand({channels, h, w});
    panel.narrow(1, (i / columns) * (h + gap), h)
        .narrow(2, (i % columns) * (w + gap), w)
        .copy_(big);
  }
  return panel;
}

void write_panel(const std::string& path, const std::vector<torch::Tensor>& tiles, int64_t columns,
                 int64_t scale, int64_t gap) {
  write_image(path, make_panel(tiles, columns, scale, gap));
}

void draw_text(Raster& canvas, int x, int y, const std::string& text,
               const std::uint8_t (&color)[3], int scale) {
  TORCH_CHECK(canvas.channels == 3 &&
                  canvas.pixels.size() == static_cast<size_t>(canvas.width) * canvas.height * 3,
              "draw_text: expected an RGB raster, got ", canvas.width, "x", canvas.height, "x",
              canvas.channels);
  TORCH_CHECK(scale >= 1, "draw_text: scale must be >= 1, got ", scale);
  if (text.empty()) return;
  // stb_easy_font emits axis-aligned quads (4 vertices of 16 bytes: x, y, z, rgba) on a
  // one-pixel grid; about 270 bytes per character.
  std::vector<char> vertices(text.size() * 400 + 1024);
  std::string buffer = text;
  const int quads = stb_easy_font_print(0, 0, buffer.data(), nullptr, vertices.data(),
                                        static_cast<int>(vertices.size()));
  for (int q = 0; q < quads; ++q) {
    float x0 = 1e9f, y0 = 1e9f, x1 = -1e9f, y1 = -1e9f;
    for (int v = 0; v < 4; ++v) {
      float px, py;
      std::memcpy(&px, vertices.data() + (q * 4 + v) * 16, sizeof px);
      std::memcpy(&py, vertices.data() + (q * 4 + v) * 16 + 4, sizeof py);
      x0 = std::min(x0, px), x1 = std::max(x1, px), y0 = std::min(y0, py), y1 = std::max(y1, py);
    }
    const int left = std::max(0, x + static_cast<int>(std::lround(x0)) * scale);
    const int right = std::min(canvas.width, x + static_cast<int>(std::lround(x1)) * scale);
    const int top = std::max(0, y + static_cast<int>(std::lround(y0)) * scale);
    const int bottom = std::min(canvas.height, y + static_cast<int>(std::lround(y1)) * scale);
    for (int row = top; row < bottom; ++row)
      for (int col = left; col < right; ++col)
        std::memcpy(canvas.pixels.data() + (static_cast<size_t>(row) * canvas.width + col) * 3,
                    color, 3);
  }
}

int text_width(const std::string& text, int scale) {
  std::string buffer = text;
  return stb_easy_font_width(buffer.data()) * scale;
}

int text_height(const std::string& text, int scale) {
  std::string buffer = text;
  return stb_easy_font_height(buffer.data()) * scale;
}

}  // namespace examples
}  // namespace rar
