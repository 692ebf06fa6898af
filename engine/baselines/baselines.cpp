#include "engine/baselines/baselines.h"

#include "engine/baselines/baseline_method.h"
#include "engine/engine.h"
#include "engine/task_check.h"
#include "ops/elementwise_math.h"

#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>

namespace den::engine {

void BaselineOptions::validate() const {
  if (!(l2_transfer >= 0)) throw std::invalid_argument("l2 transfer lambda must be >= 0, got " + std::to_string(l2_transfer));
  if (!(ewc_lambda >= 0)) throw std::invalid_argument("EWC lambda must be >= 0, got " + std::to_string(ewc_lambda));
  if (fisher_samples < 1) {
    throw std::invalid_argument("EWC Fisher samples must be >= 1, got " + std::to_string(fisher_samples));
  }
  if (memory < 0) throw std::invalid_argument("memory must be >= 0 samples, got " + std::to_string(memory));
  if (!(temperature > 0)) throw std::invalid_argument("distillation temperature must be > 0, got " + std::to_string(temperature));
  if (!(lwf_lambda >= 0)) throw std::invalid_argument("lwf lambda must be >= 0, got " + std::to_string(lwf_lambda));
  if (!(derpp_alpha >= 0) || !(derpp_beta >= 0)) {
    throw std::invalid_argument("der++ alpha and beta must be >= 0, got " + std::to_string(derpp_alpha) + " and " +
                                std::to_string(derpp_beta));
  }
  if (ranpac_dim < 1) throw std::invalid_argument("ranpac projection must be >= 1 wide, got " + std::to_string(ranpac_dim));
}

const std::vector<std::string>& method_names() {
  static const std::vector<std::string> names = {"den", "stl",   "mtl",   "finetune", "l2",    "ewc",
                                                 "progressive", "lwf", "icarl", "der++",    "ncm", "ranpac"};
  return names;
}

bool needs_memory(const std::string& name) { return name == "icarl" || name == "der++"; }

std::string method_names_text() {
  std::string text;
  for (const std::string& n : method_names()) text += (text.empty() ? "" : ", ") + n;
  return text;
}

namespace {

/// Parameters of a trunk (weights and biases) and of one head per entry of `classes`, through the
/// column map (NOTE: [augmented rows]).
int64_t network_params(int64_t input_dim, const Layers& layers, const std::vector<int64_t>& input_shape,
                       const std::vector<int64_t>& classes, int64_t trunks) {
  const std::vector<LayerGeometry> geometry = plan_geometry(layers, input_shape, input_dim);
  int64_t trunk = 0, below = input_units(layers, input_shape, input_dim);
  for (size_t l = 0; l < layers.size(); ++l) {
    trunk += layers[l].units * (below * geometry[l].block + 1);
    below = layers[l].units;
  }
  int64_t total = trunk * trunks;
  for (int64_t c : classes) total += c * (below * geometry.back().block + 1);
  return total;
}

}  // namespace

int64_t stl_params(int64_t input_dim, const Layers& layers, const std::vector<int64_t>& classes,
                   const std::vector<int64_t>& input_shape) {
  return network_params(input_dim, layers, input_shape, classes, static_cast<int64_t>(classes.size()));
}

int64_t shared_params(int64_t input_dim, const Layers& layers, const std::vector<int64_t>& classes,
                      const std::vector<int64_t>& input_shape) {
  return network_params(input_dim, layers, input_shape, classes, 1);
}

namespace detail {

BaselineMethod::BaselineMethod(std::string name, EngineConfig config, int64_t input_dim)
    : input_dim_(checked_input_dim(input_dim)),
      config_(validated_config(std::move(config))),
      device_(config_.resolved_device()),
      generator_(at::make_generator<at::CPUGeneratorImpl>(config_.seed)),
      trainer_(config_, generator_),
      name_(std::move(name)) {}

TaskReport BaselineMethod::add_task(const Task& input_task, const ProgressCallback& progress) {
  const auto started = std::chrono::steady_clock::now();
  const Task task = check_task(input_task, input_dim_, device_);
  const int64_t t = num_tasks() + 1;
  TaskReport report;
  report.task = t;
  report.name = task.name;
  report.num_classes = task.num_classes;

  at::NoGradGuard no_grad_outside_phases;  // the Trainer turns autograd on for its phase
  learn(t, task, progress, report);
  classes_.push_back(task.num_classes);
  if (t == 1) base_params_ = shared_params(input_dim_, config_.layers, {task.num_classes}, config_.input_shape);

  report.params = num_params();
  report.nonzero_params = nonzero_params();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  logger()->info("{} task {} '{}': val loss {:.4f}, {} params, {:.1f} s", name_, t, task.name, report.val_loss,
                 report.params, report.seconds);
  return report;
}

at::Tensor BaselineMethod::predict(int64_t task_id, const at::Tensor& x) const {
  const at::Tensor features = check_input(task_id, num_tasks(), input_dim_, x, device_);
  at::NoGradGuard no_grad;
  return logits(task_id, features);
}

PhaseSpec BaselineMethod::phase(std::vector<TrainableParam> params) const {
  PhaseSpec spec;
  spec.name = "train";
  spec.max_iter = config_.max_iter;
  spec.l2 = config_.l2;
  spec.params = std::move(params);
  return spec;
}

double BaselineMethod::validation_loss(const std::function<at::Tensor(const at::Tensor&)>& logits_of,
                                       const at::Tensor& x, const at::Tensor& y) const {
  at::NoGradGuard no_grad;
  constexpr int64_t kChunk = 4096;
  const int64_t n = std::min<int64_t>(config_.max_eval_samples, x.size(0));
  double total = 0.0;
  for (int64_t start = 0; start < n; start += kChunk) {
    const int64_t len = std::min(kChunk, n - start);
    const at::Tensor loss = data_loss(logits_of(x.narrow(0, start, len)), y.narrow(0, start, len), config_.loss);
    total += loss.item<double>() * static_cast<double>(len);
  }
  return n > 0 ? total / static_cast<double>(n) : 0.0;
}

namespace {

/// Sum of Network::num_params (or num_nonzero_params) over networks.
template <typename Count>
int64_t sum_over(const std::vector<Network>& networks, Count count) {
  int64_t total = 0;
  for (const Network& n : networks) total += count(n);
  return total;
}

/// Single-task learning: one network per task, trained from scratch on that task alone. No
/// forgetting and no transfer; the capacity reference of the DEN paper.
class SingleTask final : public BaselineMethod {
 public:
  SingleTask(EngineConfig config, int64_t input_dim) : BaselineMethod("stl", std::move(config), input_dim) {}

