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

/// Ticks of a log axis over [lo, hi] (lo > 0): 1, 2, 5 × 10^k inside the range, and the ends.
std::vector<double> log_ticks(double lo, double hi) {
  std::vector<double> ticks;
  for (double decade = std::pow(10.0, std::floor(std::log10(lo))); decade <= hi * 1.0001;
       decade *= 10)
    for (const double m : {1.0, 2.0, 5.0}) {
      const double t = m * decade;
      if (t >= lo * 0.9999 && t <= hi * 1.0001) ticks.push_back(t);
    }
  return ticks;
}

/// A straight line of width 2 from (xa, ya) to (xb, yb).
void draw_line(Raster& canvas, int xa, int ya, int xb, int yb, const Color& color) {
  const int steps = std::max({std::abs(xb - xa), std::abs(yb - ya), 1});
  for (int i = 0; i <= steps; ++i) {
    const int x = xa + static_cast<int>(std::lround(static_cast<double>(xb - xa) * i / steps));
    const int y = ya + static_cast<int>(std::lround(static_cast<double>(yb - ya) * i / steps));
    fill(canvas, x, y, x + 2, y + 2, color);
  }
}

void draw_line_panel(Raster& canvas, int origin_x, int origin_y, const LinePanel& panel) {
  std::vector<double> xs, ys;
  for (const auto& v : panel.x) xs.insert(xs.end(), v.begin(), v.end());
  for (const auto& v : panel.y) ys.insert(ys.end(), v.begin(), v.end());
  const Axis ay = fit_axis(ys);
  double lo = INFINITY, hi = -INFINITY;
  for (const double v : xs)
    if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (!std::isfinite(lo)) lo = 1, hi = 10;
  Axis ax;
  std::vector<double> xticks;
  if (panel.log_x) {
    // A little room on both sides, in log units.
    const double l = std::log10(lo), h = std::log10(std::max(hi, lo * 1.01));
    const double pad = 0.05 * (h - l);
    ax.lo = l - pad, ax.hi = h + pad;
    xticks = log_ticks(std::pow(10.0, ax.lo), std::pow(10.0, ax.hi));
  } else {
    ax = fit_axis(xs);
    for (double t = ax.lo; t <= ax.hi + ax.step / 2; t += ax.step) xticks.push_back(t);
  }
  const int x0 = origin_x + kLeft, x1 = origin_x + kPanelWidth - kRight;
  const int y0 = origin_y + kTop, y1 = origin_y + kPanelHeight - kBottom;
  auto px = [&](double v) {
    const double u = panel.log_x ? std::log10(v) : v;
    return x0 + static_cast<int>(std::lround((u - ax.lo) / (ax.hi - ax.lo) * (x1 - x0)));
  };
  auto py = [&](double v) {
    return y1 - static_cast<int>(std::lround((v - ay.lo) / (ay.hi - ay.lo) * (y1 - y0)));
  };
  for (const double t : xticks) {
    const int x = px(t);
    fill(canvas, x, y0, x + 1, y1, kGrid);
    fill(canvas, x, y1, x + 1, y1 + 3, kBlack);
    const std::string label = tick_label(t, panel.log_x ? 1.0 : ax.step);
    draw_text(canvas, x - text_width(label) / 2, y1 + 5, label, kBlack);
  }
  for (double t = ay.lo; t <= ay.hi + ay.step / 2; t += ay.step) {
    const int y = py(t);
    fill(canvas, x0, y, x1, y + 1, kGrid);
    fill(canvas, x0 - 3, y, x0, y + 1, kBlack);
    const std::string label = tick_label(t, ay.step);
    draw_text(canvas, x0 - 5 - text_width(label), y - 4, label, kBlack);
  }
  fill(canvas, x0, y0, x0 + 1, y1 + 1, kBlack);
  fill(canvas, x0, y1, x1 + 1, y1 + 1, kBlack);
  draw_text(canvas, origin_x + (kPanelWidth - text_width(panel.title)) / 2, origin_y + 6,
            panel.title, kBlack);
  draw_text(canvas, x0 + (x1 - x0 - text_width(panel.x_label)) / 2, y1 + 20, panel.x_label,
            kBlack);
  draw_text(canvas, origin_x + 2, y0 - 14 + 2, panel.y_label, kBlack);
  for (size_t i = 0; i < panel.x.size(); ++i) {
    bool have = false;
    int last_x = 0, last_y = 0;
    for (size_t j = 0; j < panel.x[i].size(); ++j) {
      if (!std::isfinite(panel.x[i][j]) || !std::isfinite(panel.y[i][j])) continue;
      const int x = px(panel.x[i][j]), y = py(panel.y[i][j]);
      if (have) draw_line(canvas, last_x, last_y, x, y, palette(i));
      have = true, last_x = x, last_y = y;
    }
    for (size_t j = 0; j < panel.x[i].size(); ++j) {
      if (!std::isfinite(panel.x[i][j]) || !std::isfinite(panel.y[i][j])) continue;
      const int x = px(panel.x[i][j]), y = py(panel.y[i][j]);
      fill(canvas, x - 3, y - 3, x + 4, y + 4, kBlack);
      fill(canvas, x - 2, y - 2, x + 3, y + 3, palette(i));
    }
  }
}

}  // namespace

