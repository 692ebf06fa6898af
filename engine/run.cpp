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

RunResult run_stream(Engine& engine, int64_t num_tasks, const std::function<Task(int64_t)>& make_task,
                     const RunCallbacks& callbacks) {
  const auto started = std::chrono::steady_clock::now();
  RunResult result;
  std::vector<std::pair<at::Tensor, at::Tensor>> test_sets;
  const int64_t first = engine.num_tasks() + 1;
  for (int64_t t = first; t <= num_tasks; ++t) {
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
      const at::Tensor scores = engine.predict_scores(j, x);
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
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

}  // namespace den::engine
