#pragma once

// Small SVG charts for the HTML reports: self-contained markup (no script, no external font or
// stylesheet), so that a report opens anywhere without network access.

#include <optional>
#include <string>
#include <vector>

namespace den::render {

/// `text` with &, <, >, " and ' escaped for XML text and attribute values.
std::string escape_xml(const std::string& text);

/// `value` with `digits` decimals ("0.913").
std::string fixed(double value, int digits);

/// Round tick values covering [low, high]: about `count` of them, steps of 1, 2 or 5 times a power
/// of ten, the first <= low and the last >= high. One tick when low == high.
std::vector<double> nice_ticks(double low, double high, int count);

/// A colour of the sequential scale for `t` in [0, 1] (clamped), as "#rrggbb": light yellow to
/// dark blue.
std::string scale_color(double t);

/// A distinct colour for series or stack number `index` (0-based; wraps after 10).
std::string category_color(size_t index);

/// A matrix drawn as coloured cells with their values. values[row][column]; an empty optional is
/// a blank cell (for a task not yet seen).
struct HeatMap {
  std::string id{};  ///< the svg element's id
  std::string title{};
  std::string row_axis{};     ///< "after task i"
  std::string column_axis{};  ///< "task j"
  std::vector<std::string> row_names{};
  std::vector<std::string> column_names{};
  std::vector<std::vector<std::optional<double>>> values{};
  int digits = 3;
};
std::string heat_map_svg(const HeatMap& chart);

/// Bars, one per category, each either a stack of its series' values or a group of bars side by
/// side. values[category][series].
struct BarChart {
  std::string id{};
  std::string title{};
  std::string x_axis{};
  std::string y_axis{};
  std::vector<std::string> categories{};
  std::vector<std::string> series_names{};  ///< the legend
  std::vector<std::vector<double>> values{};
  bool stacked = true;
  std::optional<double> y_max{};  ///< the axis' top; default: the largest bar
};
std::string bar_chart_svg(const BarChart& chart);

/// Lines of (x, y) points, with optional vertical markers (a phase boundary) labelled at the top.
struct LineChart {
  struct Series {
    std::string name{};
    std::vector<double> x{};
    std::vector<double> y{};
    size_t color = 0;  ///< category_color index
    bool dashed = false;
    bool in_legend = true;
  };
  struct Marker {
    double x = 0.0;
    std::string label{};
  };
  std::string id{};
  std::string title{};
  std::string x_axis{};
  std::string y_axis{};
  std::vector<Series> series{};
  std::vector<Marker> markers{};
};
std::string line_chart_svg(const LineChart& chart);

/// A chart that has nothing to draw: the title and `message` in an svg of the same size.
std::string empty_chart_svg(const std::string& id, const std::string& title, const std::string& message);

}  // namespace den::render
