// `den report`: a run or comparison report as one self-contained HTML page.

#include "cli/report_command.h"

#include "cli/exit_codes.h"
#include "cli/report.h"
#include "data/dataset.h"
#include "render/html_report.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace den::cli {

CLI::App* add_report_command(CLI::App& app, ReportOptions& o) {
  CLI::App* cmd = app.add_subcommand(
      "report", "Render a `den run --report` or `den compare --report` JSON file as one self-contained HTML page");
  cmd->add_option("report", o.input, "The JSON report")->required();
  cmd->add_option("-o,--output", o.output, "The HTML file to write")->required();
  cmd->add_option("--title", o.title, "The page's title (default: the report's file name)");
  return cmd;
}

void write_report_html(const std::string& path, const nlohmann::json& doc, const std::string& title) {
  std::string html;
  try {
    html = render::report_html(doc, title);
  } catch (const render::ReportFormatError& e) {
    throw data::DataError(e.what());
  }
  write_text_file(path, html);
}

int report_command(const ReportOptions& o) {
  check_writable(o.output);  // before any work, as the other commands do
  check_distinct_files({{"-o", o.output}}, {{"report", o.input}});
  const std::string text = data::read_input_file(o.input, "report");
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw data::DataError("'" + o.input + "' is not JSON: " + e.what());
  }
  const std::string title = o.title.empty() ? std::filesystem::path(o.input).filename().string() : o.title;
  try {
    write_report_html(o.output, doc, title);
  } catch (const data::DataError& e) {
    throw data::DataError("'" + o.input + "': " + e.what());
  }
  std::printf("report page written to %s\n", o.output.c_str());
  return kOk;
}

}  // namespace den::cli
