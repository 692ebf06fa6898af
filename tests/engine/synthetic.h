#pragma once

// Synthetic task streams for engine tests: Gaussian class clusters in the first `informative`
// features, the remaining features exactly zero (so L1 makes their weights exactly zero).

#include "engine/task.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <string>

namespace den::testing {

struct SyntheticSpec {
  int64_t dim = 20;
  int64_t informative = 12;
  int64_t classes = 3;
  int64_t train = 600;
  int64_t val = 150;
  int64_t test = 300;
  double spread = 0.35;  ///< cluster standard deviation; class means are at distance ~1
};

inline std::pair<at::Tensor, at::Tensor> synthetic_split(const at::Tensor& means, int64_t n, const SyntheticSpec& s,
                                                         at::Generator& gen) {
  at::Tensor y = at::randint(s.classes, {n}, gen, at::kLong);
  at::Tensor x = at::zeros({n, s.dim}, at::kFloat);
  at::Tensor noise = at::randn({n, s.informative}, gen, at::kFloat).mul_(s.spread);
  x.narrow(1, 0, s.informative).copy_(means.index_select(0, y).add(noise));
  return {x, y};
}

/// Task `task_seed` of a stream: class means drawn from the seed, so different seeds give
/// different (conflicting) tasks on the same features.
inline engine::Task synthetic_task(uint64_t task_seed, const SyntheticSpec& s = {}) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(task_seed);
  at::Tensor means = at::randn({s.classes, s.informative}, gen, at::kFloat).mul_(0.8);
  engine::Task task;
  task.name = "synthetic-" + std::to_string(task_seed);
  task.num_classes = s.classes;
  std::tie(task.train_x, task.train_y) = synthetic_split(means, s.train, s, gen);
  std::tie(task.val_x, task.val_y) = synthetic_split(means, s.val, s, gen);
  std::tie(task.test_x, task.test_y) = synthetic_split(means, s.test, s, gen);
  return task;
}

}  // namespace den::testing
