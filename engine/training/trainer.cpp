#include "engine/training/trainer.h"

#include "engine/training/frozen_rows.h"
#include "ops/adam.h"
#include "ops/gather.h"
#include "ops/prox.h"

#include <torch/csrc/autograd/autograd.h>

#include <chrono>
#include <cmath>
#include <deque>
#include <numeric>
#include <optional>
#include <sstream>

namespace den::engine {

namespace {

std::string diverged_text(int64_t task, const std::string& phase, int64_t step, const std::string& which, double loss,
                          double lr) {
  std::ostringstream text;
  text << "training diverged at task " << task << ", phase " << phase << ", step " << step << ": the " << which
       << " loss is " << (std::isnan(loss) ? "NaN" : loss > 0 ? "infinite" : "-infinite") << " (learning rate " << lr
       << "); lower the learning rate (--lr), or check the "
       << "data for extreme values (--normalize standardize)";
  return text.str();
}

}  // namespace

TrainingDiverged::TrainingDiverged(int64_t task, const std::string& phase, int64_t step, const std::string& which,
                                   double loss, double lr)
    : std::runtime_error(diverged_text(task, phase, step, which, loss, lr)), task_(task), phase_(phase), step_(step) {}

at::Tensor data_loss(const at::Tensor& logits, const at::Tensor& labels, LossKind loss) {
  if (loss == LossKind::Softmax) return at::cross_entropy_loss(logits, labels);
  at::Tensor targets = at::one_hot(labels, logits.size(1)).to(logits.scalar_type());
  return at::binary_cross_entropy_with_logits(logits, targets);
}

at::Tensor scores_from_logits(const at::Tensor& logits, LossKind loss) {
  return loss == LossKind::Softmax ? at::softmax(logits, 1) : at::sigmoid(logits);
}

double uninformed_loss(const at::Tensor& labels, int64_t classes, LossKind loss) {
  const at::Tensor p = at::bincount(labels.to(at::kCPU, at::kLong), {}, classes).to(at::kDouble) /
                       static_cast<double>(std::max<int64_t>(1, labels.numel()));
  const auto plogp = [](const at::Tensor& q) { return at::where(q > 0, q * q.log(), at::zeros_like(q)); };
  const at::Tensor entropy = loss == LossKind::Softmax ? -plogp(p).sum() : -(plogp(p) + plogp(1 - p)).mean();
  return std::max(1e-12, entropy.item<double>());
}

Trainer::Trainer(EngineConfig config, at::Generator generator)
    : config_(std::move(config)), generator_(std::move(generator)) {}

double chunked_mean_loss(const at::Tensor& y, const std::function<at::Tensor(int64_t, int64_t)>& logits_of,
                         LossKind loss) {
  at::NoGradGuard no_grad;
  constexpr int64_t kChunk = 4096;
  double total = 0.0;
  const int64_t n = y.size(0);
  for (int64_t start = 0; start < n; start += kChunk) {
    const int64_t len = std::min(kChunk, n - start);
    total += data_loss(logits_of(start, len), y.narrow(0, start, len), loss).item<double>() * static_cast<double>(len);
  }
  return n > 0 ? total / static_cast<double>(n) : 0.0;
}

double Trainer::evaluate_loss(const Network& network, int64_t task_id, const at::Tensor& x,
                              const at::Tensor& y) const {
  return chunked_mean_loss(
      y, [&](int64_t start, int64_t len) { return network.logits(task_id, x.narrow(0, start, len)); }, config_.loss);
}

namespace {

/// Early stopping of the released code: every evaluation appends the validation loss; once
/// `window` values exist, stop when their mean moved by less than `tol` since the last evaluation.
class EarlyStopper {
 public:
  EarlyStopper(int64_t window, double tol) : window_(window), tol_(tol) {}
  bool should_stop(double val_loss) {
    recent_.push_back(val_loss);
    if (static_cast<int64_t>(recent_.size()) > window_) recent_.pop_front();
    if (static_cast<int64_t>(recent_.size()) < window_) return false;
    const double mean = std::accumulate(recent_.begin(), recent_.end(), 0.0) / static_cast<double>(window_);
    const bool stop = has_mean_ && std::abs(mean - last_mean_) < tol_;
    last_mean_ = mean;
    has_mean_ = true;
    return stop;
  }

