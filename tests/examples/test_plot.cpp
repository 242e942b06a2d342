// The bitmap text and the scatter plot of the examples' support library.

#include "support/image.hpp"
#include "support/plot.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <cmath>

namespace {

rar::examples::Raster white(int width, int height) {
  return {width, height, 3, std::vector<std::uint8_t>(static_cast<size_t>(width) * height * 3, 255)};
}

}  // namespace

TEST_CASE("draw_text draws inside the box text_width and text_height give, scaled",
          "[examples][plot]") {
  using namespace rar::examples;
  CHECK(text_width("IG-NORM", 2) == 2 * text_width("IG-NORM"));
  CHECK(text_height("IG", 3) == 3 * text_height("IG"));
  CHECK(text_width("IG-NORM") > text_width("IG"));
  for (const int scale : {1, 2}) {
    Raster canvas = white(120, 40);
    const std::uint8_t red[3] = {200, 10, 20};
    draw_text(canvas, 3, 5, "IG 58%", red, scale);
    const int w = text_width("IG 58%", scale), h = text_height("IG 58%", scale);
    int drawn = 0, outside = 0;
    for (int y = 0; y < canvas.height; ++y)
      for (int x = 0; x < canvas.width; ++x) {
        const auto* p = &canvas.pixels[(static_cast<size_t>(y) * canvas.width + x) * 3];
        const bool is_red = p[0] == 200 && p[1] == 10 && p[2] == 20;
        const bool is_white = p[0] == 255 && p[1] == 255 && p[2] == 255;
        REQUIRE((is_red || is_white));
        if (is_red) ++drawn, outside += x < 3 || x >= 3 + w || y < 5 || y >= 5 + h;
      }
    INFO("scale " << scale);
    CHECK(drawn > 20 * scale * scale);
    CHECK(outside == 0);
  }
  // Clipped at the edges instead of writing out of bounds.
  Raster small = white(5, 4);
  draw_text(small, -3, -2, "WWW", {0, 0, 0}, 4);
  CHECK(small.pixels.size() == 5 * 4 * 3);
}

TEST_CASE("write_scatter_plot draws each series' marker where its value lies",
          "[examples][plot]") {
  using namespace rar::examples;
  TempDir tmp;
  ScatterPanel panel{"IN vs NA", "NA (%)", "IN (%)", {10, 90}, {20, 80}};
  const std::string path = tmp / "plot.png";
  write_scatter_plot(path, {panel}, {"low", "high"});
  const Raster plot = read_raster(path, 3);
  CHECK(plot.height == 2 * 250);
  // The first series' color: its legend square and its marker, which lies left of and below
  // the second series' marker.
  auto box_of = [&](std::array<int, 3> rgb) {
    int x0 = plot.width, x1 = -1, y0 = plot.height, y1 = -1;
    int count = 0;
    for (int y = 0; y < plot.height; ++y)
      for (int x = 0; x < 2 * 300; ++x) {  // the panel only, not the legend
        const auto* p = &plot.pixels[(static_cast<size_t>(y) * plot.width + x) * 3];
        if (p[0] == rgb[0] && p[1] == rgb[1] && p[2] == rgb[2])
          ++count, x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y),
                   y1 = std::max(y1, y);
      }
    return std::array<int, 5>{count, x0, x1, y0, y1};
  };
  const auto low = box_of({31, 119, 180}), high = box_of({255, 127, 14});
  CHECK(low[0] == 10 * 10);  // one 5 x 5 marker, doubled
  CHECK(high[0] == 10 * 10);
  CHECK(low[2] < high[1]);   // left of
  CHECK(low[3] > high[4]);   // below (rows grow downwards)
  CHECK_THROWS_WITH(write_scatter_plot(path, {ScatterPanel{"p", "x", "y", {1}, {2}}}, {"a", "b"}),
                    Catch::Contains("panel 'p' has 1 x and 1 y values for 2 series"));
}
