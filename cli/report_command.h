#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <string>

namespace den::cli {

/// What `den report` is told: a `den run --report` or `den compare --report` JSON file and the HTML
/// file to write.
struct ReportOptions {
  std::string input;
  std::string output;
  std::string title;  ///< default: the input's file name
};

/// Registers the `report` subcommand and its flags on `app`.
CLI::App* add_report_command(CLI::App& app, ReportOptions& options);

/// Runs `den report`: the HTML page of the report (render/html_report.h), written atomically.
/// Throws data::DataError (not JSON, not a den report), OutputError or io::WriteError.
int report_command(const ReportOptions& options);

/// Writes the HTML page of the report `doc` to `path` atomically; `den compare --html` uses it too.
/// Throws data::DataError when `doc` is not a den report, OutputError or io::WriteError.
void write_report_html(const std::string& path, const nlohmann::json& doc, const std::string& title);

}  // namespace den::cli
