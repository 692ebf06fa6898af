#include "engine/frozen_rows.h"

#include "ops/adam.h"

namespace den::engine {

FrozenRowCache::FrozenRowCache(at::Tensor rows, at::Tensor x, const at::Tensor& storage)
    : rows_(std::move(rows)), x_(std::move(x)) {
  values_ = storage.narrow(0, 0, x_.size(0) * rows_.size(0)).view({x_.size(0), rows_.size(0)});
  filled_ = at::zeros({x_.size(0)}, x_.options().dtype(at::kBool));
}

at::Tensor FrozenRowCache::gather(const at::Tensor& indices) {
  at::NoGradGuard no_grad;
  const at::Tensor missing = indices.masked_select(filled_.index_select(0, indices).logical_not());
  if (missing.numel() > 0) {
    values_.index_copy_(0, missing, affine(x_.index_select(0, missing), rows_));
    filled_.index_fill_(0, missing, true);
    computed_samples_ = filled_.sum().item<int64_t>();  // `indices` may repeat a sample
  }
  return values_.index_select(0, indices);
}

namespace {

/// int64 positions where the bool `[n]` `selected` is true.
at::Tensor positions(const at::Tensor& selected) { return selected.nonzero().select(1, 0).contiguous(); }

at::Tensor rows_of(const at::Tensor& t, const at::Tensor& rows) {
  return t.defined() ? t.index_select(0, rows.to(t.device())).contiguous() : t;
}

}  // namespace

std::unique_ptr<FirstLayerSplit> FirstLayerSplit::plan(const Network& network, const Task& task, const PhaseSpec& spec,
                                                       const EngineConfig& config, CacheStorage& storage) {
  const int64_t train_samples = task.train_x.size(0);
  if (spec.max_iter * config.batch_size <= train_samples) return nullptr;  // no sample is drawn twice
  const at::Tensor& first = network.layer(0);
  at::Tensor trainable = at::zeros({first.size(0)}, at::kBool);
  for (const TrainableParam& p : spec.params) {
    if (p.tensor != &network.layer(0)) continue;
    if (!p.mask.defined()) return nullptr;  // every row trains
    trainable = p.mask.bitwise_and(ops::kTrainable).ne(0).any(1).cpu();
  }
  const at::Tensor frozen = trainable.logical_not();
  const int64_t frozen_count = frozen.sum().item<int64_t>();
  if (frozen_count == 0 || frozen_count < kMinFrozenFraction * static_cast<double>(first.size(0))) return nullptr;
  const int64_t eval_samples = std::min<int64_t>(config.max_eval_samples, task.val_x.size(0));
  const int64_t cached_values = (train_samples + eval_samples) * frozen_count;
  if (cached_values * static_cast<int64_t>(sizeof(float)) > kFrozenRowCacheBudgetBytes) return nullptr;
  const at::Tensor buffer = storage.take(cached_values, first.options());
  return std::unique_ptr<FirstLayerSplit>(new FirstLayerSplit(network, task, spec, eval_samples, positions(trainable),
                                                              positions(frozen), buffer));
}

FirstLayerSplit::FirstLayerSplit(const Network& network, const Task& task, const PhaseSpec& spec,
                                 int64_t eval_samples, at::Tensor trainable_rows, at::Tensor frozen_rows,
                                 const at::Tensor& storage)
    : network_(network),
      task_(task),
      trainable_rows_(trainable_rows.to(network.device())),
      frozen_rows_(frozen_rows.to(network.device())),
      compact_(rows_of(network.layer(0), trainable_rows)),
      val_x_(task.val_x.narrow(0, 0, eval_samples)),
      val_y_(task.val_y.narrow(0, 0, eval_samples)),
      train_cache_(rows_of(network.layer(0), frozen_rows), task.train_x, storage),
      val_cache_(rows_of(network.layer(0), frozen_rows), val_x_,
                 storage.narrow(0, task.train_x.size(0) * frozen_rows.size(0),
                                eval_samples * frozen_rows.size(0))),
      spec_(spec) {
  const at::Tensor order = at::cat({frozen_rows, trainable_rows});
  if (!order.equal(at::arange(order.size(0), order.options()))) {
    unit_order_ = order.argsort().to(network.device());
  }
  for (TrainableParam& p : spec_.params) {
    if (p.tensor != &network.layer(0)) continue;
    p.tensor = &compact_;
    p.mask = rows_of(p.mask, trainable_rows);
    p.anchor = rows_of(p.anchor, trainable_rows);
    p.group_rows = rows_of(p.group_rows, trainable_rows);
    p.anchor_weight = rows_of(p.anchor_weight, trainable_rows);
  }
}

at::Tensor FirstLayerSplit::preactivation(FrozenRowCache& cache, const at::Tensor& x,
                                          const at::Tensor& indices) const {
  const at::Tensor frozen = cache.gather(indices);
  if (trainable_rows_.numel() == 0) return frozen;
  const at::Tensor both = at::cat({frozen, affine(x.index_select(0, indices), compact_)}, 1);
  return unit_order_.defined() ? both.index_select(1, unit_order_) : both;
}

Objective FirstLayerSplit::objective(int64_t task_id, LossKind loss) {
  Objective objective;
  objective.num_samples = task_.train_x.size(0);
  objective.batch_loss = [this, task_id, loss](const at::Tensor& idx) {
    const at::Tensor first = preactivation(train_cache_, task_.train_x, idx);
    return data_loss(network_.logits_from_first(task_id, first), task_.train_y.index_select(0, idx), loss);
  };
  objective.validation_loss = [this, task_id, loss] {
    return chunked_mean_loss(
        val_y_,
        [&](int64_t start, int64_t len) {
          const at::Tensor idx = at::arange(start, start + len, val_y_.options().dtype(at::kLong));
          return network_.logits_from_first(task_id, preactivation(val_cache_, val_x_, idx));
        },
        loss);
  };
  return objective;
}

void FirstLayerSplit::write_back(Network& network) const {
  at::NoGradGuard no_grad;
  if (trainable_rows_.numel() > 0) network.layer(0).index_copy_(0, trainable_rows_, compact_);
}

}  // namespace den::engine
