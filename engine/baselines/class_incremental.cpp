// The class-incremental baselines: rehearsal with distillation (lwf, icarl, der++) and classifiers on
// features frozen after task 1 (ncm, ranpac). docs/class-incremental.md cites each paper and says where den
// departs from it.

#include "engine/baselines/baseline_method.h"
#include "engine/baselines/replay.h"
#include "engine/engine.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>

namespace den::engine::detail {

namespace {

constexpr int64_t kChunk = 4096;

/// `f(rows)` over `x` in chunks of rows, without autograd, concatenated.
template <typename F>
at::Tensor in_chunks(const at::Tensor& x, F f) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> parts;
  for (int64_t start = 0; start < x.size(0); start += kChunk) {
    parts.push_back(f(x.narrow(0, start, std::min(kChunk, x.size(0) - start))));
  }
  return parts.empty() ? f(x) : at::cat(parts);
}

// NOTE: [one output space] den keeps a head per task; a class-incremental method reads the heads
// 1..t side by side as one head over every output seen so far, the single growing head of iCaRL and
// DER++, and trains and predicts in it. Its logits are then comparable across tasks, so task-agnostic
// prediction takes them as they are (Method::heads_comparable), with no calibration memory.
at::Tensor joint_logits(const Network& network, const at::Tensor& features, int64_t tasks) {
  std::vector<at::Tensor> parts;
  for (int64_t s = 1; s <= tasks; ++s) parts.push_back(affine(features, network.head(s)));
  return at::cat(parts, 1);
}

/// Rows of `features` scaled to unit length (zero rows stay zero).
at::Tensor unit_rows(const at::Tensor& features) { return features / features.norm(2, 1, true).clamp_min(1e-12); }

enum class Recipe {
  Lwf,    ///< distillation on the old heads, no memory (Li and Hoiem 2016)
  Icarl,  ///< herding memory, sigmoid distillation, nearest mean of exemplars (Rebuffi et al. 2017)
  DerPp,  ///< reservoir memory of samples with their logits (Buzzega et al. 2020)
};

/// One network trained on every task in turn, in one output space (NOTE: [one output space]), kept
/// from forgetting by the recipe's distillation and memory.
class Rehearsal final : public BaselineMethod {
 public:
  Rehearsal(std::string name, Recipe recipe, EngineConfig config, const BaselineOptions& options, int64_t input_dim)
      : BaselineMethod(std::move(name), std::move(config), input_dim),
        recipe_(recipe),
        options_(options),
        network_(input_dim_, config_.layers, generator_, device_, config_.input_shape) {
    if (recipe_ != Recipe::Lwf && options_.memory < 1) {
      throw std::invalid_argument(this->name() + " learns from a memory of old samples: give it --memory N (" +
                                  std::to_string(options_.memory) + " holds none; 200, 500 and 5120 are the usual sizes)");
    }
  }

  bool heads_comparable() const override { return true; }
  int64_t num_params() const override { return network_.num_params(); }
  int64_t memory_samples() const override {
    if (recipe_ == Recipe::DerPp) return buffer_size_;
    int64_t n = 0;
    for (const at::Tensor& e : exemplars_) n += e.size(0);
    return n;
  }
  int64_t memory_bytes() const override {
    const int64_t samples = memory_samples() * input_dim_ * 4;
    if (recipe_ != Recipe::DerPp || buffer_size_ == 0) return samples;
    // Each row's label (8 bytes) and its logits at the time it was kept.
    return samples + buffer_size_ * 8 + buffer_width_.narrow(0, 0, buffer_size_).sum().item<int64_t>() * 4;
  }

