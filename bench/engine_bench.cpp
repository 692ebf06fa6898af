// Google Benchmark suite for the engine: the phases of add_task, cost growth over tasks, and
// predict latency. Every figure comes with its ratio to sgemm (or to a plain Linear stack)
// measured in the same process, since only ratios are stable on a shared machine.

#include "bench/bench_util.h"
#include "engine/engine.h"
#include "engine/engine_state.h"

#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <numeric>

namespace den::bench {
namespace {

constexpr int64_t kInput = 784;
constexpr int64_t kBatch = 256;
constexpr int64_t kEvalEvery = 100;
const std::vector<int64_t> kHidden = {312, 128};

engine::EngineConfig bench_config(int64_t iters) {
  return engine::EngineConfig().set_hidden(kHidden).set_max_iter(iters).set_batch_size(kBatch).set_tau(0).set_eval_every(
      kEvalEvery);
}

/// The matrix products of one phase of add_task on `hidden` units, trained from layer
/// `lowest_trained` up: its training steps and its validation passes (a forward pass over the
/// validation samples every eval_every iterations and at the last, Trainer::train). Frozen
/// first-layer rows, and the second layer's block on them, are multiplied once per cached sample
/// instead of once per step or pass (NOTE: [frozen first-layer rows], engine/training/frozen_rows.h).
std::vector<Product> phase_products(const engine::PhaseResult& phase, const std::vector<int64_t>& hidden,
                                    size_t lowest_trained) {
  const int64_t first_layer_rows = phase.frozen_first_rows > 0 ? hidden[0] - phase.frozen_first_rows : -1;
  const auto shapes = mlp_shapes(kInput, hidden, 10);
  std::vector<Product> products =
      step_products(shapes, kBatch, lowest_trained, first_layer_rows, phase.frozen_second_rows);
  for (Product& p : products) p.count = static_cast<double>(phase.iterations);
  const int64_t evaluations = std::max<int64_t>(1, (phase.iterations + kEvalEvery - 1) / kEvalEvery);
  // Validation runs on min(max_eval_samples, validation split) samples.
  const int64_t val_samples = std::min(kSyntheticValSamples, bench_config(0).max_eval_samples);
  for (Product p : step_products(shapes, val_samples, /*lowest_trained=*/shapes.size(), first_layer_rows,
                                 phase.frozen_second_rows)) {
    p.count = static_cast<double>(evaluations);
    products.push_back(p);
  }
  const double fill_batches = static_cast<double>(phase.cached_samples) / kBatch;
  if (phase.cached_samples > 0) products.push_back({kBatch, phase.frozen_first_rows, kInput, fill_batches});
  if (phase.frozen_second_rows > 0) {
    products.push_back({kBatch, phase.frozen_second_rows, phase.frozen_first_rows, fill_batches});
  }
  return products;
}

/// The hidden sizes each phase of task report `r` ran on (expansion before its pruning), given
/// the sizes before the task and the engine's k.
std::vector<int64_t> phase_hidden(const engine::PhaseResult& phase, const engine::TaskReport& r,
                                  std::vector<int64_t> before, int64_t k) {
  if (phase.name == "expansion") {
    for (int64_t& h : before) h += k;
  } else if (phase.name == "split" || phase.name == "train") {
    return r.hidden_units;
  }
  return before;
}

size_t lowest_trained(const engine::PhaseResult& phase) { return phase.name == "head" ? kHidden.size() : 0; }

/// Counters for one phase: samples/s, GFLOP/s, and its ratio to sgemm at the same products.
/// Returns the seconds those products take at sgemm speed.
double phase_counters(benchmark::State& state, const engine::PhaseResult& phase, const std::vector<int64_t>& hidden) {
  const std::vector<Product> products = phase_products(phase, hidden, lowest_trained(phase));
  const double flops = total_flops(products);
  const double sgemm_s = sgemm_seconds(products);
  state.counters[phase.name + "_samples_per_s"] = static_cast<double>(phase.iterations * kBatch) / phase.seconds;
  state.counters[phase.name + "_gflops"] = flops / phase.seconds / 1e9;
  // Achieved GFLOP/s over sgemm's at the same products: sgemm's seconds over the phase's.
  state.counters[phase.name + "_sgemm_ratio"] = sgemm_s / phase.seconds;
  // Everything but the phase's matrix products, as a fraction of the phase's wall time; of it, the
  // optimizer steps (the fused masked Adam), which any training loop pays.
  state.counters[phase.name + "_overhead"] = 1.0 - sgemm_s / phase.seconds;
  state.counters[phase.name + "_optimizer_share"] = phase.optimizer_seconds / phase.seconds;
  return sgemm_s;
}

/// Task 1 (sparse training of the whole network) and task 2 (sparse head, selective retraining,
/// expansion, split) on fixed seeded data; one counter set per phase.
void BM_AddTaskPhases(benchmark::State& state) {
  const int64_t iters = state.range(0);
  const engine::Task task1 = synthetic_task(1), task2 = synthetic_task(2);
  for (auto _ : state) {
    engine::Engine den(bench_config(iters), kInput);
    const engine::TaskReport r1 = den.add_task(task1);
    const engine::TaskReport r2 = den.add_task(task2);
    state.SetIterationTime(r1.seconds + r2.seconds);
    phase_counters(state, r1.phases.at(0), kHidden);
    double product_seconds = 0.0;
    for (const engine::PhaseResult& p : r2.phases) {
      product_seconds += phase_counters(state, p, phase_hidden(p, r2, kHidden, den.config().k));
    }
    // The whole of task 2's add_task (phases, subnetwork search, split and pruning, validation
    // losses): everything but the matrix products, as a fraction of its wall time.
    state.counters["add_task_overhead"] = 1.0 - product_seconds / r2.seconds;
  }
}
BENCHMARK(BM_AddTaskPhases)->ArgName("iters")->Arg(300)->UseManualTime()->Iterations(1)->Unit(benchmark::kSecond);

/// add_task cost as the stream goes on, on equal data: the same task learned as task 2 (after one
/// earlier task) and as task 10 (after nine), each timed kRepeats times from a snapshot of the
/// engine, median taken (one ~2 s sample varies by +-20% on a shared machine).
void BM_TaskCostGrowth(benchmark::State& state) {
  constexpr int kRepeats = 3;
  const int64_t iters = state.range(0);
  const engine::Task probe = synthetic_task(200);
  for (auto _ : state) {
    engine::Engine den(bench_config(iters), kInput);
    std::vector<engine::EngineState> snapshots;  // after task 1 and after task 9
    for (int64_t t = 1; t <= 9; ++t) {
      den.add_task(synthetic_task(100 + t));
      if (t == 1 || t == 9) snapshots.push_back(den.state().clone());
    }
    // Per snapshot: the median of kRepeats add_task runs, and its product FLOPs.
    std::vector<engine::TaskReport> median;
    std::vector<double> seconds, gflop;
    for (const engine::EngineState& snapshot : snapshots) {
      std::vector<engine::TaskReport> runs;
      for (int r = 0; r < kRepeats; ++r) {
        engine::Engine again = engine::Engine::from_state(snapshot.clone());
        runs.push_back(again.add_task(probe));
      }
      std::sort(runs.begin(), runs.end(), [](const auto& a, const auto& b) { return a.seconds < b.seconds; });
      median.push_back(runs[kRepeats / 2]);
      double task_flops = 0.0;
      for (const engine::PhaseResult& p : median.back().phases) {
        const auto hidden = phase_hidden(p, median.back(), snapshot.graph.layer_sizes(), snapshot.config.k);
        task_flops += total_flops(phase_products(p, hidden, lowest_trained(p)));
      }
      seconds.push_back(median.back().seconds);
      gflop.push_back(task_flops / 1e9);
    }
    // Phase by phase, to show which phases grow with the network.
    for (const engine::PhaseResult& late : median[1].phases) {
      for (const engine::PhaseResult& early : median[0].phases) {
        if (early.name == late.name) state.counters[late.name + "_task10_over_task2"] = late.seconds / early.seconds;
      }
    }
    state.SetIterationTime(seconds[0] + seconds[1]);
    state.counters["task2_s"] = seconds[0];
    state.counters["task10_s"] = seconds[1];
    state.counters["task10_over_task2"] = seconds[1] / seconds[0];
    // The network grows over the stream, so the subnetwork task 10 retrains holds more units and
    // its products more FLOPs; per FLOP, a flat ratio means the rest does not grow with the tasks.
    state.counters["task2_gflop"] = gflop[0];
    state.counters["task10_gflop"] = gflop[1];
    state.counters["task10_over_task2_per_flop"] = (seconds[1] / gflop[1]) / (seconds[0] / gflop[0]);
    state.counters["hidden_l1_task2"] = static_cast<double>(snapshots[0].graph.layer_size(0));
    state.counters["hidden_l1_task10"] = static_cast<double>(snapshots[1].graph.layer_size(0));
  }
}
BENCHMARK(BM_TaskCostGrowth)->ArgName("iters")->Arg(150)->UseManualTime()->Iterations(1)->Unit(benchmark::kSecond);

/// Mean seconds of `fn` over enough calls to fill ~0.2 s.
template <typename Fn>
double mean_seconds(Fn&& fn) {
  fn();
  int64_t calls = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0.0;
  while (elapsed < 0.2) {
    fn();
    ++calls;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return elapsed / static_cast<double>(calls);
}

/// predict(1, x) after three tasks grew the network: the compacted subnetwork of task 1, the full
/// network with later units masked out, and a plain Linear stack of task 1's size.
void BM_PredictLatency(benchmark::State& state) {
  const int64_t batch = state.range(0);
  engine::Engine den(bench_config(50), kInput);
  for (uint64_t t = 1; t <= 3; ++t) den.add_task(synthetic_task(200 + t, kInput, 10, 2000, 500));
  const at::Tensor x = at::randn({batch, kInput});

  // A plain Linear stack with task 1's shapes: contiguous weights, separate biases.
  std::vector<at::Tensor> weights, biases;
  int64_t n_in = kInput;
  for (int64_t h : std::vector<int64_t>{kHidden[0], kHidden[1], 10}) {
    weights.push_back(at::randn({h, n_in}));
    biases.push_back(at::randn({h}));
    n_in = h;
  }
  auto linear_stack = [&] {
    at::NoGradGuard no_grad;
    at::Tensor h = x;
    for (size_t l = 0; l < weights.size(); ++l) {
      h = at::addmm(biases[l], h, weights[l].t());
      if (l + 1 < weights.size()) h = at::relu(h);
    }
    return h;
  };
  // The full grown network, with units born after task 1 zeroed instead of removed.
  std::vector<at::Tensor> visible;
  for (int64_t l = 0; l < den.graph().num_layers(); ++l) {
    at::Tensor mask = at::zeros({den.graph().layer_size(l)});
    mask.index_fill_(0, at::tensor(den.graph().visible_units(l, 1)), 1.0);
    visible.push_back(mask);
  }
  auto masked = [&] {
    at::NoGradGuard no_grad;
    at::Tensor h = x;
    for (int64_t l = 0; l < den.network().num_layers(); ++l) {
      h = at::relu(engine::affine(h, den.network().layer(l))).mul_(visible[l]);
    }
    return engine::affine(h, den.network().head(1));
  };

  for (auto _ : state) {
    const double compact_s = mean_seconds([&] { return den.predict(1, x); });
    const double masked_s = mean_seconds(masked);
    const double linear_s = mean_seconds(linear_stack);
    state.SetIterationTime(compact_s);
    state.counters["compact_us"] = compact_s * 1e6;
    state.counters["masked_us"] = masked_s * 1e6;
    state.counters["linear_us"] = linear_s * 1e6;
    state.counters["compact_over_linear"] = compact_s / linear_s;
    state.counters["masked_over_compact"] = masked_s / compact_s;
  }
}
BENCHMARK(BM_PredictLatency)->ArgName("batch")->Arg(1)->Arg(256)->UseManualTime()->Iterations(1)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace den::bench