 private:
  int64_t window_;
  double tol_;
  std::deque<double> recent_;
  double last_mean_ = 0.0;
  bool has_mean_ = false;
};

// NOTE: [zeroed-group momentum] The group prox zeroes a row, but Adam's first moment still holds the
// gradients that moved the row, and the next step moves it out of zero again by momentum alone. With
// reset_zeroed_moments the row's first moment is zeroed, so it restarts from rest: it leaves zero
// only where its current gradients push it out. The second moment is kept on purpose: the phase's
// bias correction uses the phase's step count t, so after a reset of both moments the next step
// would be lr * (1 - beta1) / sqrt((1 - beta2) / (1 - beta2^t)) per element, 2.5 lr at t = 1000:
// larger than a steady step (about lr), pushing the row out harder, not less. Not in the paper
// (plain proximal gradient has no momentum) or the released code.

// NOTE: [patience] The released code's rule (EarlyStopper) compares moving means of the validation
// loss 1e-6 apart, which a loss that still moves by noise never meets: in the default job every
// phase ran its whole budget. Patience stops a phase after `patience` evaluations in a row that did
// not improve on the best loss so far by the relative margin `min_delta`, and the phase then returns
// to the state of its lowest validation loss (also when it ran to the end): the trained tensors,
// bit for bit, with that evaluation's losses in the PhaseResult. The Adam moments are not kept,
// since a phase's optimizer state ends with the phase; tensors that the phase does not train are
// not touched. Not in the paper, which does not say when a phase ends.
class PatienceStopper {
 public:
  PatienceStopper(int64_t patience, double min_delta) : patience_(patience), min_delta_(min_delta) {}

  /// Records the evaluation after `iteration` steps; returns whether the phase should stop.
  /// `params` are the phase's tensors, copied when this is the best loss so far and `snapshot`.
  bool should_stop(double val_loss, double train_loss, int64_t iteration, const std::vector<at::Tensor>& params,
                   bool snapshot) {
    if (!has_best_ || val_loss < best_loss_) {
      best_loss_ = val_loss;
      best_train_loss_ = train_loss;
      best_iteration_ = iteration;
      has_best_ = true;
      if (snapshot) {
        at::NoGradGuard no_grad;
        if (best_.empty()) {
          for (const at::Tensor& p : params) best_.push_back(p.clone());
        } else {
          for (size_t i = 0; i < params.size(); ++i) best_[i].copy_(params[i]);
        }
        snapshot_iteration_ = iteration;
      }
    }
    if (!has_reference_ || val_loss < reference_ * (1.0 - min_delta_)) {
      reference_ = val_loss;
      has_reference_ = true;
      stale_ = 0;
      return false;
    }
    return ++stale_ >= patience_;
  }

  /// Puts the best state back into `params` when the phase did not end on it; returns the iteration
  /// it was taken at (0 when the phase ended on its best state).
  int64_t restore(std::vector<at::Tensor>& params, int64_t last_iteration, PhaseResult& result) const {
    if (!has_best_ || best_iteration_ == last_iteration) return 0;
    TORCH_INTERNAL_ASSERT(snapshot_iteration_ == best_iteration_, "the best state was not kept");
    for (size_t i = 0; i < params.size(); ++i) params[i].copy_(best_[i]);
    result.val_loss = best_loss_;
    result.train_loss = best_train_loss_;
    return best_iteration_;
  }

 private:
  int64_t patience_;
  double min_delta_;
  bool has_best_ = false, has_reference_ = false;
  double best_loss_ = 0.0, best_train_loss_ = 0.0, reference_ = 0.0;
  int64_t best_iteration_ = 0, snapshot_iteration_ = -1, stale_ = 0;
  std::vector<at::Tensor> best_;
};

/// Sets requires_grad on exactly the phase's tensors, and clears it again when the phase ends.
class RequiresGradScope {
 public:
  explicit RequiresGradScope(const std::vector<TrainableParam>& params) : params_(params) {
    for (const TrainableParam& p : params_) p.tensor->requires_grad_(true);
  }
  ~RequiresGradScope() {
    for (const TrainableParam& p : params_) p.tensor->requires_grad_(false);
  }

