#include "engine/run.h"

#include "engine/metrics.h"

#include <chrono>
#include <numeric>
#include <stdexcept>

namespace den::engine {

namespace {

double mean(const std::vector<double>& values) {
  return values.empty() ? 0.0 : std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
}

}  // namespace

namespace {

/// The stream loop behind run_stream and resume_stream. `evaluate_from`: the first task evaluated
/// after each task (1 for a resumed run, engine.num_tasks()+1 otherwise); `result` may already hold
/// the earlier tasks' reports and evaluations.
RunResult run_tasks(Engine& engine, int64_t num_tasks, const std::function<Task(int64_t)>& make_task,
                    const RunCallbacks& callbacks, int64_t evaluate_from, RunResult result, double prior_seconds) {
  const auto started = std::chrono::steady_clock::now();
  std::vector<std::pair<at::Tensor, at::Tensor>> test_sets;
  const int64_t first = evaluate_from;
  for (int64_t j = first; j <= engine.num_tasks(); ++j) {  // earlier tasks of a resumed run: test splits only
    Task task = make_task(j);
    if (!task.test_x.defined()) {
      throw std::invalid_argument("task '" + task.name + "' has no test split to evaluate on");
    }
    test_sets.emplace_back(task.test_x, task.test_y);
  }
  for (int64_t t = engine.num_tasks() + 1; t <= num_tasks; ++t) {
    Task task = make_task(t);
    if (!task.test_x.defined()) {
      throw std::invalid_argument("task '" + task.name + "' has no test split to evaluate on");
    }
    TaskReport report = engine.add_task(task, callbacks.progress);
    test_sets.emplace_back(task.test_x, task.test_y);
    task = Task{};  // release the training data before evaluating

    TaskEvaluation evaluation;
    evaluation.after_task = t;
    for (int64_t j = first; j <= t; ++j) {
      const auto& [x, y] = test_sets[j - first];
      const at::Tensor scores = engine.predict_scores(j, x).cpu();
      evaluation.accuracy.push_back(accuracy(scores, y));
      evaluation.auroc.push_back(mean_auroc(scores, y));
    }
    result.accuracy_matrix.push_back(evaluation.accuracy);
    result.auroc_matrix.push_back(evaluation.auroc);
    if (callbacks.task_done) callbacks.task_done(report, evaluation);
    result.tasks.push_back(std::move(report));
    result.evaluations.push_back(std::move(evaluation));
  }
  if (!result.evaluations.empty()) {
    result.avg_accuracy = mean(result.evaluations.back().accuracy);
    result.avg_auroc = mean(result.evaluations.back().auroc);
  }
  result.bwt = backward_transfer(result.accuracy_matrix);
  result.bwt_auroc = backward_transfer(result.auroc_matrix);
  result.params = engine.num_params();
  result.base_params = engine.base_params();
  result.seconds =
      prior_seconds + std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

}  // namespace

RunResult run_stream(Engine& engine, int64_t num_tasks, const std::function<Task(int64_t)>& make_task,
                     const RunCallbacks& callbacks) {
  return run_tasks(engine, num_tasks, make_task, callbacks, engine.num_tasks() + 1, RunResult{}, 0.0);
}

RunResult resume_stream(Engine& engine, int64_t num_tasks, const std::function<Task(int64_t)>& make_task,
                        const RunPrior& prior, const RunCallbacks& callbacks) {
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
  }
  return run_tasks(engine, num_tasks, make_task, callbacks, 1, std::move(result), prior.seconds);
}

}  // namespace den::engine
