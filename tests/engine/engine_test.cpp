#include "engine/engine.h"
#include "engine/engine_state.h"
#include "engine/den/masks.h"
#include "engine/evaluation/metrics.h"
#include "engine/evaluation/run.h"
#include "synthetic.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <type_traits>

namespace den::engine {

namespace {

EngineConfig small_config() {
  return EngineConfig().set_hidden({24, 12}).set_max_iter(300).set_batch_size(64).set_eval_every(50).set_k(4);
}

testing::SyntheticSpec spec() { return {}; }

}  // namespace

TEST(Engine, SelectiveRetrainingLeavesWeightsOutsideTheSubnetworkBitIdentical) {
  // Strong L1 so task 1 is sparse: the zero features lose all their weights, and with k = 0 and a
  // huge sigma task 2 is selective retraining alone.
  Engine engine(small_config().set_mu(1e-3).set_lr(3e-3).set_l2(0).set_k(0).set_sigma(1e9), spec().dim);
  engine.add_task(testing::synthetic_task(1));
  const std::vector<at::Tensor> before = engine.network().snapshot_layers();
  const TaskReport report = engine.add_task(testing::synthetic_task(2));

  const graph::Subnetwork& s = report.subnetwork;
  ASSERT_EQ(s.hidden.size(), 2u);
  EXPECT_LT(static_cast<int64_t>(s.inputs.size()), spec().dim);  // zero features are not reached
  bool changed_inside = false;
  for (int64_t l = 0; l < 2; ++l) {
    const at::Tensor& after = engine.network().layer(l);
    ASSERT_EQ(after.sizes(), before[l].sizes());
    const std::vector<int64_t>& cols = l == 0 ? s.inputs : s.hidden[0];
    at::Tensor inside = at::zeros_like(after, at::kBool);
    for (int64_t r : s.hidden[l]) {
      for (int64_t c : cols) inside[r][c] = true;
      inside[r][after.size(1) - 1] = true;  // the bias belongs to the unit
    }
    const at::Tensor outside = inside.logical_not();
    EXPECT_TRUE(at::equal(after.masked_select(outside), before[l].masked_select(outside))) << "layer " << l;
    changed_inside |= !at::equal(after.masked_select(inside), before[l].masked_select(inside));
  }
  EXPECT_TRUE(changed_inside);
}

TEST(Engine, EarlierTaskOutputsAreBitIdenticalAfterATaskThatOnlyAddsUnits) {
  Engine engine(small_config().set_freeze_existing(true).set_tau(0), spec().dim);
  engine.add_task(testing::synthetic_task(1));
  const at::Tensor x = testing::synthetic_task(9).test_x;
  const at::Tensor before = engine.predict(1, x);
  const TaskReport r2 = engine.add_task(testing::synthetic_task(2));
  const TaskReport r3 = engine.add_task(testing::synthetic_task(3));
  EXPECT_TRUE(r2.expanded);
  EXPECT_GT(engine.graph().layer_size(0), 24);  // units were added
  EXPECT_TRUE(at::equal(engine.predict(1, x), before));
  EXPECT_EQ(engine.predict(2, x).size(1), 3);
  (void)r3;
}

double task_accuracy(const Engine& engine, int64_t task_id, const Task& task) {
  return accuracy(engine.predict(task_id, task.test_x), task.test_y);
}

// NOTE: [frozen-existing head]: the new head trains whole, bias and columns on old units included.
TEST(Engine, FreezeExistingTrainsTheWholeNewHead) {
  const Task task2 = testing::synthetic_task(2);
  {
    Engine engine(small_config().set_freeze_existing(true).set_tau(0), spec().dim);
    engine.add_task(testing::synthetic_task(1));
    engine.add_task(task2);
    const at::Tensor& head = engine.network().head(2);
    const at::Tensor bias = head.select(1, head.size(1) - 1);
    EXPECT_TRUE(bias.ne(0).all().item<bool>()) << bias;  // a head's bias starts at zero
    EXPECT_GT(task_accuracy(engine, 2, task2), 0.8);       // chance is 1/3
  }
  {
    // With k = 0 nothing grows: only the head on the frozen old units can learn. Task 1 with its
    // labels permuted is learnable from task 1's features, by the head alone.
    Engine engine(small_config().set_freeze_existing(true).set_tau(0).set_k(0).set_max_iter(1500), spec().dim);
    engine.add_task(testing::synthetic_task(1));
    Task relabelled = testing::synthetic_task(1);
    for (at::Tensor* y : {&relabelled.train_y, &relabelled.val_y, &relabelled.test_y}) *y = (*y + 1).remainder(3);
    const at::Tensor x = relabelled.test_x;
    const at::Tensor task1_before = engine.predict(1, x);
    const std::vector<at::Tensor> layers_before = engine.network().snapshot_layers();
    const TaskReport r2 = engine.add_task(relabelled);
    ASSERT_EQ(r2.phases.size(), 1u);
    EXPECT_EQ(r2.phases[0].name, "head");
    EXPECT_GT(task_accuracy(engine, 2, relabelled), 0.8);
    EXPECT_TRUE(at::equal(engine.predict(1, x), task1_before));
    for (int64_t l = 0; l < 2; ++l) EXPECT_TRUE(at::equal(engine.network().layer(l), layers_before[l]));
  }
}

// NOTE: [patience]: a phase that stops on patience leaves the engine in its best state, the one
// its report describes, and weights outside the subnetwork keep their bits.
TEST(Engine, PatienceStopsPhasesAndLeavesTheReportedState) {
  // A loose margin so that phases stop early; k = 0 and a huge sigma: selective retraining is the
  // task's last phase.
  Engine engine(small_config().set_k(0).set_sigma(1e9).set_max_iter(600).set_eval_every(20)
                    .set_early_stop_patience(2).set_early_stop_min_delta(0.05),
                spec().dim);
  engine.add_task(testing::synthetic_task(1));
  const std::vector<at::Tensor> before = engine.network().snapshot_layers();
  const TaskReport r = engine.add_task(testing::synthetic_task(2));
  ASSERT_EQ(r.phases.back().name, "selective");
  bool stopped = false;
  for (const PhaseResult& p : r.phases) stopped |= p.early_stopped && p.iterations < 600;
  EXPECT_TRUE(stopped);
  EXPECT_NEAR(r.val_loss, r.phases.back().val_loss, 1e-5);
  EXPECT_NEAR(r.val_loss_after_selective, r.phases.back().val_loss, 1e-5);
  const std::vector<int64_t>& units = r.subnetwork.hidden[1];
  at::Tensor outside = at::ones({before[1].size(0)}, at::kBool);
  for (int64_t u : units) outside[u] = false;
  EXPECT_TRUE(at::equal(engine.network().layer(1).index_select(0, outside.nonzero().view(-1)),
                        before[1].index_select(0, outside.nonzero().view(-1))));
}

// NOTE: [prune to fixpoint]: after the same training, pruning to a fixpoint removes at least what
// one sweep removes, leaves no new unit without inputs or outputs, and changes no earlier task.
TEST(Engine, PruningToAFixpointLeavesNoDeadNewUnits) {
  const EngineConfig base = small_config().set_freeze_existing(true).set_tau(0).set_k(8).set_gamma(0.02);
  Engine once(base, spec().dim);
  Engine fixpoint(EngineConfig(base).set_prune_to_fixpoint(true), spec().dim);
  const at::Tensor x = testing::synthetic_task(9).test_x;
  once.add_task(testing::synthetic_task(1));
  fixpoint.add_task(testing::synthetic_task(1));
  const at::Tensor task1 = fixpoint.predict(1, x);
  const TaskReport a = once.add_task(testing::synthetic_task(2));
  const TaskReport b = fixpoint.add_task(testing::synthetic_task(2));
  int64_t extra = 0;
  for (int64_t l = 0; l < 2; ++l) {
    EXPECT_GE(b.pruned[l], a.pruned[l]) << "layer " << l;
    extra += b.pruned[l] - a.pruned[l];
  }
  EXPECT_TRUE(at::equal(fixpoint.predict(1, x), task1));
  const Network& net = fixpoint.network();
  for (int64_t l = 0; l < 2; ++l) {
    const int64_t first_new = small_config().layers[l].units;
    const int64_t fresh = net.layer_size(l) - first_new;
    EXPECT_TRUE(net.layer(l).narrow(0, first_new, fresh).ne(0).any(1).all().item<bool>()) << "layer " << l;
    const at::Tensor& above = l == 0 ? net.layer(1) : net.head(2);
    EXPECT_TRUE(above.narrow(1, first_new, fresh).ne(0).any(0).all().item<bool>()) << "layer " << l;
  }
  // Task 2's outputs are those of the same weights before pruning, which `once` kept.
  EXPECT_TRUE(at::allclose(fixpoint.predict(2, x), once.predict(2, x), 1e-5, 1e-5)) << extra << " more pruned";
}

// Split retraining end to end: restored originals keep their t-1 rows exactly, and old units that
// were neither selected nor split keep their pre-existing weights and bias bit for bit.
TEST(Engine, SplitRetrainingMovesOnlyWhatItsMasksAllow) {
  Engine engine(small_config().set_tau(0).set_sigma(0.01), spec().dim);
  engine.add_task(testing::synthetic_task(1));
  const std::vector<at::Tensor> previous = engine.network().snapshot_layers();
  const TaskReport r = engine.add_task(testing::synthetic_task(2));
  ASSERT_FALSE(r.split_pairs.empty());
  ASSERT_EQ(r.phases.back().name, "split");
  for (int64_t l = 0; l < 2; ++l) {
    const at::Tensor& w = engine.network().layer(l);
    const int64_t old_rows = previous[l].size(0), old_cols = previous[l].size(1) - 1;
    std::vector<bool> free(static_cast<size_t>(old_rows), true);  // neither selected nor split
    for (int64_t u : r.subnetwork.hidden[l]) free[u] = false;
    for (const SplitPair& p : r.split_pairs) {
      if (p.layer != l) continue;
      int64_t original = -1;
      const std::vector<graph::Unit>& units = engine.graph().units(l);
      for (size_t i = 0; i < units.size(); ++i) {
        if (units[i].id == p.original_id) original = static_cast<int64_t>(i);
      }
      ASSERT_TRUE(original >= 0 && original < old_rows);
      free[original] = false;
      const at::Tensor row = w.select(0, original);
      EXPECT_TRUE(at::equal(row, pad_augmented(previous[l].narrow(0, original, 1), 1, w.size(1)).squeeze(0)))
          << "layer " << l << " original " << original;
    }
    for (int64_t u = 0; u < old_rows; ++u) {
      if (!free[u]) continue;
      const at::Tensor now = w.select(0, u), then = previous[l].select(0, u);
      EXPECT_TRUE(at::equal(now.narrow(0, 0, old_cols), then.narrow(0, 0, old_cols))) << "layer " << l << " unit " << u;
      EXPECT_TRUE(at::equal(now.select(0, w.size(1) - 1), then.select(0, old_cols))) << "layer " << l << " unit " << u;
    }
  }
}

TEST(Engine, SplitPolicyAfterExpansionSplitsOnlyWhenTheTaskExpanded) {
  const auto split_ran = [](const TaskReport& r) {
    bool ran = false;
    for (const PhaseResult& p : r.phases) ran |= p.name == "split";
    return ran;
  };
  const EngineConfig base = small_config().set_max_iter(150).set_sigma(0.01);
  {  // after-expansion, no expansion (tau unreachable): drifted units stay unsplit
    Engine engine(EngineConfig(base).set_split_policy(SplitPolicy::AfterExpansion).set_tau(1e9), spec().dim);
    engine.add_task(testing::synthetic_task(1));
    const TaskReport r = engine.add_task(testing::synthetic_task(2));
    EXPECT_FALSE(r.expanded);
    EXPECT_TRUE(r.split_pairs.empty());
    EXPECT_FALSE(split_ran(r));
    EXPECT_EQ(r.split, (std::vector<int64_t>{0, 0}));
    EXPECT_EQ(engine.graph().layer_sizes(), layer_units(small_config().layers));
  }
  {  // after-expansion with an expansion: splits
    Engine engine(EngineConfig(base).set_split_policy(SplitPolicy::AfterExpansion).set_tau(0), spec().dim);
    engine.add_task(testing::synthetic_task(1));
    const TaskReport r = engine.add_task(testing::synthetic_task(2));
    EXPECT_TRUE(r.expanded);
    EXPECT_FALSE(r.split_pairs.empty());
    EXPECT_TRUE(split_ran(r));
  }
  {  // always (the paper): splits without an expansion too
    Engine engine(EngineConfig(base).set_split_policy(SplitPolicy::Always).set_tau(1e9), spec().dim);
    engine.add_task(testing::synthetic_task(1));
    const TaskReport r = engine.add_task(testing::synthetic_task(2));
    EXPECT_FALSE(r.expanded);
    EXPECT_FALSE(r.split_pairs.empty());
    EXPECT_TRUE(split_ran(r));
  }
}

TEST(Engine, UnitsBornLaterDoNotEnterEarlierTasks) {
  Engine engine(small_config().set_tau(0).set_sigma(0.01), spec().dim);
  engine.add_task(testing::synthetic_task(1));
  engine.add_task(testing::synthetic_task(2));
  // Task 1's prediction equals a forward pass through the units born at stage 1 only.
  const at::Tensor x = testing::synthetic_task(9).test_x;
  std::vector<at::Tensor> layers;
  at::Tensor cols;
  for (int64_t l = 0; l < 2; ++l) {
    const std::vector<int64_t> rows = engine.graph().visible_units(l, 1);
    EXPECT_EQ(static_cast<int64_t>(rows.size()), small_config().layers[l].units);
    at::Tensor w = engine.network().layer(l).index_select(0, at::tensor(rows));
    if (cols.defined()) w = w.index_select(1, cols);
    layers.push_back(w);
    std::vector<int64_t> next = rows;
    next.push_back(engine.network().layer_size(l));
    cols = at::tensor(next);
  }
  const at::Tensor expected = engine.network().forward(layers, engine.network().head(1).index_select(1, cols), x);
  EXPECT_TRUE(at::allclose(engine.predict(1, x), expected, 1e-5, 1e-6));
}

/// predict_all must give each task what predict gives it (NOTE: [shared first layer]).
void expect_predict_all_matches_predict(const Engine& engine, const at::Tensor& x) {
  const std::vector<at::Tensor> all = engine.predict_all(x);
  ASSERT_EQ(static_cast<int64_t>(all.size()), engine.num_tasks());
  for (int64_t s = 1; s <= engine.num_tasks(); ++s) {
    const at::Tensor alone = engine.predict(s, x);
    ASSERT_EQ(all[s - 1].sizes(), alone.sizes()) << "task " << s;
    EXPECT_TRUE(at::allclose(all[s - 1], alone, 1e-5, 1e-6)) << "task " << s;
  }
}

TEST(Engine, PredictAllGivesEveryTaskItsOwnPrediction) {
  Engine engine(small_config().set_tau(0).set_sigma(0.01), spec().dim);
  EXPECT_TRUE(engine.predict_all(at::zeros({2, spec().dim})).empty());
  for (int64_t t = 1; t <= 3; ++t) engine.add_task(testing::synthetic_task(t));
  ASSERT_GT(engine.graph().layer_size(0), small_config().layers[0].units);  // units were added or split
  const at::Tensor x = testing::synthetic_task(9).test_x;
  expect_predict_all_matches_predict(engine, x);
  EXPECT_THROW(engine.predict_all(at::zeros({2, spec().dim + 1})), std::invalid_argument);

  // A state whose stages are not in row order (say, from a checkpoint written elsewhere): task 1's
  // first-layer units are then not the leading rows, and are gathered.
  EngineState state = engine.state().clone();
  const int64_t first_rows = state.graph.layer_size(0);
  state.graph.add_units(0, 1, 1, graph::Origin::Expanded);
  state.layers[0] = at::cat({state.layers[0], at::rand({1, state.layers[0].size(1)})});
  const at::Tensor& second = state.layers[1];
  state.layers[1] = at::cat({second.narrow(1, 0, first_rows), at::rand({second.size(0), 1}),
                             second.narrow(1, first_rows, 1)}, 1);
  const Engine restored = Engine::from_state(std::move(state));
  ASSERT_EQ(restored.graph().visible_units(0, 1).back(), first_rows);
  expect_predict_all_matches_predict(restored, x);
}

TEST(Engine, LearnsThreeTasksAndGrows) {
  Engine engine(small_config().set_tau(0), spec().dim);
  const RunResult result = run_stream(engine, 3, [](int64_t t) { return testing::synthetic_task(100 + t); });
  ASSERT_EQ(result.tasks.size(), 3u);
  for (const auto& row : result.accuracy_matrix) {
    for (double acc : row) EXPECT_GT(acc, 0.8);  // chance is 1/3
  }
  EXPECT_GT(result.avg_auroc, 0.9);
  int64_t added = 0;
  for (const TaskReport& r : result.tasks) {
    for (int64_t a : r.added) added += a;
  }
  EXPECT_GT(added, 0);
  EXPECT_GT(result.params, result.base_params);
  EXPECT_EQ(engine.graph().num_heads(), 3);
}

TEST(Engine, RejectsBadTasksAndStaysUnchanged) {
  Engine engine(small_config().set_max_iter(20), spec().dim);
  testing::SyntheticSpec wide = spec();
  wide.dim = 21;
  engine::Task wrong_width = testing::synthetic_task(1, wide);
  EXPECT_THROW(engine.add_task(wrong_width), std::invalid_argument);
  engine::Task bad_label = testing::synthetic_task(1);
  bad_label.train_y[3] = 7;
  try {
    engine.add_task(bad_label);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("label 7"), std::string::npos) << e.what();
  }
  engine::Task nan_task = testing::synthetic_task(1);
  nan_task.val_x[5][2] = std::nanf("");
  EXPECT_THROW(engine.add_task(nan_task), std::invalid_argument);
  engine::Task empty = testing::synthetic_task(1);
  empty.train_x = at::empty({0, spec().dim});
  empty.train_y = at::empty({0}, at::kLong);
  EXPECT_THROW(engine.add_task(empty), std::invalid_argument);
  EXPECT_EQ(engine.num_tasks(), 0);
  EXPECT_EQ(engine.graph().num_heads(), 0);
}

