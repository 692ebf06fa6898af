#include "engine/evaluation/task_agnostic.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>

namespace den::engine {

namespace {

constexpr int64_t kChunk = 2048;
constexpr double kCalibrationPrior = 1e-3;  ///< pulls (a, b) toward (1, 0): the shifts are only defined up to a constant
constexpr double kFitLr = 0.1;  ///< Adam moves each number by about this per step

}  // namespace

namespace {

/// `rows` repeated (in order, then cut) to `count` rows.
at::Tensor repeated_to(const at::Tensor& rows, int64_t count) {
  const int64_t copies = (count + rows.size(0) - 1) / rows.size(0);
  return rows.repeat({copies, 1}).narrow(0, 0, count);
}

/// `x`, `y` of a task's split with the rest rows appended: label 0 for them, the task's labels + 1.
void append_rest(at::Tensor& x, at::Tensor& y, const at::Tensor& rest, int64_t classes) {
  if (!x.defined() || x.size(0) == 0) return;
  const int64_t rows = std::max<int64_t>(1, x.size(0) / classes);  // the rest weighs as one class does
  const at::Tensor nx = rest.defined() && rest.size(0) > 0 ? repeated_to(rest.to(x.device(), x.scalar_type()), rows)
                                                           : at::zeros({0, x.size(1)}, x.options());
  x = at::cat({x, nx}).contiguous();
  y = at::cat({y + 1, at::zeros({nx.size(0)}, y.options())});
}

}  // namespace

Task with_rest_output(Task task, const at::Tensor& rest_train, const at::Tensor& rest_val) {
  const std::vector<int64_t> classes = resolved_output_classes(task);
  append_rest(task.train_x, task.train_y, rest_train, task.num_classes);
  append_rest(task.val_x, task.val_y, rest_val, task.num_classes);
  if (task.test_y.defined()) task.test_y = task.test_y + 1;
  task.output_classes = {-1};
  task.output_classes.insert(task.output_classes.end(), classes.begin(), classes.end());
  task.num_classes += 1;
  return task;
}

at::Tensor TaskAgnosticClassifier::exemplars_outside(const std::vector<int64_t>& classes) const {
  if (!memory_x_.defined()) return {};
  std::vector<int64_t> rows;
  const auto columns = memory_column_.accessor<int64_t, 1>();
  for (int64_t i = 0; i < columns.size(0); ++i) {
    if (std::find(classes.begin(), classes.end(), classes_[columns[i]]) == classes.end()) rows.push_back(i);
  }
  return memory_x_.index_select(0, at::tensor(rows, at::kLong));
}

TaskAgnosticClassifier::TaskAgnosticClassifier(AgnosticOptions options) : options_(options) {
  if (options_.exemplars_per_class < 0) {
    throw std::invalid_argument("exemplars per class must be >= 0, got " + std::to_string(options_.exemplars_per_class));
  }
  if (options_.fit_steps < 0) throw std::invalid_argument("fit steps must be >= 0");
  if (options_.memory < 0) throw std::invalid_argument("memory must be >= 0, got " + std::to_string(options_.memory));
  scale_ = at::ones({0}, at::kDouble);
  shift_ = at::zeros({0}, at::kDouble);
}

int64_t TaskAgnosticClassifier::column_of(int64_t c) const {
  return std::find(classes_.begin(), classes_.end(), c) - classes_.begin();
}

void TaskAgnosticClassifier::add_task(int64_t task_id, const Task& task) {
  const int64_t expected = static_cast<int64_t>(output_classes_.size()) + 1;
  if (task_id != expected) {
    throw std::invalid_argument("task-agnostic classifier: expected task " + std::to_string(expected) + ", got " +
                                std::to_string(task_id));
  }
  const std::vector<int64_t> outputs = resolved_output_classes(task);
  if (static_cast<int64_t>(outputs.size()) != task.num_classes) {
    throw std::invalid_argument("task '" + task.name + "' names " + std::to_string(outputs.size()) +
                                " output classes for " + std::to_string(task.num_classes) + " outputs");
  }
  register_outputs(outputs);

  if (!enabled() || !options_.calibrate) return;
  // Exemplars: a seeded draw of the validation split, up to M per class-bearing output; with a
  // memory budget, M is its share among every class-bearing output so far.
  const auto bearing = static_cast<int64_t>(output_task_.size());
  const int64_t per_output = options_.memory > 0 ? options_.memory / std::max<int64_t>(1, bearing)
                                                 : options_.exemplars_per_class;
  if (options_.memory > 0) shrink_memory(per_output);
  if (!task.val_x.defined() || task.val_x.size(0) == 0) return;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(options_.seed * 1000003ULL + static_cast<uint64_t>(task_id));
  const at::Tensor val_y = task.val_y.cpu();
  const at::Tensor order = at::randperm(val_y.size(0), generator, at::kLong);
  const at::Tensor shuffled_y = val_y.index_select(0, order);
  std::vector<at::Tensor> picked;
  std::vector<int64_t> columns;
  for (int64_t o = 0; o < task.num_classes; ++o) {
    if (outputs[o] < 0) continue;
    const at::Tensor rows = order.index_select(0, shuffled_y.eq(o).nonzero().view(-1));
    const at::Tensor kept = rows.narrow(0, 0, std::min(per_output, rows.size(0)));
    picked.push_back(kept);
    columns.insert(columns.end(), kept.size(0), column_of(outputs[o]));
  }
  if (columns.empty()) return;
  const at::Tensor rows = at::cat(picked);
  const at::Tensor x = task.val_x.index_select(0, rows.to(task.val_x.device())).cpu().to(at::kFloat);
  const at::Tensor column = at::tensor(columns, at::kLong);
  memory_x_ = memory_x_.defined() ? at::cat({memory_x_, x}) : x;
  memory_column_ = memory_column_.defined() ? at::cat({memory_column_, column}) : column;
  memory_task_.insert(memory_task_.end(), columns.size(), task_id);
}

void TaskAgnosticClassifier::shrink_memory(int64_t per_output) {
  if (!memory_x_.defined()) return;
  std::map<std::pair<int64_t, int64_t>, int64_t> seen;  // (task, class column) -> rows kept
  std::vector<int64_t> keep;
  const auto columns = memory_column_.accessor<int64_t, 1>();
  for (int64_t i = 0; i < columns.size(0); ++i) {
    if (seen[{memory_task_[static_cast<size_t>(i)], columns[i]}]++ < per_output) keep.push_back(i);
  }
  if (static_cast<int64_t>(keep.size()) == columns.size(0)) return;
  const at::Tensor rows = at::tensor(keep, at::kLong);
  memory_x_ = memory_x_.index_select(0, rows);
  memory_column_ = memory_column_.index_select(0, rows);
  std::vector<int64_t> tasks;
  for (int64_t i : keep) tasks.push_back(memory_task_[static_cast<size_t>(i)]);
  memory_task_ = std::move(tasks);
}

void TaskAgnosticClassifier::register_outputs(const std::vector<int64_t>& outputs) {
  output_classes_.push_back(outputs);
  scale_ = at::cat({scale_, at::ones({1}, at::kDouble)});
  shift_ = at::cat({shift_, at::zeros({1}, at::kDouble)});

  for (int64_t c : outputs) {
    if (c >= 0 && column_of(c) == static_cast<int64_t>(classes_.size())) classes_.push_back(c);
  }
  std::vector<int64_t> output_column;
  output_task_.clear();
  for (size_t s = 0; s < output_classes_.size(); ++s) {
    for (int64_t c : output_classes_[s]) {
      if (c < 0) continue;
      output_task_.push_back(static_cast<int64_t>(s));
      output_column.push_back(column_of(c));
    }
  }
  // Each class's outputs, padded with the index one past the last output (a -inf column) to the
  // longest list, so that combine() gathers [N, classes, P] values rather than forming all
  // [N, outputs, classes] pairs (P = T on a permuted stream, 1 on a split one).
  const auto num_outputs = static_cast<int64_t>(output_column.size());
  std::vector<std::vector<int64_t>> outputs_of(classes_.size());
  for (int64_t o = 0; o < num_outputs; ++o) outputs_of[output_column[o]].push_back(o);
  size_t longest = 0;
  for (const auto& list : outputs_of) longest = std::max(longest, list.size());
  std::vector<int64_t> padded;
  for (auto& list : outputs_of) {
    list.resize(longest, num_outputs);
    padded.insert(padded.end(), list.begin(), list.end());
  }
  class_outputs_ = at::tensor(padded, at::kLong);
}

TaskAgnosticClassifier TaskAgnosticClassifier::restore(AgnosticOptions options, const AgnosticState& state) {
  TaskAgnosticClassifier c(options);
  const size_t tasks = state.output_classes.size();
  if (state.scale.size() != tasks || state.shift.size() != tasks) {
    throw std::invalid_argument("task-agnostic state: " + std::to_string(state.scale.size()) + " scales and " +
                                std::to_string(state.shift.size()) + " shifts for " + std::to_string(tasks) + " tasks");
  }
  for (size_t s = 0; s < tasks; ++s) {
    if (state.output_classes[s].empty()) {
      throw std::invalid_argument("task-agnostic state: task " + std::to_string(s + 1) + " has no outputs");
    }
    c.register_outputs(state.output_classes[s]);
  }
  c.scale_ = at::tensor(state.scale, at::kDouble);
  c.shift_ = at::tensor(state.shift, at::kDouble);
  const int64_t rows = state.memory_x.defined() ? state.memory_x.size(0) : 0;
  if (state.memory_x.defined() && state.memory_x.dim() != 2) {
    throw std::invalid_argument("task-agnostic state: exemplars have " + std::to_string(state.memory_x.dim()) +
                                " dimensions, expected 2");
  }
  if (static_cast<int64_t>(state.memory_classes.size()) != rows) {
    throw std::invalid_argument("task-agnostic state: " + std::to_string(state.memory_classes.size()) +
                                " exemplar classes for " + std::to_string(rows) + " exemplars");
  }
  if (rows == 0) return c;
  std::vector<int64_t> columns;
  for (int64_t k : state.memory_classes) {
    const int64_t column = c.column_of(k);
    if (k < 0 || column == static_cast<int64_t>(c.classes_.size())) {
      throw std::invalid_argument("task-agnostic state: an exemplar of class " + std::to_string(k) +
                                  ", which no task has");
    }
    columns.push_back(column);
  }
  if (!state.memory_tasks.empty() && static_cast<int64_t>(state.memory_tasks.size()) != rows) {
    throw std::invalid_argument("task-agnostic state: " + std::to_string(state.memory_tasks.size()) +
                                " exemplar tasks for " + std::to_string(rows) + " exemplars");
  }
  for (int64_t t : state.memory_tasks) {
    if (t < 1 || t > static_cast<int64_t>(tasks)) {
      throw std::invalid_argument("task-agnostic state: an exemplar of task " + std::to_string(t) + ", which is not "
                                  "one of the " + std::to_string(tasks) + " tasks");
    }
  }
  c.memory_x_ = state.memory_x.cpu().to(at::kFloat);
  c.memory_column_ = at::tensor(columns, at::kLong);
  // Older checkpoints do not say: task 0, one group per class (they were written without a budget).
  c.memory_task_ = state.memory_tasks.empty() ? std::vector<int64_t>(static_cast<size_t>(rows), 0) : state.memory_tasks;
  return c;
}

AgnosticState TaskAgnosticClassifier::state() const {
  AgnosticState s;
  s.output_classes = output_classes_;
  s.memory_x = memory_x_;
  if (memory_column_.defined()) {
    const at::Tensor classes = at::tensor(classes_, at::kLong).index_select(0, memory_column_).contiguous();
    s.memory_classes.assign(classes.data_ptr<int64_t>(), classes.data_ptr<int64_t>() + classes.numel());
    s.memory_tasks = memory_task_;
  }
  const at::Tensor scale = scale_.contiguous(), shift = shift_.contiguous();
  s.scale.assign(scale.data_ptr<double>(), scale.data_ptr<double>() + scale.numel());
  s.shift.assign(shift.data_ptr<double>(), shift.data_ptr<double>() + shift.numel());
  return s;
}

at::Tensor TaskAgnosticClassifier::output_evidence(const std::vector<at::Tensor>& logits, LossKind loss) const {
  if (logits.size() < output_classes_.size()) {
    throw std::invalid_argument("task-agnostic classifier: logits of " + std::to_string(logits.size()) + " tasks for " +
                                std::to_string(output_classes_.size()) + " registered");
  }
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> parts;
  for (size_t s = 0; s < output_classes_.size(); ++s) {
    at::Tensor evidence = logits[s].cpu().to(at::kDouble);
    std::vector<int64_t> keep, rest;
    for (size_t o = 0; o < output_classes_[s].size(); ++o) {
      (output_classes_[s][o] >= 0 ? keep : rest).push_back(static_cast<int64_t>(o));
    }
    if (loss == LossKind::Softmax && !rest.empty() && options_.calibrate) {
      // Softmax logits are defined up to a shift per input: measure against the "rest" outputs. Heads
      // trained in one output space share that shift, so their logits are compared as they are.
      evidence = evidence - at::logsumexp(evidence.index_select(1, at::tensor(rest, at::kLong)), 1, true);
    }
    parts.push_back(evidence.index_select(1, at::tensor(keep, at::kLong)));
  }
  return at::cat(parts, 1);
}

at::Tensor TaskAgnosticClassifier::combine(const at::Tensor& evidence, const at::Tensor& scale,
                                           const at::Tensor& shift) const {
  const at::Tensor task_of_output = at::tensor(output_task_, at::kLong);
  const at::Tensor calibrated = evidence * scale.index_select(0, task_of_output) + shift.index_select(0, task_of_output);
  const int64_t classes = static_cast<int64_t>(classes_.size());
  if (classes == 0) return at::zeros({calibrated.size(0), 0}, at::kDouble);
  const at::Tensor padded =
      at::cat({calibrated, at::full({calibrated.size(0), 1}, -std::numeric_limits<double>::infinity(), at::kDouble)}, 1);
  return at::logsumexp(padded.index_select(1, class_outputs_).view({calibrated.size(0), classes, -1}), 2);
}

void TaskAgnosticClassifier::fit(const Method& method) {
  if (!memory_x_.defined() || classes_.size() < 2) return;
  const at::Tensor evidence = output_evidence(method.predict_all(memory_x_), method.config().loss);
  at::AutoGradMode enable_grad(true);
  at::Tensor scale = scale_.clone().requires_grad_(true);
  at::Tensor shift = shift_.clone().requires_grad_(true);
  std::vector<at::Tensor> params = {scale, shift};
  std::vector<at::Tensor> m = {at::zeros_like(scale), at::zeros_like(shift)};
  std::vector<at::Tensor> v = {at::zeros_like(scale), at::zeros_like(shift)};
  constexpr double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  for (int64_t step = 1; step <= options_.fit_steps; ++step) {
    const at::Tensor loss = at::cross_entropy_loss(combine(evidence, scale, shift), memory_column_) +
                            kCalibrationPrior * ((scale - 1).pow(2).sum() + shift.pow(2).sum());
    const std::vector<at::Tensor> grads = torch::autograd::grad({loss}, params);
    at::NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i) {
      m[i].mul_(beta1).add_(grads[i], 1 - beta1);
      v[i].mul_(beta2).addcmul_(grads[i], grads[i], 1 - beta2);
      const double bias1 = 1 - std::pow(beta1, static_cast<double>(step));
      const double bias2 = 1 - std::pow(beta2, static_cast<double>(step));
      params[i].sub_(kFitLr * (m[i] / bias1) / ((v[i] / bias2).sqrt() + eps));
    }
  }
  scale_ = scale.detach();
  shift_ = shift.detach();
}

