#pragma once

#include "engine/config.h"
#include "engine/task.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <stdexcept>

namespace den::engine {

/// Data the engine cannot learn from or predict on: an empty split, a wrong shape or width, labels
/// out of range, a NaN. A std::invalid_argument, so code that catches those keeps working; the
/// CLI tells it apart as a data error (exit 3) from its usage errors (exit 2).
class TaskDataError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// The validation every `Method` applies at its boundary (engine/method.h), written once so that DEN
/// and the baselines reject the same tasks with the same messages.
///
/// `config` after `config.validate()` (std::invalid_argument naming the bad setting).
EngineConfig validated_config(EngineConfig config);
/// `input_dim`, or std::invalid_argument when it is below 1.
int64_t checked_input_dim(int64_t input_dim);

/// `task` with every split checked and converted to contiguous float32 features and int64 labels
/// on `device`. Throws TaskDataError for fewer than 2 classes, an empty split, features
/// that are not `[N, input_dim]` floating point, labels that are not integers of length N or are
/// outside [0, num_classes), or a NaN / infinite feature. The test split is checked when present.
Task check_task(const Task& task, int64_t input_dim, at::Device device);

/// `x` `[N, input_dim]` as contiguous float32 on `device`, for predicting task `task_id` of a
/// method that has learned `num_tasks` tasks. Throws std::invalid_argument for an unknown task id,
/// TaskDataError for a wrong shape or width, non-floating or non-finite input.
at::Tensor check_input(int64_t task_id, int64_t num_tasks, int64_t input_dim, const at::Tensor& x, at::Device device);

}  // namespace den::engine
