#include "engine/task_check.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

namespace den::engine {

namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw TaskDataError(message);
}

/// Index of the first row of `features` with a NaN or infinite value, or -1.
int64_t first_non_finite_row(const at::Tensor& features) {
  // A NaN or an infinity makes the sum non-finite, so one read-only pass clears almost every input;
  // a non-finite sum (a bad value, or finite values that overflow) is then searched row by row.
  if (std::isfinite(features.sum().item<double>())) return -1;
  // In chunks of rows: isfinite's temporaries for a whole data set (several times its size, fresh
  // pages each time) made this check about a tenth of a short add_task.
  constexpr int64_t kChunkRows = 1024;
  for (int64_t start = 0; start < features.size(0); start += kChunkRows) {
    const int64_t rows = std::min(kChunkRows, features.size(0) - start);
    const at::Tensor bad = features.narrow(0, start, rows).isfinite().all(1).logical_not().nonzero();
    if (bad.numel() > 0) return start + bad[0][0].item<int64_t>();
  }
  return -1;
}

/// Checks one split of a task and returns it as contiguous float32 features and int64 labels.
std::pair<at::Tensor, at::Tensor> checked_split(const at::Tensor& x, const at::Tensor& y, const std::string& split,
                                                const std::string& task, int64_t input_dim, int64_t num_classes,
                                                at::Device device) {
  const std::string where = "task '" + task + "' " + split;
  require(x.defined() && y.defined() && x.numel() > 0, where + ": no samples");
  require(x.dim() == 2, where + " features must be 2-D [N, D], got " + std::to_string(x.dim()) + "-D");
  require(x.size(1) == input_dim, where + " features have width " + std::to_string(x.size(1)) +
                                      ", but the engine's input width is " + std::to_string(input_dim));
  require(at::isFloatingType(x.scalar_type()), where + " features must be floating point");
  require(y.dim() == 1 && y.size(0) == x.size(0), where + ": " + std::to_string(x.size(0)) + " samples but " +
                                                      std::to_string(y.numel()) + " labels");
  require(!at::isFloatingType(y.scalar_type()) && y.scalar_type() != at::kBool, where + " labels must be integers");
  at::Tensor features = x.to(device, at::kFloat).contiguous();
  at::Tensor labels = y.to(device, at::kLong).contiguous();
  const int64_t bad_row = first_non_finite_row(features);
  require(bad_row < 0, where + ": sample " + std::to_string(bad_row) + " has a NaN or infinite feature");
  const int64_t lo = labels.min().item<int64_t>();
  const int64_t hi = labels.max().item<int64_t>();
  require(lo >= 0 && hi < num_classes, where + ": label " + std::to_string(lo < 0 ? lo : hi) +
                                           " is out of range [0, " + std::to_string(num_classes) + ")");
  return {features, labels};
}

}  // namespace

EngineConfig validated_config(EngineConfig config) {
  config.validate();
  return config;
}

int64_t checked_input_dim(int64_t input_dim) {
  if (input_dim < 1) throw std::invalid_argument("input_dim must be >= 1, got " + std::to_string(input_dim));
  return input_dim;
}

Task check_task(const Task& task, int64_t input_dim, at::Device device) {
  require(task.num_classes >= 2, "task '" + task.name + "' needs at least 2 classes, got " +
                                     std::to_string(task.num_classes));
  Task out = task;
  std::tie(out.train_x, out.train_y) =
      checked_split(task.train_x, task.train_y, "training set", task.name, input_dim, task.num_classes, device);
  std::tie(out.val_x, out.val_y) =
      checked_split(task.val_x, task.val_y, "validation set", task.name, input_dim, task.num_classes, device);
  if (task.test_x.defined()) {
    std::tie(out.test_x, out.test_y) =
        checked_split(task.test_x, task.test_y, "test set", task.name, input_dim, task.num_classes, device);
  }
  return out;
}

at::Tensor check_input(int64_t task_id, int64_t num_tasks, int64_t input_dim, const at::Tensor& x, at::Device device) {
  if (!(task_id >= 1 && task_id <= num_tasks)) {
    throw std::invalid_argument("unknown task id " + std::to_string(task_id) +
                                (num_tasks == 0 ? std::string(": the engine has learned no task yet")
                                                : ": valid ids are 1.." + std::to_string(num_tasks)));
  }
  require(x.defined() && x.dim() == 2, "predict expects input of shape [N, " + std::to_string(input_dim) + "]");
  require(x.size(1) == input_dim, "predict input has width " + std::to_string(x.size(1)) +
                                      ", but the engine's input width is " + std::to_string(input_dim));
  require(at::isFloatingType(x.scalar_type()), "predict input must be floating point");
  at::Tensor features = x.to(device, at::kFloat).contiguous();
  const int64_t bad_row = first_non_finite_row(features);
  require(bad_row < 0, "predict input row " + std::to_string(bad_row) + " has a NaN or infinite value");
  return features;
}

}  // namespace den::engine
