#pragma once

// The HTML pages of `den report` and `den compare --html`: one self-contained file (inline SVG and
// CSS, no script, nothing fetched) per run report or comparison report (docs/report.md).

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

namespace den::render {

/// A JSON document that is not a den run or compare report (a missing key, a wrong type).
class ReportFormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Whether `doc` looks like a `den compare --report` document ("methods" and "table") rather than a
/// `den run --report` one.
bool is_compare_report(const nlohmann::json& doc);

/// The page of one `den run --report` document: its summary row (the columns of `den compare`'s
/// table), the accuracy and AUROC matrices as heat maps, the hidden units per layer after each task
/// stacked by birth stage, the fraction of units selective retraining selected per task and layer,
/// and each task's train and validation loss curves. `title` heads the page. Reports written before
/// curves were recorded, partial runs and baselines (no selection) render, with a note where a
/// chart has no data. Throws ReportFormatError.
std::string run_report_html(const nlohmann::json& run, const std::string& title);

/// The page of one `den compare --report` document: the comparison table, accuracy and AUROC per
/// method, then each method's charts as in run_report_html. Throws ReportFormatError.
std::string compare_report_html(const nlohmann::json& comparison, const std::string& title);

/// compare_report_html or run_report_html, as is_compare_report says.
std::string report_html(const nlohmann::json& doc, const std::string& title);

}  // namespace den::render