  int64_t num_params() const override {
    return sum_over(networks_, [](const Network& n) { return n.num_params(); });
  }

 protected:
  void learn(int64_t t, const Task& task, const ProgressCallback& progress, TaskReport& report) override {
    Network network(input_dim_, config_.layers, generator_, device_, config_.input_shape);
    network.add_head(task.num_classes);  // its only head, id 1
    std::vector<TrainableParam> params;
    for (at::Tensor& w : network.layers()) params.push_back(all_of(w));
    params.push_back(all_of(network.head(1)));
    // The network's own head is 1; progress reports the stream's task id.
    const ProgressCallback relabel = [&](ProgressEvent event) {
      event.task = t;
      if (progress) progress(event);
    };
    report.phases.push_back(trainer_.train(network, 1, task, phase(std::move(params)), relabel));
    report.val_loss = trainer_.evaluate_loss(network, 1, task.val_x, task.val_y);
    networks_.push_back(std::move(network));
    // Per layer, summed over the task networks.
    for (int64_t width : layer_units(config_.layers)) report.hidden_units.push_back(width * t);
  }

  at::Tensor logits(int64_t t, const at::Tensor& x) const override { return networks_[t - 1].logits(1, x); }

  int64_t nonzero_params() const override {
    return sum_over(networks_, [](const Network& n) { return n.num_nonzero_params(); });
  }

 private:
  std::vector<Network> networks_;
};

/// Multi-task learning: one trunk with a head per task, retrained with all heads on the training
/// data of every task seen so far (which it keeps, by definition: the "retrain on everything" upper
/// reference). Each task continues from the weights after the previous one.
class MultiTask final : public BaselineMethod {
 public:
  MultiTask(EngineConfig config, int64_t input_dim)
      : BaselineMethod("mtl", std::move(config), input_dim), network_(input_dim_, config_.layers, generator_, device_, config_.input_shape) {}

