#include "render/svg_chart.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

namespace den::render {

namespace {

// Plot geometry of the bar and line charts (SVG user units).
constexpr double kWidth = 640, kHeight = 300;
constexpr double kLeft = 64, kRight = 150, kTop = 36, kBottom = 48;  // kRight holds the legend

struct Rgb {
  double r, g, b;
};

std::string hex(const Rgb& c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", static_cast<int>(std::lround(c.r)), static_cast<int>(std::lround(c.g)),
                static_cast<int>(std::lround(c.b)));
  return buf;
}

/// Tick labels: as few decimals as the step needs.
std::string tick_text(double value, double step) {
  const int digits = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  return fixed(value, std::min(digits, 6));
}

std::string svg_open(const std::string& id, double width, double height, const std::string& title) {
  std::ostringstream out;
  out << "<svg id=\"" << escape_xml(id) << "\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width
      << "\" height=\"" << height << "\" viewBox=\"0 0 " << width << ' ' << height
      << "\" font-family=\"sans-serif\" font-size=\"12\" role=\"img\">\n<title>" << escape_xml(title) << "</title>\n"
      << "<text x=\"" << width / 2 << "\" y=\"20\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">"
      << escape_xml(title) << "</text>\n";
  return out.str();
}

std::string text(double x, double y, const std::string& content, const std::string& attributes = "") {
  std::ostringstream out;
  out << "<text x=\"" << x << "\" y=\"" << y << "\"" << (attributes.empty() ? "" : " " + attributes) << '>'
      << escape_xml(content) << "</text>\n";
  return out.str();
}

/// A linear map of [domain_low, domain_high] onto [range_low, range_high].
struct Scale {
  double domain_low, domain_high, range_low, range_high;
  double operator()(double v) const {
    const double span = domain_high - domain_low;
    const double t = span != 0 ? (v - domain_low) / span : 0.5;
    return range_low + t * (range_high - range_low);
  }
};

/// Axes, grid lines, tick labels and axis titles of a plot over the ticks' range.
std::string axes(const Scale& x, const Scale& y, const std::vector<double>& x_ticks, const std::vector<double>& y_ticks,
                 const std::string& x_axis, const std::string& y_axis) {
  std::ostringstream out;
  const double y_step = y_ticks.size() > 1 ? y_ticks[1] - y_ticks[0] : 1.0;
  for (double t : y_ticks) {
    out << "<line x1=\"" << kLeft << "\" x2=\"" << kWidth - kRight << "\" y1=\"" << y(t) << "\" y2=\"" << y(t)
        << "\" stroke=\"#ddd\"/>\n"
        << text(kLeft - 6, y(t) + 4, tick_text(t, y_step), "text-anchor=\"end\"");
  }
  const double x_step = x_ticks.size() > 1 ? x_ticks[1] - x_ticks[0] : 1.0;
  for (double t : x_ticks) out << text(x(t), kHeight - kBottom + 16, tick_text(t, x_step), "text-anchor=\"middle\"");
  out << "<line x1=\"" << kLeft << "\" x2=\"" << kWidth - kRight << "\" y1=\"" << kHeight - kBottom << "\" y2=\""
      << kHeight - kBottom << "\" stroke=\"#333\"/>\n"
      << "<line x1=\"" << kLeft << "\" x2=\"" << kLeft << "\" y1=\"" << kTop << "\" y2=\"" << kHeight - kBottom
      << "\" stroke=\"#333\"/>\n"
      << text((kLeft + kWidth - kRight) / 2, kHeight - 10, x_axis, "text-anchor=\"middle\"")
      << text(16, (kTop + kHeight - kBottom) / 2, y_axis,
              "text-anchor=\"middle\" transform=\"rotate(-90 16 " + std::to_string((kTop + kHeight - kBottom) / 2) +
                  ")\"");
  return out.str();
}

/// The legend at the right of the plot: a swatch and a name per entry.
std::string legend(const std::vector<std::string>& names, const std::vector<size_t>& colors,
                   const std::vector<bool>& dashed) {
  std::ostringstream out;
  const double x = kWidth - kRight + 14;
  for (size_t i = 0; i < names.size(); ++i) {
    const double y = kTop + 8 + 16 * static_cast<double>(i);
    out << "<line x1=\"" << x << "\" x2=\"" << x + 18 << "\" y1=\"" << y << "\" y2=\"" << y << "\" stroke=\""
        << category_color(colors[i]) << "\" stroke-width=\"" << (dashed.empty() ? 8 : 2) << '"'
        << (!dashed.empty() && dashed[i] ? " stroke-dasharray=\"5 3\"" : "") << "/>\n"
        << text(x + 24, y + 4, names[i]);
  }
  return out.str();
}

}  // namespace

std::string escape_xml(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string fixed(double value, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, value);
  return std::string(buf) == "-0" ? "0" : buf;
}

