#include "engine/baselines/baselines.h"
#include "engine/baselines/replay.h"
#include "engine/evaluation/run.h"
#include "synthetic.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

namespace den::engine {

namespace {

EngineConfig small_config() {
  return EngineConfig().set_hidden({16, 8}).set_max_iter(200).set_batch_size(64).set_eval_every(50);
}

/// Three tasks of three classes each, in one label space of nine (a split stream).
Task split_task(int64_t t) {
  Task task = testing::synthetic_task(300 + t);
  task.output_classes = {3 * (t - 1), 3 * (t - 1) + 1, 3 * (t - 1) + 2};
  return task;
}

}  // namespace

TEST(Herding, PicksTheSampleThatKeepsTheRunningMeanClosestToTheClassMean) {
  // Features 1, 2, 3, 7: the mean is 3.25. Pick 1 is 3 (|3 - 3.25| = 0.25). Pick 2 wants
  // (3 + x) / 2 near 3.25: 2 gives 2.5 (0.75), 1 gives 2 (1.25), 7 gives 5 (1.75). Pick 3 wants
  // (5 + x) / 3 near 3.25: 7 gives 4 (0.75), 1 gives 2 (1.25): herding takes 7 before 1, where
  // nearness to the mean alone would take 1.
  const at::Tensor features = at::tensor({1.0, 2.0, 3.0, 7.0}).view({4, 1});
  EXPECT_EQ(herding_order(features, 4), (std::vector<int64_t>{2, 1, 3, 0}));
  EXPECT_EQ(herding_order(features, 2), (std::vector<int64_t>{2, 1}));  // a smaller memory keeps a prefix
  EXPECT_EQ(herding_order(features, 9).size(), 4u);
  // In two dimensions: the first pick is the row nearest the mean (-0.025, 0); then the one on its other side.
  const at::Tensor plane = at::tensor({0.1, 0.0, 2.0, 2.0, -0.2, 0.0, -2.0, -2.0}).view({4, 2});
  EXPECT_EQ(herding_order(plane, 2), (std::vector<int64_t>{0, 2}));
}

TEST(Reservoir, KeepsEverySampleOfTheStreamWithTheSameProbability) {
  constexpr int64_t kStream = 100, kCapacity = 10, kTrials = 2000;
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(7);
  std::vector<int64_t> kept(kStream, 0);
  for (int64_t trial = 0; trial < kTrials; ++trial) {
    std::vector<int64_t> memory(kCapacity, -1);
    // Offered in batches of 7, as training batches come: the same as one sample at a time.
    for (int64_t seen = 0; seen < kStream; seen += 7) {
      const int64_t count = std::min<int64_t>(7, kStream - seen);
      const std::vector<int64_t> slots = reservoir_slots(seen, count, kCapacity, generator);
      ASSERT_EQ(static_cast<int64_t>(slots.size()), count);
      for (int64_t i = 0; i < count; ++i) {
        const int64_t slot = slots[static_cast<size_t>(i)];
        ASSERT_LT(slot, kCapacity);
        if (seen + i < kCapacity) ASSERT_EQ(slot, seen + i);  // it fills first
        if (slot >= 0) memory[slot] = seen + i;
      }
    }
    for (int64_t sample : memory) kept[sample] += 1;
  }
  // Each sample is kept in capacity / stream of the trials: 200 expected. Pearson's chi-square over
  // the 100 samples has 99 degrees of freedom; 148.2 is its 0.001 upper quantile.
  const double expected = static_cast<double>(kTrials * kCapacity) / kStream;
  double chi_square = 0.0;
  for (int64_t count : kept) chi_square += std::pow(count - expected, 2) / expected;
  EXPECT_LT(chi_square, 148.2);
  // And it is not trivially uniform: the first samples are kept as often as the last.
  EXPECT_NEAR(kept.front(), expected, 4 * std::sqrt(expected));
  EXPECT_NEAR(kept.back(), expected, 4 * std::sqrt(expected));
}

TEST(Distillation, LossAndGradientMatchTheirClosedForms) {
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(3);
  const at::Tensor logits = at::randn({5, 7}, generator, at::kDouble).requires_grad_(true);
  const at::Tensor targets = at::randn({5, 7}, generator, at::kDouble);
  const std::vector<int64_t> groups{3, 4};  // two earlier heads
  const double temperature = 2.0;
  const at::Tensor loss = softmax_distillation(logits, targets, groups, temperature);
  loss.backward();

  double expected = 0.0;
  at::Tensor gradient = at::zeros({5, 7}, at::kDouble);
  int64_t start = 0;
  for (int64_t width : groups) {
    const at::Tensor p = at::softmax(targets.narrow(1, start, width) / temperature, 1);
    const at::Tensor q = at::softmax(logits.detach().narrow(1, start, width) / temperature, 1);
    expected += -(p * q.log()).sum().item<double>() / 5;
    // d/dz of -sum p log softmax(z / T) is (q - p) / T, per row, over the 5 rows of the mean.
    gradient.narrow(1, start, width).copy_((q - p) / temperature / 5);
    start += width;
  }
  EXPECT_NEAR(loss.item<double>(), expected, 1e-12);
  EXPECT_TRUE(at::allclose(logits.grad(), gradient, 1e-10, 1e-12));
  EXPECT_THROW(softmax_distillation(logits, targets, {3, 3}, temperature), std::invalid_argument);
}

TEST(Ridge, EqualsTheDirectSolve) {
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(5);
  const at::Tensor h = at::randn({40, 12}, generator, at::kDouble);
  const at::Tensor y = at::randn({40, 3}, generator, at::kDouble);
  const at::Tensor gram = h.t().matmul(h), correlation = h.t().matmul(y);
  const RidgeSolver solver(gram);
  for (double lambda : {1e-3, 1.0, 1e3}) {
    const at::Tensor direct = at::linalg_solve(gram + lambda * at::eye(12, at::kDouble), correlation);
    EXPECT_TRUE(at::allclose(solver.solve(correlation, lambda), direct, 1e-8, 1e-10)) << lambda;
  }
  EXPECT_THROW(solver.solve(correlation, 0.0), std::invalid_argument);
}

TEST(ClassIncremental, MemoriesHoldWhatTheirMethodsPromise) {
  BaselineOptions options;
  options.memory = 45;
  std::unique_ptr<Method> icarl = make_method("icarl", small_config(), options, 20);
  std::unique_ptr<Method> derpp = make_method("der++", small_config(), options, 20);
  std::unique_ptr<Method> lwf = make_method("lwf", small_config(), options, 20);
  for (int64_t t = 1; t <= 3; ++t) {
    icarl->add_task(split_task(t));
    derpp->add_task(split_task(t));
    lwf->add_task(split_task(t));
    // iCaRL: memory / outputs of each output seen so far (45/3, 45/6, 45/9).
    EXPECT_EQ(icarl->memory_samples(), (45 / (3 * t)) * 3 * t) << t;
    EXPECT_EQ(derpp->memory_samples(), 45);  // the reservoir is full after one task of 600 rows
  }
  EXPECT_EQ(icarl->memory_bytes(), 45 * 20 * 4);
  EXPECT_EQ(lwf->memory_samples(), 0);
  for (const Method* m : {icarl.get(), derpp.get(), lwf.get()}) EXPECT_TRUE(m->heads_comparable());
  EXPECT_FALSE(make_method("ewc", small_config(), options, 20)->heads_comparable());
}

TEST(ClassIncremental, AMethodThatNeedsAMemoryRefusesNone) {
  for (const char* name : {"icarl", "der++"}) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(needs_memory(name));
    try {
      make_method(name, small_config(), BaselineOptions(), 20);
      ADD_FAILURE() << "no error";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("memory of old samples"), std::string::npos) << e.what();
    }
  }
  BaselineOptions tiny;
  tiny.memory = 4;  // fewer than the 6 outputs after task 2
  std::unique_ptr<Method> icarl = make_method("icarl", small_config().set_max_iter(10), tiny, 20);
  icarl->add_task(split_task(1));
  EXPECT_THROW(icarl->add_task(split_task(2)), std::invalid_argument);
  EXPECT_EQ(icarl->num_tasks(), 1);  // unchanged: it still predicts task 1
  EXPECT_EQ(icarl->predict(1, split_task(1).test_x).size(1), 3);
  BaselineOptions negative;
  negative.memory = -1;
  EXPECT_THROW(make_method("ewc", small_config(), negative, 20), std::invalid_argument);
}

