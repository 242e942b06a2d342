#pragma once
/// @file
/// Scatter plots as PNG files (the `compare` subcommand's robustness-against-accuracy plot),
/// drawn on an 8-bit raster with the support library's bitmap font (`draw_text`).

#include <string>
#include <vector>

namespace rar {
namespace examples {

/// One panel of a scatter plot: point i belongs to series i of the plot (NaN: not drawn).
struct ScatterPanel {
  std::string title, x_label, y_label;
  std::vector<double> x, y;
};

/// Writes the panels side by side to `path` (PNG), with one legend naming the series by color.
/// Each axis spans its panel's points, widened to round ticks (1, 2, 5 × 10^k).
///
/// Example:
/// @code
/// ScatterPanel in{"IN against NA", "NA (%)", "IN (%)", {90.2, 78.4}, {39.2, 58.6}};
/// write_scatter_plot("plot.png", {in}, {"NATURAL", "IG-NORM"});
/// @endcode
/// @throws std::invalid_argument when a panel's x and y do not have one value per series;
/// std::runtime_error naming `path` when it cannot be written
void write_scatter_plot(const std::string& path, const std::vector<ScatterPanel>& panels,
                        const std::vector<std::string>& series);

/// One panel of a line plot: series i is the polyline through (x[i][j], y[i][j]) (NaN points
/// are skipped); `log_x` spaces the x axis logarithmically (x > 0, ticks at 1, 2, 5 × 10^k).
struct LinePanel {
  std::string title, x_label, y_label;
  std::vector<std::vector<double>> x, y;
  bool log_x = false;
};

/// Writes the panels in a grid of `columns` to `path` (PNG), each series a colored polyline
/// with markers, one legend naming the series by color, and `title` above (none when empty).
///
/// Example:
/// @code
/// LinePanel in{"IN against training time", "training seconds", "IN (%)",
///              {{30, 60, 120}}, {{40.1, 51.2, 58.3}}, true};
/// write_line_plot("frontier.png", {in}, {"IG-SUM-NORM"}, "Fashion-MNIST", 2);
/// @endcode
/// @throws std::invalid_argument when a panel's x and y do not have one polyline per series
/// (of equal lengths) or a log axis has a value <= 0; std::runtime_error naming `path` when it
/// cannot be written
void write_line_plot(const std::string& path, const std::vector<LinePanel>& panels,
                     const std::vector<std::string>& series, const std::string& title,
                     int columns);

}  // namespace examples
}  // namespace rar
