// The SVG chart primitives: well-formed markup, what each chart draws, and the scales.

#include "render/svg_chart.h"

#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>
#include <gtest/gtest.h>

#include <cmath>
#include <regex>
#include <sstream>
#include <string>

namespace {

using namespace den::render;

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

/// Parses `svg` as XML (throws when it is not well-formed) and returns the root's id attribute.
std::string root_id(const std::string& svg) {
  std::istringstream in(svg);
  boost::property_tree::ptree tree;
  boost::property_tree::read_xml(in, tree);
  return tree.get<std::string>("svg.<xmlattr>.id");
}

std::vector<double> rect_heights(const std::string& svg) {
  std::vector<double> out;
  const std::regex rect("<rect [^>]*height=\"([0-9.e+-]+)\"");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), rect); it != std::sregex_iterator(); ++it) {
    out.push_back(std::stod((*it)[1].str()));
  }
  return out;
}

TEST(SvgChart, EscapeXmlEscapesMarkupCharacters) {
  EXPECT_EQ(escape_xml("a<b & \"c\" > 'd'"), "a&lt;b &amp; &quot;c&quot; &gt; &#39;d&#39;");
  EXPECT_EQ(escape_xml("plain"), "plain");
}

TEST(SvgChart, NiceTicksCoverTheRangeWithRoundSteps) {
  const std::vector<double> ticks = nice_ticks(0.0, 0.93, 5);
  ASSERT_GE(ticks.size(), 2u);
  EXPECT_LE(ticks.front(), 0.0);
  EXPECT_GE(ticks.back(), 0.93);
  const double step = ticks[1] - ticks[0];
  EXPECT_NEAR(step, 0.2, 1e-12);
  for (size_t i = 1; i < ticks.size(); ++i) EXPECT_NEAR(ticks[i] - ticks[i - 1], step, 1e-9);

  const std::vector<double> big = nice_ticks(0.0, 4300.0, 6);
  EXPECT_NEAR(big[1] - big[0], 1000.0, 1e-9);
  EXPECT_GE(big.back(), 4300.0);
  EXPECT_EQ(nice_ticks(3.0, 3.0, 5), std::vector<double>{3.0});
  EXPECT_TRUE(nice_ticks(0.0, std::nan(""), 5).empty());
}

TEST(SvgChart, ScaleColorRunsFromLightToDarkAndClamps) {
  EXPECT_EQ(scale_color(0.0), "#ffffcc");
  EXPECT_EQ(scale_color(1.0), "#253494");
  EXPECT_EQ(scale_color(-3.0), scale_color(0.0));
  EXPECT_EQ(scale_color(7.0), scale_color(1.0));
  EXPECT_NE(scale_color(0.5), scale_color(0.0));
}

TEST(SvgChart, HeatMapShowsEveryKnownValueAndLeavesUnknownCellsBlank) {
  HeatMap chart;
  chart.id = "acc";
  chart.title = "Accuracy";
  chart.row_axis = "after task i";
  chart.column_axis = "task j";
  chart.values = {{0.5, std::nullopt}, {0.25, 0.75}};
  const std::string svg = heat_map_svg(chart);
  EXPECT_EQ(root_id(svg), "acc");
  EXPECT_EQ(count(svg, "<rect "), 4u);
  EXPECT_EQ(count(svg, "#f4f4f4"), 1u);  // the blank cell
  for (const char* value : {">0.500<", ">0.250<", ">0.750<"}) EXPECT_NE(svg.find(value), std::string::npos) << value;
  EXPECT_NE(svg.find("after task i"), std::string::npos);
  EXPECT_NE(svg.find("task j"), std::string::npos);
  // The smallest value gets the light end of the scale, the largest the dark end.
  EXPECT_NE(svg.find(scale_color(0.0)), std::string::npos);
  EXPECT_NE(svg.find(scale_color(1.0)), std::string::npos);
}

TEST(SvgChart, StackedBarsAreProportionalToTheirValues) {
  BarChart chart;
  chart.id = "units";
  chart.categories = {"1"};
  chart.series_names = {"stage 1", "stage 2"};
  chart.values = {{30.0, 10.0}};
  const std::string svg = bar_chart_svg(chart);
  EXPECT_EQ(root_id(svg), "units");
  const std::vector<double> heights = rect_heights(svg);
  ASSERT_EQ(heights.size(), 2u);
  EXPECT_NEAR(heights[0] / heights[1], 3.0, 1e-6);
  EXPECT_NE(svg.find("1, stage 2: 10"), std::string::npos);  // the segment's tooltip
}

TEST(SvgChart, GroupedBarsShareTheAxisTop) {
  BarChart chart;
  chart.id = "fraction";
  chart.categories = {"2", "3"};
  chart.series_names = {"layer 0", "layer 1"};
  chart.values = {{0.5, 1.0}, {0.25, 0.0}};
  chart.stacked = false;
  chart.y_max = 1.0;
  const std::vector<double> heights = rect_heights(bar_chart_svg(chart));
  ASSERT_EQ(heights.size(), 3u);  // a zero bar is not drawn
  EXPECT_NEAR(heights[1] / heights[0], 2.0, 1e-6);
  EXPECT_NEAR(heights[0] / heights[2], 2.0, 1e-6);
}

TEST(SvgChart, LineChartDrawsTheFinitePointsAndTheMarkers) {
  LineChart chart;
  chart.id = "loss";
  chart.series = {{"train", {0, 10, 20, 30}, {2.0, std::nan(""), 1.0, 0.5}, 0, false},
                  {"validation", {5}, {1.5}, 1, true}};
  chart.markers = {{10, "selective"}};
  const std::string svg = line_chart_svg(chart);
  EXPECT_EQ(root_id(svg), "loss");
  const std::smatch points = [&] {
    std::smatch m;
    std::regex_search(svg, m, std::regex("points=\"([^\"]*)\""));
    return m;
  }();
  ASSERT_FALSE(points.empty());
  std::istringstream pairs(points[1].str());
  std::string pair;
  size_t n = 0;
  while (pairs >> pair) ++n;
  EXPECT_EQ(n, 3u);  // the NaN point is skipped
  EXPECT_EQ(count(svg, "<circle "), 1u);  // the lone validation point
  EXPECT_NE(svg.find(">selective<"), std::string::npos);
  EXPECT_NE(svg.find("stroke-dasharray=\"5 3\""), std::string::npos);
}

TEST(SvgChart, ALineChartWithoutPointsSaysSo) {
  LineChart chart;
  chart.id = "loss";
  chart.series = {{"train", {1}, {std::nan("")}, 0, false}};
  const std::string svg = line_chart_svg(chart);
  EXPECT_EQ(root_id(svg), "loss");
  EXPECT_NE(svg.find("no finite point"), std::string::npos);
  EXPECT_EQ(root_id(empty_chart_svg("e", "T <1>", "nothing & more")), "e");  // escaped, so well-formed
}

}  // namespace
