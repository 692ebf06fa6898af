#pragma once

#include "data/normalize.h"
#include "data/task_stream.h"
#include "engine/config.h"

#include <CLI/CLI.hpp>

#include <string>

namespace den::cli {

/// Everything `den run` is told on the command line.
struct RunOptions {
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  std::string protocol = "permuted";
  std::string normalization = "none";
  data::StreamOptions stream;
  engine::EngineConfig engine;
  std::string hidden = "312,128";
  std::string loss = "softmax";
  std::string split_policy = "always";
  std::string method = "den";
  std::string report_path;
  int threads = 0;  ///< 0: all hardware threads
  bool quiet = false;
  std::string checkpoint_path;  ///< --checkpoint: save after every task (cli/checkpoint_commands.h)
  std::string resume_path;      ///< --resume: continue the run stored there
  const CLI::App* command = nullptr;  ///< the parsed subcommand, to tell flags given from defaults
};

/// Registers the `run` subcommand and its flags on `app`; the options are written into `options`.
CLI::App* add_run_command(CLI::App& app, RunOptions& options);

/// Runs `den run`; returns the process exit code. Throws data::DataError, std::invalid_argument
/// (usage) and OutputError, which main() maps to exit codes.
int run_command(RunOptions& options);

/// An output file cannot be written.
class OutputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace den::cli
