#pragma once

#include "cli/run_options.h"

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace den::cli {

/// Everything `den compare` is told on the command line: the flags of `den run` (shared), the
/// methods to compare and the output files.
struct CompareOptions {
  RunOptions run;       ///< data, stream and training flags; `run.report_path` is --report
  std::string methods;  ///< comma separated; empty: default_methods(--memory)
  std::string csv_path;
  std::string html_path;  ///< --html: the page of `den report` (cli/report_command.h)
  bool resume = false;  ///< --resume: skip the methods the --report file already holds
};

/// Registers the `compare` subcommand and its flags on `app`.
CLI::App* add_compare_command(CLI::App& app, CompareOptions& options);

/// Runs `den compare`: each method in turn on the same task stream (same seed), then the table of
/// the DEN paper's comparison. Returns the exit code; throws as run_command does.
int compare_command(CompareOptions& options);

/// The method names of a --methods list, checked: not empty, every name known (the message lists
/// the known ones), no name twice. Throws std::invalid_argument.
std::vector<std::string> parse_methods(const std::string& text);
/// What `den compare` runs without --methods: every method, those that need a memory (icarl, der++)
/// only when `memory` > 0.
std::vector<std::string> default_methods(int64_t memory);

}  // namespace den::cli
