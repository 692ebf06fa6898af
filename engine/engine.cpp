#include "engine/engine.h"

#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <sstream>
#include <stdexcept>

namespace den::engine {

std::shared_ptr<spdlog::logger> logger() {
  static std::shared_ptr<spdlog::logger> instance = [] {
    auto existing = spdlog::get("den.engine");
    if (existing) return existing;
    auto created = std::make_shared<spdlog::logger>("den.engine");
    spdlog::register_logger(created);
    return created;
  }();
  return instance;
}

namespace {

at::Generator seeded_generator(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

EngineConfig validated(EngineConfig config) {
  config.validate();
  return config;
}

int64_t checked_input_dim(int64_t input_dim) {
  require(input_dim >= 1, "input_dim must be >= 1, got " + std::to_string(input_dim));
  return input_dim;
}

/// Index of the first row of `features` with a NaN or infinite value, or -1.
int64_t first_non_finite_row(const at::Tensor& features) {
  const at::Tensor bad = features.isfinite().all(1).logical_not().nonzero();
  return bad.numel() > 0 ? bad[0][0].item<int64_t>() : -1;
}

/// Checks one split of a task and returns it as contiguous float32 features and int64 labels.
std::pair<at::Tensor, at::Tensor> checked_split(const at::Tensor& x, const at::Tensor& y, const std::string& split,
                                                const std::string& task, int64_t input_dim, int64_t num_classes,
                                                at::Device device) {
  const std::string where = "task '" + task + "' " + split;
  require(x.defined() && y.defined() && x.numel() > 0, where + ": no samples");
  require(x.dim() == 2, where + " features must be 2-D [N, D], got " + std::to_string(x.dim()) + "-D");
  require(x.size(1) == input_dim, where + " features have width " + std::to_string(x.size(1)) +
                                      ", but the engine's input width is " + std::to_string(input_dim));
  require(at::isFloatingType(x.scalar_type()), where + " features must be floating point");
  require(y.dim() == 1 && y.size(0) == x.size(0), where + ": " + std::to_string(x.size(0)) + " samples but " +
                                                      std::to_string(y.numel()) + " labels");
  require(!at::isFloatingType(y.scalar_type()) && y.scalar_type() != at::kBool, where + " labels must be integers");
  at::Tensor features = x.to(device, at::kFloat).contiguous();
  at::Tensor labels = y.to(device, at::kLong).contiguous();
  const int64_t bad_row = first_non_finite_row(features);
  require(bad_row < 0, where + ": sample " + std::to_string(bad_row) + " has a NaN or infinite feature");
  const int64_t lo = labels.min().item<int64_t>();
  const int64_t hi = labels.max().item<int64_t>();
  require(lo >= 0 && hi < num_classes, where + ": label " + std::to_string(lo < 0 ? lo : hi) +
                                           " is out of range [0, " + std::to_string(num_classes) + ")");
  return {features, labels};
}

}  // namespace

Engine::Engine(EngineConfig config, int64_t input_dim)
    : config_(validated(std::move(config))),
      generator_(seeded_generator(config_.seed)),
      network_(checked_input_dim(input_dim), config_.hidden, generator_, config_.resolved_device()),
      graph_(input_dim, config_.hidden),
      trainer_(config_, generator_) {}

Task Engine::checked_task(const Task& task) const {
  require(task.num_classes >= 2, "task '" + task.name + "' needs at least 2 classes, got " +
                                     std::to_string(task.num_classes));
  Task out = task;
  std::tie(out.train_x, out.train_y) =
      checked_split(task.train_x, task.train_y, "training set", task.name, input_dim(), task.num_classes, network_.device());
  std::tie(out.val_x, out.val_y) =
      checked_split(task.val_x, task.val_y, "validation set", task.name, input_dim(), task.num_classes, network_.device());
  if (task.test_x.defined()) {
    std::tie(out.test_x, out.test_y) =
        checked_split(task.test_x, task.test_y, "test set", task.name, input_dim(), task.num_classes, network_.device());
  }
  return out;
}

TaskReport Engine::add_task(const Task& input_task, const ProgressCallback& progress) {
  const auto started = std::chrono::steady_clock::now();
  const Task task = checked_task(input_task);
  const int64_t t = num_tasks() + 1;
  compact_cache_.clear();

  TaskReport report;
  report.task = t;
  report.name = task.name;
  report.num_classes = task.num_classes;
  const size_t layers = static_cast<size_t>(graph_.num_layers());
  report.added.assign(layers, 0);
  report.pruned.assign(layers, 0);
  report.split.assign(layers, 0);

  at::NoGradGuard no_grad_outside_phases;
  graph_.add_head(t, task.num_classes);
  network_.add_head(task.num_classes);

  if (t == 1) {
    train_first_task(t, task, progress, report);
    base_params_ = network_.num_params();
  } else if (config_.freeze_existing) {
    report.val_loss_after_selective = trainer_.evaluate_loss(network_, t, task.val_x, task.val_y);
    expand(t, task, progress, report);
  } else {
    const std::vector<at::Tensor> previous = network_.snapshot_layers();
    graph::Subnetwork selected = selective_retrain(t, task, previous, progress, report);
    if (report.val_loss_after_selective > config_.tau) expand(t, task, progress, report);
    if (config_.split_policy == SplitPolicy::Always || report.expanded) {
      split(t, task, previous, selected, progress, report);
    }
  }

  report.val_loss = trainer_.evaluate_loss(network_, t, task.val_x, task.val_y);
  report.hidden_units = graph_.layer_sizes();
  report.params = network_.num_params();
  report.nonzero_params = network_.num_nonzero_params();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  logger()->info("task {} '{}': val loss {:.4f}, hidden {}, {} params, {:.1f} s", t, task.name, report.val_loss,
                 fmt::join(report.hidden_units, "-"), report.params, report.seconds);
  history_.push_back(report);
  return report;
}

at::Tensor Engine::checked_input(int64_t task_id, const at::Tensor& x) const {
  require(task_id >= 1 && task_id <= num_tasks(),
          "unknown task id " + std::to_string(task_id) +
              (num_tasks() == 0 ? std::string(": the engine has learned no task yet")
                                : ": valid ids are 1.." + std::to_string(num_tasks())));
  require(x.defined() && x.dim() == 2, "predict expects input of shape [N, " + std::to_string(input_dim()) + "]");
  require(x.size(1) == input_dim(), "predict input has width " + std::to_string(x.size(1)) +
                                        ", but the engine's input width is " + std::to_string(input_dim()));
  require(at::isFloatingType(x.scalar_type()), "predict input must be floating point");
  at::Tensor features = x.to(network_.device(), at::kFloat).contiguous();
  const int64_t bad_row = first_non_finite_row(features);
  require(bad_row < 0, "predict input row " + std::to_string(bad_row) + " has a NaN or infinite value");
  return features;
}

const Engine::CompactNetwork& Engine::compact(int64_t task_id) const {
  if (compact_cache_.size() < static_cast<size_t>(num_tasks())) compact_cache_.resize(num_tasks());
  std::optional<CompactNetwork>& slot = compact_cache_[task_id - 1];
  if (slot) return *slot;

  // Keep the units born at stages <= task_id; since new units are appended, this is the network as
  // it was after task_id, in the same order and shapes, so its outputs are reproduced exactly.
  CompactNetwork net;
  at::Tensor previous_columns;  // visible units of the layer below plus the bias column
  for (int64_t l = 0; l < graph_.num_layers(); ++l) {
    const std::vector<int64_t> rows = graph_.visible_units(l, task_id);
    at::Tensor w = network_.layer(l).index_select(0, at::tensor(rows, at::kLong).to(network_.device()));
    if (previous_columns.defined()) w = w.index_select(1, previous_columns);
    net.layers.push_back(w.contiguous());
    std::vector<int64_t> columns = rows;
    columns.push_back(network_.layer_size(l));  // bias column index
    previous_columns = at::tensor(columns, at::kLong).to(network_.device());
  }
  net.head = network_.head(task_id).index_select(1, previous_columns).contiguous();
  slot = std::move(net);
  return *slot;
}

at::Tensor Engine::predict(int64_t task_id, const at::Tensor& x) const {
  at::Tensor features = checked_input(task_id, x);
  at::NoGradGuard no_grad;
  const CompactNetwork& net = compact(task_id);
  return Network::forward(net.layers, net.head, features);
}

}  // namespace den::engine
