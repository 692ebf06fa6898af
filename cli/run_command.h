#pragma once

#include "cli/run_options.h"

#include <CLI/CLI.hpp>

namespace den::cli {

/// Registers the `run` subcommand and its flags on `app`; the options are written into `options`.
CLI::App* add_run_command(CLI::App& app, RunOptions& options);

/// Runs `den run`; returns the process exit code. Throws data::DataError, std::invalid_argument
/// (usage) and OutputError, which main() maps to exit codes.
int run_command(RunOptions& options);

}  // namespace den::cli
