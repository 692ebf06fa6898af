#pragma once

// Shared helpers of the benchmark suites: seeded synthetic data, FLOP models of the MLP's products
// and an sgemm reference measured in the same process (only ratios are stable on a shared machine).

#include "engine/task.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace den::bench {

/// A 10-class Gaussian-cluster task at Fashion-MNIST's width, seeded, so phases run on equal data.
inline engine::Task synthetic_task(uint64_t seed, int64_t input_dim = 784, int64_t classes = 10, int64_t train = 12800,
                                   int64_t val = 1000) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const at::Tensor means = at::randn({classes, input_dim}, gen, at::kFloat);
  auto make = [&](int64_t n, at::Tensor& x, at::Tensor& y) {
    y = at::randint(classes, {n}, gen, at::kLong);
    x = means.index_select(0, y).add_(at::randn({n, input_dim}, gen, at::kFloat).mul_(2.0)).mul_(0.25);
  };
  engine::Task task;
  task.name = "synthetic-" + std::to_string(seed);
  task.num_classes = classes;
  make(train, task.train_x, task.train_y);
  make(val, task.val_x, task.val_y);
  return task;
}

/// Layer shapes (n_in, n_out) of an MLP: input -> hidden... -> classes.
inline std::vector<std::pair<int64_t, int64_t>> mlp_shapes(int64_t input_dim, const std::vector<int64_t>& hidden,
                                                          int64_t classes) {
  std::vector<std::pair<int64_t, int64_t>> shapes;
  int64_t n_in = input_dim;
  for (int64_t h : hidden) {
    shapes.emplace_back(n_in, h);
    n_in = h;
  }
  shapes.emplace_back(n_in, classes);
  return shapes;
}

/// FLOPs of one training step of batch `b`: forward 2*b*n_in*n_out per layer, plus the weight
/// gradient of layers at or above `lowest_trained` and the input gradient of layers above it.
inline double step_flops(const std::vector<std::pair<int64_t, int64_t>>& shapes, int64_t b, size_t lowest_trained) {
  double flops = 0.0;
  for (size_t l = 0; l < shapes.size(); ++l) {
    const double mm = 2.0 * static_cast<double>(b) * shapes[l].first * shapes[l].second;
    flops += mm;                          // forward
    if (l >= lowest_trained) flops += mm;  // weight gradient
    if (l > lowest_trained) flops += mm;   // input gradient
  }
  return flops;
}

/// GFLOP/s of plain at::mm at exactly the products of one training step (forward, weight and input
/// gradients of every layer), measured here and now: the machine's limit for these shapes.
inline double sgemm_gflops(const std::vector<std::pair<int64_t, int64_t>>& shapes, int64_t b, int repeats = 30) {
  std::vector<at::Tensor> xs, ws, gs;
  for (const auto& [n_in, n_out] : shapes) {
    xs.push_back(at::randn({b, n_in}));
    ws.push_back(at::randn({n_out, n_in}));
    gs.push_back(at::randn({b, n_out}));
  }
  auto one_step = [&] {
    for (size_t l = 0; l < shapes.size(); ++l) {
      at::mm(xs[l], ws[l].t());  // forward
      at::mm(gs[l].t(), xs[l]);  // weight gradient
      at::mm(gs[l], ws[l]);      // input gradient
    }
  };
  one_step();
  const auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < repeats; ++r) one_step();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return step_flops(shapes, b, 0) * repeats / seconds / 1e9;
}

}  // namespace den::bench
