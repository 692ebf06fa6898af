#include "engine/engine.h"
#include "engine/evaluation/run.h"
#include "engine/evaluation/task_agnostic.h"
#include "synthetic.h"

#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <stdexcept>

namespace den::engine {

namespace {

// Four classes at the corners of a square; task 1 knows classes 0 and 1, task 2 classes 2 and 3.
const float kMeans[4][2] = {{-1, -1}, {1, -1}, {-1, 1}, {1, 1}};

std::pair<at::Tensor, at::Tensor> corner_samples(const std::vector<int64_t>& classes, int64_t per_class,
                                                 uint64_t seed) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  std::vector<at::Tensor> xs, ys;
  for (size_t i = 0; i < classes.size(); ++i) {
    const at::Tensor mean = at::tensor({kMeans[classes[i]][0], kMeans[classes[i]][1]}, at::kFloat);
    xs.push_back(mean + 0.3 * at::randn({per_class, 2}, gen, at::kFloat));
    ys.push_back(at::full({per_class}, static_cast<int64_t>(i), at::kLong));
  }
  return {at::cat(xs), at::cat(ys)};
}

Task corner_task(const std::vector<int64_t>& classes, uint64_t seed) {
  Task task;
  task.name = "corners";
  task.num_classes = static_cast<int64_t>(classes.size());
  task.output_classes = classes;
  std::tie(task.val_x, task.val_y) = corner_samples(classes, 50, seed);
  std::tie(task.test_x, task.test_y) = corner_samples(classes, 200, seed + 100);
  return task;
}

/// Heads that score -||x - mean||^2 / 2 for their classes; task 2's scores are inflated
/// (x5, +15), as a later, over-confident head's would be.
class CornerHeads : public Method {
 public:
  std::string name() const override { return "corner-heads"; }
  TaskReport add_task(const Task&, const ProgressCallback&) override { return {}; }
  at::Tensor predict(int64_t task_id, const at::Tensor& x) const override {
    const std::vector<int64_t> classes = task_id == 1 ? std::vector<int64_t>{0, 1} : std::vector<int64_t>{2, 3};
    std::vector<at::Tensor> columns;
    for (int64_t c : classes) {
      const at::Tensor mean = at::tensor({kMeans[c][0], kMeans[c][1]}, at::kFloat);
      columns.push_back(-0.5 * (x - mean).pow(2).sum(1));
    }
    const at::Tensor logits = at::stack(columns, 1);
    return task_id == 1 ? logits : 5 * logits + 15;
  }
  int64_t num_tasks() const override { return 2; }
  int64_t num_params() const override { return 0; }
  int64_t base_params() const override { return 0; }
  const EngineConfig& config() const override { return config_; }

 private:
  EngineConfig config_;
};

double agnostic_accuracy(const TaskAgnosticClassifier& classifier, const Method& method, int64_t task_id,
                         const Task& task) {
  const at::Tensor predicted = classifier.predict(method, task.test_x);
  return predicted.eq(classifier.global_labels(task_id, task.test_y)).to(at::kDouble).mean().item<double>();
}

}  // namespace

TEST(TaskAgnostic, CalibrationCorrectsAnOverconfidentLaterTask) {
  const CornerHeads heads;
  const Task first = corner_task({0, 1}, 1);
  const Task second = corner_task({2, 3}, 2);

  TaskAgnosticClassifier uncalibrated(AgnosticOptions{20, 0, 1});
  uncalibrated.add_task(1, first);
  uncalibrated.add_task(2, second);
  // Without calibration the inflated task-2 head claims task 1's inputs.
  EXPECT_LT(agnostic_accuracy(uncalibrated, heads, 1, first), 0.2);
  EXPECT_GT(agnostic_accuracy(uncalibrated, heads, 2, second), 0.95);

  TaskAgnosticClassifier classifier(AgnosticOptions{20, 500, 1});
  classifier.add_task(1, first);
  classifier.add_task(2, second);
  EXPECT_EQ(classifier.memory_size(), 4 * 20);
  EXPECT_EQ(classifier.classes(), (std::vector<int64_t>{0, 1, 2, 3}));
  classifier.fit(heads);
  EXPECT_GT(agnostic_accuracy(classifier, heads, 1, first), 0.95);
  EXPECT_GT(agnostic_accuracy(classifier, heads, 2, second), 0.95);
  // The fit undid task 2's inflation: its scale shrank relative to task 1's.
  EXPECT_LT(classifier.scales()[1].item<double>(), classifier.scales()[0].item<double>());
}