void write_line_plot(const std::string& path, const std::vector<LinePanel>& panels,
                     const std::vector<std::string>& series, const std::string& title,
                     int columns) {
  if (columns < 1) throw std::invalid_argument("write_line_plot: columns must be >= 1");
  for (const auto& panel : panels) {
    bool ok = panel.x.size() == series.size() && panel.y.size() == series.size();
    for (size_t i = 0; ok && i < panel.x.size(); ++i) ok = panel.x[i].size() == panel.y[i].size();
    if (!ok)
      throw std::invalid_argument("write_line_plot: panel '" + panel.title +
                                  "' needs one polyline of equal x and y lengths for each of " +
                                  std::to_string(series.size()) + " series");
    if (panel.log_x)
      for (const auto& v : panel.x)
        for (const double x : v)
          if (std::isfinite(x) && x <= 0)
            throw std::invalid_argument("write_line_plot: panel '" + panel.title +
                                        "' has a log x axis and x = " + std::to_string(x));
  }
  int legend_width = 0;
  for (const auto& name : series) legend_width = std::max(legend_width, text_width(name));
  legend_width += 30;
  const int count = static_cast<int>(std::max<size_t>(1, panels.size()));
  const int cols = std::min(columns, count);
  const int rows = (count + cols - 1) / cols;
  const int top = title.empty() ? 0 : 18;
  const int panels_width = kPanelWidth * cols;
  const int height =
      std::max(top + kPanelHeight * rows, top + 16 + 14 * static_cast<int>(series.size()));
  const int width = std::max(panels_width + legend_width, text_width(title) + 8);
  Raster canvas{width, height, 3,
                std::vector<std::uint8_t>(static_cast<size_t>(width) * height * 3, 255)};
  if (!title.empty()) draw_text(canvas, (width - text_width(title)) / 2, 4, title, kBlack);
  for (size_t p = 0; p < panels.size(); ++p)
    draw_line_panel(canvas, static_cast<int>(p) % cols * kPanelWidth,
                    top + static_cast<int>(p) / cols * kPanelHeight, panels[p]);
  for (size_t i = 0; i < series.size(); ++i) {
    const int y = top + kTop + 14 * static_cast<int>(i);
    fill(canvas, panels_width + 4, y + 1, panels_width + 11, y + 8, kBlack);
    fill(canvas, panels_width + 5, y + 2, panels_width + 10, y + 7, palette(i));
    draw_text(canvas, panels_width + 16, y, series[i], kBlack);
  }
  write_image(path, make_panel({raster_to_tensor(canvas)}, 1, 2, 0));
}

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