 protected:
  void learn(int64_t t, const Task& task, const ProgressCallback& progress, TaskReport& report) override {
    const int64_t old_outputs = offsets_.back();
    const int64_t outputs = old_outputs + task.num_classes;
    if (recipe_ == Recipe::Icarl && options_.memory < outputs) {  // before anything changes
      throw std::invalid_argument("icarl: a memory of " + std::to_string(options_.memory) +
                                  " samples cannot keep one of each of the " + std::to_string(outputs) + " outputs");
    }
    network_.add_head(task.num_classes);
    offsets_.push_back(outputs);

    // The training rows: the task's own, then (iCaRL) the exemplars, with their joint outputs.
    at::Tensor x = task.train_x, target = task.train_y + old_outputs;
    if (recipe_ == Recipe::Icarl && old_outputs > 0) {
      std::vector<at::Tensor> xs{x}, targets{target};
      for (size_t o = 0; o < exemplars_.size(); ++o) {
        xs.push_back(exemplars_[o]);
        targets.push_back(at::full({exemplars_[o].size(0)}, static_cast<int64_t>(o), target.options()));
      }
      x = at::cat(xs);
      target = at::cat(targets);
    }
    // The old network's outputs, once, before it learns (what LwF and iCaRL distill).
    at::Tensor old_train, old_val;
    if (recipe_ != Recipe::DerPp && old_outputs > 0) {
      const auto old_logits = [&](const at::Tensor& rows) {
        return joint_logits(network_, network_.features(rows), t - 1);
      };
      old_train = in_chunks(x, old_logits);
      old_val = in_chunks(task.val_x, old_logits);
    }
    if (recipe_ == Recipe::DerPp && buffer_logits_.defined()) {  // room for the new outputs' logits
      buffer_logits_ = at::cat({buffer_logits_, at::zeros({buffer_logits_.size(0), task.num_classes},
                                                          buffer_logits_.options())}, 1);
    }

    const int64_t c = task.num_classes;
    // The recipe's loss on rows of the task (and exemplars), whose joint logits are `z`.
    const auto task_loss = [&, t](const at::Tensor& z, const at::Tensor& tgt, const at::Tensor& old) {
      switch (recipe_) {
        case Recipe::Lwf: {
          at::Tensor loss = data_loss(z.narrow(1, old_outputs, c), tgt - old_outputs, config_.loss);
          if (t > 1) {
            loss = loss + options_.lwf_lambda * softmax_distillation(z.narrow(1, 0, old_outputs), old, classes_,
                                                                     options_.temperature);
          }
          return loss;
        }
        case Recipe::Icarl: {
          at::Tensor soft = at::one_hot(tgt, outputs).to(z.scalar_type());
          if (t > 1) soft.narrow(1, 0, old_outputs).copy_(at::sigmoid(old));
          // Summed over the outputs, as iCaRL's loss; mean over rows.
          return at::binary_cross_entropy_with_logits(z, soft, {}, {}, at::Reduction::Sum) / z.size(0);
        }
        case Recipe::DerPp:
          return data_loss(z, tgt, config_.loss);
      }
      throw std::logic_error("unknown recipe");
    };

    Objective objective;
    objective.num_samples = x.size(0);
    objective.batch_loss = [&](const at::Tensor& idx) {
      const at::Tensor xb = x.index_select(0, idx), tb = target.index_select(0, idx);
      if (recipe_ == Recipe::DerPp) return derpp_loss(t, xb, tb);
      const at::Tensor z = joint_logits(network_, network_.features(xb), t);
      return task_loss(z, tb, old_train.defined() ? old_train.index_select(0, idx) : at::Tensor());
    };
    objective.validation_loss = [&] {
      at::NoGradGuard no_grad;
      const int64_t n = std::min<int64_t>(config_.max_eval_samples, task.val_x.size(0));
      double total = 0.0;
      for (int64_t start = 0; start < n; start += kChunk) {
        const int64_t len = std::min(kChunk, n - start);
        const at::Tensor z = joint_logits(network_, network_.features(task.val_x.narrow(0, start, len)), t);
        const at::Tensor old = old_val.defined() ? old_val.narrow(0, start, len) : at::Tensor();
        total += task_loss(z, task.val_y.narrow(0, start, len) + old_outputs, old).item<double>() * len;
      }
      return n > 0 ? total / static_cast<double>(n) : 0.0;
    };

    std::vector<TrainableParam> params;
    for (at::Tensor& w : network_.layers()) params.push_back(all_of(w));
    for (int64_t s = 1; s <= t; ++s) params.push_back(all_of(network_.head(s)));
    report.phases.push_back(trainer_.train(objective, t, phase(std::move(params)), progress));
    report.val_loss = report.phases.back().val_loss;
    report.hidden_units = layer_units(config_.layers);
    if (recipe_ == Recipe::Icarl) update_exemplars(task, outputs);
  }

  at::Tensor logits(int64_t t, const at::Tensor& x) const override {
    const at::Tensor features = network_.features(x);
    const int64_t first = offsets_[t - 1], width = offsets_[t] - first;
    if (recipe_ != Recipe::Icarl) return affine(features, network_.head(t));
    // Nearest mean of exemplars: the closer the class mean, the higher the score.
    return -at::cdist(unit_rows(features), means_.narrow(0, first, width)).pow(2);
  }

