// The HTML pages of run and compare reports: every chart present, old and partial reports, and
// documents that are not reports.

#include "render/html_report.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

namespace {

using den::render::compare_report_html;
using den::render::ReportFormatError;
using den::render::report_html;
using den::render::run_report_html;
using nlohmann::json;

json curve(int points) {
  json c = {{"iteration", json::array()}, {"train_loss", json::array()}, {"val_loss", json::array()}};
  for (int i = 1; i <= points; ++i) {
    c["iteration"].push_back(i * 10);
    c["train_loss"].push_back(2.0 / i);
    c["val_loss"].push_back(2.5 / i);
  }
  return c;
}

/// A run report as `den run --report` writes it, trimmed to what the page reads: three tasks whose
/// layers grow 4,2 -> 6,3 -> 9,3.
json run_report(bool with_curves) {
  const std::vector<std::vector<int64_t>> hidden = {{4, 2}, {6, 3}, {9, 3}};
  json tasks = json::array();
  for (int t = 1; t <= 3; ++t) {
    json phases = json::array();
    for (const char* name : {"selective", "expansion"}) {
      json phase = {{"phase", name}, {"iterations", 30}};
      if (with_curves) phase["curve"] = curve(3);
      phases.push_back(phase);
    }
    tasks.push_back({{"task", t},
                     {"hidden_units", hidden[t - 1]},
                     {"selected_units", t == 1 ? json::array() : json{3, 1}},
                     {"phases", phases}});
  }
  const json matrix = {{0.9, nullptr, nullptr}, {0.8, 0.85, nullptr}, {0.7, 0.8, 0.95}};
  return {{"method", "den"},
          {"protocol", "permuted"},
          {"config", {{"hidden", {4, 2}}, {"max_iter", 30}, {"seed", 7}}},
          {"tasks", tasks},
          {"partial", false},
          {"final",
           {{"avg_auroc", 0.97}, {"avg_accuracy", 0.85}, {"task_agnostic_accuracy", nullptr}, {"bwt", -0.1},
            {"params", 1234}, {"params_ratio", 1.5}, {"seconds", 2.0}, {"accuracy_matrix", matrix},
            {"auroc_matrix", matrix}}}};
}

bool has_chart(const std::string& html, const std::string& id) {
  return html.find("<svg id=\"" + id + "\"") != std::string::npos;
}

TEST(HtmlReport, ARunPageHoldsEveryChartAndNothingExternal) {
  const std::string html = run_report_html(run_report(true), "a run");
  for (const char* id : {"accuracy-matrix", "auroc-matrix", "capacity-layer-0", "capacity-layer-1",
                         "selected-fraction", "loss-task-1", "loss-task-2", "loss-task-3"}) {
    EXPECT_TRUE(has_chart(html, id)) << id;
  }
  EXPECT_NE(html.find("<table id=\"summary-table\">"), std::string::npos);
  EXPECT_NE(html.find("<td>0.8500</td>"), std::string::npos);  // the average accuracy
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("href="), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
}

TEST(HtmlReport, CapacityIsStackedByTheStageEachUnitWasBornAt) {
  const std::string html = run_report_html(run_report(true), "a run");
  // Layer 0 after task 3: 4 units from task 1, 2 from task 2, 3 from task 3.
  for (const char* segment : {"3, born at task 1: 4", "3, born at task 2: 2", "3, born at task 3: 3"}) {
    EXPECT_NE(html.find(segment), std::string::npos) << segment;
  }
  EXPECT_EQ(html.find("3, born at task 3: 0"), std::string::npos);  // layer 1 did not grow: no segment
}

TEST(HtmlReport, TheSelectedFractionIsOfThePreviousTasksUnits) {
  const std::string html = run_report_html(run_report(true), "a run");
  EXPECT_NE(html.find("2, layer 0: 0.750"), std::string::npos);  // 3 of task 1's 4 units
  EXPECT_NE(html.find("3, layer 0: 0.500"), std::string::npos);  // 3 of task 2's 6 units
}

TEST(HtmlReport, AReportWithoutCurvesSaysItHasNone) {
  const std::string html = run_report_html(run_report(false), "old");
  EXPECT_TRUE(has_chart(html, "loss-curves"));
  EXPECT_FALSE(has_chart(html, "loss-task-1"));
  EXPECT_NE(html.find("no loss curves in this report"), std::string::npos);
}

TEST(HtmlReport, APartialReportRendersWithoutMatrices) {
  json run = run_report(true);
  run["final"] = nullptr;
  run["partial"] = true;
  const std::string html = run_report_html(run, "stopped");
  EXPECT_TRUE(has_chart(html, "accuracy-matrix"));
  EXPECT_NE(html.find("a partial report has no matrix"), std::string::npos);
  EXPECT_NE(html.find("(partial: interrupted)"), std::string::npos);
}

TEST(HtmlReport, ABaselineHasNoSelectionChart) {
  json run = run_report(true);
  for (json& t : run["tasks"]) t["selected_units"] = json::array();
  const std::string html = run_report_html(run, "stl");
  EXPECT_TRUE(has_chart(html, "selected-fraction"));
  EXPECT_NE(html.find("no selection"), std::string::npos);
}

TEST(HtmlReport, TextFromTheReportIsEscaped) {
  json run = run_report(true);
  run["method"] = "<b>";
  EXPECT_EQ(run_report_html(run, "<i>").find("<b>"), std::string::npos);
}

TEST(HtmlReport, AComparisonPageHasTheTableAndEachMethodsCharts) {
  json row = {{"avg_auroc", 0.9},         {"avg_accuracy", 0.8}, {"task_agnostic_accuracy", nullptr},
              {"bwt", 0.0},               {"params", 100},       {"params_vs_stl", 0.5},
              {"params_vs_mtl", 1.2},     {"seconds", 3.0}};
  json den = row, stl = row;
  den["method"] = "den";
  stl["method"] = "stl";
  stl["params_vs_stl"] = 1.0;
  json stl_run = run_report(true);
  stl_run["method"] = "stl";
  const json doc = {{"methods", {{"den", run_report(true)}, {"stl", stl_run}}},
                    {"table", {den, stl}},
                    {"partial", false}};
  ASSERT_TRUE(den::render::is_compare_report(doc));
  const std::string html = report_html(doc, "comparison");
  EXPECT_TRUE(has_chart(html, "compare-metrics"));
  for (const char* id : {"den-accuracy-matrix", "stl-accuracy-matrix", "den-loss-task-3", "stl-capacity-layer-1"}) {
    EXPECT_TRUE(has_chart(html, id)) << id;
  }
  EXPECT_NE(html.find("<td>stl</td><td>0.9000</td>"), std::string::npos);
  EXPECT_NE(html.find("<th>× MTL</th>"), std::string::npos);
  EXPECT_EQ(html.find("<th>× base network</th>"), std::string::npos);  // no compare row has it
}

TEST(HtmlReport, DocumentsThatAreNotReportsAreRefusedByName) {
  EXPECT_THROW(run_report_html(json::array(), "x"), ReportFormatError);
  json no_tasks = run_report(true);
  no_tasks.erase("tasks");
  try {
    run_report_html(no_tasks, "x");
    FAIL() << "no exception";
  } catch (const ReportFormatError& e) {
    EXPECT_NE(std::string(e.what()).find("tasks"), std::string::npos) << e.what();
  }
  json wrong_type = run_report(true);
  wrong_type["tasks"][0]["hidden_units"] = "4-2";
  EXPECT_THROW(run_report_html(wrong_type, "x"), ReportFormatError);
  json ragged = run_report(true);
  ragged["tasks"][2]["hidden_units"] = {9};
  EXPECT_THROW(run_report_html(ragged, "x"), ReportFormatError);
  EXPECT_THROW(compare_report_html(run_report(true), "x"), ReportFormatError);
}

}  // namespace
