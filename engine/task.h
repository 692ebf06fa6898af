#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

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
  /// The class, in the label space shared by all tasks, that each output of this task's head
  /// stands for; -1 for an output that stands for no class of its own (the "rest" output of a
  /// one-vs-rest task). Empty: output o is class o. Task-agnostic prediction
  /// (engine/evaluation/task_agnostic.h) classifies among these classes without being told the task.
  std::vector<int64_t> output_classes;
};

/// `task.output_classes`, or 0..num_classes-1 when it is empty.
inline std::vector<int64_t> resolved_output_classes(const Task& task) {
  if (!task.output_classes.empty()) return task.output_classes;
  std::vector<int64_t> classes(static_cast<size_t>(task.num_classes));
  for (int64_t o = 0; o < task.num_classes; ++o) classes[static_cast<size_t>(o)] = o;
  return classes;
}

}  // namespace den::engine
