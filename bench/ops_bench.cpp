// Google Benchmark suite of the ops (ops/prox.h, ops/adam.h, ops/gather.h) on layer shapes of real
// models, on the CPU and, when LibTorch sees a CUDA device, on the GPU (those cases are registered
// only then).
//
// Every case reports bytes moved per second (SetBytesProcessed: the bytes each op must read and write
// once) and, since only ratios are stable on a shared machine, `vs_copy`: that rate over the rate of a
// plain copy moving the same bytes, measured in the same run (parallel memcpy on the CPU, a
// device-to-device copy on the GPU). The fused Adam steps also report `x_vs_unfused`: the time of the
// same update written as a sequence of ATen ops (the framework formulation) over the fused op's time.
// Not run by ctest; `bench/run.sh` or e.g. `den_ops_bench --benchmark_min_time=0.1 [--ops_threads=N]`.

#include "engine/training/threads.h"
#include "ops/adam.h"
#include "ops/elementwise_math.h"
#include "ops/gather.h"
#include "ops/prox.h"

#include <benchmark/benchmark.h>

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <utility>

namespace {

using Clock = std::chrono::steady_clock;

// Training-step batch gathers [samples, cols]: Fashion-MNIST's 60,000 training images at 784 inputs,
// and the frozen-row cache of a 12,800-sample task on a 312-unit layer.
const std::vector<std::pair<int64_t, int64_t>> kGatherShapes = {{60000, 784}, {12800, 312}};
constexpr int64_t kGatherBatch = 256;

// Shapes [rows, cols] = [units, inputs]: DEN's first and second hidden layers on MNIST-sized input
// (784 -> 312, 312 -> 128), a large square layer, and 16M elements.
const std::vector<std::pair<int64_t, int64_t>> kShapes = {{312, 784}, {128, 312}, {4096, 4096}, {16384, 1024}};

void sync(const at::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Rate of a plain copy that moves `bytes` (reads bytes/2, writes bytes/2): the memory system's
// limit for a streaming op, measured now. Best of several timed rounds, cached per (device, size).
double copy_bytes_per_second(const at::Device& device, int64_t bytes) {
  static std::map<std::pair<std::string, int64_t>, double> cache;
  const auto key = std::make_pair(device.str(), bytes);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  const int64_t half = std::max<int64_t>(1, bytes / 2);
  at::Tensor src = at::ones({half}, at::TensorOptions().dtype(at::kByte).device(device));
  at::Tensor dst = at::empty_like(src);
  auto copy = [&] {
    if (device.is_cpu()) {
      const char* s = static_cast<const char*>(src.data_ptr());
      char* d = static_cast<char*>(dst.data_ptr());
      at::parallel_for(0, half, 1 << 16, [&](int64_t b, int64_t e) { std::memcpy(d + b, s + b, e - b); });
    } else {
      dst.copy_(src);
    }
  };
  copy();
  sync(device);
  double best = 0.0;
  for (int round = 0; round < 5; ++round) {
    int64_t reps = 0;
    const auto start = Clock::now();
    do {
      copy();
      ++reps;
    } while (seconds_since(start) < 0.02 || reps < 2);
    sync(device);
    best = std::max(best, static_cast<double>(reps) * 2 * half / seconds_since(start));
  }
  cache[key] = best;
  return best;
}

enum class Op { kL1Prox, kGroupProx, kDriftNorms, kAdam, kAdamGroup, kAdamUnfused, kAdamGroupUnfused };

// The tensors of one op at one shape, and the op itself as a closure.
struct Workload {
  at::Tensor w, grad, m, v, anchor, mask, group_rows, w_prev, trainable, anchored;
  den::ops::MaskedAdamOptions options;
  int64_t bytes = 0;  // what the op must read and write once
};

// The masked Adam step with L2, drift and L1 prox as a sequence of ATen ops, as a framework user
// writes it (the trainable/anchored selectors are built once, as the engine builds its masks once
// per phase): gradient terms, Adam, soft-threshold, then a where-select that keeps frozen elements.
void unfused_adam(Workload& k, bool group) {
  const auto& o = k.options;
  const double bc1 = 1.0 - std::pow(o.beta1, static_cast<double>(o.step));
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(o.beta2, static_cast<double>(o.step)));
  at::Tensor g = k.grad + (2 * o.l2) * k.w;
  g.add_(k.anchored * (k.w - k.anchor), 2 * o.drift);
  const at::Tensor m = k.m.mul(o.beta1).add_(g, 1 - o.beta1);
  const at::Tensor v = k.v.mul(o.beta2).addcmul_(g, g, 1 - o.beta2);
  const at::Tensor denom = v.sqrt().div_(bc2_sqrt).add_(o.eps);
  at::Tensor w = k.w.addcdiv(m, denom, -o.lr / bc1);
  w = w.sign().mul_((w.abs() - o.l1_threshold).clamp_min_(0));
  k.w.copy_(at::where(k.trainable, w, k.w));
  k.m.copy_(at::where(k.trainable, m, k.m));
  k.v.copy_(at::where(k.trainable, v, k.v));
  if (group) {
    const at::Tensor norms = k.w.norm(2, {1}, /*keepdim=*/true);
    const at::Tensor factor = at::where(norms.gt(o.group_threshold), 1 - o.group_threshold / norms, at::zeros_like(norms));
    k.w.mul_(at::where(k.group_rows.unsqueeze(1), factor, at::ones_like(factor)));
  }
}

Workload make_workload(Op op, int64_t rows, int64_t cols, const at::Device& device) {
  using den::ops::kAnchored;
  using den::ops::kTrainable;
  const at::TensorOptions f = at::TensorOptions().dtype(at::kFloat).device(device);
  Workload k;
  const int64_t n = rows * cols;
  k.w = at::randn({rows, cols}, f).mul_(0.05);
  k.options.lr = 1e-3;
  k.options.l2 = 1e-4;
  k.options.drift = 0.5;
  k.options.l1_threshold = 1e-5;
  k.options.group_threshold = 1e-3;
  k.options.step = 10;
  switch (op) {
    case Op::kL1Prox:
      k.mask = at::rand({rows, cols}, f).lt(0.9);
      k.bytes = n * (2 * 4 + 1);
      break;
    case Op::kGroupProx:
      k.bytes = n * 2 * 4;
      break;
    case Op::kDriftNorms:
      k.w_prev = k.w + 0.01;
      k.bytes = n * 2 * 4;
      break;
    case Op::kAdam:
    case Op::kAdamGroup:
    case Op::kAdamUnfused:
    case Op::kAdamGroupUnfused:
      k.grad = at::randn({rows, cols}, f).mul_(0.1);
      k.m = at::zeros({rows, cols}, f);
      k.v = at::zeros({rows, cols}, f);
      k.anchor = k.w + 0.01;
      // Every bit combination: trainable or frozen, anchored or not.
      k.mask = at::randint(0, 4, {rows, cols}, at::TensorOptions().dtype(at::kByte).device(device));
      k.group_rows = at::rand({rows}, f).lt(0.5);
      k.trainable = k.mask.bitwise_and(kTrainable).ne(0);
      k.anchored = k.mask.bitwise_and(kAnchored).ne(0).to(at::kFloat);
      k.bytes = n * (5 * 4 + 1 + 3 * 4);  // read w, grad, m, v, anchor, mask; write w, m, v
      break;
  }
  return k;
}

// One call of `op` on the tensors of `k` (which must outlive the closure).
std::function<void()> one_call(Workload& k, Op op) {
  switch (op) {
    case Op::kL1Prox: return [&k] { den::ops::l1_prox_(k.w, 1e-5, k.mask); };
    case Op::kGroupProx: return [&k] { den::ops::group_prox_rows_(k.w, 1e-3); };
    case Op::kDriftNorms: return [&k] { benchmark::DoNotOptimize(den::ops::drift_row_norms(k.w, k.w_prev)); };
    case Op::kAdam: return [&k] { den::ops::masked_adam_step_(k.w, k.grad, k.m, k.v, k.mask, k.anchor, k.options); };
    case Op::kAdamGroup:
      return [&k] {
        den::ops::masked_adam_group_step_(k.w, k.grad, k.m, k.v, k.mask, k.anchor, k.group_rows, k.options);
      };
    case Op::kAdamUnfused: return [&k] { unfused_adam(k, false); };
    case Op::kAdamGroupUnfused: return [&k] { unfused_adam(k, true); };
  }
  return [] {};
}

// Seconds per call of `run`, averaged over at least 3 calls and 0.1 s.
double time_per_call(const std::function<void()>& run, const at::Device& device) {
  run();
  sync(device);
  int64_t reps = 0;
  const auto start = Clock::now();
  do {
    run();
    ++reps;
    sync(device);
  } while (reps < 3 || seconds_since(start) < 0.1);
  return seconds_since(start) / static_cast<double>(reps);
}

void bm_op(benchmark::State& state, Op op, at::Device device) {
  const int64_t rows = state.range(0), cols = state.range(1);
  Workload k;
  try {
    k = make_workload(op, rows, cols, device);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  const std::function<void()> run = one_call(k, op);
  try {
    run();
    sync(device);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  double total = 0.0;
  for (auto _ : state) {
    const auto start = Clock::now();
    run();
    sync(device);
    const double s = seconds_since(start);
    state.SetIterationTime(s);
    total += s;
  }
  const double per_call = total / static_cast<double>(state.iterations());
  state.SetBytesProcessed(state.iterations() * k.bytes);
  const double copy_rate = copy_bytes_per_second(device, k.bytes);
  state.counters["copy_GB/s"] = copy_rate / 1e9;
  state.counters["vs_copy"] = (static_cast<double>(k.bytes) / per_call) / copy_rate;
  if (op == Op::kAdam || op == Op::kAdamGroup) {
    // The same update as a sequence of ATen ops, on the same tensors, timed now.
    const double unfused = time_per_call(one_call(k, op == Op::kAdam ? Op::kAdamUnfused : Op::kAdamGroupUnfused), device);
    state.counters["x_vs_unfused"] = unfused / per_call;
  }
  state.SetLabel(std::to_string(rows * cols) + " elements, " + device.str());
}

// The batch gather of a training step (ops/gather.h, NOTE: [prefetched gather]): 256 rows of a
// [samples, cols] float matrix, a different batch each call as training draws them. Also reports
// `x_vs_index_select`: index_select's time for the same batches over gather_rows'.
void bm_gather_rows(benchmark::State& state) {
  const int64_t samples = state.range(0), cols = state.range(1);
  const at::Tensor source = at::randn({samples, cols});
  const at::Tensor order = at::randperm(samples, at::kLong);
  int64_t next = 0;
  const auto batch = [&] { return order.narrow(0, (next++ % (samples / kGatherBatch)) * kGatherBatch, kGatherBatch); };
  const at::Device cpu(at::kCPU);
  double total = 0.0;
  for (auto _ : state) {
    const at::Tensor indices = batch();
    const auto start = Clock::now();
    benchmark::DoNotOptimize(den::ops::gather_rows(source, indices));
    const double s = seconds_since(start);
    state.SetIterationTime(s);
    total += s;
  }
  const double per_call = total / static_cast<double>(state.iterations());
  const int64_t bytes = kGatherBatch * cols * 4 * 2;  // read and write each gathered row once
  state.SetBytesProcessed(state.iterations() * bytes);
  state.counters["vs_copy"] = (static_cast<double>(bytes) / per_call) / copy_bytes_per_second(cpu, bytes);
  double index_select = 0.0;
  for (int call = 0; call < 200; ++call) {
    const at::Tensor indices = batch();
    const auto start = Clock::now();
    benchmark::DoNotOptimize(source.index_select(0, indices));
    index_select += seconds_since(start);
  }
  state.counters["x_vs_index_select"] = index_select / 200.0 / per_call;
}

void register_ops(const at::Device& device) {
  if (device.is_cpu()) {
    auto* b = benchmark::RegisterBenchmark("BM_GatherRows_CPU", bm_gather_rows);
    b->ArgNames({"samples", "cols"})->UseManualTime()->Unit(benchmark::kMicrosecond);
    for (const auto& [samples, cols] : kGatherShapes) b->Args({samples, cols});
  }
  const std::string suffix = device.is_cuda() ? "_CUDA" : "_CPU";
  const std::pair<const char*, Op> ops[] = {{"L1Prox", Op::kL1Prox},
                                            {"GroupProxRows", Op::kGroupProx},
                                            {"DriftRowNorms", Op::kDriftNorms},
                                            {"MaskedAdamFused", Op::kAdam},
                                            {"MaskedAdamUnfusedAten", Op::kAdamUnfused},
                                            {"MaskedAdamGroupFused", Op::kAdamGroup},
                                            {"MaskedAdamGroupUnfusedAten", Op::kAdamGroupUnfused}};
  for (const auto& [name, op] : ops) {
    auto* b = benchmark::RegisterBenchmark((std::string("BM_") + name + suffix).c_str(),
                                           [op = op, device](benchmark::State& s) { bm_op(s, op, device); });
    b->ArgNames({"rows", "cols"})->UseManualTime()->Unit(benchmark::kMicrosecond);
    for (const auto& [rows, cols] : kShapes) b->Args({rows, cols});
  }
}

}  // namespace

int main(int argc, char** argv) {
  // --ops_threads=N: threads of ATen's parallel_for (default 1, as the `den` executable runs the
  // element-wise ops; NOTE: [threads] in engine/training/threads.cpp). Removed before Google Benchmark's flags.
  int threads = 1;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--ops_threads=", 0) == 0) {
      threads = std::max(1, std::atoi(arg.c_str() + 14));
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  at::set_num_threads(threads);
  // As in the den executable: freed buffers stay in the heap, so that the unfused sequence's
  // temporaries do not fault in afresh on every call. The 64 MiB temporaries of the 16M-element
  // cases are above glibc's 32 MiB cap and still come from mmap (page faults are costly on the
  // sandboxed development machine, which inflates x_vs_unfused there).
  den::engine::keep_freed_buffers_in_heap();
  benchmark::AddCustomContext("ops_threads", std::to_string(threads));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_ops(at::Device(at::kCPU));
  // CUDA cases only where LibTorch sees a device (a CPU-only LibTorch never does).
  if (at::hasCUDA() && torch::cuda::device_count() > 0) register_ops(at::Device(at::kCUDA, 0));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
