#pragma once

// `den run --checkpoint/--resume`: saving after every task and continuing an interrupted run; the
// stored-run helpers that `den add-task` shares.

#include "cli/run_options.h"
#include "data/idx_reader.h"
#include "data/task_stream.h"
#include "engine/evaluation/run.h"
#include "serialization/checkpoint.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
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
  /// it is the data the checkpoint was trained on (data::DataError otherwise). The checkpoints keep
  /// the normalization's statistics, the image preprocessing and the class names of `data`.
  void check_data(const RunData& data);

  /// Where the checkpoints go (empty: nowhere), and the flag that said so.
  const std::string& save_path() const { return save_path_; }
  std::string save_flag() const { return options_.checkpoint_path.empty() ? "--resume" : "--checkpoint"; }

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
  std::optional<io::ImageInput> images_;
  std::map<int64_t, std::string> class_names_;
  std::optional<engine::AgnosticState> agnostic_;  ///< after the last task learned
  double prior_seconds_ = 0.0;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

/// The checkpoint's record of a normalization (none when `mode` is "none").
std::optional<io::FeatureNormalization> feature_normalization(const std::string& mode, const data::FeatureScaling& scaling);

/// CRC-32 of a data set's features and labels (train and test), to recognize the same data again.
uint32_t data_fingerprint(const data::TrainTest& files);

/// `o` as the run stored in the checkpoint was started (engine settings and stream).
RunOptions stored_options(const RunOptions& o, const engine::EngineConfig& config, const io::RunInfo& run);

/// A resume from a checkpoint without task-agnostic state (before format 2) rebuilds it: warns on
/// stderr, even with --quiet, since its task-agnostic values may differ from the uninterrupted run's.
void warn_if_rebuilt(const engine::RunPrior& prior, const engine::RunSettings& settings, const std::string& path);

}  // namespace den::cli
