#include "engine/engine.h"

#include "engine/den/growth.h"
#include "engine/task_check.h"

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

}  // namespace

Engine::Engine(EngineConfig config, int64_t input_dim)
    : config_(validated_config(std::move(config))),
      generator_(seeded_generator(config_.seed)),
      network_(checked_input_dim(input_dim), config_.layers, generator_, config_.resolved_device(), config_.input_shape),
      graph_(input_units(config_.layers, config_.input_shape, input_dim), layer_units(config_.layers)),
      trainer_(config_, generator_) {}

Task Engine::checked_task(const Task& task) const { return check_task(task, input_dim(), network_.device()); }

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
  NetworkUnits(network_, graph_).add_head(t, task.num_classes);

  if (t == 1) {
    train_first_task(t, task, progress, report);
    base_params_ = network_.num_params();
  } else if (config_.freeze_existing) {
    report.val_loss_after_selective = trainer_.evaluate_loss(network_, t, task.val_x, task.val_y);
    expand(t, task, progress, report);
  } else {
    const std::vector<at::Tensor> previous = network_.snapshot_layers();
    graph::Subnetwork selected = selective_retrain(t, task, previous, progress, report);
    // NOTE: [relative tau]
    const double criterion = config_.relative_tau
                                 ? report.val_loss_after_selective / uninformed_loss(task.train_y, task.num_classes, config_.loss)
                                 : report.val_loss_after_selective;
    if (criterion > config_.tau) expand(t, task, progress, report);
    // NOTE: [restore drifted] Every old unit must get its weights back, so this step always runs.
    const bool expansion_kept = report.expanded && !report.expansion_undone;
    if (config_.restore_drifted || config_.split_policy == SplitPolicy::Always || expansion_kept) {
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

double Engine::hidden_growth() const {
  if (num_tasks() == 0) return 0.0;
  // Task 1 never grows the network, and the units it had are exactly those visible to it, so the
  // size after task 1 is known after any later task, in a resumed run too.
  int64_t now = 0, after_task1 = 0, below_now = network_.units_below(0), below_first = below_now;
  for (int64_t l = 0; l < graph_.num_layers(); ++l) {
    const int64_t n = network_.layer_size(l), first = static_cast<int64_t>(graph_.visible_units(l, 1).size());
    now += (below_now * network_.block(l) + 1) * n;
    after_task1 += (below_first * network_.block(l) + 1) * first;
    below_now = n;
    below_first = first;
  }
  return after_task1 > 0 ? static_cast<double>(now) / static_cast<double>(after_task1) : 0.0;
}

at::Tensor Engine::checked_input(int64_t task_id, const at::Tensor& x) const {
  return check_input(task_id, num_tasks(), input_dim(), x, network_.device());
}

const Engine::CompactNetwork& Engine::compact(int64_t task_id) const {
  // Once built, a slot never moves or changes until the next add_task, so the reference stays valid
  // after the lock is released.
  const std::lock_guard<std::mutex> lock(compact_mutex_.mutex);
  if (compact_cache_.size() < static_cast<size_t>(num_tasks())) compact_cache_.resize(num_tasks());
  std::optional<CompactNetwork>& slot = compact_cache_[task_id - 1];
  if (slot) return *slot;

  // Keep the units born at stages <= task_id; since new units are appended, this is the network as
  // it was after task_id, in the same order and shapes, so its outputs are reproduced exactly.
  CompactNetwork net;
  at::Tensor previous_columns;  // the column blocks of the layer below's visible units, plus the bias column
  for (int64_t l = 0; l < graph_.num_layers(); ++l) {
    const std::vector<int64_t> rows = graph_.visible_units(l, task_id);
    const at::Tensor row_positions = at::tensor(rows, at::kLong).to(network_.device());
    if (l == 0) {
      net.first_layer_rows = row_positions;
      net.first_layer_leading = rows.empty() || rows.back() == static_cast<int64_t>(rows.size()) - 1;
    }
    at::Tensor w = network_.layer(l).index_select(0, row_positions);
    if (previous_columns.defined()) w = w.index_select(1, previous_columns);
    net.layers.push_back(w.contiguous());
    std::vector<int64_t> columns = unit_columns(rows, network_.block(l + 1));
    columns.push_back(network_.layer_size(l) * network_.block(l + 1));  // bias column index
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
  return network_.forward(net.layers, net.head, features);
}

// NOTE: [shared first layer] A first-layer unit sees only the input, so its activation is the same
// in every task's network that holds it: one product over all first-layer rows serves every task,
// and task s takes the columns (conv: channels) of its units (born at stages <= s). Since new units and split copies
// are appended, those are the leading columns, a view; otherwise they are gathered. The first layer
// holds most of the multiply-adds (784 inputs against a few hundred units above), so evaluating all
// T tasks, as task-agnostic prediction and the stream's evaluation do, costs one first layer and T
// upper parts instead of T whole networks. A product over more rows may round differently from
// predict's over a task's own rows (AUROCs of the default job moved by at most 2e-8).
std::vector<at::Tensor> Engine::predict_all(const at::Tensor& x) const {
  if (num_tasks() == 0) return {};
  const at::Tensor features = checked_input(num_tasks(), x);
  at::NoGradGuard no_grad;
  const at::Tensor first = network_.layer_output(0, network_.layer(0), features);
  std::vector<at::Tensor> logits;
  for (int64_t s = 1; s <= num_tasks(); ++s) {
    const CompactNetwork& net = compact(s);
    const at::Tensor own = net.first_layer_leading ? first.narrow(1, 0, net.first_layer_rows.size(0))
                                                   : first.index_select(1, net.first_layer_rows);
    logits.push_back(network_.forward(net.layers, net.head, own, 1));
  }
  return logits;
}

}  // namespace den::engine