at::Tensor TaskAgnosticClassifier::scores_from_logits(const std::vector<at::Tensor>& logits, LossKind loss) const {
  if (output_classes_.empty()) throw std::invalid_argument("task-agnostic prediction before any task was learned");
  at::NoGradGuard no_grad;
  const int64_t rows = logits.empty() ? 0 : logits.front().size(0);
  std::vector<at::Tensor> chunks;  // bounded memory: combine() gathers [rows, classes, P] doubles
  for (int64_t start = 0; start < rows; start += kChunk) {
    std::vector<at::Tensor> part;
    for (const at::Tensor& l : logits) part.push_back(l.narrow(0, start, std::min(kChunk, rows - start)));
    chunks.push_back(combine(output_evidence(part, loss), scale_, shift_));
  }
  if (chunks.empty()) return at::zeros({0, static_cast<int64_t>(classes_.size())}, at::kDouble);
  return at::cat(chunks);
}

at::Tensor TaskAgnosticClassifier::class_scores(const Method& method, const at::Tensor& x) const {
  if (output_classes_.empty()) throw std::invalid_argument("task-agnostic prediction before any task was learned");
  std::vector<at::Tensor> chunks;  // the forward passes in chunks too, for bounded memory
  for (int64_t start = 0; start < x.size(0); start += kChunk) {
    const at::Tensor part = x.narrow(0, start, std::min(kChunk, x.size(0) - start));
    chunks.push_back(scores_from_logits(method.predict_all(part), method.config().loss));
  }
  if (chunks.empty()) return at::zeros({0, static_cast<int64_t>(classes_.size())}, at::kDouble);
  return at::cat(chunks);
}

at::Tensor TaskAgnosticClassifier::best_classes(const at::Tensor& scores) const {
  return at::tensor(classes_, at::kLong).index_select(0, scores.argmax(1));
}

at::Tensor TaskAgnosticClassifier::predict(const Method& method, const at::Tensor& x) const {
  return best_classes(class_scores(method, x));
}

at::Tensor TaskAgnosticClassifier::predict_from_logits(const std::vector<at::Tensor>& logits, LossKind loss) const {
  return best_classes(scores_from_logits(logits, loss));
}

at::Tensor TaskAgnosticClassifier::global_labels(int64_t task_id, const at::Tensor& y) const {
  if (task_id < 1 || task_id > static_cast<int64_t>(output_classes_.size())) {
    throw std::invalid_argument("task-agnostic classifier: unknown task " + std::to_string(task_id));
  }
  return at::tensor(output_classes_[task_id - 1], at::kLong).index_select(0, y.cpu().to(at::kLong));
}

}  // namespace den::engine
