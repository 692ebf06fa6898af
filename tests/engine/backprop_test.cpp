#include "engine/training/backprop.h"
#include "engine/training/frozen_rows.h"
#include "ops/adam.h"
#include "phase_specs.h"
#include "synthetic.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>

namespace den::engine {
namespace {

// NOTE: [hand-written backward]: every objective's batch_gradients must give the gradients that
// autograd takes of its batch_loss. Tolerances: float32 sums of a few hundred terms.
constexpr double kRtol = 1e-4, kAtol = 1e-6;

std::vector<at::Tensor> autograd_gradients(const Objective& objective, const at::Tensor& idx,
                                           const std::vector<TrainableParam>& params, double& loss) {
  std::vector<at::Tensor> inputs;
  for (const TrainableParam& p : params) inputs.push_back(p.tensor->requires_grad_(true));
  const at::Tensor value = objective.batch_loss(idx);
  std::vector<at::Tensor> grads = torch::autograd::grad({value}, inputs, {}, false, false, /*allow_unused=*/true);
  for (size_t i = 0; i < params.size(); ++i) {
    params[i].tensor->requires_grad_(false);
    if (!grads[i].defined()) grads[i] = at::zeros_like(*params[i].tensor);
  }
  loss = value.item<double>();
  return grads;
}

std::vector<at::Tensor> hand_gradients(const Objective& objective, const at::Tensor& idx,
                                       const std::vector<TrainableParam>& params, double& loss) {
  std::vector<const at::Tensor*> tensors;
  for (const TrainableParam& p : params) tensors.push_back(p.tensor);
  GradientBuffers buffers(tensors);
  at::NoGradGuard no_grad;
  loss = objective.batch_gradients(idx, buffers);
  // A second batch through the same buffers: what a phase does every step.
  loss = objective.batch_gradients(idx, buffers);
  return buffers.all();
}

void expect_same_gradients(const Objective& objective, const std::vector<TrainableParam>& params) {
  ASSERT_TRUE(objective.batch_gradients);
  const at::Tensor idx = at::tensor(std::vector<int64_t>{3, 17, 5, 120, 64, 9, 3, 77}, at::kLong);
  double autograd_loss = 0.0, hand_loss = 0.0;
  const std::vector<at::Tensor> expected = autograd_gradients(objective, idx, params, autograd_loss);
  const std::vector<at::Tensor> actual = hand_gradients(objective, idx, params, hand_loss);
  EXPECT_NEAR(hand_loss, autograd_loss, 1e-6);
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_TRUE(at::allclose(actual[i], expected[i], kRtol, kAtol))
        << "tensor " << i << ": max difference " << (actual[i] - expected[i]).abs().max().item<double>();
    EXPECT_GT(expected[i].abs().sum().item<double>(), 0.0) << "tensor " << i << " got no gradient to compare";
  }
}

TEST(DataLossGradient, MatchesAutogradForBothLosses) {
  at::manual_seed(2);
  const at::Tensor logits = at::randn({6, 4});
  const at::Tensor labels = at::tensor(std::vector<int64_t>{0, 3, 1, 1, 2, 0}, at::kLong);
  for (LossKind kind : {LossKind::Softmax, LossKind::Sigmoid}) {
    const at::Tensor leaf = logits.clone().requires_grad_(true);
    const at::Tensor loss = data_loss(leaf, labels, kind);
    const at::Tensor expected = torch::autograd::grad({loss}, {leaf})[0];
    at::Tensor dlogits;
    const double value = data_loss_gradient(logits, labels, kind, dlogits);
    EXPECT_NEAR(value, loss.item<double>(), 1e-6);
    EXPECT_TRUE(at::allclose(dlogits, expected, 1e-5, 1e-7));
  }
}

TEST(DataLossGradient, OnePassSoftmaxMatchesTheAtenOps) {
  // NOTE: [one-pass loss]: contiguous float CPU logits take the one-pass loop; a transposed view
  // takes the ATen ops. Large logits check that the loop subtracts each row's maximum.
  at::manual_seed(5);
  const at::Tensor logits = at::randn({37, 7}).mul_(40.0);
  const at::Tensor labels = at::randint(7, {37}, at::kLong);
  const at::Tensor strided = logits.t().contiguous().t();
  ASSERT_FALSE(strided.is_contiguous());
  at::Tensor one_pass, aten_ops;
  const double fast = data_loss_gradient(logits, labels, LossKind::Softmax, one_pass);
  const double reference = data_loss_gradient(strided, labels, LossKind::Softmax, aten_ops);
  EXPECT_TRUE(std::isfinite(fast));
  EXPECT_NEAR(fast, reference, 1e-5 * std::abs(reference));
  EXPECT_TRUE(at::allclose(one_pass, aten_ops, 1e-5, 1e-8));
  // Each row of the gradient sums to zero (softmax minus a one-hot, over the batch).
  EXPECT_TRUE(at::allclose(one_pass.sum(1), at::zeros({37}), 0.0, 1e-7));
}

TEST(DataLossGradient, RejectsALabelOutOfRange) {
  const at::Tensor logits = at::randn({3, 4});
  at::Tensor dlogits;
  for (int64_t bad : {int64_t{4}, int64_t{-1}}) {
    const at::Tensor labels = at::tensor(std::vector<int64_t>{0, bad, 1}, at::kLong);
    EXPECT_THROW(data_loss_gradient(logits, labels, LossKind::Softmax, dlogits), c10::Error);
  }
}

TEST(WriteAffineGradient, WritesWeightsAndBiasColumn) {
  at::manual_seed(4);
  const at::Tensor x = at::randn({5, 3}), w = at::randn({2, 4}).requires_grad_(true);
  const at::Tensor out = affine(x, w);
  const at::Tensor dz = at::randn({5, 2});
  const at::Tensor expected = torch::autograd::grad({out}, {w}, {dz})[0];
  at::Tensor grad = at::full({2, 4}, 7.0);  // stale values must be overwritten
  write_affine_gradient(dz, x, grad);
  EXPECT_TRUE(at::allclose(grad, expected, 1e-5, 1e-6));
}

struct Fixture {
  Task task = testing::synthetic_task(11);
  Network net{task.train_x.size(1), {16, 8}, at::make_generator<at::CPUGeneratorImpl>(3)};
  int64_t t = 0;
  EngineConfig config = EngineConfig().set_hidden({16, 8}).set_max_iter(40).set_batch_size(32);
  Trainer trainer{config, at::make_generator<at::CPUGeneratorImpl>(9)};
  Fixture() {
    net.add_head(3);
    t = net.add_head(3);
  }
};

TEST(TaskObjective, HandWrittenGradientsMatchAutograd) {
  for (LossKind kind : {LossKind::Softmax, LossKind::Sigmoid}) {
    Fixture f;
    f.config.loss = kind;
    const Trainer trainer(f.config, at::make_generator<at::CPUGeneratorImpl>(9));
    const Objective objective = trainer.task_objective(f.net, f.t, f.task);
    // Every layer and the head; the upper layers only; the head only.
    expect_same_gradients(objective, {{&f.net.layer(0)}, {&f.net.layer(1)}, {&f.net.head(f.t)}});
    expect_same_gradients(objective, {{&f.net.layer(1)}, {&f.net.head(f.t)}});
    expect_same_gradients(objective, {{&f.net.head(f.t)}});
    expect_same_gradients(objective, {{&f.net.layer(0)}});
  }
}

/// The FirstLayerSplit of `spec` on the fixture, with its objective's gradients compared to autograd.
void expect_split_matches_autograd(Fixture& f, const PhaseSpec& spec, bool second_block) {
  CacheStorage storage;
  const std::unique_ptr<FirstLayerSplit> split = FirstLayerSplit::plan(f.net, f.task, spec, f.config, storage);
  ASSERT_TRUE(split);
  EXPECT_EQ(split->second_block_rows() > 0, second_block);
  expect_same_gradients(split->objective(f.t, f.config.loss), split->spec().params);
}

TEST(FirstLayerSplitObjective, HandWrittenGradientsMatchAutogradWithScatteredRows) {
  Fixture f;
  expect_split_matches_autograd(f, testing::scattered_rows_spec(f.net, f.t, {1, 4, 5, 11}), /*second_block=*/false);
}

TEST(FirstLayerSplitObjective, HandWrittenGradientsMatchAutogradWithTheSecondLayerBlockCached) {
  Fixture f;
  expect_split_matches_autograd(f, testing::expansion_like_spec(f.net, f.t), /*second_block=*/true);
}

TEST(FirstLayerSplitObjective, HandWrittenGradientsMatchAutogradForTheHeadAlone) {
  Fixture f;
  expect_split_matches_autograd(f, testing::head_only_spec(f.net, f.t), /*second_block=*/true);
}

}  // namespace
}  // namespace den::engine
