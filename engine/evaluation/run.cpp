#include "engine/evaluation/run.h"

#include "engine/evaluation/metrics.h"
#include "engine/task_check.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace den::engine {

namespace {

double mean(const std::vector<double>& values) {
  return values.empty() ? 0.0 : std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
}

/// A task's test split, and its samples that belong to a class (for task-agnostic evaluation).
struct TestSet {
  at::Tensor x, y;
  at::Tensor agnostic_rows;  ///< rows of x that belong to a class; undefined when all do
  at::Tensor agnostic_labels;
};

void require_test_split(const Task& task) {
  if (!task.test_x.defined()) throw TaskDataError("task '" + task.name + "' has no test split to evaluate on");
}

TestSet test_set(const Task& task, const TaskAgnosticClassifier& agnostic, int64_t task_id) {
  require_test_split(task);
  TestSet set{task.test_x, task.test_y, {}, {}};
  if (agnostic.enabled()) {
    const at::Tensor labels = agnostic.global_labels(task_id, task.test_y);
    const at::Tensor rows = labels.ge(0).nonzero().view(-1);
    const bool every_row = rows.size(0) == labels.size(0);  // permuted and split streams
    if (!every_row) set.agnostic_rows = rows;
    set.agnostic_labels = every_row ? labels : labels.index_select(0, rows);
  }
  return set;
}

/// `task` with the rest output of NOTE: [negatives from exemplars] when the memory holds samples of
/// other classes: they are split for validation in the task's own proportion, seeded by the task. A
/// task that has a rest output already (one-vs-rest, a new class against the known ones) is kept.
Task with_memory_negatives(Task task, const TaskAgnosticClassifier& agnostic, int64_t t, uint64_t seed) {
  const std::vector<int64_t> classes = resolved_output_classes(task);
  if (std::find(classes.begin(), classes.end(), -1) != classes.end()) return task;
  const at::Tensor rest = agnostic.exemplars_outside(classes);
  if (!rest.defined() || rest.size(0) == 0) return task;
  const double train = static_cast<double>(task.train_x.size(0)), val = static_cast<double>(task.val_x.size(0));
  const int64_t n_val = std::min<int64_t>(rest.size(0) - 1, std::llround(rest.size(0) * val / (train + val)));
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed * 1000003ULL + static_cast<uint64_t>(t) + 7919ULL);
  const at::Tensor order = at::randperm(rest.size(0), generator, at::kLong);
  return with_rest_output(std::move(task), rest.index_select(0, order.narrow(0, n_val, rest.size(0) - n_val)),
                          rest.index_select(0, order.narrow(0, 0, n_val)));
}

