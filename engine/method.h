#pragma once

#include "engine/task.h"
#include "engine/task_report.h"
#include "engine/training/trainer.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace den::engine {

/// A way of learning a sequence of tasks. DEN (`Engine`) and the baselines of the DEN paper's
/// comparison (engine/baselines/baselines.h) implement it, so that one stream loop (engine/evaluation/run.h) feeds them
/// the same data and measures them with the same metrics.
///
/// Task ids are 1-based. Every method keeps one head per task, so `predict(t, x)` is the
/// task-aware prediction; task-agnostic prediction is built on top of it (engine/evaluation/task_agnostic.h).
class Method {
 public:
  virtual ~Method() = default;

  /// Short name, as given to `den run --method` ("den", "stl", "mtl", ...).
  virtual std::string name() const = 0;
  /// Learns one more task. Throws std::invalid_argument for bad task data (empty splits, wrong
  /// width, labels out of range, non-finite features); the method is unchanged then. The report's
  /// DEN-specific fields (selection, expansion, splits) stay empty for the baselines.
  virtual TaskReport add_task(const Task& task, const ProgressCallback& progress = {}) = 0;
  /// Logits `[N, c_task]` of task `task_id`; std::invalid_argument for an unknown task id, wrong
  /// width or non-finite input.
  virtual at::Tensor predict(int64_t task_id, const at::Tensor& x) const = 0;
  /// Tasks learned so far.
  virtual int64_t num_tasks() const = 0;
  /// Parameters the method holds now (every network, column and head it keeps).
  virtual int64_t num_params() const = 0;
  /// Parameters of one network for task 1 alone (the unit capacities are measured in).
  virtual int64_t base_params() const = 0;
  /// Weights and biases of the hidden layers now over those after task 1, heads apart, for methods
  /// that grow one network (DEN); 0 for the others, whose growth is counted in networks.
  virtual double hidden_growth() const { return 0.0; }
  /// Whether the heads' logits are already comparable across tasks (trained in one output space,
  /// or scores of one classifier), so that task-agnostic prediction takes them as they are rather
  /// than calibrating them on a memory (NOTE: [task-agnostic prediction]).
  virtual bool heads_comparable() const { return false; }
  /// Samples the method itself keeps from earlier tasks (a rehearsal memory), and their bytes.
  virtual int64_t memory_samples() const { return 0; }
  virtual int64_t memory_bytes() const { return 0; }
  /// The settings it was built with (loss kind, seed, device).
  virtual const EngineConfig& config() const = 0;

  /// Logits of every task learned so far for one input: `[N, c_s]` for s = 1..num_tasks(), what
  /// task-agnostic prediction and the stream's evaluation need (same contract and errors as
  /// predict). The default calls predict() once per task; DEN shares its first layer's product
  /// among the tasks (NOTE: [shared first layer], engine/den/engine.cpp).
  virtual std::vector<at::Tensor> predict_all(const at::Tensor& x) const {
    std::vector<at::Tensor> logits;
    for (int64_t s = 1; s <= num_tasks(); ++s) logits.push_back(predict(s, x));
    return logits;
  }

  /// Class scores in [0, 1] of task `task_id` (softmax or sigmoid, per the configured loss).
  at::Tensor predict_scores(int64_t task_id, const at::Tensor& x) const {
    return scores_from_logits(predict(task_id, x), config().loss);
  }
};

}  // namespace den::engine