  int64_t nonzero_params() const override { return network_.num_nonzero_params(); }

 private:
  /// DER++'s loss on a batch `x`, `target` of the task: its cross-entropy in the joint output space,
  /// plus, on two independent draws of as many rows of the memory, alpha times the squared error of
  /// the logits kept with each row (over the outputs there were then) and beta times the
  /// cross-entropy of the kept labels. One forward pass takes the three batches together. The batch
  /// is then offered to the reservoir with the logits it had before this step.
  at::Tensor derpp_loss(int64_t t, const at::Tensor& x, const at::Tensor& target) {
    const int64_t b = x.size(0);
    const int64_t draw = std::min(b, buffer_size_);
    at::Tensor r1, r2, z;
    if (draw == 0) {
      z = joint_logits(network_, network_.features(x), t);
    } else {
      const auto rows = [&] { return at::randperm(buffer_size_, generator_, at::kLong).narrow(0, 0, draw).to(device_); };
      r1 = rows();
      r2 = rows();
      const at::Tensor all = at::cat({x, buffer_x_.index_select(0, r1), buffer_x_.index_select(0, r2)});
      z = joint_logits(network_, network_.features(all), t);
    }
    const at::Tensor zb = z.narrow(0, 0, b);
    at::Tensor loss = data_loss(zb, target, config_.loss);
    if (draw > 0) {
      const at::Tensor z1 = z.narrow(0, b, draw), z2 = z.narrow(0, b + draw, draw);
      const at::Tensor kept = buffer_logits_.index_select(0, r1);
      const at::Tensor valid = at::arange(kept.size(1), r1.options()).unsqueeze(0).lt(
          buffer_width_.index_select(0, r1).unsqueeze(1)).to(kept.scalar_type());
      const at::Tensor squared = ((z1 - kept) * valid).pow(2).sum() / valid.sum();
      loss = loss + options_.derpp_alpha * squared +
             options_.derpp_beta * data_loss(z2, buffer_target_.index_select(0, r2), config_.loss);
    }
    remember(x, target, zb.detach());
    return loss;
  }

  /// Offers the batch's rows to the reservoir (NOTE in replay.h: every row of the stream is kept
  /// with the same probability).
  void remember(const at::Tensor& x, const at::Tensor& target, const at::Tensor& z) {
    if (!buffer_x_.defined()) {
      buffer_x_ = at::zeros({options_.memory, x.size(1)}, x.options());
      buffer_target_ = at::zeros({options_.memory}, target.options());
      buffer_logits_ = at::zeros({options_.memory, z.size(1)}, z.options());
      buffer_width_ = at::zeros({options_.memory}, target.options());
    }
    const std::vector<int64_t> slots = reservoir_slots(seen_, x.size(0), options_.memory, generator_);
    seen_ += x.size(0);
    // Rows in batch order; a slot taken twice keeps the later row, as one sample after another would.
    std::map<int64_t, int64_t> row_of_slot;
    for (size_t i = 0; i < slots.size(); ++i) {
      if (slots[i] >= 0) row_of_slot[slots[i]] = static_cast<int64_t>(i);
    }
    if (row_of_slot.empty()) return;
    std::vector<int64_t> slot_list, row_list;
    for (const auto& [slot, row] : row_of_slot) {
      slot_list.push_back(slot);
      row_list.push_back(row);
      buffer_size_ = std::max(buffer_size_, slot + 1);
    }
    const at::Tensor into = at::tensor(slot_list, at::kLong).to(x.device());
    const at::Tensor from = at::tensor(row_list, at::kLong).to(x.device());
    buffer_x_.index_copy_(0, into, x.index_select(0, from));
    buffer_target_.index_copy_(0, into, target.index_select(0, from));
    // z spans every output so far, as wide as the memory's logits (padded when the task began).
    buffer_logits_.index_copy_(0, into, z.index_select(0, from));
    buffer_width_.index_fill_(0, into, z.size(1));
  }

