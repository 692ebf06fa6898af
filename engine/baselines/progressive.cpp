#include "engine/baselines/baseline_method.h"

#include <cmath>
#include <cstddef>
#include <stdexcept>

namespace den::engine::detail {

namespace {

// Progressive Neural Networks (Rusu et al. 2016, Eq. 1): task k gets a new column of the base
// hidden sizes and its head; layer i >= 2 of column k also reads layer i-1 of every earlier column
// through lateral weights U, and the head reads the top layer of every earlier column:
//   h_i^k = relu(W_i^k [h_{i-1}^k; 1] + sum_{j<k} U_i^{k:j} h_{i-1}^j).
// Only column k trains on task k, so earlier columns, and the tasks that use them, never change.
// The laterals from all earlier columns are one tensor per layer over their concatenated activations
// (the same sums); own weights keep the augmented layout of Network (NOTE: [augmented rows]).
class Progressive final : public BaselineMethod {
 public:
  Progressive(EngineConfig config, int64_t input_dim) : BaselineMethod("progressive", std::move(config), input_dim) {}

  int64_t num_params() const override { return count([](const at::Tensor& w) { return w.numel(); }); }

 protected:
  void learn(int64_t t, const Task& task, const ProgressCallback& progress, TaskReport& report) override {
    columns_.push_back(new_column(t, task.num_classes));
    Column& column = columns_.back();
    std::vector<TrainableParam> params;
    for_each_tensor(column, [&](at::Tensor& w) { params.push_back({&w, {}, {}, {}, {}}); });

    Objective objective;
    objective.num_samples = task.train_x.size(0);
    objective.batch_loss = [&](const at::Tensor& idx) {
      return data_loss(logits(t, task.train_x.index_select(0, idx)), task.train_y.index_select(0, idx), config_.loss);
    };
    const auto of_column = [&](const at::Tensor& x) { return logits(t, x); };
    objective.validation_loss = [&] { return validation_loss(of_column, task.val_x, task.val_y); };
    report.phases.push_back(trainer_.train(objective, t, phase(std::move(params)), progress));
    report.val_loss = validation_loss(of_column, task.val_x, task.val_y);
    // Per layer, summed over the columns.
    for (int64_t width : layer_units(config_.layers)) report.hidden_units.push_back(width * t);
  }

  at::Tensor logits(int64_t t, const at::Tensor& x) const override {
    // Activations of columns 1..t at the current depth; frozen columns carry no autograd graph.
    std::vector<at::Tensor> acts(static_cast<size_t>(t), x);
    for (size_t i = 0; i < config_.layers.size(); ++i) {
      std::vector<at::Tensor> next;
      for (size_t j = 0; j < acts.size(); ++j) {
        at::Tensor z = affine(acts[j], columns_[j].layers[i]);
        if (columns_[j].laterals[i].defined()) z = at::addmm(z, earlier(acts, j), columns_[j].laterals[i].t());
        next.push_back(at::relu(z));
      }
      acts = std::move(next);
    }
    const Column& column = columns_[t - 1];
    at::Tensor out = affine(acts.back(), column.head);
    if (column.head_lateral.defined()) out = at::addmm(out, earlier(acts, acts.size() - 1), column.head_lateral.t());
    return out;
  }

  int64_t nonzero_params() const override {
    return count([](const at::Tensor& w) { return w.count_nonzero().item<int64_t>(); });
  }

 private:
  struct Column {
    std::vector<at::Tensor> layers;    ///< [h_i, h_{i-1} + 1], augmented; layer 0 reads the input
    std::vector<at::Tensor> laterals;  ///< [h_i, (k-1) h_{i-1}], no bias; undefined for layer 0 or column 1
    at::Tensor head;                   ///< [c_k, h_L + 1], augmented
    at::Tensor head_lateral;           ///< [c_k, (k-1) h_L]; undefined for column 1
  };

  /// Calls `f` on every tensor of `column` (const or not).
  template <typename ColumnT, typename F>
  static void for_each_tensor(ColumnT& column, F f) {
    for (auto& w : column.layers) f(w);
    for (auto& u : column.laterals) {
      if (u.defined()) f(u);
    }
    f(column.head);
    if (column.head_lateral.defined()) f(column.head_lateral);
  }

  /// The activations of the columns before `j`, side by side.
  static at::Tensor earlier(const std::vector<at::Tensor>& acts, size_t j) {
    return at::cat(std::vector<at::Tensor>(acts.begin(), acts.begin() + static_cast<std::ptrdiff_t>(j)), 1);
  }

  /// Column k with uniform(+-1/sqrt(fan_in)) weights, fan_in counting own and lateral inputs (the
  /// LibTorch Linear scale over the concatenated input), and zero biases.
  Column new_column(int64_t k, int64_t classes) {
    const auto block = [&](int64_t rows, int64_t cols, int64_t fan_in) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
      return at::empty({rows, cols}, at::kFloat).uniform_(-bound, bound, generator_).to(device_);
    };
    Column column;
    int64_t below = input_dim_;
    for (size_t i = 0; i < config_.layers.size(); ++i) {
      const int64_t width = config_.layers[i].units;
      const bool lateral = i > 0 && k > 1;
      const int64_t fan_in = below + (lateral ? (k - 1) * below : 0);
      at::Tensor w = block(width, below + 1, fan_in);
      w.select(1, below).zero_();
      column.layers.push_back(w);
      column.laterals.push_back(lateral ? block(width, (k - 1) * below, fan_in) : at::Tensor());
      below = width;
    }
    const int64_t fan_in = below * k;
    column.head = block(classes, below + 1, fan_in);
    column.head.select(1, below).zero_();
    if (k > 1) column.head_lateral = block(classes, (k - 1) * below, fan_in);
    return column;
  }

  template <typename Count>
  int64_t count(Count per_tensor) const {
    int64_t total = 0;
    for (const Column& c : columns_) {
      for_each_tensor(c, [&](const at::Tensor& w) { total += per_tensor(w); });
    }
    return total;
  }

  std::vector<Column> columns_;
};

}  // namespace

std::unique_ptr<Method> make_progressive(const EngineConfig& config, int64_t input_dim) {
  // Lateral connections between conv columns are not written yet.
  if (has_conv(config.layers)) throw std::invalid_argument("method progressive does not take conv layers yet; give fc layers");
  return std::make_unique<Progressive>(config, input_dim);
}

}  // namespace den::engine::detail