std::vector<double> nice_ticks(double low, double high, int count) {
  if (!std::isfinite(low) || !std::isfinite(high)) return {};
  if (high < low) std::swap(low, high);
  if (high == low) return {low};
  const double rough = (high - low) / std::max(1, count - 1);
  const double power = std::pow(10.0, std::floor(std::log10(rough)));
  // The round step nearest to the rough one (on a log scale, roughly), so the count stays near `count`.
  const double ratio = rough / power;
  const double step = power * (ratio < 1.5 ? 1 : ratio < 3 ? 2 : ratio < 7 ? 5 : 10);
  std::vector<double> ticks;
  const double first = std::floor(low / step + 1e-9) * step;
  for (double t = first; t < high + step - 1e-9 * step; t += step) ticks.push_back(std::abs(t) < 1e-12 * step ? 0 : t);
  return ticks;
}

std::string scale_color(double t) {
  // Stops of a yellow-green-blue sequential scale (light = low).
  static const std::array<Rgb, 5> stops = {{{255, 255, 204}, {161, 218, 180}, {65, 182, 196}, {44, 127, 184}, {37, 52, 148}}};
  t = std::clamp(std::isfinite(t) ? t : 0.0, 0.0, 1.0);
  const double at = t * static_cast<double>(stops.size() - 1);
  const size_t i = std::min(static_cast<size_t>(at), stops.size() - 2);
  const double f = at - static_cast<double>(i);
  const Rgb& a = stops[i];
  const Rgb& b = stops[i + 1];
  return hex({a.r + f * (b.r - a.r), a.g + f * (b.g - a.g), a.b + f * (b.b - a.b)});
}

std::string category_color(size_t index) {
  static const std::array<const char*, 10> colors = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                                     "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  return colors[index % colors.size()];
}

std::string heat_map_svg(const HeatMap& c) {
  constexpr double kCell = 46, kMapLeft = 80, kMapTop = 58;
  const size_t rows = c.values.size();
  size_t columns = c.column_names.size();
  for (const auto& row : c.values) columns = std::max(columns, row.size());
  double low = std::numeric_limits<double>::infinity(), high = -low;
  for (const auto& row : c.values) {
    for (const auto& v : row) {
      if (v && std::isfinite(*v)) {
        low = std::min(low, *v);
        high = std::max(high, *v);
      }
    }
  }
  const double width = kMapLeft + kCell * static_cast<double>(columns) + 20;
  const double height = kMapTop + kCell * static_cast<double>(rows) + 44;
  std::ostringstream out;
  out << svg_open(c.id, std::max(width, 320.0), height, c.title);
  out << text(kMapLeft + kCell * static_cast<double>(columns) / 2, 40, c.column_axis, "text-anchor=\"middle\"");
  const double mid_y = kMapTop + kCell * static_cast<double>(rows) / 2;
  out << text(18, mid_y, c.row_axis,
              "text-anchor=\"middle\" transform=\"rotate(-90 18 " + std::to_string(mid_y) + ")\"");
  for (size_t j = 0; j < columns; ++j) {
    const std::string name = j < c.column_names.size() ? c.column_names[j] : std::to_string(j + 1);
    out << text(kMapLeft + kCell * (static_cast<double>(j) + 0.5), kMapTop - 4, name, "text-anchor=\"middle\"");
  }
  for (size_t i = 0; i < rows; ++i) {
    const double y = kMapTop + kCell * static_cast<double>(i);
    const std::string name = i < c.row_names.size() ? c.row_names[i] : std::to_string(i + 1);
    out << text(kMapLeft - 6, y + kCell / 2 + 4, name, "text-anchor=\"end\"");
    for (size_t j = 0; j < columns; ++j) {
      const double x = kMapLeft + kCell * static_cast<double>(j);
      const std::optional<double> v = j < c.values[i].size() ? c.values[i][j] : std::nullopt;
      const double value = v.value_or(std::nan(""));
      const bool known = std::isfinite(value);
      const double t = known && high > low ? (value - low) / (high - low) : 1.0;
      out << "<rect x=\"" << x << "\" y=\"" << y << "\" width=\"" << kCell << "\" height=\"" << kCell
          << "\" fill=\"" << (known ? scale_color(t) : "#f4f4f4") << "\" stroke=\"#fff\"/>\n";
      if (known) {
        out << text(x + kCell / 2, y + kCell / 2 + 4, fixed(value, c.digits),
                    std::string("text-anchor=\"middle\" font-size=\"11\" fill=\"") + (t > 0.6 ? "#fff" : "#000") + "\"");
      }
    }
  }
  if (std::isfinite(low)) {
    out << text(kMapLeft, height - 14, "colour: " + fixed(low, c.digits) + " (light) to " + fixed(high, c.digits) + " (dark)");
  }
  out << "</svg>\n";
  return out.str();
}

