#pragma once

#include "engine/training/backprop.h"
#include "engine/training/cache_storage.h"
#include "engine/config.h"
#include "engine/training/network.h"
#include "engine/task.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace den::engine {

/// Training diverged: a training or validation loss that is not finite (NaN or infinite), named
/// with the task, the phase and the step, so no method goes on to save what it would give. The CLI
/// exits with its own code (docs/exit-codes.md); Python raises den.TrainingDiverged.
class TrainingDiverged : public std::runtime_error {
 public:
  TrainingDiverged(int64_t task, const std::string& phase, int64_t step, const std::string& which, double loss,
                   double lr);
  int64_t task() const { return task_; }
  const std::string& phase() const { return phase_; }
  int64_t step() const { return step_; }

 private:
  int64_t task_;
  std::string phase_;
  int64_t step_;
};

/// One tensor trained in a phase, with what may change and how it is regularized.
struct TrainableParam {
  at::Tensor* tensor = nullptr;  ///< leaf parameter, updated in place
  at::Tensor mask;               ///< uint8 ops::kTrainable | ops::kAnchored per element; undefined = all trainable
  at::Tensor anchor;             ///< drift anchor (W^{t-1}, zero-padded to the current shape) where kAnchored
  at::Tensor group_rows;         ///< uint8 `[rows]`: rows under the group-lasso prox; undefined = none
  /// Optional float per-element weights of the drift term (EWC's Fisher information): the penalty
  /// becomes lambda * sum(anchor_weight * (W - anchor)^2) on anchored elements. Undefined = 1.
  at::Tensor anchor_weight;
};

/// A training phase: which tensors move, the regularizer strengths, and the iteration budget.
struct PhaseSpec {
  std::string name;
  int64_t max_iter = 0;
  double l2 = 0.0;      ///< l2 * ||W||^2 on trainable elements
  double lambda = 0.0;  ///< lambda * ||W - W^{t-1}||^2 on anchored elements
  double mu = 0.0;      ///< L1 prox threshold per step
  double gamma = 0.0;   ///< group prox threshold per step on group_rows
  std::vector<TrainableParam> params;
};

/// What a finished phase reports.
struct PhaseResult {
  std::string name;
  int64_t iterations = 0;
  double train_loss = 0.0;  ///< moving average of the mini-batch data loss at the end
  double val_loss = 0.0;    ///< validation data loss at the end
  double seconds = 0.0;
  /// Of `seconds`, the optimizer steps (the fused masked Adam with its prox steps), timed on the
  /// host: on a GPU, the time to launch them.
  double optimizer_seconds = 0.0;
  bool early_stopped = false;
  /// NOTE: [patience] The iteration whose state the phase returned to (its best validation loss),
  /// when that is not the last one; 0 when the phase ended on its last state.
  int64_t best_iteration = 0;
  /// NOTE: [frozen first-layer rows]: first-layer rows served from the cache rather than multiplied
  /// per step (0 when the phase trained without it), leading second-layer rows whose frozen block
  /// was cached too, and the samples whose cached values were computed.
  int64_t frozen_first_rows = 0;
  int64_t frozen_second_rows = 0;
  int64_t cached_samples = 0;
};

/// A progress report, sent every `eval_every` iterations and at the end of a phase.
struct ProgressEvent {
  int64_t task = 0;
  std::string phase;
  int64_t iteration = 0;
  int64_t max_iter = 0;
  double train_loss = 0.0;
  double val_loss = 0.0;
};
using ProgressCallback = std::function<void(const ProgressEvent&)>;

/// Data loss of `logits` `[N, c]` against labels `[N]`: mean softmax cross-entropy, or mean
/// per-output sigmoid BCE against one-hot targets.
at::Tensor data_loss(const at::Tensor& logits, const at::Tensor& labels, LossKind loss);

/// NOTE: [relative tau] The data loss of the best constant prediction, the labels' frequencies p_c
/// over `classes` classes: the entropy -sum_c p_c log p_c for softmax, and for sigmoid the mean over
/// outputs of the binary entropy of p_c. A loss divided by it is the share of the uninformed loss
/// left, which means the same for both heads. At least 1e-12, so that it can divide.
double uninformed_loss(const at::Tensor& labels, int64_t classes, LossKind loss);

/// Mean data loss against labels `y` `[N]`, from `logits_of(start, len)` (the logits of samples
/// start..start+len-1), evaluated in chunks without autograd.
double chunked_mean_loss(const at::Tensor& y, const std::function<at::Tensor(int64_t, int64_t)>& logits_of,
                         LossKind loss);

/// Class scores in [0, 1] from logits: softmax rows, or per-output sigmoids.
at::Tensor scores_from_logits(const at::Tensor& logits, LossKind loss);

/// What a phase minimizes, for training that is not one head of one `Network` (multi-task
/// training, progressive columns). Samples are indexed 0..num_samples-1.
struct Objective {
  int64_t num_samples = 0;
  /// Mean data loss of the samples `indices` (int64 `[B]`), with autograd on.
  std::function<at::Tensor(const at::Tensor& indices)> batch_loss;
  /// Validation loss for early stopping and progress, evaluated without autograd.
  std::function<double()> validation_loss;
  /// Optional (NOTE: [hand-written backward]): the mean data loss of the samples `indices`, with
  /// its gradient with respect to every tensor that `grads` holds written there, without autograd.
  /// The trainer uses it when set; it must give the gradients of `batch_loss`.
  std::function<double(const at::Tensor& indices, GradientBuffers& grads)> batch_gradients;
};

/// Mini-batch training of one phase: shuffled epochs, Adam with staircase lr decay per epoch, the
/// masked fused step of ops/adam.h, the group prox, and early stopping on the moving mean of the
/// validation loss or, with EngineConfig::early_stop_patience, on patience (NOTE: [patience]). Optimizer state is created once per phase (a fresh Adam per phase, as in the
/// released code) and never reallocated per step.
class Trainer {
 public:
  Trainer(EngineConfig config, at::Generator generator);

  /// Trains task `task_id`'s head of `network` (with the phase's other tensors) on `task`:
  /// train(task_objective(network, task_id, task), task_id, spec, progress), with the first
  /// layer's frozen rows cached (NOTE: [frozen first-layer rows]).
  PhaseResult train(Network& network, int64_t task_id, const Task& task, const PhaseSpec& spec,
                    const ProgressCallback& progress) const;
  /// The data loss of task `task_id`'s head on the task's training samples, validated on its first
  /// max_eval_samples validation samples. `network` and `task` must outlive the objective.
  Objective task_objective(const Network& network, int64_t task_id, const Task& task) const;
  /// Trains the phase's tensors on any objective; `task_id` labels the progress events.
  PhaseResult train(const Objective& objective, int64_t task_id, const PhaseSpec& spec,
                    const ProgressCallback& progress) const;

  /// Mean data loss of task `task_id`'s head on (x, y), evaluated in chunks without autograd.
  double evaluate_loss(const Network& network, int64_t task_id, const at::Tensor& x, const at::Tensor& y) const;

 private:
  EngineConfig config_;
  at::Generator generator_;
  mutable CacheStorage frozen_row_storage_;  // NOTE: [frozen first-layer rows]
};

}  // namespace den::engine
