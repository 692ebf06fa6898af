#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

namespace den::cli {

/// Options of `den predict run.den --data DIR|--csv FILE|--images DIR`.
struct PredictOptions {
  std::string checkpoint;
  std::string data_dir;  ///< a data directory: its test half (--split), labelled
  std::string split = "test";
  std::string csv;       ///< a CSV of raw features only, one sample per line
  std::string images;    ///< an image folder: class folders (labelled) or images directly in it
  bool quiet = false;
  int64_t task = 0;      ///< 0: task-agnostic, among all classes seen
  std::string output;    ///< CSV of predictions; default stdout
  bool scores = false;   ///< every class's score too
};

/// Registers the `predict` subcommand on `app`.
CLI::App* add_predict_command(CLI::App& app, PredictOptions& options);
/// Runs `den predict`. Throws data::DataError (bad inputs), std::invalid_argument (unknown task),
/// io::CheckpointError (kind LacksState: no task-agnostic state), OutputError and io::WriteError.
int predict_command(const PredictOptions& options);

}  // namespace den::cli