std::string bar_chart_svg(const BarChart& c) {
  double top = 0.0;
  for (const auto& bar : c.values) {
    double stack = 0.0;
    for (double v : bar) stack = c.stacked ? stack + v : std::max(stack, v);
    top = std::max(top, stack);
  }
  if (c.y_max) top = *c.y_max;
  if (top <= 0) top = 1;
  const std::vector<double> y_ticks = nice_ticks(0, top, 5);
  const Scale y{0, y_ticks.back(), kHeight - kBottom, kTop};
  const double plot_width = kWidth - kRight - kLeft;
  const double slot = plot_width / static_cast<double>(std::max<size_t>(1, c.categories.size()));
  const double bar_width = slot * 0.7;
  std::ostringstream out;
  out << svg_open(c.id, kWidth, kHeight, c.title);
  out << axes(Scale{0, 1, kLeft, kLeft}, y, {}, y_ticks, c.x_axis, c.y_axis);
  for (size_t i = 0; i < c.categories.size(); ++i) {
    const double slot_left = kLeft + slot * static_cast<double>(i);
    out << text(slot_left + slot / 2, kHeight - kBottom + 16, c.categories[i], "text-anchor=\"middle\"");
    const std::vector<double>& bar = c.values[i];
    double base = 0.0;
    for (size_t s = 0; s < bar.size(); ++s) {
      if (bar[s] <= 0) continue;
      const double width = c.stacked ? bar_width : bar_width / static_cast<double>(bar.size());
      const double x = slot_left + (slot - bar_width) / 2 + (c.stacked ? 0 : width * static_cast<double>(s));
      const double low = c.stacked ? base : 0.0;
      const double high = low + bar[s];
      out << "<rect x=\"" << x << "\" y=\"" << y(high) << "\" width=\"" << width << "\" height=\"" << y(low) - y(high)
          << "\" fill=\"" << category_color(s) << "\"><title>"
          << escape_xml(c.categories[i] + ", " + (s < c.series_names.size() ? c.series_names[s] : "") + ": " +
                        fixed(bar[s], bar[s] == std::floor(bar[s]) ? 0 : 3))
          << "</title></rect>\n";
      if (c.stacked) base = high;
    }
  }
  std::vector<size_t> colors;
  for (size_t s = 0; s < c.series_names.size(); ++s) colors.push_back(s);
  out << legend(c.series_names, colors, {}) << "</svg>\n";
  return out.str();
}

std::string line_chart_svg(const LineChart& c) {
  double x_low = std::numeric_limits<double>::infinity(), x_high = -x_low, y_low = x_low, y_high = -x_low;
  for (const auto& s : c.series) {
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      x_low = std::min(x_low, s.x[i]);
      x_high = std::max(x_high, s.x[i]);
      y_low = std::min(y_low, s.y[i]);
      y_high = std::max(y_high, s.y[i]);
    }
  }
  if (!std::isfinite(x_low)) return empty_chart_svg(c.id, c.title, "no finite point to draw");
  x_low = std::min(x_low, 0.0);
  const std::vector<double> x_ticks = nice_ticks(x_low, x_high, 6);
  const std::vector<double> y_ticks = nice_ticks(std::min(y_low, 0.0), y_high, 5);
  const Scale x{x_ticks.front(), x_ticks.back(), kLeft, kWidth - kRight};
  const Scale y{y_ticks.front(), y_ticks.back(), kHeight - kBottom, kTop};
  std::ostringstream out;
  out << svg_open(c.id, kWidth, kHeight, c.title);
  out << axes(x, y, x_ticks, y_ticks, c.x_axis, c.y_axis);
  for (const auto& m : c.markers) {
    out << "<line x1=\"" << x(m.x) << "\" x2=\"" << x(m.x) << "\" y1=\"" << kTop << "\" y2=\"" << kHeight - kBottom
        << "\" stroke=\"#999\" stroke-dasharray=\"2 3\"/>\n"
        << text(x(m.x) + 3, kTop + 10, m.label, "font-size=\"10\" fill=\"#555\"");
  }
  std::vector<std::string> names;
  std::vector<size_t> colors;
  std::vector<bool> dashed;
  for (const auto& s : c.series) {
    std::ostringstream points;
    size_t drawn = 0;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      points << x(s.x[i]) << ',' << y(s.y[i]) << ' ';
      // A lone point (a phase evaluated once) would be an invisible line: it gets a dot.
      if (s.x.size() == 1) {
        out << "<circle cx=\"" << x(s.x[i]) << "\" cy=\"" << y(s.y[i]) << "\" r=\"3\" fill=\""
            << category_color(s.color) << "\"/>\n";
      }
      ++drawn;
    }
    if (drawn > 1) {
      out << "<polyline fill=\"none\" stroke=\"" << category_color(s.color) << "\" stroke-width=\"1.5\""
          << (s.dashed ? " stroke-dasharray=\"5 3\"" : "") << " points=\"" << points.str() << "\"><title>"
          << escape_xml(s.name) << "</title></polyline>\n";
    }
    if (s.in_legend) {
      names.push_back(s.name);
      colors.push_back(s.color);
      dashed.push_back(s.dashed);
    }
  }
  out << legend(names, colors, dashed) << "</svg>\n";
  return out.str();
}

std::string empty_chart_svg(const std::string& id, const std::string& title, const std::string& message) {
  constexpr double kEmptyHeight = 80;
  return svg_open(id, kWidth, kEmptyHeight, title) + text(kWidth / 2, 52, message, "text-anchor=\"middle\" fill=\"#666\"") +
         "</svg>\n";
}

}  // namespace den::render
