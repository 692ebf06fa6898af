#pragma once

#include "engine/engine.h"
#include "engine/method.h"
#include "engine/evaluation/task_agnostic.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace den::engine {

/// Test metrics of every task seen, after one task.
struct TaskEvaluation {
  int64_t after_task = 0;
  std::vector<double> accuracy;  ///< per task seen so far (1..after_task)
  std::vector<double> auroc;
  /// Task-agnostic accuracy (NOTE: [task-agnostic prediction]) of each task's test samples among
  /// all classes seen so far, and how many samples each had; empty when it is off.
  std::vector<double> agnostic_accuracy;
  std::vector<int64_t> agnostic_samples;
};

/// The outcome of learning a whole stream.
struct RunResult {
  std::vector<TaskReport> tasks;
  std::vector<TaskEvaluation> evaluations;  ///< one per task, in order
  /// R[i][j]: test metric of task j after task i (0-based, j <= i).
  std::vector<std::vector<double>> accuracy_matrix;
  std::vector<std::vector<double>> auroc_matrix;
  std::vector<std::vector<double>> agnostic_matrix;  ///< empty when task-agnostic prediction is off
  double avg_accuracy = 0.0;  ///< mean of the last row
  double avg_auroc = 0.0;
  double avg_agnostic_accuracy = 0.0;  ///< NaN when task-agnostic prediction is off
  double bwt = 0.0;           ///< backward transfer of accuracy
  double bwt_auroc = 0.0;
  int64_t params = 0;
  int64_t base_params = 0;
  /// Weights and biases of the hidden layers after the last task over those after task 1, heads
  /// apart (Method::hidden_growth); 0 for methods that do not report it.
  double hidden_growth = 0.0;
  /// Samples kept from earlier tasks after the last one: the method's own memory
  /// (Method::memory_samples) and the task-agnostic calibration's exemplars, and their bytes.
  int64_t memory_samples = 0;
  int64_t memory_bytes = 0;
  double seconds = 0.0;
  AgnosticState agnostic;  ///< the task-agnostic classifier after the last task (to checkpoint)
};

/// Settings of a stream run beyond the method's own.
struct RunSettings {
  AgnosticOptions agnostic;  ///< task-agnostic evaluation (exemplars_per_class 0: off)
  /// Every task after the first gets a rest output learned from the calibration memory's samples of
  /// the classes it does not have (NOTE: [negatives from exemplars]), for methods that calibrate.
  bool negatives_from_memory = false;
};

/// Callbacks of a stream run: progress inside a task, and a task's report with its evaluation.
struct RunCallbacks {
  ProgressCallback progress;
  std::function<void(const TaskReport&, const TaskEvaluation&)> task_done;
  /// Called before task_done with the task-agnostic classifier as fitted after the task, so that a
  /// checkpoint written in task_done can hold it.
  std::function<void(const AgnosticState&)> agnostic_fitted;
};

/// What a stream run had done before it was interrupted (a resumed run): the evaluation after each
/// task the engine has learned, and the wall time spent so far.
struct RunPrior {
  std::vector<TaskEvaluation> evaluations;  ///< one per task already learned, in order
  double seconds = 0.0;
  /// The task-agnostic classifier as it was after the last task learned. Without it (checkpoints
  /// before format 2) it is rebuilt from the tasks' validation splits with calibration (1, 0), so
  /// the next fit starts elsewhere and task-agnostic values may differ from the uninterrupted run's.
  std::optional<AgnosticState> agnostic = std::nullopt;
};

/// Continues a stream run from `prior`: tasks engine.num_tasks()+1..num_tasks are learned as
/// run_stream would, every task 1..t is evaluated after task t (the test splits of the earlier
/// tasks come from `make_task`), and the result holds the earlier tasks' reports (the engine's
/// history) and `prior.evaluations`. With the same seed and the engine restored from a checkpoint,
/// the result equals the uninterrupted run's (times aside; task-agnostic values too when
/// prior.agnostic is given). Throws std::invalid_argument when prior.evaluations does not have one
/// entry per task learned, or prior.agnostic does not describe the tasks of `make_task`.
RunResult resume_stream(Engine& engine, int64_t num_tasks, const std::function<Task(int64_t)>& make_task,
                        const RunPrior& prior, const RunCallbacks& callbacks = {}, const RunSettings& settings = {});

/// Feeds tasks 1..num_tasks from `make_task` to `method`, evaluating every task seen so far on its
/// test split after each one (the accuracy and AUROC matrices, task-aware), and, unless
/// `settings.agnostic` turns it off, classifying the same test samples among all classes seen so
/// far without their task id (engine/evaluation/task_agnostic.h). Only the test splits of earlier tasks (and
/// the small exemplar memory) are kept, so memory does not grow with the stream's training data.
RunResult run_stream(Method& method, int64_t num_tasks, const std::function<Task(int64_t)>& make_task,
                     const RunCallbacks& callbacks = {}, const RunSettings& settings = {});

}  // namespace den::engine
