#include "engine/training/frozen_rows.h"

#include "engine/training/threads.h"
#include "ops/adam.h"
#include "ops/gather.h"

namespace den::engine {

SampleCache::SampleCache(int64_t num_samples, int64_t width, Compute compute, const at::Tensor& storage)
    : compute_(std::move(compute)) {
  values_ = storage.narrow(0, 0, num_samples * width).view({num_samples, width});
  filled_ = at::zeros({num_samples}, storage.options().dtype(at::kBool));
}

at::Tensor SampleCache::gather(const at::Tensor& indices) {
  at::NoGradGuard no_grad;
  if (computed_samples_ < filled_.size(0)) {  // once every sample is in, a step only gathers
    const at::Tensor missing = indices.masked_select(filled_.index_select(0, indices).logical_not());
    if (missing.numel() > 0) {
      values_.index_put_({missing}, compute_(missing));  // 4x faster than index_copy_ on the CPU
      filled_.index_fill_(0, missing, true);
      computed_samples_ = filled_.sum().item<int64_t>();  // `indices` may repeat a sample
    }
  }
  return ops::gather_rows(values_, indices);
}

namespace {

/// int64 positions where the bool `[n]` `selected` is true.
at::Tensor positions(const at::Tensor& selected) { return selected.nonzero().select(1, 0).contiguous(); }

at::Tensor rows_of(const at::Tensor& t, const at::Tensor& rows) {
  return t.defined() ? t.index_select(0, rows.to(t.device())).contiguous() : t;
}

/// bool `[rows, cols]` of the elements `spec` trains in `tensor`: none when the phase does not
/// train it, all when its mask is undefined.
at::Tensor trained_elements(const PhaseSpec& spec, const at::Tensor& tensor) {
  for (const TrainableParam& p : spec.params) {
    if (p.tensor != &tensor) continue;
    if (!p.mask.defined()) return at::ones(tensor.sizes(), at::kBool);
    return p.mask.bitwise_and(ops::kTrainable).ne(0).cpu();
  }
  return at::zeros(tensor.sizes(), at::kBool);
}

/// Length of the leading run of true in the bool `[n]` `flags`.
int64_t leading_run(const at::Tensor& flags) {
  return flags.to(at::kLong).cumprod(0).sum().item<int64_t>();
}

/// Leading rows of the second layer whose weights on the first `frozen` units (the frozen
/// first-layer rows, which must be the leading ones) and whose bias the phase leaves alone; 0 when
/// they are too few to pay.
int64_t leading_frozen_second_rows(const Network& network, const PhaseSpec& spec, const at::Tensor& first_trainable,
                          int64_t frozen) {
  if (network.num_layers() < 2 || leading_run(first_trainable.logical_not()) != frozen) return 0;
  const at::Tensor& second = network.layer(1);
  const int64_t n_in = second.size(1) - 1;
  const at::Tensor trained = trained_elements(spec, second);
  const at::Tensor block_trained = trained.narrow(1, 0, frozen).any(1).logical_or(trained.select(1, n_in));
  const int64_t rows = leading_run(block_trained.logical_not());
  return rows < kMinFrozenFraction * static_cast<double>(second.size(0)) ? 0 : rows;
}

}  // namespace

std::unique_ptr<FirstLayerSplit> FirstLayerSplit::plan(const Network& network, const Task& task, const PhaseSpec& spec,
                                                       const EngineConfig& config, CacheStorage& storage) {
  // The cache multiplies rows of an fc first layer; a conv network trains without it.
  if (!network.all_fc()) return nullptr;
  const int64_t train_samples = task.train_x.size(0);
  if (spec.max_iter * config.batch_size <= train_samples) return nullptr;  // no sample is drawn twice
  const at::Tensor& first = network.layer(0);
  const at::Tensor trainable = trained_elements(spec, first).any(1);
  const at::Tensor frozen = trainable.logical_not();
  const int64_t frozen_count = frozen.sum().item<int64_t>();
  if (frozen_count == 0 || frozen_count < kMinFrozenFraction * static_cast<double>(first.size(0))) return nullptr;
  const int64_t second_rows = leading_frozen_second_rows(network, spec, trainable, frozen_count);
  const int64_t eval_samples = std::min<int64_t>(config.max_eval_samples, task.val_x.size(0));
  const int64_t cached_values = (train_samples + eval_samples) * (frozen_count + second_rows);
  if (cached_values * static_cast<int64_t>(sizeof(float)) > kFrozenRowCacheBudgetBytes) return nullptr;
  const at::Tensor buffer =
      storage.take(cached_values, kFrozenRowCacheBudgetBytes / static_cast<int64_t>(sizeof(float)), first.options());
  return std::unique_ptr<FirstLayerSplit>(new FirstLayerSplit(network, task, spec, eval_samples, positions(trainable),
                                                              positions(frozen), second_rows, buffer));
}

FirstLayerSplit::FirstLayerSplit(const Network& network, const Task& task, const PhaseSpec& spec,
                                 int64_t eval_samples, at::Tensor trainable_rows, at::Tensor frozen_rows,
                                 int64_t second_rows, const at::Tensor& storage)
    : network_(network),
      task_(task),
      trainable_rows_(trainable_rows.to(network.device())),
      frozen_rows_(frozen_rows.to(network.device())),
      compact_(rows_of(network.layer(0), trainable_rows)),
      frozen_weights_(rows_of(network.layer(0), frozen_rows)),
      second_rows_(second_rows),
      val_y_(task.val_y.narrow(0, 0, eval_samples)),
      spec_(spec) {
  const at::Tensor order = at::cat({frozen_rows, trainable_rows});
  if (!order.equal(at::arange(order.size(0), order.options()))) {
    unit_order_ = order.argsort().to(network.device());
  }
  if (second_rows_ > 0) {
    const at::Tensor& second = network.layer(1);
    const at::Tensor rows = second.narrow(0, 0, second_rows_);
    second_block_ = at::cat({rows.narrow(1, 0, frozen_rows_.size(0)), rows.narrow(1, second.size(1) - 1, 1)}, 1);
  }
  const int64_t per_sample = frozen_rows_.size(0) + second_rows_;
  train_ = make_caches(task.train_x, storage);
  val_ = make_caches(task.val_x.narrow(0, 0, eval_samples),
                     storage.narrow(0, task.train_x.size(0) * per_sample, eval_samples * per_sample));
  for (TrainableParam& p : spec_.params) {
    if (p.tensor != &network.layer(0)) continue;
    p.tensor = &compact_;
    p.mask = rows_of(p.mask, trainable_rows);
    p.anchor = rows_of(p.anchor, trainable_rows);
    p.group_rows = rows_of(p.group_rows, trainable_rows);
    p.anchor_weight = rows_of(p.anchor_weight, trainable_rows);
  }
}

FirstLayerSplit::DataCaches FirstLayerSplit::make_caches(const at::Tensor& x, const at::Tensor& storage) const {
  DataCaches caches;
  caches.x = x;
  const int64_t n = x.size(0), frozen = frozen_rows_.size(0);
  SampleCache* first = new SampleCache(
      n, frozen,
      [x, weights = frozen_weights_](const at::Tensor& idx) { return affine(ops::gather_rows(x, idx), weights); },
      storage);
  caches.first.reset(first);
  if (second_rows_ > 0) {
    caches.second = std::make_unique<SampleCache>(
        n, second_rows_,
        [first, block = second_block_](const at::Tensor& idx) { return affine(first->gather(idx).relu_(), block); },
        storage.narrow(0, n * frozen, n * second_rows_));
  }
  return caches;
}

at::Tensor FirstLayerSplit::logits(int64_t task_id, DataCaches& data, const at::Tensor& indices, Tape* tape) const {
  const at::Tensor frozen = data.first->gather(indices);
  at::Tensor first = frozen;
  if (trainable_rows_.numel() > 0) {
    const at::Tensor x = ops::gather_rows(data.x, indices);
    if (tape) tape->x = x;
    const at::Tensor both = at::cat({frozen, affine(x, compact_)}, 1);
    first = unit_order_.defined() ? both.index_select(1, unit_order_) : both;
  }
  std::vector<at::Tensor>* inputs = tape ? &tape->inputs : nullptr;
  if (!data.second) return network_.logits_from(task_id, 0, first, inputs);

  // The frozen rows are the leading units here: the second layer's leading rows are the cached
  // block plus their weights on the trainable units; its other rows see the whole first layer.
  const at::Tensor& second = network_.layer(1);
  const int64_t frozen_count = frozen_rows_.size(0), n_in = second.size(1) - 1, n_out = second.size(0);
  const at::Tensor h = first.relu_();  // `first` is this step's own tensor
  if (tape) tape->first = h;
  at::Tensor leading = data.second->gather(indices);
  if (frozen_count < n_in) {
    const at::Tensor trainable_units = h.narrow(1, frozen_count, n_in - frozen_count);
    const at::Tensor weights_t = second.narrow(0, 0, second_rows_).narrow(1, frozen_count, n_in - frozen_count).t();
    const ProductThreads threads(trainable_units, weights_t);
    leading = at::addmm(leading, trainable_units, weights_t);
  }
  if (second_rows_ == n_out) return network_.logits_from(task_id, 1, leading, inputs);
  const at::Tensor others = affine(h, second.narrow(0, second_rows_, n_out - second_rows_));
  return network_.logits_from(task_id, 1, at::cat({leading, others}, 1), inputs);
}

void FirstLayerSplit::gradients(int64_t task_id, const Tape& tape, const at::Tensor& dlogits,
                                GradientBuffers& grads) const {
  at::Tensor* compact = grads.find(compact_);
  if (trainable_rows_.numel() == 0) compact = nullptr;
  const int64_t frozen_count = frozen_rows_.size(0), trainable_count = trainable_rows_.size(0);
  at::Tensor dtrainable;  // gradient of the trainable rows' pre-activations
  if (!train_.second) {
    const at::Tensor dfirst = backward_from(network_, task_id, 0, tape.inputs, dlogits, grads, compact != nullptr);
    if (!compact) return;
    dtrainable = unit_order_.defined() ? dfirst.index_select(1, trainable_rows_)
                                       : dfirst.narrow(1, frozen_count, trainable_count);
  } else {
    // The frozen rows are the leading units, the trainable ones the trailing units.
    const at::Tensor& second = network_.layer(1);
    at::Tensor* second_grad = grads.find(second);
    const at::Tensor dsecond =
        backward_from(network_, task_id, 1, tape.inputs, dlogits, grads, second_grad != nullptr || compact);
    const at::Tensor trainable_units = tape.first.narrow(1, frozen_count, trainable_count);
    if (second_grad) {
      // The cached block (the leading rows' weights on the frozen units, and their bias) is
      // constant: its gradient stays zero. The leading rows' weights on the trainable units:
      const int64_t n_out = second.size(0);
      at::Tensor leading = second_grad->narrow(0, 0, second_rows_).narrow(1, frozen_count, trainable_count);
      if (trainable_count > 0) {
        const at::Tensor dleading_t = dsecond.narrow(1, 0, second_rows_).t();
        const ProductThreads threads(dleading_t, trainable_units);
        at::mm_out(leading, dleading_t, trainable_units);
      }
      if (second_rows_ < n_out) {
        at::Tensor others = second_grad->narrow(0, second_rows_, n_out - second_rows_);
        write_affine_gradient(dsecond.narrow(1, second_rows_, n_out - second_rows_), tape.first, others);
      }
    }
    if (!compact) return;
    const at::Tensor weights = second.narrow(1, frozen_count, trainable_count);
    const ProductThreads threads(dsecond, weights);
    dtrainable = at::mm(dsecond, weights);
    relu_backward_(dtrainable, trainable_units);
  }
  write_affine_gradient(dtrainable, tape.x, *compact);
}

Objective FirstLayerSplit::objective(int64_t task_id, LossKind loss) {
  Objective objective;
  objective.num_samples = task_.train_x.size(0);
  objective.batch_loss = [this, task_id, loss](const at::Tensor& idx) {
    return data_loss(logits(task_id, train_, idx), task_.train_y.index_select(0, idx), loss);
  };
  objective.batch_gradients = [this, task_id, loss](const at::Tensor& idx, GradientBuffers& grads) {
    Tape tape;
    at::Tensor dlogits;
    const double value = data_loss_gradient(logits(task_id, train_, idx, &tape), task_.train_y.index_select(0, idx),
                                            loss, dlogits);
    gradients(task_id, tape, dlogits, grads);
    return value;
  };
  objective.validation_loss = [this, task_id, loss] {
    return chunked_mean_loss(
        val_y_,
        [&](int64_t start, int64_t len) {
          return logits(task_id, val_, at::arange(start, start + len, val_y_.options().dtype(at::kLong)));
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