  int64_t num_params() const override { return network_.num_params(); }

 protected:
  void learn(int64_t t, const Task& task, const ProgressCallback& progress, TaskReport& report) override {
    network_.add_head(task.num_classes);
    Task kept = task;
    kept.test_x = kept.test_y = at::Tensor();
    seen_.push_back(std::move(kept));

    std::vector<at::Tensor> xs, ys, owners;
    for (size_t k = 0; k < seen_.size(); ++k) {
      xs.push_back(seen_[k].train_x);
      ys.push_back(seen_[k].train_y);
      owners.push_back(at::full({seen_[k].train_x.size(0)}, static_cast<int64_t>(k), ys.back().options()));
    }
    const at::Tensor x = at::cat(xs), y = at::cat(ys), owner = at::cat(owners);

    Objective objective;
    objective.num_samples = x.size(0);
    // Each task's rows go through its own head; weighting each task's mean loss by its share of the
    // batch makes the batch loss the mean per-sample loss.
    objective.batch_loss = [&](const at::Tensor& idx) {
      const at::Tensor xb = x.index_select(0, idx), yb = y.index_select(0, idx), ob = owner.index_select(0, idx);
      const at::Tensor h = network_.features(xb);
      const double batch = static_cast<double>(idx.size(0));
      at::Tensor loss;
      for (int64_t k = 0; k < t; ++k) {
        const at::Tensor rows = ob.eq(k).nonzero().view(-1);
        if (rows.numel() == 0) continue;
        const at::Tensor part = data_loss(affine(h.index_select(0, rows), network_.head(k + 1)),
                                          yb.index_select(0, rows), config_.loss) *
                                (static_cast<double>(rows.numel()) / batch);
        loss = loss.defined() ? loss + part : part;
      }
      return loss;
    };
    objective.validation_loss = [&] {
      double total = 0.0;
      for (int64_t k = 1; k <= t; ++k) {
        const Task& s = seen_[k - 1];
        total += validation_loss([&](const at::Tensor& xv) { return network_.logits(k, xv); }, s.val_x, s.val_y);
      }
      return total / static_cast<double>(t);
    };

    std::vector<TrainableParam> params;
    for (at::Tensor& w : network_.layers()) params.push_back(all_of(w));
    for (int64_t k = 1; k <= t; ++k) params.push_back(all_of(network_.head(k)));
    report.phases.push_back(trainer_.train(objective, t, phase(std::move(params)), progress));
    report.val_loss = trainer_.evaluate_loss(network_, t, task.val_x, task.val_y);
    report.hidden_units = layer_units(config_.layers);
  }

  at::Tensor logits(int64_t t, const at::Tensor& x) const override { return network_.logits(t, x); }
  int64_t nonzero_params() const override { return network_.num_nonzero_params(); }

 private:
  Network network_;
  std::vector<Task> seen_;  ///< training and validation splits of every task
};

/// What keeps a shared trunk near its earlier solutions while it learns a new task.
enum class Transfer {
  None,  ///< fine-tuning
  L2,    ///< lambda * ||W - W^{t-1}||^2
  Ewc,   ///< (lambda / 2) * sum_k F_k (W - W_k*)^2
};

/// One trunk shared by all tasks and a head per task; task t trains the trunk and its new head on
/// task t alone (older heads frozen), with the chosen transfer regularizer on the trunk.
class SharedTrunk final : public BaselineMethod {
 public:
  SharedTrunk(std::string name, Transfer transfer, EngineConfig config, const BaselineOptions& options,
              int64_t input_dim)
      : BaselineMethod(std::move(name), std::move(config), input_dim),
        transfer_(transfer),
        options_(options),
        network_(input_dim_, config_.layers, generator_, device_, config_.input_shape) {}

  int64_t num_params() const override { return network_.num_params(); }