TEST(Engine, PredictRejectsUnknownTaskWrongWidthAndNaN) {
  Engine engine(small_config().set_max_iter(20), spec().dim);
  EXPECT_THROW(engine.predict(1, at::zeros({2, spec().dim})), std::invalid_argument);
  engine.add_task(testing::synthetic_task(1));
  try {
    engine.predict(2, at::zeros({2, spec().dim}));
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("unknown task id 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(engine.predict(0, at::zeros({2, spec().dim})), std::invalid_argument);
  EXPECT_THROW(engine.predict(1, at::zeros({2, spec().dim + 1})), std::invalid_argument);
  at::Tensor x = at::zeros({2, spec().dim});
  x[1][0] = std::nanf("");
  EXPECT_THROW(engine.predict(1, x), std::invalid_argument);
  EXPECT_EQ(engine.predict(1, at::zeros({2, spec().dim})).sizes(), (std::vector<int64_t>{2, 3}));
}

TEST(Engine, CudaDeviceWithoutCudaIsAClearError) {
  if (at::hasCUDA()) GTEST_SKIP() << "this LibTorch has CUDA";
  try {
    Engine engine(small_config().set_device("cuda"), 5);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("without CUDA support"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Engine(small_config().set_device("tpu"), 5), std::invalid_argument);
}

TEST(Engine, ConstructorValidatesConfigAndWidth) {
  EXPECT_THROW(Engine(EngineConfig().set_hidden({10, 0}), 5), std::invalid_argument);
  EXPECT_THROW(Engine(EngineConfig(), 0), std::invalid_argument);
}

TEST(Engine, SigmoidHeadsLearnToo) {
  Engine engine(small_config().set_loss(LossKind::Sigmoid), spec().dim);
  const engine::Task task = testing::synthetic_task(5);
  engine.add_task(task);
  EXPECT_GT(accuracy(engine.predict_scores(1, task.test_x), task.test_y), 0.8);
  const at::Tensor scores = engine.predict_scores(1, task.test_x);
  EXPECT_GE(scores.min().item<float>(), 0.0f);
  EXPECT_LE(scores.max().item<float>(), 1.0f);
}

}  // namespace den::engine

namespace den::engine {

static_assert(!std::is_copy_constructible_v<Engine> && !std::is_copy_assignable_v<Engine>,
              "a member-wise copy of an Engine would share its tensors: Engine::clone() is the deep copy");
static_assert(std::is_move_constructible_v<Engine>);

TEST(Engine, CloneIsIndependentOfTheOriginal) {
  Engine original(small_config().set_max_iter(100), spec().dim);
  original.add_task(testing::synthetic_task(1));
  const at::Tensor x = testing::synthetic_task(9).test_x;
  const at::Tensor before = original.predict(1, x);
  const std::vector<at::Tensor> layers_before = original.network().snapshot_layers();

  Engine copy = original.clone();
  EXPECT_TRUE(at::equal(copy.predict(1, x), before));
  copy.add_task(testing::synthetic_task(2));
  ASSERT_EQ(copy.num_tasks(), 2);

  EXPECT_EQ(original.num_tasks(), 1);
  EXPECT_EQ(original.history().size(), 1u);
  EXPECT_TRUE(at::equal(original.predict(1, x), before));
  for (size_t l = 0; l < layers_before.size(); ++l) {
    EXPECT_TRUE(at::equal(original.network().layer(static_cast<int64_t>(l)), layers_before[l])) << "layer " << l;
  }
  // The generator state was copied, not shared: the original learns task 2 as the clone did.
  original.add_task(testing::synthetic_task(2));
  EXPECT_TRUE(at::equal(original.predict(2, x), copy.predict(2, x)));

  Engine moved = std::move(copy);  // moving keeps everything
  EXPECT_EQ(moved.num_tasks(), 2);
}

}  // namespace den::engine

namespace den::engine {

// Concurrent predicts fill the per-task caches from several threads at once; every result equals the
// serial one. (scripts/tsan.sh runs this under ThreadSanitizer.)
TEST(EngineConcurrency, PredictFromEightThreadsEqualsSerialPredict) {
  Engine trained(small_config().set_max_iter(100).set_tau(0), spec().dim);
  for (int64_t t = 1; t <= 3; ++t) trained.add_task(testing::synthetic_task(t));
  const at::Tensor x = testing::synthetic_task(9).test_x;
  const Engine serial = trained.clone();
  std::vector<at::Tensor> want;
  for (int64_t t = 1; t <= 3; ++t) want.push_back(serial.predict(t, x));
  const std::vector<at::Tensor> want_all = serial.predict_all(x);

  const Engine shared = trained.clone();  // empty caches: the threads race to fill them
  constexpr int kThreads = 8;
  std::vector<std::vector<at::Tensor>> got(kThreads);
  std::vector<std::vector<at::Tensor>> got_all(kThreads);
  std::vector<std::thread> threads;
  std::atomic<int> waiting{kThreads};
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      // All threads start at once, so that their first predicts overlap in the cache fill.
      waiting.fetch_sub(1);
      while (waiting.load() > 0) std::this_thread::yield();
      for (int64_t k = 0; k < 3; ++k) {
        const int64_t t = 1 + (i + k) % 3;  // threads start on different tasks
        got[i].resize(3);
        got[i][t - 1] = shared.predict(t, x);
      }
      got_all[i] = shared.predict_all(x);
    });
  }
  for (std::thread& th : threads) th.join();
  for (int i = 0; i < kThreads; ++i) {
    for (int64_t t = 0; t < 3; ++t) EXPECT_TRUE(at::equal(got[i][t], want[t])) << "thread " << i << " task " << t + 1;
    ASSERT_EQ(got_all[i].size(), want_all.size());
    for (size_t t = 0; t < want_all.size(); ++t) EXPECT_TRUE(at::equal(got_all[i][t], want_all[t])) << "thread " << i;
  }
}

}  // namespace den::engine
