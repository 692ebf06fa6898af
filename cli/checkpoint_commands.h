#pragma once

#include "cli/run_command.h"
#include "data/idx_reader.h"
#include "data/task_stream.h"
#include "engine/evaluation/run.h"
#include "serialization/checkpoint.h"

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace den::cli {

/// `den run --checkpoint FILE` / `--resume FILE`: what a run needs to save after every task and to
/// continue an interrupted run. NOTE: [resume] A resumed run takes its engine settings and task
/// stream from the checkpoint; a flag given explicitly with a different value is a usage error
/// (the run would no longer be the same run), except --data (the data is checked by fingerprint),
/// --tasks (a longer stream continues it), and the flags that do not change results (--threads,
/// --quiet, --report, --checkpoint). Without --checkpoint, a resumed run keeps saving to the file
/// it resumed from.
class RunCheckpoints {
 public:
  /// Reads the --resume checkpoint, if any, and makes `o` describe its run. Throws
  /// io::CheckpointError, std::invalid_argument (conflicting flags) and OutputError (a checkpoint
  /// path that cannot be written, checked before training).
  explicit RunCheckpoints(RunOptions& o);

  /// Fingerprints the data set the run reads (after normalization), and for a resumed run checks
  /// it is the data the checkpoint was trained on (data::DataError otherwise). `scaling`: the
  /// normalization's statistics, which the checkpoints keep.
  void check_data(const data::TrainTest& files, const data::FeatureScaling& scaling);

  /// The engine to train: the restored one (its input width checked against the data), or a new one.
  engine::Engine make_engine(int64_t input_dim);

  /// Calls `row` with each task learned before this run started (a resumed run), for the table
  /// and the report.
  void for_each_prior(const std::function<void(const engine::TaskReport&, const engine::TaskEvaluation&)>& row) const;

  /// Learns the rest of the stream (engine::run_stream or, resumed, engine::resume_stream), saving a
  /// checkpoint after every task when asked to.
  engine::RunResult run(engine::Engine& engine, int64_t num_tasks, const std::function<engine::Task(int64_t)>& make_task,
                        engine::RunCallbacks callbacks, const engine::RunSettings& settings = {});

 private:
  io::RunInfo run_info(int64_t num_tasks) const;

  RunOptions& options_;
  std::string save_path_;
  std::optional<io::LoadedCheckpoint> resumed_;
  std::vector<engine::TaskReport> prior_reports_;  ///< tasks learned before a resumed run
  std::vector<engine::TaskEvaluation> evaluations_;
  std::optional<uint32_t> fingerprint_;
  std::optional<io::FeatureNormalization> normalization_;
  std::optional<engine::AgnosticState> agnostic_;  ///< after the last task learned
  double prior_seconds_ = 0.0;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

/// The checkpoint's record of a normalization (none when `mode` is "none").
std::optional<io::FeatureNormalization> feature_normalization(const std::string& mode, const data::FeatureScaling& scaling);

/// CRC-32 of a data set's features and labels (train and test), to recognize the same data again.
uint32_t data_fingerprint(const data::TrainTest& files);

/// Options of `den add-task`.
struct AddTaskOptions {
  std::string checkpoint;
  std::string output;  ///< default: write back to `checkpoint`
  RunOptions run;      ///< stream flags (defaults from the checkpoint's run)
  int64_t task_index = 0;  ///< task of the stream to learn; 0 = the next one
  std::string classes;     ///< --classes: the classes of a task from the user's own samples
  int64_t exemplars = 20;  ///< exemplars kept per class of such a task
  int threads = 0;
  bool quiet = false;
  const CLI::App* command = nullptr;
};
CLI::App* add_add_task_command(CLI::App& app, AddTaskOptions& options);
int add_task_command(AddTaskOptions& options);

/// Options of `den inspect`.
struct InspectOptions {
  std::string checkpoint;
  bool json = false;
};
CLI::App* add_inspect_command(CLI::App& app, InspectOptions& options);
int inspect_command(const InspectOptions& options);

/// Options of `den export`.
struct ExportOptions {
  std::string checkpoint;
  std::string task = "all";
  std::string format = "torchscript";
  std::string output;
  bool per_unit = false;  ///< --per-unit: the DOT/SVG picture with one node per unit
};
CLI::App* add_export_command(CLI::App& app, ExportOptions& options);
int export_command(const ExportOptions& options);

}  // namespace den::cli
