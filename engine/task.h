#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>

namespace den::engine {

/// One task of a lifelong-learning stream: a name, its number of classes and its data splits.
/// Features are float32 `[N, D]`, labels int64 `[N]` in `[0, num_classes)`. `test_*` may be
/// undefined when the caller evaluates elsewhere. Header-only so that `data/` can produce tasks
/// without linking the engine.
struct Task {
  std::string name;
  int64_t num_classes = 0;
  at::Tensor train_x, train_y;
  at::Tensor val_x, val_y;
  at::Tensor test_x, test_y;
};

}  // namespace den::engine