TEST(TaskAgnostic, RestOutputsAndSharedClassesMapToGlobalLabels) {
  TaskAgnosticClassifier classifier;
  Task shared = corner_task({0, 1}, 3);
  Task one_vs_rest = corner_task({-1, 3}, 4);
  classifier.add_task(1, shared);
  classifier.add_task(2, shared);  // a permuted stream reuses its labels
  classifier.add_task(3, one_vs_rest);
  EXPECT_EQ(classifier.classes(), (std::vector<int64_t>{0, 1, 3}));
  // Memory: 20 per class-bearing output of each task; none for the "rest" output.
  EXPECT_EQ(classifier.memory_size(), 20 * 2 + 20 * 2 + 20);
  const at::Tensor labels = classifier.global_labels(3, at::tensor({0, 1, 1, 0}, at::kLong));
  EXPECT_TRUE(labels.equal(at::tensor({-1, 3, 3, -1}, at::kLong)));
}

TEST(TaskAgnostic, RejectsBadUse) {
  EXPECT_THROW(TaskAgnosticClassifier(AgnosticOptions{-1, 10, 1}), std::invalid_argument);
  TaskAgnosticClassifier classifier;
  const CornerHeads heads;
  EXPECT_THROW(classifier.class_scores(heads, at::zeros({3, 2})), std::invalid_argument);  // no task yet
  EXPECT_THROW(classifier.add_task(2, corner_task({0, 1}, 1)), std::invalid_argument);    // not task 1
  Task mismatched = corner_task({0, 1}, 1);
  mismatched.output_classes = {0, 1, 2};
  EXPECT_THROW(classifier.add_task(1, mismatched), std::invalid_argument);
  classifier.add_task(1, corner_task({0, 1}, 1));
  EXPECT_THROW(classifier.global_labels(2, at::zeros({1}, at::kLong)), std::invalid_argument);
}

TEST(TaskAgnostic, RunStreamClassifiesAmongAllClassesWithoutTheTaskId) {
  // Two 3-class tasks on the same features with different class means: six classes in all.
  const EngineConfig config =
      EngineConfig().set_hidden({24, 12}).set_max_iter(300).set_batch_size(64).set_eval_every(50).set_k(4);
  Engine engine(config, testing::SyntheticSpec{}.dim);
  const auto make_task = [](int64_t t) {
    Task task = testing::synthetic_task(static_cast<uint64_t>(t));
    task.output_classes = {3 * (t - 1), 3 * (t - 1) + 1, 3 * (t - 1) + 2};
    return task;
  };
  const RunResult result = run_stream(engine, 2, make_task);
  ASSERT_EQ(result.agnostic_matrix.size(), 2u);
  EXPECT_EQ(result.agnostic_matrix[1].size(), 2u);
  EXPECT_EQ(result.evaluations[1].agnostic_samples, (std::vector<int64_t>{300, 300}));
  EXPECT_DOUBLE_EQ(result.agnostic_matrix[0][0], result.evaluations[0].agnostic_accuracy[0]);
  // After task 1 there are only its own classes: as good as the task-aware head.
  EXPECT_NEAR(result.agnostic_matrix[0][0], result.accuracy_matrix[0][0], 0.02);
  // Six well separated classes: far above the 1/6 of guessing, close to task-aware accuracy.
  EXPECT_GT(result.avg_agnostic_accuracy, 0.8);
  EXPECT_LE(result.avg_agnostic_accuracy, result.avg_accuracy + 1e-9);

  Engine off(config, testing::SyntheticSpec{}.dim);
  RunSettings settings;
  settings.agnostic.exemplars_per_class = 0;
  const RunResult without = run_stream(off, 1, make_task, {}, settings);
  EXPECT_TRUE(without.agnostic_matrix.empty());
  EXPECT_TRUE(without.evaluations[0].agnostic_accuracy.empty());
  EXPECT_TRUE(std::isnan(without.avg_agnostic_accuracy));
}

}  // namespace den::engine

