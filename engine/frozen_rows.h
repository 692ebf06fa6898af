#pragma once

#include "engine/cache_storage.h"
#include "engine/network.h"
#include "engine/trainer.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>

namespace den::engine {

// NOTE: [frozen first-layer rows] The first hidden layer holds most of a step's multiply-adds (its
// fan-in is the input width, 784 on Fashion-MNIST). In a phase where most of its rows cannot move
// (the head phase: all of them; expansion: all but the k new units; selective retraining and split
// when the trained subnetwork is small), their pre-activations on a sample are the same at every
// step. They are computed once per sample, the first time the sample is drawn, and gathered
// from then on; only the trainable rows are multiplied per step, as a compact copy of those rows
// that is the phase's parameter and is written back when the phase ends. So a phase that trains few
// first-layer rows costs about the same however many units earlier tasks have added. The cache
// fills lazily, and a phase that cannot draw a sample twice trains without it.

/// Pre-activations `x W^T + b` of fixed augmented rows `W` `[r, n_in + 1]` for the samples `x`
/// `[N, n_in]`, computed for a sample the first time it is asked for and kept in `storage`
/// (`[N * r]` floats at least).
class FrozenRowCache {
 public:
  FrozenRowCache(at::Tensor rows, at::Tensor x, const at::Tensor& storage);
  /// `[B, r]` for sample indices `indices` (int64 `[B]`, on x's device).
  at::Tensor gather(const at::Tensor& indices);
  /// Samples computed so far (each once, however often it was asked for).
  int64_t computed_samples() const { return computed_samples_; }

 private:
  at::Tensor rows_;
  at::Tensor x_;
  at::Tensor values_;  // [N, r]
  at::Tensor filled_;  // bool [N]
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
/// frozen rows (served from FrozenRowCaches of the training and validation samples).
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
  int64_t computed_samples() const { return train_cache_.computed_samples() + val_cache_.computed_samples(); }
  int64_t frozen_rows() const { return frozen_rows_.size(0); }

 private:
  FirstLayerSplit(const Network& network, const Task& task, const PhaseSpec& spec, int64_t eval_samples,
                  at::Tensor trainable_rows, at::Tensor frozen_rows, const at::Tensor& storage);
  /// First-layer pre-activations `[B, n_1]` in unit order for samples `indices` of `x`.
  at::Tensor preactivation(FrozenRowCache& cache, const at::Tensor& x, const at::Tensor& indices) const;

  const Network& network_;
  const Task& task_;
  at::Tensor trainable_rows_, frozen_rows_;  // int64 unit positions
  at::Tensor unit_order_;                   // column of unit u in cat(frozen, trainable); undefined = identity
  at::Tensor compact_;                      // trainable rows, the phase's parameter
  at::Tensor val_x_, val_y_;
  FrozenRowCache train_cache_, val_cache_;
  PhaseSpec spec_;
};

}  // namespace den::engine
