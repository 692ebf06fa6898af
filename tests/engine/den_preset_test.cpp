// The den preset's mechanisms (NOTE: [presets] in engine/config.h): the budgeted selection, the
// restore of drifted units, the relative expansion criterion and the undo of an unhelpful expansion.

#include "engine/den/growth.h"
#include "engine/engine.h"
#include "engine/hyperparameters.h"
#include "engine/training/trainer.h"
#include "synthetic.h"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

namespace den::engine {

namespace {

EngineConfig small_den_config() {
  return preset("den").set_hidden({24, 12}).set_max_iter(300).set_batch_size(64).set_eval_every(50).set_k(4);
}

testing::SyntheticSpec spec() { return {}; }

}  // namespace

TEST(Presets, ReleasedIsTheFieldDefaultsAndUnknownNamesAreRefused) {
  const EngineConfig released = preset("released"), defaults;
  visit_hyperparameters([&](const auto& h) { EXPECT_EQ(to_text(h.value(released)), to_text(h.value(defaults))) << h.name; });
  const EngineConfig den = preset("den");
  EXPECT_NO_THROW(den.validate());
  EXPECT_TRUE(den.restore_drifted);
  EXPECT_EQ(preset_names().front(), "den");
  try {
    preset("fast");
    FAIL() << "an unknown preset was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'fast'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("den or released"), std::string::npos) << e.what();
  }
}

// The forgetting bound of the den preset is zero: every old unit gets its previous weights back,
// so task 1's outputs stay bit-identical through later tasks that retrain, expand and split.
TEST(Presets, DenKeepsEarlierTasksBitIdenticalThroughSelectiveRetrainingAndSplits) {
  Engine engine(small_den_config().set_tau(0).set_sigma(0), spec().dim);
  engine.add_task(testing::synthetic_task(1));
  const at::Tensor x = testing::synthetic_task(9).test_x;
  const at::Tensor task1_before = engine.predict(1, x);
  const std::vector<at::Tensor> before = engine.network().snapshot_layers();
  const TaskReport r2 = engine.add_task(testing::synthetic_task(2));
  const at::Tensor task2_before = engine.predict(2, x);
  const TaskReport r3 = engine.add_task(testing::synthetic_task(3));

  // Selective retraining moved old units, and some were split (sigma 0: every drifted unit qualifies).
  ASSERT_FALSE(r2.selected_units.empty());
  EXPECT_GT(r2.split[0] + r2.split[1], 0);
  EXPECT_EQ(r2.phases.back().name, "refit");
  for (int64_t l = 0; l < 2; ++l) {
    const at::Tensor& w = engine.network().layer(l);
    const int64_t rows = before[l].size(0), cols = before[l].size(1) - 1;
    EXPECT_TRUE(at::equal(w.narrow(0, 0, rows).narrow(1, 0, cols), before[l].narrow(1, 0, cols))) << "layer " << l;
    EXPECT_TRUE(at::equal(w.narrow(0, 0, rows).select(1, w.size(1) - 1), before[l].select(1, cols))) << "layer " << l;
  }
  EXPECT_TRUE(at::equal(engine.predict(1, x), task1_before));
  EXPECT_TRUE(at::equal(engine.predict(2, x), task2_before));
  (void)r3;
}

TEST(Presets, TheBudgetBoundsTheSelectionToTheStrongestUnits) {
  Engine engine(small_den_config().set_selection_budget(0.25).set_tau(1e9), spec().dim);
  engine.add_task(testing::synthetic_task(1));
  const TaskReport r2 = engine.add_task(testing::synthetic_task(2));
  ASSERT_EQ(r2.selected_units.size(), 2u);
  EXPECT_EQ(r2.selected_units[0], 6);  // ceil(0.25 * 24)
  EXPECT_EQ(r2.selected_units[1], 3);  // ceil(0.25 * 12)
}

// NOTE: [short selective phase] Selective retraining runs its fraction of max_iter, the refit the
// whole budget; 0 (the released preset) leaves the phase all of max_iter.
TEST(Presets, SelectiveRetrainingRunsItsFractionOfTheBudget) {
  EXPECT_EQ(EngineConfig().set_max_iter(300).resolved_selective_iters(), 300);
  EXPECT_EQ(EngineConfig().set_max_iter(300).set_selective_iter_fraction(0.25).resolved_selective_iters(), 75);
  EXPECT_EQ(EngineConfig().set_max_iter(2).set_selective_iter_fraction(0.1).resolved_selective_iters(), 1);
  EXPECT_EQ(EngineConfig().set_max_iter(300).set_selective_iter_fraction(1).resolved_selective_iters(), 300);
  EXPECT_THROW(EngineConfig().set_selective_iter_fraction(1.5).validate(), std::invalid_argument);

  // No early stop, so that every phase runs the iterations it is given.
  EngineConfig config = small_den_config().set_selective_iter_fraction(0.25).set_early_stop_patience(0);
  config.early_stop_tol = 0;
  Engine engine(config, spec().dim);
  engine.add_task(testing::synthetic_task(1));
  const TaskReport r2 = engine.add_task(testing::synthetic_task(2));
  int64_t selective = -1, refit = -1;
  for (const PhaseResult& phase : r2.phases) {
    if (phase.name == "selective") selective = phase.iterations;
    if (phase.name == "refit") refit = phase.iterations;
  }
  EXPECT_EQ(selective, 75);
  EXPECT_EQ(refit, 300);
}

TEST(SelectStrongest, FollowsTheHeadsStrongestWeightsDownward) {
  // A 4-3 network with a 2-output head: top unit 2 has the largest head weights, then unit 0.
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(3);
  Network net(5, {4, 3}, gen, at::kCPU);
  net.add_head(2);
  at::NoGradGuard no_grad;
  net.head(1).zero_();
  net.head(1).index_put_({0, 2}, 2.0);
  net.head(1).index_put_({1, 0}, -1.0);
  net.head(1).index_put_({1, 3}, 50.0);  // the bias column does not count
  net.layer(1).zero_();
  net.layer(1).index_put_({2, 3}, 1.0);   // from unit 2 (strength 2): lower unit 3 gets 2
  net.layer(1).index_put_({0, 1}, -3.0);  // from unit 0 (strength 1): lower unit 1 gets 3
  net.layer(1).index_put_({1, 0}, 9.0);   // unit 1 is not selected above: lower unit 0 gets nothing
  const graph::Subnetwork s = select_strongest(net, 1, 0.5);
  ASSERT_EQ(s.hidden.size(), 2u);
  EXPECT_EQ(s.hidden[1], (std::vector<int64_t>{0, 2}));  // ceil(0.5 * 3) = 2
  EXPECT_EQ(s.hidden[0], (std::vector<int64_t>{1, 3}));  // ceil(0.5 * 4) = 2
  EXPECT_EQ(s.inputs.size(), 5u);
  // Units of strength zero are never taken, whatever the budget.
  EXPECT_EQ(select_strongest(net, 1, 1.0).hidden[1], (std::vector<int64_t>{0, 2}));
}

TEST(UninformedLoss, IsTheEntropyOfTheLabelFrequenciesForEitherHead) {
  const at::Tensor labels = at::tensor({0, 0, 1, 2}, at::kLong);
  const double p[] = {0.5, 0.25, 0.25};
  double softmax = 0, sigmoid = 0;
  for (double q : p) {
    softmax -= q * std::log(q);
    sigmoid -= (q * std::log(q) + (1 - q) * std::log(1 - q)) / 3.0;
  }
  EXPECT_NEAR(uninformed_loss(labels, 3, LossKind::Softmax), softmax, 1e-12);
  EXPECT_NEAR(uninformed_loss(labels, 3, LossKind::Sigmoid), sigmoid, 1e-12);
  // A class that never occurs contributes nothing; one class alone leaves a loss of (almost) zero.
  EXPECT_NEAR(uninformed_loss(at::tensor({1, 1}, at::kLong), 2, LossKind::Softmax), 1e-12, 1e-15);
}

// NOTE: [expansion evidence] An expansion that misses the margin is undone, and the network is
// exactly as before it.
TEST(Presets, AnUnhelpfulExpansionIsUndoneExactly) {
  // The expansion must cut the validation loss by 90%, which it cannot.
  const EngineConfig config = small_den_config().set_tau(0).set_expansion_min_gain(0.9).set_restore_drifted(false)
                                  .set_split_policy(SplitPolicy::AfterExpansion);
  Engine engine(config, spec().dim);
  engine.add_task(testing::synthetic_task(1));
  const TaskReport r2 = engine.add_task(testing::synthetic_task(2));
  ASSERT_TRUE(r2.expanded);
  EXPECT_TRUE(r2.expansion_undone);
  EXPECT_GT(r2.val_loss_after_expansion, 0.0);
  EXPECT_EQ(r2.added, (std::vector<int64_t>{0, 0}));
  EXPECT_EQ(engine.graph().layer_sizes(), (std::vector<int64_t>{24, 12}));
  // What is left is selective retraining's result, and an undone expansion runs no split
  // (after-expansion): the task ends with the loss selective retraining measured.
  EXPECT_EQ(r2.val_loss, r2.val_loss_after_selective);

  // With an easy margin the same expansion is kept.
  Engine keeps(EngineConfig(config).set_expansion_min_gain(1e-9), spec().dim);
  keeps.add_task(testing::synthetic_task(1));
  const TaskReport k2 = keeps.add_task(testing::synthetic_task(2));
  ASSERT_LT(k2.val_loss_after_expansion, k2.val_loss_after_selective);
  EXPECT_FALSE(k2.expansion_undone);
  EXPECT_GT(keeps.graph().layer_size(0), 24);
}

TEST(RestorePreviousBlock, PutsTheOldBlockBackAndKeepsColumnsTowardNewUnits) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(5);
  Network net(6, {4, 3}, gen, at::kCPU);
  net.add_head(2);
  const std::vector<at::Tensor> previous = net.snapshot_layers();
  net.add_units(0, 2, 1);
  at::NoGradGuard no_grad;
  for (int64_t l = 0; l < 2; ++l) net.layer(l).add_(1.0);
  const at::Tensor new_columns = net.layer(1).narrow(1, 4, 2).clone();
  restore_previous_block(net, previous);
  EXPECT_TRUE(at::equal(net.layer(0).narrow(0, 0, 4), previous[0]));
  EXPECT_TRUE(at::equal(net.layer(1).narrow(1, 0, 4), previous[1].narrow(1, 0, 4)));
  EXPECT_TRUE(at::equal(net.layer(1).select(1, 6), previous[1].select(1, 4)));  // bias
  EXPECT_TRUE(at::equal(net.layer(1).narrow(1, 4, 2), new_columns));
  EXPECT_FALSE(at::equal(net.layer(0).narrow(0, 4, 2), at::zeros({2, 7})));  // new rows untouched (moved by +1)
}

}  // namespace den::engine