  /// iCaRL's memory after task learning (its Algorithms 4 and 5): each output keeps memory / outputs
  /// samples, the older ones a prefix of their herding order, the new ones picked by herding on the
  /// task's training rows; then every class mean is recomputed from its exemplars.
  void update_exemplars(const Task& task, int64_t outputs) {
    at::NoGradGuard no_grad;
    const int64_t per_output = options_.memory / outputs;
    for (at::Tensor& e : exemplars_) e = e.narrow(0, 0, std::min(per_output, e.size(0))).clone();
    for (int64_t o = 0; o < task.num_classes; ++o) {
      const at::Tensor rows = task.train_y.eq(o).nonzero().view(-1);
      const at::Tensor x = task.train_x.index_select(0, rows);
      const at::Tensor features = in_chunks(x, [&](const at::Tensor& r) { return unit_rows(network_.features(r)); });
      const std::vector<int64_t> order = herding_order(features.cpu(), per_output);
      exemplars_.push_back(x.index_select(0, at::tensor(order, at::kLong).to(x.device())));
    }
    std::vector<at::Tensor> means;
    for (const at::Tensor& e : exemplars_) {
      const at::Tensor f = in_chunks(e, [&](const at::Tensor& r) { return unit_rows(network_.features(r)); });
      means.push_back(e.size(0) > 0 ? unit_rows(f.mean(0, true)) : at::zeros({1, f.size(1)}, f.options()));
    }
    means_ = at::cat(means);
  }

  Recipe recipe_;
  BaselineOptions options_;
  Network network_;
  std::vector<int64_t> offsets_{0};  ///< first joint output of each task's head; the last is their count
  std::vector<at::Tensor> exemplars_;  ///< iCaRL: per joint output, its samples in herding order
  at::Tensor means_;                   ///< iCaRL: `[outputs, d]` unit class means of the exemplars' features
  at::Tensor buffer_x_, buffer_target_, buffer_logits_, buffer_width_;  ///< DER++'s reservoir
  int64_t buffer_size_ = 0;
  int64_t seen_ = 0;  ///< rows offered to the reservoir so far
};

/// A network trained on task 1 and frozen; every class is then a prototype of the frozen features
/// (ncm, SimpleCIL: Zhou et al. 2023) or a column of a ridge classifier on their random projection
/// (ranpac: McDonnell et al. 2023).
class FrozenFeatures final : public BaselineMethod {
 public:
  FrozenFeatures(std::string name, bool random_projection, EngineConfig config, const BaselineOptions& options,
                 int64_t input_dim)
      : BaselineMethod(std::move(name), std::move(config), input_dim),
        random_projection_(random_projection),
        options_(options),
        network_(input_dim_, config_.layers, generator_, device_, config_.input_shape) {}

  bool heads_comparable() const override { return true; }
  int64_t num_params() const override {
    int64_t n = prototypes_.defined() ? prototypes_.numel() : 0;
    for (const at::Tensor& w : network_.layers()) n += w.numel();
    if (projection_.defined()) n += projection_.numel() + ridge_.numel();
    return n;
  }

 protected:
  void learn(int64_t t, const Task& task, const ProgressCallback& progress, TaskReport& report) override {
    report.hidden_units = layer_units(config_.layers);
    if (t == 1) {  // the only training: the network and a head that the classifier below then replaces
      network_.add_head(task.num_classes);
      std::vector<TrainableParam> params;
      for (at::Tensor& w : network_.layers()) params.push_back(all_of(w));
      params.push_back(all_of(network_.head(1)));
      report.phases.push_back(trainer_.train(network_, 1, task, phase(std::move(params)), progress));
    }
    const int64_t first = offsets_.back();
    offsets_.push_back(first + task.num_classes);
    const at::Tensor features = frozen(task.train_x);
    if (!random_projection_) {
      add_prototypes(features, task);
    } else {
      accumulate_ridge(features, task.train_y + first);
      choose_ridge(frozen(task.val_x), task.val_y + first);
    }
    report.val_loss = validation_loss([&](const at::Tensor& x) { return logits(t, x); }, task.val_x, task.val_y);
  }

  at::Tensor logits(int64_t t, const at::Tensor& x) const override {
    const int64_t first = offsets_[t - 1], width = offsets_[t] - first;
    const at::Tensor features = network_.features(x);
    if (!random_projection_) {
      return kPrototypeScale * unit_rows(features).matmul(prototypes_.narrow(0, first, width).t());
    }
    return at::relu(features.matmul(projection_)).matmul(ridge_.narrow(1, first, width));
  }

  int64_t nonzero_params() const override { return num_params(); }

 private:
  /// Cosine scores times this are the logits: argmax and the task-agnostic prediction do not depend
  /// on it; the softmax scores of the task-aware metrics do, and 10 makes them neither flat nor one-hot.
  static constexpr double kPrototypeScale = 10.0;