TEST(ClassIncremental, AMemoryKeepsOldClassesCompetitiveAmongAllClasses) {
  // The classic pattern on a split stream, with the raw logits as task-agnostic prediction: a
  // memory of old samples keeps the old classes competitive, distillation alone does not, and
  // DER++ without its replay terms forgets the old classes almost entirely.
  BaselineOptions options;
  options.memory = 90;
  const auto old_task_accuracy = [&](const std::string& name, const BaselineOptions& o) {
    std::unique_ptr<Method> method = make_method(name, small_config(), o, 20);
    const RunResult result = run_stream(*method, 3, split_task);
    EXPECT_EQ(result.memory_samples, method->memory_samples()) << name;  // no calibration memory of its own
    const std::vector<double>& last = result.agnostic_matrix.back();
    return (last[0] + last[1]) / 2;  // tasks 1 and 2 among all 9 classes, after task 3
  };
  BaselineOptions no_replay = options;
  no_replay.derpp_alpha = no_replay.derpp_beta = 0.0;
  const double icarl = old_task_accuracy("icarl", options), lwf = old_task_accuracy("lwf", options);
  EXPECT_GT(icarl, lwf + 0.1);
  EXPECT_GT(old_task_accuracy("der++", options), old_task_accuracy("der++", no_replay) + 0.1);
  // Classifiers on features frozen after task 1 cannot forget task 1, and separate new classes too.
  EXPECT_GT(old_task_accuracy("ncm", options), 0.5);
  EXPECT_GT(old_task_accuracy("ranpac", options), 0.5);
}

}  // namespace den::engine
