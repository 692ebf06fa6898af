// The `den` command line: lifelong learning with Dynamically Expandable Networks.

#include "cli/add_task_command.h"
#include "cli/compare_command.h"
#include "cli/exit_codes.h"
#include "cli/export_command.h"
#include "cli/import_command.h"
#include "cli/inspect_command.h"
#include "cli/predict_command.h"
#include "cli/report_command.h"
#include "cli/run_command.h"
#include "data/dataset.h"
#include "den/version.h"
#include "engine/task_check.h"
#include "engine/training/threads.h"
#include "engine/training/trainer.h"
#include "serialization/checkpoint.h"
#include "serialization/torchscript_import.h"

#include <CLI/CLI.hpp>
#include <c10/util/Exception.h>

#include <cstdio>
#include <iostream>

namespace {

/// CLI11's parse errors in den's words: what was wrong, and where to look.
std::string parse_error_text(const CLI::ParseError& e, const CLI::App& app, int argc, char** argv) {
  const std::string what = e.what();
  std::string commands;
  for (const CLI::App* sub : app.get_subcommands({})) commands += (commands.empty() ? "" : ", ") + sub->get_name();
  if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr && what.find("subcommand") != std::string::npos) {
    if (argc > 1 && argv[1][0] != '-') return "unknown command '" + std::string(argv[1]) + "'; the commands are " + commands;
    return "give a command: " + commands + " (den --help)";
  }
  if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr) {
    const size_t colon = what.find(": ");
    return "unexpected argument(s) " + (colon == std::string::npos ? what : what.substr(colon + 2)) +
           " (den COMMAND --help lists the flags)";
  }
  const std::string required = " is required";
  if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr && what.size() > required.size() &&
      what.compare(what.size() - required.size(), required.size(), required) == 0) {
    return "missing " + what.substr(0, what.size() - required.size()) + ": this command needs it (den COMMAND --help)";
  }
  const std::string at_most = ": At Most 1 required but received ";
  if (const size_t at = what.find(at_most); at != std::string::npos) {
    return what.substr(0, at) + " is given " + what.substr(at + at_most.size()) + " times; give it once";
  }
  return what;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace den::cli;
  den::engine::keep_freed_buffers_in_heap();
  CLI::App app{"den: lifelong learning with Dynamically Expandable Networks (Yoon et al., ICLR 2018).\n"
               "Exit codes: 0 ok, 1 internal error, 2 usage error, 3 data error, 4 output file error,\n"
               "5 bad checkpoint, 6 checkpoint from a newer den, 7 model cannot be imported, 8 checkpoint lacks the\n"
               "state asked for, 9 training diverged, 130 interrupted (SIGINT, SIGTERM)."};
  app.set_version_flag("--version", std::string("den ") + den::kVersion);
  app.require_subcommand(1);
  RunOptions run_options;
  CLI::App* run = add_run_command(app, run_options);
  CompareOptions compare_options;
  CLI::App* compare = add_compare_command(app, compare_options);
  AddTaskOptions add_task_options;
  CLI::App* add_task = add_add_task_command(app, add_task_options);
  InspectOptions inspect_options;
  CLI::App* inspect = add_inspect_command(app, inspect_options);
  ExportOptions export_options;
  CLI::App* export_cmd = add_export_command(app, export_options);
  ReportOptions report_options;
  CLI::App* report = add_report_command(app, report_options);
  ImportOptions import_options;
  CLI::App* import_cmd = add_import_command(app, import_options);
  PredictOptions predict_options;
  CLI::App* predict = add_predict_command(app, predict_options);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "den: usage error: " << parse_error_text(e, app, argc, argv) << "\n";
    return kUsageError;
  }

  try {
    if (run->parsed()) return run_command(run_options);
    if (compare->parsed()) return compare_command(compare_options);
    if (add_task->parsed()) return add_task_command(add_task_options);
    if (inspect->parsed()) return inspect_command(inspect_options);
    if (export_cmd->parsed()) return export_command(export_options);
    if (report->parsed()) return report_command(report_options);
    if (import_cmd->parsed()) return import_command(import_options);
    if (predict->parsed()) return predict_command(predict_options);
    return kUsageError;
  } catch (const den::io::CheckpointError& e) {
    std::cerr << "den: checkpoint error: " << e.what() << "\n";
    if (e.kind() == den::io::CheckpointError::Kind::NewerVersion) return kCheckpointVersion;
    return e.kind() == den::io::CheckpointError::Kind::LacksState ? kCheckpointLacksState : kCheckpointError;
  } catch (const den::io::ImportError& e) {
    std::cerr << "den: import error: " << e.what() << "\n";
    return kImportError;
  } catch (const den::io::WriteError& e) {
    std::cerr << "den: output error: " << e.what() << "\n";
    return kOutputError;
  } catch (const den::data::DataError& e) {
    std::cerr << "den: data error: " << e.what() << "\n";
    return kDataError;
  } catch (const den::engine::TrainingDiverged& e) {
    std::cerr << "den: training error: " << e.what() << "\n";
    return kTrainingDiverged;
  } catch (const den::engine::TaskDataError& e) {  // before std::invalid_argument, its base
    std::cerr << "den: data error: " << e.what() << "\n";
    return kDataError;
  } catch (const std::invalid_argument& e) {
    std::cerr << "den: usage error: " << e.what() << "\n";
    return kUsageError;
  } catch (const OutputError& e) {
    std::cerr << "den: output error: " << e.what() << "\n";
    return kOutputError;
  } catch (const c10::Error& e) {
    std::cerr << "den: internal error: " << e.what_without_backtrace() << "\n";
    return kInternalError;
  } catch (const std::exception& e) {
    std::cerr << "den: internal error: " << e.what() << "\n";
    return kInternalError;
  }
}