  at::Tensor frozen(const at::Tensor& x) const {
    return in_chunks(x, [&](const at::Tensor& rows) { return network_.features(rows); });
  }

  /// SimpleCIL: each output's prototype is the unit mean of its training samples' features.
  void add_prototypes(const at::Tensor& features, const Task& task) {
    std::vector<at::Tensor> rows;
    if (prototypes_.defined()) rows.push_back(prototypes_);
    for (int64_t o = 0; o < task.num_classes; ++o) {
      const at::Tensor mine = features.index_select(0, task.train_y.eq(o).nonzero().view(-1));
      rows.push_back(mine.size(0) > 0 ? unit_rows(mine.mean(0, true)) : at::zeros({1, features.size(1)}, features.options()));
    }
    prototypes_ = at::cat(rows);
  }

  /// RanPAC: h = relu(f P) with P `[d, M]` fixed standard normal, G += sum h h^T and C += sum h y^T
  /// over one-hot targets in the joint output space; both only accumulate, so no sample is kept.
  void accumulate_ridge(const at::Tensor& features, const at::Tensor& target) {
    if (!projection_.defined()) {
      projection_ = at::randn({features.size(1), options_.ranpac_dim}, generator_, at::kFloat).to(device_);
      gram_ = at::zeros({options_.ranpac_dim, options_.ranpac_dim}, features.options().dtype(at::kDouble));
      correlation_ = at::zeros({options_.ranpac_dim, 0}, gram_.options());
    }
    const int64_t outputs = offsets_.back();
    correlation_ = at::cat({correlation_, at::zeros({options_.ranpac_dim, outputs - correlation_.size(1)},
                                                    gram_.options())}, 1);
    for (int64_t start = 0; start < features.size(0); start += kChunk) {
      const int64_t len = std::min(kChunk, features.size(0) - start);
      const at::Tensor h = at::relu(features.narrow(0, start, len).matmul(projection_)).to(at::kDouble);
      gram_ += h.t().matmul(h);
      correlation_ += h.t().matmul(at::one_hot(target.narrow(0, start, len), outputs).to(at::kDouble));
    }
  }

  /// The ridge strength with the best accuracy on the task's validation rows among all outputs seen
  /// (RanPAC's grid, 10^-8 .., 10^13); ties keep the smaller one.
  void choose_ridge(const at::Tensor& val_features, const at::Tensor& val_target) {
    const RidgeSolver solver(gram_);
    const at::Tensor h = at::relu(val_features.matmul(projection_)).to(at::kDouble);
    double best_accuracy = -1.0, best_lambda = 0.0;
    for (int exponent = -8; exponent <= 13; ++exponent) {
      const double lambda = std::pow(10.0, exponent);
      const at::Tensor w = solver.solve(correlation_, lambda);
      const double acc = h.size(0) == 0 ? 0.0 : h.matmul(w).argmax(1).eq(val_target).to(at::kDouble).mean().item<double>();
      if (acc > best_accuracy) {
        best_accuracy = acc;
        best_lambda = lambda;
        ridge_ = w.to(at::kFloat);
      }
    }
    logger()->info("ranpac: ridge lambda {:g} (validation accuracy {:.4f} among {} outputs)", best_lambda, best_accuracy,
                   correlation_.size(1));
  }

  bool random_projection_;
  BaselineOptions options_;
  Network network_;
  std::vector<int64_t> offsets_{0};
  at::Tensor prototypes_;                 ///< ncm: `[outputs, d]`
  at::Tensor projection_, gram_, correlation_, ridge_;  ///< ranpac: P, G, C and W = (G + lambda I)^-1 C
};

}  // namespace

std::unique_ptr<Method> make_class_incremental(const std::string& name, const EngineConfig& config,
                                               const BaselineOptions& options, int64_t input_dim) {
  if (name == "lwf") return std::make_unique<Rehearsal>(name, Recipe::Lwf, config, options, input_dim);
  if (name == "icarl") return std::make_unique<Rehearsal>(name, Recipe::Icarl, config, options, input_dim);
  if (name == "der++") return std::make_unique<Rehearsal>(name, Recipe::DerPp, config, options, input_dim);
  if (name == "ncm") return std::make_unique<FrozenFeatures>(name, false, config, options, input_dim);
  if (name == "ranpac") return std::make_unique<FrozenFeatures>(name, true, config, options, input_dim);
  return nullptr;
}

}  // namespace den::engine::detail
