#include "support/plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <stdexcept>

#include "support/image.hpp"

namespace rar {
namespace examples {
namespace {

using Color = std::uint8_t[3];

/// Matplotlib's 'tab10' colors, then darker shades of the first ones.
constexpr std::uint8_t kPalette[][3] = {
    {31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},  {148, 103, 189},
    {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207},
    {15, 60, 90},   {128, 64, 7},   {22, 80, 22}};
constexpr std::uint8_t kBlack[3] = {0, 0, 0};
constexpr std::uint8_t kGrid[3] = {225, 225, 225};

const std::uint8_t (&palette(size_t i))[3] { return kPalette[i % std::size(kPalette)]; }

void fill(Raster& canvas, int x0, int y0, int x1, int y1, const Color& color) {
  for (int y = std::max(0, y0); y < std::min(canvas.height, y1); ++y)
    for (int x = std::max(0, x0); x < std::min(canvas.width, x1); ++x)
      for (int c = 0; c < 3; ++c)
        canvas.pixels[(static_cast<size_t>(y) * canvas.width + x) * 3 + c] = color[c];
}

/// Round tick spacing (1, 2 or 5 × 10^k) giving at most `most` intervals over [lo, hi].
double tick_step(double lo, double hi, int most) {
  const double span = std::max(hi - lo, 1e-9);
  double step = std::pow(10.0, std::floor(std::log10(span / most)));
  for (const double m : {1.0, 2.0, 5.0, 10.0})
    if (span / (m * step) <= most) return m * step;
  return 10 * step;
}

struct Axis {
  double lo = 0, hi = 1, step = 1;
};

Axis fit_axis(const std::vector<double>& values) {
  double lo = INFINITY, hi = -INFINITY;
  for (const double v : values)
    if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  if (hi - lo < 1e-9) lo -= 0.5, hi += 0.5;
  const double pad = 0.06 * (hi - lo);
  lo -= pad, hi += pad;
  Axis axis;
  axis.step = tick_step(lo, hi, 6);
  axis.lo = std::floor(lo / axis.step) * axis.step;
  axis.hi = std::ceil(hi / axis.step) * axis.step;
  return axis;
}

std::string tick_label(double value, double step) {
  char text[32];
  const int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  std::snprintf(text, sizeof text, "%.*f", decimals, std::abs(value) < 1e-12 ? 0.0 : value);
  return text;
}

// Panel geometry at scale 1 (the canvas is doubled at the end).
constexpr int kPanelWidth = 300, kPanelHeight = 250;
constexpr int kLeft = 44, kRight = 12, kTop = 24, kBottom = 36;

void draw_panel(Raster& canvas, int origin_x, const ScatterPanel& panel) {
  const Axis ax = fit_axis(panel.x), ay = fit_axis(panel.y);
  const int x0 = origin_x + kLeft, x1 = origin_x + kPanelWidth - kRight;
  const int y0 = kTop, y1 = kPanelHeight - kBottom;
  auto px = [&](double v) {
    return x0 + static_cast<int>(std::lround((v - ax.lo) / (ax.hi - ax.lo) * (x1 - x0)));
  };
  auto py = [&](double v) {
    return y1 - static_cast<int>(std::lround((v - ay.lo) / (ay.hi - ay.lo) * (y1 - y0)));
  };
  for (double t = ax.lo; t <= ax.hi + ax.step / 2; t += ax.step) {
    const int x = px(t);
    fill(canvas, x, y0, x + 1, y1, kGrid);
    fill(canvas, x, y1, x + 1, y1 + 3, kBlack);
    const std::string label = tick_label(t, ax.step);
    draw_text(canvas, x - text_width(label) / 2, y1 + 5, label, kBlack);
  }
  for (double t = ay.lo; t <= ay.hi + ay.step / 2; t += ay.step) {
    const int y = py(t);
    fill(canvas, x0, y, x1, y + 1, kGrid);
    fill(canvas, x0 - 3, y, x0, y + 1, kBlack);
    const std::string label = tick_label(t, ay.step);
    draw_text(canvas, x0 - 5 - text_width(label), y - 4, label, kBlack);
  }
  fill(canvas, x0, y0, x0 + 1, y1 + 1, kBlack);  // y axis
  fill(canvas, x0, y1, x1 + 1, y1 + 1, kBlack);  // x axis
  draw_text(canvas, origin_x + (kPanelWidth - text_width(panel.title)) / 2, 6, panel.title,
            kBlack);
  draw_text(canvas, x0 + (x1 - x0 - text_width(panel.x_label)) / 2, y1 + 20, panel.x_label,
            kBlack);
  draw_text(canvas, origin_x + 2, y0 - 14 + 2, panel.y_label, kBlack);
  for (size_t i = 0; i < panel.x.size(); ++i) {
    if (!std::isfinite(panel.x[i]) || !std::isfinite(panel.y[i])) continue;
    const int x = px(panel.x[i]), y = py(panel.y[i]);
    fill(canvas, x - 3, y - 3, x + 4, y + 4, kBlack);
    fill(canvas, x - 2, y - 2, x + 3, y + 3, palette(i));
  }
}

}  // namespace

void write_scatter_plot(const std::string& path, const std::vector<ScatterPanel>& panels,
                        const std::vector<std::string>& series) {
  for (const auto& panel : panels)
    if (panel.x.size() != series.size() || panel.y.size() != series.size())
      throw std::invalid_argument("write_scatter_plot: panel '" + panel.title + "' has " +
                                  std::to_string(panel.x.size()) + " x and " +
                                  std::to_string(panel.y.size()) + " y values for " +
                                  std::to_string(series.size()) + " series");
  int legend_width = 0;
  for (const auto& name : series) legend_width = std::max(legend_width, text_width(name));
  legend_width += 30;
  const int panels_width = kPanelWidth * static_cast<int>(std::max<size_t>(1, panels.size()));
  const int height =
      std::max(kPanelHeight, 16 + 14 * static_cast<int>(series.size()));
  Raster canvas{panels_width + legend_width, height, 3,
                std::vector<std::uint8_t>(static_cast<size_t>(panels_width + legend_width) *
                                              height * 3,
                                          255)};
  for (size_t p = 0; p < panels.size(); ++p)
    draw_panel(canvas, static_cast<int>(p) * kPanelWidth, panels[p]);
  for (size_t i = 0; i < series.size(); ++i) {
    const int y = kTop + 14 * static_cast<int>(i);
    fill(canvas, panels_width + 4, y + 1, panels_width + 11, y + 8, kBlack);
    fill(canvas, panels_width + 5, y + 2, panels_width + 10, y + 7, palette(i));
    draw_text(canvas, panels_width + 16, y, series[i], kBlack);
  }
  // Doubled (nearest neighbour): the 1-pixel font and lines stay crisp and become readable.
  write_image(path, make_panel({raster_to_tensor(canvas)}, 1, 2, 0));
}

}  // namespace examples
}  // namespace rar