 private:
  const std::vector<TrainableParam>& params_;
};

}  // namespace

Objective Trainer::task_objective(const Network& network, int64_t task_id, const Task& task) const {
  const int64_t eval_n = std::min<int64_t>(config_.max_eval_samples, task.val_x.size(0));
  const at::Tensor val_x = task.val_x.narrow(0, 0, eval_n);
  const at::Tensor val_y = task.val_y.narrow(0, 0, eval_n);
  Objective objective;
  objective.num_samples = task.train_x.size(0);
  objective.batch_loss = [this, &network, &task, task_id](const at::Tensor& idx) {
    return data_loss(network.logits(task_id, ops::gather_rows(task.train_x, idx)), task.train_y.index_select(0, idx),
                     config_.loss);
  };
  objective.validation_loss = [this, &network, task_id, val_x, val_y] {
    return evaluate_loss(network, task_id, val_x, val_y);
  };
  // NOTE: [hand-written backward] fits fc layers; a conv network's phases take autograd's backward.
  if (!network.all_fc()) return objective;
  objective.batch_gradients = [this, &network, &task, task_id](const at::Tensor& idx, GradientBuffers& grads) {
    const at::Tensor x = ops::gather_rows(task.train_x, idx);  // NOTE: [prefetched gather]
    std::vector<at::Tensor> inputs;
    at::Tensor dlogits;
    const double loss = data_loss_gradient(network.logits_from(task_id, 0, affine(x, network.layer(0)), &inputs),
                                           task.train_y.index_select(0, idx), config_.loss, dlogits);
    at::Tensor* first = grads.find(network.layer(0));
    const at::Tensor dpre = backward_from(network, task_id, 0, inputs, dlogits, grads, first != nullptr);
    if (first) write_affine_gradient(dpre, x, *first);
    return loss;
  };
  return objective;
}

PhaseResult Trainer::train(Network& network, int64_t task_id, const Task& task, const PhaseSpec& spec,
                           const ProgressCallback& progress) const {
  std::unique_ptr<FirstLayerSplit> first_layer = FirstLayerSplit::plan(network, task, spec, config_, frozen_row_storage_);
  if (!first_layer) return train(task_objective(network, task_id, task), task_id, spec, progress);
  PhaseResult result = train(first_layer->objective(task_id, config_.loss), task_id, first_layer->spec(), progress);
  first_layer->write_back(network);
  result.frozen_first_rows = first_layer->frozen_rows();
  result.frozen_second_rows = first_layer->second_block_rows();
  result.cached_samples = first_layer->computed_samples();
  return result;
}

PhaseResult Trainer::train(const Objective& objective, int64_t task_id, const PhaseSpec& spec,
                           const ProgressCallback& progress) const {
  const auto started = std::chrono::steady_clock::now();
  at::AutoGradMode enable_grad(true);  // the engine runs its structural steps without autograd
  PhaseResult result;
  result.name = spec.name;

  const int64_t n = objective.num_samples;
  const int64_t batch = std::min(config_.batch_size, n);
  const int64_t steps_per_epoch = (n + batch - 1) / batch;

  // drift_weights: for a weighted drift (EWC), 2 * lambda * anchor_weight on anchored elements and 0
  // elsewhere, formed once per phase; its gradient term is then one product per step.
  std::vector<at::Tensor> exp_avg, exp_avg_sq, inputs, masks, anchors, drift_weights, group_rows;
  for (const TrainableParam& p : spec.params) {
    exp_avg.push_back(at::zeros_like(*p.tensor));
    exp_avg_sq.push_back(at::zeros_like(*p.tensor));
    // Phases build masks on the CPU; they move to the parameter's device once per phase.
    const auto on_device = [&p](const at::Tensor& t) { return t.defined() ? t.to(p.tensor->device()) : t; };
    masks.push_back(on_device(p.mask));
    anchors.push_back(on_device(p.anchor));
    const bool weighted = p.anchor_weight.defined() && p.mask.defined() && spec.lambda > 0;
    drift_weights.push_back(weighted ? (2.0 * spec.lambda) * on_device(p.anchor_weight) *
                                           masks.back().bitwise_and(ops::kAnchored).ne(0)
                                     : at::Tensor());
    group_rows.push_back(spec.gamma > 0 ? on_device(p.group_rows) : at::Tensor());
  }

  // The hand-written backward writes into buffers kept for the phase; autograd needs the tensors
  // marked for the phase.
  std::vector<const at::Tensor*> trained;
  for (const TrainableParam& p : spec.params) trained.push_back(p.tensor);
  std::optional<GradientBuffers> buffers;
  std::optional<RequiresGradScope> grad_scope;
  if (objective.batch_gradients) {
    buffers.emplace(trained);
  } else {
    grad_scope.emplace(spec.params);
  }
  for (const TrainableParam& p : spec.params) inputs.push_back(*p.tensor);

  const at::Device device = inputs.empty() ? at::Device(at::kCPU) : inputs.front().device();
  EarlyStopper stopper(config_.early_stop_window, config_.early_stop_tol);
  const bool use_patience = config_.early_stop_patience > 0;
  PatienceStopper patience(config_.early_stop_patience, config_.early_stop_min_delta);
  at::Tensor order;
  double smoothed_loss = std::nan("");
  int64_t it = 0;
  for (; it < spec.max_iter; ++it) {
    const int64_t epoch = it / steps_per_epoch;
    const int64_t pos = it % steps_per_epoch;
    // The CPU generator draws the order on every device, so a seed means the same batches anywhere.
    if (pos == 0) order = at::randperm(n, generator_, at::kLong).to(device);
    const int64_t len = std::min(batch, n - pos * batch);
    const at::Tensor indices = order.narrow(0, pos * batch, len);
    double batch_loss = 0.0;
    std::vector<at::Tensor> grads;
    if (buffers) {
      at::NoGradGuard no_grad;
      batch_loss = objective.batch_gradients(indices, *buffers);
      grads = buffers->all();
    } else {
      at::Tensor loss = objective.batch_loss(indices);
      grads = torch::autograd::grad({loss}, inputs, /*grad_outputs=*/{}, /*retain_graph=*/false,
                                    /*create_graph=*/false, /*allow_unused=*/true);
      batch_loss = loss.item<double>();
    }
    const double lr = config_.lr * std::pow(config_.lr_decay, static_cast<double>(epoch));
    if (!std::isfinite(batch_loss)) throw TrainingDiverged(task_id, spec.name, it + 1, "training", batch_loss, lr);
    smoothed_loss = std::isnan(smoothed_loss) ? batch_loss : 0.95 * smoothed_loss + 0.05 * batch_loss;

    const double prox_scale = config_.prox_scale_by_lr ? lr : 1.0;
    const auto optimizer_started = std::chrono::steady_clock::now();
    {
      at::NoGradGuard no_grad;
      for (size_t i = 0; i < spec.params.size(); ++i) {
        const TrainableParam& p = spec.params[i];
        at::Tensor grad = grads[i].defined() ? grads[i].contiguous() : at::zeros_like(*p.tensor);
        ops::MaskedAdamOptions options;
        options.lr = lr;
        options.step = it + 1;
        options.l2 = spec.l2;
        options.drift = spec.lambda;
        options.l1_threshold = spec.mu * prox_scale;
        options.group_threshold = spec.gamma * prox_scale;
        if (drift_weights[i].defined()) {
          // Weighted drift (EWC): its gradient goes into `grad` and the fused step adds no drift.
          grad = grad + drift_weights[i] * (*p.tensor - anchors[i]);
          options.drift = 0.0;
        }
        // One pass: the step, then the group prox on the flagged rows (same results as the two ops).
        ops::masked_adam_group_step_(*p.tensor, grad, exp_avg[i], exp_avg_sq[i], masks[i], anchors[i],
                                     group_rows[i], options);
        if (config_.reset_zeroed_moments && group_rows[i].defined()) {
          ops::reset_momentum_of_zero_rows_(*p.tensor, exp_avg[i], group_rows[i]);
        }
      }
    }
    result.optimizer_seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - optimizer_started).count();

    const bool last = it + 1 == spec.max_iter;
    if ((it + 1) % config_.eval_every == 0 || last) {
      result.val_loss = objective.validation_loss();
      if (!std::isfinite(result.val_loss)) {
        throw TrainingDiverged(task_id, spec.name, it + 1, "validation", result.val_loss, lr);
      }
      if (progress) progress({task_id, spec.name, it + 1, spec.max_iter, smoothed_loss, result.val_loss});
      // With patience the state at the last evaluation is the phase's end, and needs no copy.
      const bool stop = use_patience
                            ? patience.should_stop(result.val_loss, smoothed_loss, it + 1, inputs, /*snapshot=*/!last)
                            : stopper.should_stop(result.val_loss);
      if (!last && stop) {
        result.early_stopped = true;
        ++it;
        break;
      }
    }
  }
  result.iterations = it;
  result.train_loss = smoothed_loss;
  if (use_patience) {
    at::NoGradGuard no_grad;
    result.best_iteration = patience.restore(inputs, it, result);
  }
  if (spec.max_iter == 0) result.val_loss = objective.validation_loss();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

}  // namespace den::engine
