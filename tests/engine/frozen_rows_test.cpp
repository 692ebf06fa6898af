#include "engine/training/frozen_rows.h"
#include "engine/den/masks.h"
#include "ops/adam.h"
#include "phase_specs.h"
#include "synthetic.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

namespace den::engine {
namespace {

TEST(SampleCache, GathersTheFunctionAndComputesEachSampleOnce) {
  at::manual_seed(5);
  const at::Tensor x = at::randn({10, 4});
  const at::Tensor rows = at::randn({3, 5});
  SampleCache cache(
      10, 3, [&](const at::Tensor& idx) { return affine(x.index_select(0, idx), rows); }, at::empty({10 * 3}));
  const at::Tensor first = at::tensor(std::vector<int64_t>{7, 2, 7, 0}, at::kLong);
  EXPECT_TRUE(at::allclose(cache.gather(first), affine(x.index_select(0, first), rows), 1e-6, 1e-6));
  EXPECT_EQ(cache.computed_samples(), 3);
  const at::Tensor second = at::tensor(std::vector<int64_t>{0, 2, 9}, at::kLong);
  EXPECT_TRUE(at::allclose(cache.gather(second), affine(x.index_select(0, second), rows), 1e-6, 1e-6));
  EXPECT_EQ(cache.computed_samples(), 4);  // only sample 9 was new
}

struct PhaseRun {
  std::vector<at::Tensor> initial_layers;  ///< before the phase
  std::vector<at::Tensor> layers;
  at::Tensor head;
  PhaseResult result;
};

EngineConfig small_config() { return EngineConfig().set_hidden({16, 8}).set_max_iter(40).set_batch_size(32); }

/// One phase on a fresh copy of a two-task network, through Trainer::train (cached, with the
/// hand-written backward) or through the plain task objective with autograd (`cached` false).
PhaseRun run_phase(bool cached, const std::function<PhaseSpec(Network&)>& make_spec) {
  const Task task = testing::synthetic_task(11);
  Network net(task.train_x.size(1), {16, 8}, at::make_generator<at::CPUGeneratorImpl>(3));
  net.add_head(3);
  const int64_t t = net.add_head(3);
  const Trainer trainer(small_config(), at::make_generator<at::CPUGeneratorImpl>(9));
  const PhaseSpec spec = make_spec(net);
  PhaseRun run;
  run.initial_layers = net.snapshot_layers();
  Objective plain = trainer.task_objective(net, t, task);
  plain.batch_gradients = nullptr;
  run.result = cached ? trainer.train(net, t, task, spec, {}) : trainer.train(plain, t, spec, {});
  run.layers = net.snapshot_layers();
  run.head = net.head(t).clone();
  return run;
}

void expect_same_training(const PhaseRun& cached, const PhaseRun& plain) {
  for (size_t l = 0; l < cached.layers.size(); ++l) {
    EXPECT_TRUE(at::allclose(cached.layers[l], plain.layers[l], 1e-4, 1e-5)) << "layer " << l;
  }
  EXPECT_TRUE(at::allclose(cached.head, plain.head, 1e-4, 1e-5));
  EXPECT_NEAR(cached.result.val_loss, plain.result.val_loss, 1e-4);
  EXPECT_EQ(cached.result.iterations, plain.result.iterations);
}

TEST(FirstLayerSplit, ScatteredTrainableRowsTrainAsWithoutTheCacheAndFrozenRowsKeepTheirBits) {
  const std::vector<int64_t> trained = {1, 4, 5, 11};
  auto make_spec = [&](Network& net) { return testing::scattered_rows_spec(net, 2, trained); };
  const PhaseRun cached = run_phase(true, make_spec);
  expect_same_training(cached, run_phase(false, make_spec));
  EXPECT_EQ(cached.result.frozen_first_rows, 16 - static_cast<int64_t>(trained.size()));
  EXPECT_EQ(cached.result.frozen_second_rows, 0);  // the frozen rows are not the leading units
  EXPECT_GT(cached.result.cached_samples, 0);
  EXPECT_LE(cached.result.cached_samples, 600 + 150);  // each training and validation sample at most once
  const at::Tensor moved = cached.layers[0].ne(cached.initial_layers[0]).any(1);
  EXPECT_TRUE(moved.equal(selector(16, trained)));  // exactly the trainable rows moved
}

TEST(FirstLayerSplit, HeadOnlyPhaseServesTheWholeFirstLayerFromTheCache) {
  auto make_spec = [](Network& net) { return testing::head_only_spec(net, 2); };
  const PhaseRun cached = run_phase(true, make_spec);
  expect_same_training(cached, run_phase(false, make_spec));
  EXPECT_EQ(cached.result.frozen_first_rows, 16);
  EXPECT_EQ(cached.result.frozen_second_rows, 8);  // the second layer is frozen too: only the head multiplies
}

TEST(FirstLayerSplit, ExpansionLikePhaseCachesTheOldBlocksOfBothLayersAndTrainsAsWithoutThem) {
  auto make_spec = [](Network& net) { return testing::expansion_like_spec(net, 2); };
  const PhaseRun cached = run_phase(true, make_spec);
  const std::vector<at::Tensor>& initial = cached.initial_layers;
  expect_same_training(cached, run_phase(false, make_spec));
  EXPECT_EQ(cached.result.frozen_first_rows, 12);
  EXPECT_EQ(cached.result.frozen_second_rows, 6);
  // The old block of both layers kept its bits.
  EXPECT_TRUE(cached.layers[0].narrow(0, 0, 12).equal(initial[0].narrow(0, 0, 12)));
  EXPECT_TRUE(cached.layers[1].narrow(0, 0, 6).narrow(1, 0, 12).equal(initial[1].narrow(0, 0, 6).narrow(1, 0, 12)));
  EXPECT_TRUE(cached.layers[1].narrow(0, 0, 6).select(1, 16).equal(initial[1].narrow(0, 0, 6).select(1, 16)));
  EXPECT_FALSE(cached.layers[1].narrow(0, 0, 6).narrow(1, 12, 4).equal(initial[1].narrow(0, 0, 6).narrow(1, 12, 4)));
}

TEST(FirstLayerSplit, PhaseTrainingEveryFirstLayerRowUsesNoCache) {
  const PhaseRun run = run_phase(true, [](Network& net) {
    PhaseSpec spec;
    spec.name = "train";
    spec.max_iter = 40;
    for (at::Tensor& w : net.layers()) spec.params.push_back({&w, {}, {}, {}, {}});
    return spec;
  });
  EXPECT_EQ(run.result.frozen_first_rows, 0);
  EXPECT_EQ(run.result.cached_samples, 0);
}

TEST(FirstLayerSplit, PhaseFreezingFewFirstLayerRowsUsesNoCache) {
  const PhaseRun run = run_phase(true, [](Network& net) {
    PhaseSpec spec;
    spec.name = "selective";
    spec.max_iter = 40;
    const at::Tensor rows = range_selector(16, 0, 12);  // 4 of 16 rows frozen: below kMinFrozenFraction
    spec.params.push_back({&net.layer(0), element_mask(outer_and(rows, at::ones({21}, at::kBool))), {}, {}, {}});
    return spec;
  });
  EXPECT_EQ(run.result.frozen_first_rows, 0);
}

TEST(FirstLayerSplit, PhaseThatCannotDrawASampleTwiceUsesNoCache) {
  const PhaseRun run = run_phase(true, [](Network& net) {
    PhaseSpec spec = testing::head_only_spec(net, 2);
    spec.max_iter = 600 / 32;  // 18 batches of 32: fewer draws than the 600 training samples
    return spec;
  });
  EXPECT_EQ(run.result.frozen_first_rows, 0);
}

}  // namespace
}  // namespace den::engine