/// The stream loop behind run_stream and resume_stream. `evaluate_from`: the first task evaluated
/// after each task (1 for a resumed run, method.num_tasks()+1 otherwise); `result` may already hold
/// the earlier tasks' reports and evaluations.
RunResult run_tasks(Method& method, int64_t num_tasks, const std::function<Task(int64_t)>& make_task,
                    const RunCallbacks& callbacks, const RunSettings& settings, int64_t evaluate_from,
                    RunResult result, double prior_seconds, const std::optional<AgnosticState>& prior_agnostic) {
  const auto started = std::chrono::steady_clock::now();
  AgnosticOptions agnostic_options = settings.agnostic;
  agnostic_options.calibrate = !method.heads_comparable();
  TaskAgnosticClassifier agnostic = prior_agnostic ? TaskAgnosticClassifier::restore(agnostic_options, *prior_agnostic)
                                                   : TaskAgnosticClassifier(agnostic_options);
  if (prior_agnostic && agnostic.num_tasks() != method.num_tasks()) {
    throw std::invalid_argument("resume: task-agnostic state of " + std::to_string(agnostic.num_tasks()) +
                                " tasks for " + std::to_string(method.num_tasks()) + " tasks learned");
  }
  std::vector<TestSet> test_sets;
  const int64_t first = evaluate_from;
  for (int64_t j = 1; j <= method.num_tasks(); ++j) {  // earlier tasks of a resumed run: memory and test splits
    Task task = make_task(j);
    // A task that was learned with a rest output (its test labels move up by one with it).
    if (prior_agnostic && prior_agnostic->output_classes[j - 1].size() == resolved_output_classes(task).size() + 1 &&
        prior_agnostic->output_classes[j - 1].front() == -1) {
      task = with_rest_output(std::move(task), at::Tensor(), at::Tensor());
    }
    if (!prior_agnostic) {
      agnostic.add_task(j, task);
    } else if (prior_agnostic->output_classes[j - 1] != resolved_output_classes(task)) {
      throw std::invalid_argument("resume: task " + std::to_string(j) + " of the stream has other classes than the "
                                  "task-agnostic state holds");
    }
    if (j >= first) test_sets.push_back(test_set(task, agnostic, j));
  }
  for (int64_t t = method.num_tasks() + 1; t <= num_tasks; ++t) {
    Task task = make_task(t);
    require_test_split(task);  // before training, not after
    if (settings.negatives_from_memory && agnostic_options.calibrate) {
      task = with_memory_negatives(std::move(task), agnostic, t, agnostic_options.seed);
    }
    TaskReport report = method.add_task(task, callbacks.progress);
    agnostic.add_task(t, task);
    test_sets.push_back(test_set(task, agnostic, t));
    task = Task{};  // release the training data before evaluating
    agnostic.fit(method);

    TaskEvaluation evaluation;
    evaluation.after_task = t;
    for (int64_t j = first; j <= t; ++j) {
      const TestSet& set = test_sets[j - first];
      // Task-agnostic prediction needs every task's logits: take them at once (NOTE: [shared first
      // layer]) and task j's own from them; without it, only task j's are computed.
      std::vector<at::Tensor> logits;
      if (agnostic.enabled()) logits = method.predict_all(set.x);
      const at::Tensor scores =
          scores_from_logits(agnostic.enabled() ? logits[j - 1] : method.predict(j, set.x), method.config().loss).cpu();
      evaluation.accuracy.push_back(accuracy(scores, set.y));
      evaluation.auroc.push_back(mean_auroc(scores, set.y));
      if (agnostic.enabled()) {
        if (set.agnostic_rows.defined()) {
          for (at::Tensor& l : logits) l = l.index_select(0, set.agnostic_rows.to(l.device()));
        }
        const at::Tensor predicted = agnostic.predict_from_logits(logits, method.config().loss);
        evaluation.agnostic_samples.push_back(set.agnostic_labels.size(0));
        evaluation.agnostic_accuracy.push_back(
            set.agnostic_labels.size(0) > 0 ? predicted.eq(set.agnostic_labels).to(at::kDouble).mean().item<double>()
                                            : std::nan(""));
      }
    }
    result.accuracy_matrix.push_back(evaluation.accuracy);
    result.auroc_matrix.push_back(evaluation.auroc);
    if (agnostic.enabled()) result.agnostic_matrix.push_back(evaluation.agnostic_accuracy);
    if (callbacks.agnostic_fitted) callbacks.agnostic_fitted(agnostic.state());
    if (callbacks.task_done) callbacks.task_done(report, evaluation);
    result.tasks.push_back(std::move(report));
    result.evaluations.push_back(std::move(evaluation));
  }
  result.avg_agnostic_accuracy = std::nan("");
  if (!result.evaluations.empty()) {
    result.avg_accuracy = mean(result.evaluations.back().accuracy);
    result.avg_auroc = mean(result.evaluations.back().auroc);
    if (!result.evaluations.back().agnostic_accuracy.empty()) {
      result.avg_agnostic_accuracy = mean(result.evaluations.back().agnostic_accuracy);
    }
  }
  result.bwt = backward_transfer(result.accuracy_matrix);
  result.bwt_auroc = backward_transfer(result.auroc_matrix);
  result.agnostic = agnostic.state();
  result.params = method.num_params();
  result.base_params = method.base_params();
  result.hidden_growth = method.hidden_growth();
  result.memory_samples = method.memory_samples() + agnostic.memory_size();
  result.memory_bytes = method.memory_bytes() + agnostic.memory_bytes();
  result.seconds =
      prior_seconds + std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

}  // namespace

RunResult run_stream(Method& method, int64_t num_tasks, const std::function<Task(int64_t)>& make_task,
                     const RunCallbacks& callbacks, const RunSettings& settings) {
  return run_tasks(method, num_tasks, make_task, callbacks, settings, method.num_tasks() + 1, RunResult{}, 0.0,
                   std::nullopt);
}

RunResult resume_stream(Engine& engine, int64_t num_tasks, const std::function<Task(int64_t)>& make_task,
                        const RunPrior& prior, const RunCallbacks& callbacks, const RunSettings& settings) {
  if (static_cast<int64_t>(prior.evaluations.size()) != engine.num_tasks()) {
    throw std::invalid_argument("resume: " + std::to_string(prior.evaluations.size()) + " evaluations for " +
                                std::to_string(engine.num_tasks()) + " tasks learned");
  }
  RunResult result;
  for (size_t i = 0; i < prior.evaluations.size(); ++i) {
    const TaskEvaluation& e = prior.evaluations[i];
    if (e.after_task != static_cast<int64_t>(i) + 1 || e.accuracy.size() != i + 1 || e.auroc.size() != i + 1) {
      throw std::invalid_argument("resume: evaluation " + std::to_string(i + 1) + " is not the one after task " +
                                  std::to_string(i + 1));
    }
    result.tasks.push_back(engine.history()[i]);
    result.evaluations.push_back(e);
    result.accuracy_matrix.push_back(e.accuracy);
    result.auroc_matrix.push_back(e.auroc);
    if (!e.agnostic_accuracy.empty()) result.agnostic_matrix.push_back(e.agnostic_accuracy);
  }
  return run_tasks(engine, num_tasks, make_task, callbacks, settings, 1, std::move(result), prior.seconds,
                   prior.agnostic);
}

}  // namespace den::engine
