#include "render/html_report.h"

#include "render/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <sstream>
#include <vector>

namespace den::render {

namespace {

using nlohmann::json;

std::optional<double> number(const json& j) {
  if (j.is_null()) return std::nullopt;
  return j.get<double>();
}

std::string number_text(const std::optional<double>& v, int digits) { return v ? fixed(*v, digits) : "-"; }

/// One row of the summary table: a method's final figures. Columns that no row has are left out.
struct SummaryRow {
  std::string method{};
  std::optional<double> auroc{}, accuracy{}, agnostic{}, bwt{}, params{}, vs_base{}, vs_stl{}, vs_mtl{}, seconds{};
};

SummaryRow run_summary(const json& run) {
  SummaryRow row{run.at("method").get<std::string>()};
  const json& final = run.at("final");
  if (final.is_null()) return row;  // a partial run: no final figures
  row.auroc = number(final.at("avg_auroc"));
  row.accuracy = number(final.at("avg_accuracy"));
  row.agnostic = number(final.at("task_agnostic_accuracy"));
  row.bwt = number(final.at("bwt"));
  row.params = number(final.at("params"));
  row.vs_base = number(final.at("params_ratio"));
  row.seconds = number(final.at("seconds"));
  return row;
}

SummaryRow compare_summary(const json& entry) {
  SummaryRow row{entry.at("method").get<std::string>()};
  row.auroc = number(entry.at("avg_auroc"));
  row.accuracy = number(entry.at("avg_accuracy"));
  row.agnostic = number(entry.at("task_agnostic_accuracy"));
  row.bwt = number(entry.at("bwt"));
  row.params = number(entry.at("params"));
  row.vs_stl = number(entry.at("params_vs_stl"));
  row.vs_mtl = number(entry.at("params_vs_mtl"));
  row.seconds = number(entry.at("seconds"));
  return row;
}

std::string summary_table(const std::vector<SummaryRow>& rows) {
  struct Column {
    const char* header;
    std::optional<double> SummaryRow::*field;
    int digits;
  };
  const std::vector<Column> all = {{"AUROC", &SummaryRow::auroc, 4},
                                   {"accuracy", &SummaryRow::accuracy, 4},
                                   {"task-agnostic accuracy", &SummaryRow::agnostic, 4},
                                   {"BWT (accuracy)", &SummaryRow::bwt, 4},
                                   {"parameters", &SummaryRow::params, 0},
                                   {"× base network", &SummaryRow::vs_base, 3},
                                   {"× STL", &SummaryRow::vs_stl, 3},
                                   {"× MTL", &SummaryRow::vs_mtl, 3},
                                   {"seconds", &SummaryRow::seconds, 1}};
  std::vector<Column> columns;
  for (const Column& c : all) {
    if (std::any_of(rows.begin(), rows.end(), [&c](const SummaryRow& r) { return (r.*c.field).has_value(); })) {
      columns.push_back(c);
    }
  }
  std::ostringstream out;
  out << "<table id=\"summary-table\">\n<tr><th>method</th>";
  for (const Column& c : columns) out << "<th>" << c.header << "</th>";
  out << "</tr>\n";
  for (const SummaryRow& r : rows) {
    out << "<tr><td>" << escape_xml(r.method) << "</td>";
    for (const Column& c : columns) out << "<td>" << number_text(r.*c.field, c.digits) << "</td>";
    out << "</tr>\n";
  }
  out << "</table>\n";
  return out.str();
}

std::vector<std::string> numbered(size_t count, size_t first = 1) {
  std::vector<std::string> out;
  for (size_t i = 0; i < count; ++i) out.push_back(std::to_string(first + i));
  return out;
}

std::string matrix_chart(const json& final, const char* key, const std::string& id, const std::string& title) {
  if (final.is_null()) return empty_chart_svg(id, title, "the run was interrupted: a partial report has no matrix");
  HeatMap chart{id, title, "after task i", "task j"};
  for (const json& row : final.at(key)) {
    std::vector<std::optional<double>> values;
    for (const json& v : row) values.push_back(number(v));
    chart.values.push_back(std::move(values));
  }
  chart.row_names = numbered(chart.values.size());
  chart.column_names = chart.row_names;
  return heat_map_svg(chart);
}

std::vector<std::vector<int64_t>> hidden_units(const json& tasks) {
  std::vector<std::vector<int64_t>> out;
  for (const json& t : tasks) out.push_back(t.at("hidden_units").get<std::vector<int64_t>>());
  return out;
}

// NOTE: [units by stage] Units are only ever removed in the task that created them (DEN prunes its
// new units), so the units born at stage s are the growth of each layer during task s: stage
// counts follow from the layer sizes after each task. A layer that shrank (none of den's methods
// does) has its newest stages trimmed to the size reported.
std::vector<int64_t> units_by_stage(const std::vector<std::vector<int64_t>>& hidden, size_t task, size_t layer) {
  std::vector<int64_t> stages;
  int64_t previous = 0;
  for (size_t s = 0; s <= task; ++s) {
    const int64_t size = hidden[s].at(layer);
    stages.push_back(std::max<int64_t>(0, size - previous));
    previous = size;
  }
  int64_t excess = -hidden[task].at(layer);
  for (int64_t n : stages) excess += n;
  for (size_t s = stages.size(); s-- > 0 && excess > 0;) {
    const int64_t cut = std::min(excess, stages[s]);
    stages[s] -= cut;
    excess -= cut;
  }
  return stages;
}

std::string capacity_charts(const json& tasks, const std::string& prefix) {
  const std::vector<std::vector<int64_t>> hidden = hidden_units(tasks);
  if (hidden.empty()) return empty_chart_svg(prefix + "capacity-layer-0", "Hidden units", "the report holds no task");
  std::ostringstream out;
  const size_t layers = hidden.front().size();
  for (size_t l = 0; l < layers; ++l) {
    BarChart chart{prefix + "capacity-layer-" + std::to_string(l),
                   "Hidden layer " + std::to_string(l) + ": units after each task, by birth stage", "after task",
                   "units"};
    chart.categories = numbered(hidden.size());
    for (size_t s = 0; s < hidden.size(); ++s) chart.series_names.push_back("born at task " + std::to_string(s + 1));
    for (size_t t = 0; t < hidden.size(); ++t) {
      const std::vector<int64_t> stages = units_by_stage(hidden, t, l);
      chart.values.emplace_back(stages.begin(), stages.end());
    }
    out << bar_chart_svg(chart);
  }
  return out.str();
}

std::string selection_chart(const json& tasks, const std::string& prefix) {
  const std::vector<std::vector<int64_t>> hidden = hidden_units(tasks);
  const std::string id = prefix + "selected-fraction";
  const std::string title = "Selective retraining: fraction of each layer's units selected";
  BarChart chart{id, title, "task", "fraction selected"};
  chart.stacked = false;
  chart.y_max = 1.0;
  for (size_t t = 1; t < tasks.size(); ++t) {
    const auto selected = tasks[t].at("selected_units").get<std::vector<int64_t>>();
    if (selected.empty()) continue;
    std::vector<double> fractions;
    for (size_t l = 0; l < selected.size(); ++l) {
      const int64_t before = hidden[t - 1].at(l);  // the subnetwork is chosen among the previous task's units
      fractions.push_back(before > 0 ? static_cast<double>(selected[l]) / static_cast<double>(before) : 0.0);
    }
    chart.categories.push_back(std::to_string(tasks[t].at("task").get<int64_t>()));
    chart.values.push_back(std::move(fractions));
  }
  if (chart.values.empty()) {
    return empty_chart_svg(id, title, "no selection: only DEN selects units, from its second task on");
  }
  for (size_t l = 0; l < chart.values.front().size(); ++l) chart.series_names.push_back("layer " + std::to_string(l));
  return bar_chart_svg(chart);
}

bool has_curve(const json& phase) { return phase.contains("curve") && !phase.at("curve").at("iteration").empty(); }

std::string loss_charts(const json& tasks, const std::string& prefix) {
  const bool any = std::any_of(tasks.begin(), tasks.end(), [](const json& t) {
    const json& phases = t.at("phases");
    return std::any_of(phases.begin(), phases.end(), has_curve);
  });
  if (!any) {
    return empty_chart_svg(prefix + "loss-curves", "Loss curves",
                           "no loss curves in this report (written by an older den, or every task restored from a "
                           "checkpoint)");
  }
  std::ostringstream out;
  for (const json& task : tasks) {
    const int64_t id = task.at("task").get<int64_t>();
    LineChart chart{prefix + "loss-task-" + std::to_string(id),
                    "Task " + std::to_string(id) + ": loss per phase (train solid, validation dashed)",
                    "iteration within the task", "loss"};
    // Phases one after the other on one axis: each starts where the previous one's iterations end.
    double offset = 0.0;
    size_t color = 0;
    for (const json& phase : task.at("phases")) {
      const std::string name = phase.at("phase").get<std::string>();
      if (has_curve(phase)) {
        // One legend entry per phase: the title says which line style is which loss.
        LineChart::Series train{name, {}, {}, color, false};
        LineChart::Series val{name + " validation", {}, {}, color, true, false};
        const json& curve = phase.at("curve");
        for (size_t i = 0; i < curve.at("iteration").size(); ++i) {
          const double x = offset + curve.at("iteration")[i].get<double>();
          const std::optional<double> t = number(curve.at("train_loss")[i]), v = number(curve.at("val_loss")[i]);
          train.x.push_back(x);
          train.y.push_back(t ? *t : std::nan(""));
          val.x.push_back(x);
          val.y.push_back(v ? *v : std::nan(""));
        }
        chart.markers.push_back({offset, name});
        chart.series.push_back(std::move(train));
        chart.series.push_back(std::move(val));
        ++color;
      }
      offset += phase.at("iterations").get<double>();
    }
    out << (chart.series.empty() ? empty_chart_svg(chart.id, chart.title, "no curve for this task (restored from a checkpoint)")
                                 : line_chart_svg(chart));
  }
  return out.str();
}

std::string settings_text(const json& run) {
  std::ostringstream out;
  const json& config = run.at("config");
  out << "method " << run.at("method").get<std::string>() << ", protocol " << run.at("protocol").get<std::string>()
      << ", " << run.at("tasks").size() << " tasks, ";
  if (config.contains("layers")) {
    out << "layers " << config.at("layers").get<std::string>();
  } else {  // reports written before conv layers
    out << "hidden ";
    const auto hidden = config.at("hidden").get<std::vector<int64_t>>();
    for (size_t i = 0; i < hidden.size(); ++i) out << (i ? "-" : "") << hidden[i];
  }
  out << ", max-iter " << config.at("max_iter").get<int64_t>() << ", seed " << config.at("seed").get<uint64_t>();
  if (run.at("partial").get<bool>()) out << " (partial: interrupted)";
  return escape_xml(out.str());
}

/// The charts of one method's run; ids start with `prefix`.
std::string run_sections(const json& run, const std::string& prefix) {
  if (!run.is_object()) throw ReportFormatError("a run report must be a JSON object, got " + std::string(run.type_name()));
  const json& tasks = run.at("tasks");
  if (!tasks.is_array()) throw ReportFormatError("'tasks' must be an array");
  const json& final = run.at("final");
  std::ostringstream out;
  out << "<p class=\"settings\">" << settings_text(run) << "</p>\n"
      << "<h3>Accuracy and AUROC on each task after each task</h3>\n<div class=\"charts\">\n"
      << matrix_chart(final, "accuracy_matrix", prefix + "accuracy-matrix", "Accuracy: after task i, on task j")
      << matrix_chart(final, "auroc_matrix", prefix + "auroc-matrix", "AUROC: after task i, on task j")
      << "</div>\n<h3>Capacity</h3>\n<div class=\"charts\">\n"
      << capacity_charts(tasks, prefix) << selection_chart(tasks, prefix)
      << "</div>\n<h3>Loss curves</h3>\n<div class=\"charts\">\n"
      << loss_charts(tasks, prefix) << "</div>\n";
  return out.str();
}

std::string page(const std::string& title, const std::string& body) {
  return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" + escape_xml(title) +
         "</title>\n<style>\n"
         "body { font-family: sans-serif; margin: 24px; color: #222; }\n"
         "table { border-collapse: collapse; margin: 8px 0 16px; }\n"
         "th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }\n"
         "th:first-child, td:first-child { text-align: left; }\n"
         ".charts { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }\n"
         ".settings { color: #555; }\n"
         "</style>\n</head>\n<body>\n<h1>" +
         escape_xml(title) + "</h1>\n" + body + "</body>\n</html>\n";
}

/// Calls `render`, turning the JSON library's access errors into ReportFormatError.
template <typename Render>
std::string checked(const char* what, Render render) {
  try {
    return render();
  } catch (const ReportFormatError& e) {
    throw ReportFormatError(std::string("not a den ") + what + " report: " + e.what());
  } catch (const nlohmann::json::exception& e) {
    throw ReportFormatError(std::string("not a den ") + what + " report: " + e.what());
  } catch (const std::out_of_range& e) {  // per-layer lists of different lengths
    throw ReportFormatError(std::string("not a den ") + what + " report: inconsistent layer counts (" + e.what() + ")");
  }
}

}  // namespace

bool is_compare_report(const json& doc) { return doc.is_object() && doc.contains("methods") && doc.contains("table"); }

std::string run_report_html(const json& run, const std::string& title) {
  return checked("run", [&] {
    std::string body = "<h2>Summary</h2>\n" + summary_table({run_summary(run)}) + run_sections(run, "");
    return page(title, body);
  });
}

std::string compare_report_html(const json& comparison, const std::string& title) {
  return checked("compare", [&] {
    if (!is_compare_report(comparison)) throw ReportFormatError("a compare report needs 'methods' and 'table'");
    std::vector<SummaryRow> rows;
    BarChart metrics{"compare-metrics", "Average over tasks after the last task", "method", "score"};
    metrics.stacked = false;
    metrics.y_max = 1.0;
    metrics.series_names = {"accuracy", "AUROC"};
    for (const json& entry : comparison.at("table")) {
      rows.push_back(compare_summary(entry));
      metrics.categories.push_back(rows.back().method);
      metrics.values.push_back({rows.back().accuracy.value_or(0.0), rows.back().auroc.value_or(0.0)});
    }
    std::ostringstream body;
    if (comparison.value("partial", false)) body << "<p class=\"settings\">partial: the comparison was interrupted</p>\n";
    body << "<h2>Comparison</h2>\n"
         << summary_table(rows) << "<div class=\"charts\">\n"
         << (rows.empty() ? empty_chart_svg(metrics.id, metrics.title, "no method finished") : bar_chart_svg(metrics))
         << "</div>\n";
    for (const SummaryRow& row : rows) {
      body << "<h2>Method " << escape_xml(row.method) << "</h2>\n"
           << run_sections(comparison.at("methods").at(row.method), row.method + "-");
    }
    return page(title, body.str());
  });
}

std::string report_html(const json& doc, const std::string& title) {
  return is_compare_report(doc) ? compare_report_html(doc, title) : run_report_html(doc, title);
}

}  // namespace den::render
