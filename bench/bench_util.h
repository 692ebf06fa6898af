#pragma once

// Shared helpers of the benchmark suites: seeded synthetic data, FLOP models of the MLP's products
// and an sgemm reference measured in the same process (only ratios are stable on a shared machine).

#include "engine/task.h"
#include "engine/training/threads.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

namespace den::bench {

/// Validation samples of a synthetic_task by default.
constexpr int64_t kSyntheticValSamples = 1000;

/// A 10-class Gaussian-cluster task at Fashion-MNIST's width, seeded, so phases run on equal data.
inline engine::Task synthetic_task(uint64_t seed, int64_t input_dim = 784, int64_t classes = 10, int64_t train = 12800,
                                   int64_t val = kSyntheticValSamples) {
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

/// One matrix product `[m, k] x [k, n]`, done `count` times.
struct Product {
  int64_t m = 0, n = 0, k = 0;
  double count = 1.0;
  double flops() const { return 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) * count; }
};

/// The products of one training step of batch `b`: per layer the forward pass, the weight gradient
/// of layers at or above `lowest_trained` and the input gradient of layers above it. The first
/// layer multiplies only `first_layer_rows` of its rows (all when negative); the second layer's
/// first `second_block_rows` rows take their input from the frozen first-layer units out of a cache
/// and multiply only the trainable units' part (NOTE: [frozen first-layer rows]).
inline std::vector<Product> step_products(const std::vector<std::pair<int64_t, int64_t>>& shapes, int64_t b,
                                          size_t lowest_trained, int64_t first_layer_rows = -1,
                                          int64_t second_block_rows = 0) {
  std::vector<Product> products;
  auto add_layer = [&](size_t l, int64_t rows, int64_t n_in) {
    if (rows <= 0 || n_in <= 0) return;
    products.push_back({b, rows, n_in});                            // forward
    if (l >= lowest_trained) products.push_back({rows, n_in, b});  // weight gradient
    if (l > lowest_trained) products.push_back({b, n_in, rows});   // input gradient
  };
  for (size_t l = 0; l < shapes.size(); ++l) {
    const auto [n_in, n_out] = shapes[l];
    if (l == 0 && first_layer_rows >= 0) {
      add_layer(l, first_layer_rows, n_in);
    } else if (l == 1 && second_block_rows > 0) {
      add_layer(l, second_block_rows, std::max<int64_t>(first_layer_rows, 0));  // the trainable units' part
      add_layer(l, n_out - second_block_rows, n_in);
    } else {
      add_layer(l, n_out, n_in);
    }
  }
  return products;
}

inline double total_flops(const std::vector<Product>& products) {
  double flops = 0.0;
  for (const Product& p : products) flops += p.flops();
  return flops;
}

/// Seconds of plain at::mm at exactly these products' shapes, measured here and now: the
/// machine's limit for them (skinny products run far below the peak of square ones). Products done
/// equally often (one training step's) are timed as one sequence, in order, as a step runs them:
/// one product repeated alone keeps its operands in cache and flatters sgemm. The fastest of the
/// timed sequences counts, so that another load on the shared machine cannot slow the reference
/// (which once gave a phase more than sgemm's speed) and flatter the ratio. Each product runs on
/// the threads the engine gives it (engine::ProductThreads), so the ratio to it measures what the
/// engine does beside the products.
inline double sgemm_seconds(const std::vector<Product>& products) {
  std::map<double, std::vector<Product>> by_count;
  for (const Product& p : products) by_count[p.count].push_back(p);
  double seconds = 0.0;
  for (const auto& [count, sequence] : by_count) {
    std::vector<std::pair<at::Tensor, at::Tensor>> operands;
    for (const Product& p : sequence) operands.emplace_back(at::randn({p.m, p.k}), at::randn({p.k, p.n}));
    const auto run = [&] {
      for (const auto& [a, b] : operands) {
        const engine::ProductThreads threads(a, b);
        at::mm(a, b);
      }
    };
    run();
    int64_t calls = 0;
    const auto start = std::chrono::steady_clock::now();
    double elapsed = 0.0, fastest = std::numeric_limits<double>::infinity();
    while (elapsed < 0.05 || calls < 5) {
      const auto call_start = std::chrono::steady_clock::now();
      run();
      const auto call_end = std::chrono::steady_clock::now();
      fastest = std::min(fastest, std::chrono::duration<double>(call_end - call_start).count());
      ++calls;
      elapsed = std::chrono::duration<double>(call_end - start).count();
    }
    seconds += fastest * count;
  }
  return seconds;
}

}  // namespace den::bench
