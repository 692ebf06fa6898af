#pragma once

#include "engine/training/cache_storage.h"
#include "engine/training/network.h"
#include "engine/training/trainer.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <memory>

namespace den::engine {

// NOTE: [frozen first-layer rows] The first hidden layer holds most of a step's multiply-adds (its
// fan-in is the input width, 784 on Fashion-MNIST). In a phase where most of its rows cannot move
// (the head phase: all of them; expansion: all but the k new units; selective retraining and split
// when the trained subnetwork is small), their pre-activations on a sample are the same at every
// step. They are computed once per sample, the first time the sample is drawn, and gathered
// from then on; only the trainable rows are multiplied per step, as a compact copy of those rows
// that is the phase's parameter and is written back when the phase ends. When the frozen rows are
// the old units (expansion, the head phase), the second layer's old rows get their input from them
// through frozen weights, so that block's share of their pre-activation is cached as well. A phase
// that trains few units then costs about the same however many units earlier tasks have added. The
// caches fill lazily, and a phase that cannot draw a sample twice trains without them.

/// Values of a fixed function of a sample, `[width]` floats each, computed for a sample the first
/// time it is asked for and kept in `storage` (`[num_samples * width]` floats at least).
class SampleCache {
 public:
  /// Values `[M, width]` of samples `indices` (int64 `[M]`); called without autograd.
  using Compute = std::function<at::Tensor(const at::Tensor& indices)>;
  SampleCache(int64_t num_samples, int64_t width, Compute compute, const at::Tensor& storage);
  /// `[B, width]` for sample indices `indices` (int64 `[B]`, on the storage's device).
  at::Tensor gather(const at::Tensor& indices);
  /// Samples computed so far (each once, however often it was asked for).
  int64_t computed_samples() const { return computed_samples_; }

 private:
  Compute compute_;
  at::Tensor values_;  // [num_samples, width]
  at::Tensor filled_;  // bool [num_samples]
  int64_t computed_samples_ = 0;
};

/// Bytes the caches of one phase may take; a phase over more data trains without them.
constexpr int64_t kFrozenRowCacheBudgetBytes = int64_t{512} << 20;
/// The least fraction of first-layer rows that must be frozen for the cache to pay. Its per-step
/// bookkeeping (gather, concatenation, putting the outputs back in unit order, and their backward)
/// costs about as much as multiplying a few dozen rows: on the bench stream, caching the 11% of rows
/// outside the selected subnetwork made selective and split retraining 0-6% slower in most pairs of
/// runs, while caching expansion's 97% made it 1.3-1.9x faster.
constexpr double kMinFrozenFraction = 0.5;

/// One phase's first layer split into trainable rows (a compact copy that the phase trains) and
/// frozen rows, whose pre-activations are cached per training and validation sample. When the
/// frozen rows are the leading units (the old units, in expansion and in the head phase) and the
/// second layer's leading rows are frozen on those units and on their bias, that block's share of
/// the second layer's pre-activation is cached too: old units of the first layer are frozen, so it
/// is constant.
class FirstLayerSplit {
 public:
  /// The split for `spec` on `task`, or null when the phase freezes fewer than kMinFrozenFraction
  /// of the first-layer rows, cannot draw a training sample twice (max_iter * batch_size <=
  /// samples), or its caches would exceed kFrozenRowCacheBudgetBytes. The caches live in
  /// `storage`. `network`, `task` and `storage` must outlive the split.
  static std::unique_ptr<FirstLayerSplit> plan(const Network& network, const Task& task, const PhaseSpec& spec,
                                               const EngineConfig& config, CacheStorage& storage);

  /// `spec` with the first layer's parameter replaced by the compact trainable rows.
  const PhaseSpec& spec() const { return spec_; }
  /// The data loss of head `task_id` on the task, as Trainer::task_objective, through the split.
  Objective objective(int64_t task_id, LossKind loss);
  /// Copies the trained rows back into the network's first layer.
  void write_back(Network& network) const;
  /// Samples whose frozen rows were computed (training and validation), and how many rows those are.
  int64_t computed_samples() const {
    return train_.first->computed_samples() + val_.first->computed_samples();
  }
  int64_t frozen_rows() const { return frozen_rows_.size(0); }
  /// Leading rows of the second layer whose frozen block is cached (0: none).
  int64_t second_block_rows() const { return second_rows_; }

 private:
  /// The caches of one data set (training or validation samples).
  struct DataCaches {
    at::Tensor x;
    std::unique_ptr<SampleCache> first;   // the frozen first-layer rows' pre-activations
    std::unique_ptr<SampleCache> second;  // the second layer's frozen block; null when not cached
  };

  FirstLayerSplit(const Network& network, const Task& task, const PhaseSpec& spec, int64_t eval_samples,
                  at::Tensor trainable_rows, at::Tensor frozen_rows, int64_t second_rows, const at::Tensor& storage);
  /// Caches for the samples `x` in `storage` (`[N * (frozen rows + second_rows)]` floats).
  DataCaches make_caches(const at::Tensor& x, const at::Tensor& storage) const;
  /// What the hand-written backward needs from a forward pass (NOTE: [hand-written backward]).
  struct Tape {
    at::Tensor x;                    // the batch's input rows, when the first layer has trainable rows
    at::Tensor first;                // relu of the first layer, when the second layer's block is cached
    std::vector<at::Tensor> inputs;  // what Network::logits_from recorded above
  };
  /// Logits of head `task_id` for samples `indices` of the data set; `tape`, when given, receives
  /// what gradients() needs.
  at::Tensor logits(int64_t task_id, DataCaches& data, const at::Tensor& indices, Tape* tape = nullptr) const;
  /// Backward of logits(task_id, train_, ·, &tape) from the logits' gradient `dlogits`.
  void gradients(int64_t task_id, const Tape& tape, const at::Tensor& dlogits, GradientBuffers& grads) const;

  const Network& network_;
  const Task& task_;
  at::Tensor trainable_rows_, frozen_rows_;  // int64 unit positions
  at::Tensor unit_order_;                   // column of unit u in cat(frozen, trainable); undefined = identity
  at::Tensor compact_;                      // trainable rows, the phase's parameter
  at::Tensor frozen_weights_;               // the frozen rows, fixed for the phase
  int64_t second_rows_ = 0;
  at::Tensor second_block_;                 // augmented [second_rows, frozen rows + 1], fixed for the phase
  at::Tensor val_y_;
  DataCaches train_, val_;
  PhaseSpec spec_;
};

}  // namespace den::engine