namespace den::engine {

TEST(TaskAgnostic, ARestOutputAddsTheNegativesAsOneMoreClass) {
  Task task = corner_task({2, 3}, 5);
  std::tie(task.train_x, task.train_y) = corner_samples({2, 3}, 40, 6);
  const at::Tensor rest_train = at::randn({7, 2}), rest_val = at::randn({3, 2});
  const Task with_rest = with_rest_output(task, rest_train, rest_val);
  EXPECT_EQ(with_rest.num_classes, 3);
  EXPECT_EQ(with_rest.output_classes, (std::vector<int64_t>{-1, 2, 3}));
  // 80 training rows of 2 classes: the rest weighs as one class, 40 rows (7 repeated in order).
  ASSERT_EQ(with_rest.train_x.size(0), 120);
  EXPECT_TRUE(at::equal(with_rest.train_x.narrow(0, 80, 7), rest_train));
  EXPECT_TRUE(at::equal(with_rest.train_x.narrow(0, 87, 7), rest_train));
  EXPECT_TRUE(at::equal(with_rest.train_y.narrow(0, 0, 80), task.train_y + 1));
  EXPECT_EQ(with_rest.train_y.narrow(0, 80, 40).sum().item<int64_t>(), 0);
  EXPECT_EQ(with_rest.val_x.size(0), 100 + 50);
  EXPECT_TRUE(at::equal(with_rest.test_y, task.test_y + 1));
}

TEST(TaskAgnostic, AStreamWithNegativesFromMemoryGivesLaterHeadsARest) {
  const EngineConfig config =
      EngineConfig().set_hidden({24, 12}).set_max_iter(200).set_batch_size(64).set_eval_every(50).set_k(4);
  const auto make_task = [](int64_t t) {
    Task task = testing::synthetic_task(static_cast<uint64_t>(t));
    task.output_classes = {3 * (t - 1), 3 * (t - 1) + 1, 3 * (t - 1) + 2};
    return task;
  };
  RunSettings settings;
  settings.negatives_from_memory = true;
  Engine engine(config, testing::SyntheticSpec{}.dim);
  const RunResult result = run_stream(engine, 2, make_task, {}, settings);
  EXPECT_EQ(result.agnostic.output_classes[0], (std::vector<int64_t>{0, 1, 2}));  // no memory before task 1
  EXPECT_EQ(result.agnostic.output_classes[1], (std::vector<int64_t>{-1, 3, 4, 5}));
  EXPECT_EQ(engine.history()[1].num_classes, 4);
  // Task 2's test samples are still all of its classes, scored among the 6 classes.
  EXPECT_EQ(result.evaluations[1].agnostic_samples, (std::vector<int64_t>{300, 300}));
  EXPECT_GT(result.avg_agnostic_accuracy, 0.8);

  // A resumed stream rebuilds the earlier test sets with the rest output: same figures.
  Engine first(config, testing::SyntheticSpec{}.dim);
  RunPrior prior;
  const RunResult one = run_stream(first, 1, make_task, {}, settings);
  prior.evaluations = one.evaluations;
  prior.agnostic = one.agnostic;
  const RunResult resumed = resume_stream(first, 2, make_task, prior, {}, settings);
  EXPECT_EQ(resumed.agnostic_matrix, result.agnostic_matrix);
  EXPECT_EQ(resumed.accuracy_matrix, result.accuracy_matrix);
}

}  // namespace den::engine

namespace den::engine {

TEST(TaskAgnostic, HeadsOfOneOutputSpaceAreComparedByTheirRawLogits) {
  // Task 1: classes 0 and 1; task 2: a rest output and class 2. One input whose logits are
  // [1, 0] and [rest 5, class 2: 2].
  Task first, second;
  first.num_classes = 2;
  first.output_classes = {0, 1};
  second.num_classes = 2;
  second.output_classes = {-1, 2};
  const std::vector<at::Tensor> logits = {at::tensor({1.0f, 0.0f}).view({1, 2}), at::tensor({5.0f, 2.0f}).view({1, 2})};
  // Heads trained apart: class 2's evidence is its log-odds against the rest, -3, so class 0 wins.
  TaskAgnosticClassifier apart(AgnosticOptions{20, 0, 1});
  apart.add_task(1, first);
  apart.add_task(2, second);
  EXPECT_EQ(apart.predict_from_logits(logits, LossKind::Softmax).item<int64_t>(), 0);
  // Heads of one output space (one softmax over all of them): class 2's logit, 2, beats class 0's 1.
  AgnosticOptions joint{20, 0, 1};
  joint.calibrate = false;
  TaskAgnosticClassifier together(joint);
  together.add_task(1, first);
  together.add_task(2, second);
  EXPECT_EQ(together.predict_from_logits(logits, LossKind::Softmax).item<int64_t>(), 2);
}

}  // namespace den::engine
