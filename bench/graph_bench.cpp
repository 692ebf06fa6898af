// Google Benchmark suite for the graph module: the selective-retraining BFS at scale.

#include "graph/subnetwork.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <benchmark/benchmark.h>

namespace den::bench {
namespace {

/// BFS over a 784-4096-4096 network (head of 10 outputs) whose weights are nonzero with the given
/// density in percent; edges/s counts every nonzero weight the graph holds.
void BM_SubnetworkBfs(benchmark::State& state) {
  const double density = static_cast<double>(state.range(0)) / 100.0;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(5);
  const std::vector<at::Tensor> layers = {at::rand({4096, 784}, gen).lt(density),
                                          at::rand({4096, 4096}, gen).lt(density)};
  const at::Tensor head = at::rand({10, 4096}, gen).lt(density);
  int64_t edges = head.sum().item<int64_t>();
  for (const at::Tensor& l : layers) edges += l.sum().item<int64_t>();

  for (auto _ : state) {
    graph::Subnetwork s = graph::select_subnetwork(layers, head);
    benchmark::DoNotOptimize(s.hidden.data());
  }
  state.counters["edges"] = static_cast<double>(edges);
  state.counters["edges_per_s"] =
      benchmark::Counter(static_cast<double>(edges) * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SubnetworkBfs)->ArgName("density_pct")->Arg(1)->Arg(10)->Arg(50)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace den::bench