 protected:
  void learn(int64_t t, const Task& task, const ProgressCallback& progress, TaskReport& report) override {
    network_.add_head(task.num_classes);
    PhaseSpec spec = phase({});
    const bool anchored = t > 1 && transfer_ != Transfer::None;
    spec.lambda = !anchored ? 0.0 : transfer_ == Transfer::L2 ? options_.l2_transfer : options_.ewc_lambda / 2;
    for (int64_t l = 0; l < network_.num_layers(); ++l) {
      TrainableParam p = all_of(network_.layer(l));
      if (anchored) {
        p.mask = at::full(p.tensor->sizes(), static_cast<int64_t>(ops::kTrainable | ops::kAnchored), at::kByte);
        p.anchor = anchors_[l];
        if (transfer_ == Transfer::Ewc) p.anchor_weight = fisher_[l];
      }
      spec.params.push_back(p);
    }
    spec.params.push_back(all_of(network_.head(t)));
    report.phases.push_back(trainer_.train(network_, t, task, spec, progress));
    report.val_loss = trainer_.evaluate_loss(network_, t, task.val_x, task.val_y);
    report.hidden_units = layer_units(config_.layers);

    if (transfer_ == Transfer::L2) anchors_ = network_.snapshot_layers();
    if (transfer_ == Transfer::Ewc) consolidate(t, task);
  }

  at::Tensor logits(int64_t t, const at::Tensor& x) const override { return network_.logits(t, x); }
  int64_t nonzero_params() const override { return network_.num_nonzero_params(); }

 private:
  // NOTE: [one EWC quadratic] sum_k F_k (W - W_k*)^2 = F (W - W_bar)^2 + const with F = sum_k F_k and
  // W_bar = sum_k F_k W_k* / F: the same gradient, so one anchor and one weight replace the list of
  // earlier tasks. Where F == 0 the term vanishes and W_bar is arbitrary; it takes the latest weights.
  void consolidate(int64_t t, const Task& task) {
    const int64_t n = task.train_x.size(0);
    const int64_t m = std::min(n, options_.fisher_samples);
    const at::Tensor rows = at::randperm(n, generator_, at::kLong).narrow(0, 0, m).to(device_);
    const at::Tensor x = task.train_x.index_select(0, rows);
    const at::Tensor labels = sample_predicted_labels(network_, t, x, config_.loss, generator_);
    const std::vector<at::Tensor> fisher = diagonal_fisher(network_, t, x, labels, config_.loss);
    const std::vector<at::Tensor> weights = network_.snapshot_layers();
    if (fisher_.empty()) {
      fisher_ = fisher;
      anchors_ = weights;
      return;
    }
    for (size_t l = 0; l < fisher.size(); ++l) {
      const at::Tensor total = fisher_[l] + fisher[l];
      const at::Tensor merged = (fisher_[l] * anchors_[l] + fisher[l] * weights[l]) / total;
      anchors_[l] = at::where(total.gt(0), merged, weights[l]);
      fisher_[l] = total;
    }
  }

  Transfer transfer_;
  BaselineOptions options_;
  Network network_;
  std::vector<at::Tensor> anchors_;  ///< per trunk layer: W^{t-1} (l2) or W_bar (ewc)
  std::vector<at::Tensor> fisher_;   ///< per trunk layer: F = sum_k F_k (ewc)
};

}  // namespace

}  // namespace detail

std::unique_ptr<Method> make_method(const std::string& name, const EngineConfig& config,
                                    const BaselineOptions& options, int64_t input_dim) {
  options.validate();
  using detail::SharedTrunk;
  using detail::Transfer;
  if (name == "den") return std::make_unique<Engine>(config, input_dim);
  if (name == "stl") return std::make_unique<detail::SingleTask>(config, input_dim);
  if (name == "mtl") return std::make_unique<detail::MultiTask>(config, input_dim);
  if (name == "finetune") return std::make_unique<SharedTrunk>(name, Transfer::None, config, options, input_dim);
  if (name == "l2") return std::make_unique<SharedTrunk>(name, Transfer::L2, config, options, input_dim);
  if (name == "ewc") return std::make_unique<SharedTrunk>(name, Transfer::Ewc, config, options, input_dim);
  if (name == "progressive") return detail::make_progressive(config, input_dim);
  if (auto method = detail::make_class_incremental(name, config, options, input_dim)) return method;
  throw std::invalid_argument("unknown method '" + name + "' (known: " + method_names_text() + ")");
}

}  // namespace den::engine
