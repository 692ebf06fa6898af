#pragma once

// Internal to the baselines (engine/baselines/baselines.cpp, progressive.cpp): what every baseline shares.

#include "engine/baselines/baselines.h"
#include "engine/training/trainer.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace den::engine::detail {

/// The bookkeeping every baseline shares: the task and input checks at the boundary, the seeded CPU
/// generator and the Trainer, the report's generic fields and base_params. A subclass only learns
/// (`learn`) and computes logits (`logits`).
class BaselineMethod : public Method {
 public:
  BaselineMethod(std::string name, EngineConfig config, int64_t input_dim);

  std::string name() const override { return name_; }
  const EngineConfig& config() const override { return config_; }
  int64_t num_tasks() const override { return static_cast<int64_t>(classes_.size()); }
  int64_t base_params() const override { return base_params_; }
  TaskReport add_task(const Task& task, const ProgressCallback& progress = {}) override;
  at::Tensor predict(int64_t task_id, const at::Tensor& x) const override;

 protected:
  /// Learns checked task `t` (= num_tasks() + 1; classes_ does not hold it yet). Fills the report's
  /// phases, hidden_units and val_loss.
  virtual void learn(int64_t t, const Task& task, const ProgressCallback& progress, TaskReport& report) = 0;
  /// Logits of task `t` for checked input, without autograd.
  virtual at::Tensor logits(int64_t t, const at::Tensor& x) const = 0;
  virtual int64_t nonzero_params() const = 0;

  /// One phase of at most max_iter iterations with plain l2 (and nothing else) on `params`.
  PhaseSpec phase(std::vector<TrainableParam> params) const;
  /// Mean data loss of `logits_of` on the first max_eval_samples rows of (x, y), in chunks, without
  /// autograd: the validation loss the baselines stop early on.
  double validation_loss(const std::function<at::Tensor(const at::Tensor&)>& logits_of, const at::Tensor& x,
                         const at::Tensor& y) const;

  int64_t input_dim_;
  EngineConfig config_;
  at::Device device_;
  at::Generator generator_;  ///< seeded CPU generator: initialization, batch order, Fisher samples
  Trainer trainer_;
  std::vector<int64_t> classes_;  ///< class count of each task learned

 private:
  std::string name_;
  int64_t base_params_ = 0;
};

/// `tensor` trained whole, with no mask, anchor or group prox.
inline TrainableParam all_of(at::Tensor& tensor) { return {&tensor, {}, {}, {}, {}}; }

/// The Progressive Neural Networks baseline (engine/baselines/progressive.cpp).
std::unique_ptr<Method> make_progressive(const EngineConfig& config, int64_t input_dim);
/// lwf, icarl, der++, ncm or ranpac (engine/baselines/class_incremental.cpp); nullptr for another name.
std::unique_ptr<Method> make_class_incremental(const std::string& name, const EngineConfig& config,
                                               const BaselineOptions& options, int64_t input_dim);

}  // namespace den::engine::detail
