#include "engine/training/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <vector>

namespace den::engine {

namespace {

/// A phase on one tensor `w` `[3, 4]` pulled toward 1 (the data loss is ||w - 1||^2), whose
/// validation losses are scripted: evaluation e (0-based) reports `losses[e]` and records w then.
struct ScriptedPhase {
  at::Tensor w = at::full({3, 4}, -1.0f);
  std::vector<double> losses;
  std::vector<at::Tensor> seen;  // w at each evaluation
  PhaseSpec spec;

  explicit ScriptedPhase(std::vector<double> scripted, int64_t max_iter) : losses(std::move(scripted)) {
    spec.name = "scripted";
    spec.max_iter = max_iter;
    spec.params.push_back({&w, {}, {}, {}, {}});
  }

  Objective objective() {
    Objective o;
    o.num_samples = 8;
    o.batch_loss = [this](const at::Tensor&) { return (w - 1).pow(2).sum(); };
    o.validation_loss = [this] {
      seen.push_back(w.detach().clone());
      return losses.at(seen.size() - 1);
    };
    return o;
  }
};

EngineConfig patience_config(int64_t patience, double min_delta) {
  return EngineConfig().set_batch_size(4).set_eval_every(10).set_early_stop_patience(patience).set_early_stop_min_delta(
      min_delta);
}

PhaseResult run(ScriptedPhase& phase, const EngineConfig& config) {
  const Trainer trainer(config, at::make_generator<at::CPUGeneratorImpl>(1));
  return trainer.train(phase.objective(), 1, phase.spec, {});
}

}  // namespace

// NOTE: [patience]
TEST(TrainerPatience, StopsAfterPatienceEvaluationsAndReturnsExactlyToTheBestState) {
  // Best at evaluation 1 (iteration 20); evaluations 2 and 3 do not improve: patience 2 stops at 3.
  ScriptedPhase phase({1.0, 0.5, 0.6, 0.55, 0.1, 0.1}, /*max_iter=*/60);
  const PhaseResult r = run(phase, patience_config(2, 1e-3));
  ASSERT_EQ(phase.seen.size(), 4u);
  EXPECT_TRUE(r.early_stopped);
  EXPECT_EQ(r.iterations, 40);
  EXPECT_EQ(r.best_iteration, 20);
  EXPECT_EQ(r.val_loss, 0.5);
  EXPECT_FALSE(at::equal(phase.seen[1], phase.seen[3]));  // the tensor moved after its best state
  EXPECT_TRUE(at::equal(phase.w, phase.seen[1]));         // and is back there, bit for bit
}

TEST(TrainerPatience, ImprovementsBelowTheMarginDoNotResetPatienceButTheBestStateIsTheLowest) {
  // Every evaluation improves, by less than 1%: patience 2 stops at evaluation 2, and the phase
  // keeps its last state, which is its best.
  ScriptedPhase phase({1.0, 0.999, 0.998, 0.5}, /*max_iter=*/40);
  const PhaseResult r = run(phase, patience_config(2, 1e-2));
  EXPECT_TRUE(r.early_stopped);
  EXPECT_EQ(r.iterations, 30);
  EXPECT_EQ(r.best_iteration, 0);
  EXPECT_EQ(r.val_loss, 0.998);
  EXPECT_TRUE(at::equal(phase.w, phase.seen[2]));
}

TEST(TrainerPatience, APhaseThatRunsItsBudgetStillReturnsToItsBestState) {
  ScriptedPhase phase({1.0, 0.4, 0.45}, /*max_iter=*/30);
  const PhaseResult r = run(phase, patience_config(5, 1e-3));
  EXPECT_FALSE(r.early_stopped);
  EXPECT_EQ(r.iterations, 30);
  EXPECT_EQ(r.best_iteration, 20);
  EXPECT_EQ(r.val_loss, 0.4);
  EXPECT_TRUE(at::equal(phase.w, phase.seen[1]));
}

TEST(TrainerPatience, OffByDefaultKeepsTheLastState) {
  ScriptedPhase phase({1.0, 0.5, 0.6, 0.7, 0.8, 0.9}, /*max_iter=*/60);
  const PhaseResult r = run(phase, patience_config(0, 1e-3));
  EXPECT_EQ(EngineConfig().early_stop_patience, 0);
  EXPECT_FALSE(r.early_stopped);  // the moving-mean rule needs 10 evaluations
  EXPECT_EQ(r.iterations, 60);
  EXPECT_EQ(r.best_iteration, 0);
  EXPECT_EQ(r.val_loss, 0.9);
  EXPECT_TRUE(at::equal(phase.w, phase.seen.back()));
}

TEST(TrainerPatience, ConfigRejectsNegativePatienceAndMarginsOutsideTheUnitInterval) {
  EXPECT_THROW(EngineConfig().set_early_stop_patience(-1).validate(), std::invalid_argument);
  EXPECT_THROW(EngineConfig().set_early_stop_min_delta(1.0).validate(), std::invalid_argument);
  EXPECT_THROW(EngineConfig().set_early_stop_min_delta(-0.1).validate(), std::invalid_argument);
  EXPECT_NO_THROW(EngineConfig().set_early_stop_patience(3).set_early_stop_min_delta(0).validate());
}

// NOTE: [zeroed-group momentum] A row that one step brings exactly to zero, after which its gradient
// vanishes: Adam's momentum alone moves it out again at the next step, unless the reset clears it.
TEST(TrainerZeroedGroups, MomentumRevivesAZeroedRowUnlessReset) {
  const auto run_two_steps = [](bool reset) {
    const double lr = 0.1;
    at::Tensor w = at::full({1, 4}, lr, at::kFloat);  // Adam's first step (lr * sign(g)) lands on zero
    int64_t calls = 0;
    Objective o;
    o.num_samples = 4;
    o.batch_loss = [&](const at::Tensor&) { return w.sum() * (calls++ == 0 ? 1.0 : 0.0); };
    o.validation_loss = [] { return 0.0; };
    PhaseSpec spec;
    spec.name = "expansion";
    spec.max_iter = 2;
    spec.gamma = 1e-3;  // only removes float residue: the first step's own rounding
    spec.params.push_back({&w, {}, {}, at::ones({1}, at::kByte), {}});
    const EngineConfig config = EngineConfig().set_lr(lr).set_batch_size(4).set_reset_zeroed_moments(reset);
    Trainer(config, at::make_generator<at::CPUGeneratorImpl>(1)).train(o, 1, spec, {});
    return w;
  };
  const at::Tensor kept = run_two_steps(false);
  const at::Tensor reset = run_two_steps(true);
  EXPECT_GT(kept.norm().item<double>(), 0.05) << kept;  // about 0.67 lr per element, by momentum
  EXPECT_TRUE(reset.eq(0).all().item<bool>()) << reset;
}

}  // namespace den::engine
