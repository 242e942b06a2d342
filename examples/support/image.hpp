#pragma once
/// @file
/// Image files for the examples: decoding (JPEG, PNG, PPM/PGM), cropping and resizing 8-bit
/// rasters, PNG/JPEG writing, attribution heatmaps and image panels
/// ("image | attribution map | attacked image | attacked map").
///
/// Decoding, resizing and writing use the stb single-file libraries (Debian `libstb-dev`),
/// compiled once into `rar_examples_support` (see stb.cpp). Tensors are float32 `[C, H, W]`
/// with values in [0, 1]; rasters are 8-bit, row-major with interleaved channels.

#include <torch/types.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace rar {
namespace examples {

/// Throws `std::runtime_error("<path>: <what>")`: every file error of the support library is
/// one line that names the file first.
[[noreturn]] inline void fail_with_file(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

/// An 8-bit image: `pixels[(y * width + x) * channels + c]`.
struct Raster {
  int width = 0;
  int height = 0;
  int channels = 0;
  std::vector<std::uint8_t> pixels;
};

/// Decodes a JPEG, PNG, BMP, TGA or binary PNM (P5 PGM / P6 PPM, 8 or 16 bits per sample) file.
///
/// PNM is decoded by rar itself: a file shorter than its header says is an error (stb_image 2.27
/// would return uninitialized pixels), and 16-bit or maxval < 255 samples are rescaled to 0..255.
/// Channel conversion follows stb_image: gray is replicated to RGB, alpha is dropped (or set
/// opaque), RGB becomes gray as (77 R + 150 G + 29 B) / 256.
///
/// Example:
/// @code
/// Raster sign = read_raster("Final_Training/Images/00000/00000_00000.ppm", 3);
/// @endcode
/// @param path the image file
/// @param channels channels to convert to (1 gray, 3 RGB, 4 RGBA), or 0 to keep the file's
/// @throws std::runtime_error "<path>: no such file", "<path>: cannot decode image (...)" or
/// "<path>: truncated: ..."
Raster read_raster(const std::string& path, int channels = 0);

/// The `width` x `height` window of `image` whose top-left pixel is (`x`, `y`).
/// The window must lie inside the image (checked with TORCH_CHECK).
Raster crop(const Raster& image, int x, int y, int width, int height);

/// Resamples `image` to `width` x `height` (stb_image_resize defaults: Mitchell filter when
/// shrinking, Catmull-Rom when enlarging; the aspect ratio is not kept).
Raster resize(const Raster& image, int width, int height);

/// `[C, H, W]` float32 in [0, 1] (value / 255) from an 8-bit raster.
torch::Tensor raster_to_tensor(const Raster& image);

/// An 8-bit raster from an image `[C, H, W]` (C = 1, 3 or 4) or `[H, W]` with values in
/// [0, 1]; values are clamped to [0, 1] and rounded to the nearest of 256 levels.
Raster tensor_to_raster(const torch::Tensor& image);

/// Decodes an image file to `[C, H, W]` float32 in [0, 1] (read_raster, then raster_to_tensor).
/// @param channels channels to convert to, or 0 to keep the file's
torch::Tensor read_image(const std::string& path, int channels = 0);

/// Writes `image` (`[C, H, W]` or `[H, W]`, values in [0, 1]) as PNG or JPEG, chosen by the
/// extension (`.png`, `.jpg`, `.jpeg`). Creates missing parent directories and writes
/// atomically: to `<path>.tmp`, then renamed over `path`.
///
/// Example:
/// @code
/// write_image("out/digit.png", dataset.images[0]);
/// @endcode
/// @param jpeg_quality 1..100, used for JPEG only
/// @throws std::runtime_error naming `path` when the extension is unknown or writing fails
void write_image(const std::string& path, const torch::Tensor& image, int jpeg_quality = 95);

/// Colors a saliency map with the perceptual 'inferno' colormap (black → purple → orange →
/// pale yellow), after dividing it by its maximum so each map spans the whole scale.
///
/// The map is non-negative, as returned by `rar::attribution_map` (|a| summed over channels);
/// an all-zero map is drawn black. The colormap is matplotlib's inferno (CC0) sampled at 16
/// points and interpolated linearly (within 6/255 of the 256-entry table).
///
/// Example:
/// @code
/// torch::Tensor maps = rar::attribution_map(rar::integrated_gradients(model, x, opts));
/// write_image("map.png", heatmap(maps[0]));
/// @endcode
/// @param map `[H, W]` or `[1, H, W]`, non-negative, any floating dtype and device
/// @return `[3, H, W]` float32 on the CPU, values in [0, 1]
torch::Tensor heatmap(const torch::Tensor& map);

/// Tiles images into a grid, row by row, with `gap` white pixels between tiles.
///
/// Tiles are `[C, H, W]` (C = 1 or 3) or `[H, W]` with values in [0, 1] and all of the same
/// H x W; gray tiles are repeated to RGB when any tile is in color. Each tile is enlarged
/// `scale` times (nearest neighbour), so 28 x 28 digits stay crisp.
///
/// Example:
/// @code
/// auto panel = make_panel({image, heatmap(map), attacked, heatmap(attacked_map)}, 4, 4);
/// @endcode
/// @return `[C, rows * (H * scale + gap) - gap, columns * (W * scale + gap) - gap]` float32
torch::Tensor make_panel(const std::vector<torch::Tensor>& tiles, int64_t columns,
                         int64_t scale = 1, int64_t gap = 2);

/// Writes `make_panel(tiles, columns, scale, gap)` to `path` (PNG or JPEG, see write_image).
void write_panel(const std::string& path, const std::vector<torch::Tensor>& tiles, int64_t columns,
                 int64_t scale = 1, int64_t gap = 2);

/// Draws `text` (printable ASCII; '\n' starts a new line) into an RGB raster with its top-left
/// corner at (`x`, `y`), each font pixel a `scale` x `scale` square; what falls outside the
/// raster is cut off. The font is stb_easy_font's (public domain, Debian `libstb-dev`): about
/// 6 x 12 pixels per character at scale 1, proportional.
///
/// Example:
/// @code
/// Raster canvas{200, 40, 3, std::vector<std::uint8_t>(200 * 40 * 3, 255)};
/// draw_text(canvas, 4, 4, "IG-NORM 58.6%", {0, 0, 0}, 2);
/// write_image("label.png", raster_to_tensor(canvas));
/// @endcode
/// @param color RGB, 0..255
void draw_text(Raster& canvas, int x, int y, const std::string& text,
               const std::uint8_t (&color)[3], int scale = 1);

/// Width and height in pixels that `draw_text` covers for `text` at `scale`.
int text_width(const std::string& text, int scale = 1);
int text_height(const std::string& text, int scale = 1);

}  // namespace examples
}  // namespace rar
