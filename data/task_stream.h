#pragma once

#include "data/dataset.h"
#include "engine/task.h"

#include <cstdint>
#include <string>

namespace den::data {

/// How a data set is turned into a sequence of tasks.
enum class Protocol {
  Permuted,   ///< task 1: the original features; task t > 1: a fixed seeded feature permutation
  Split,      ///< task t: classes [(t-1)K, tK) relabelled 0..K-1 (K = classes_per_task)
  OneVsRest,  ///< task t: class t-1 (label 1) against all others (label 0), negatives subsampled to balance
};

/// Parses "permuted", "split" or "one-vs-rest"; throws std::invalid_argument otherwise.
Protocol parse_protocol(const std::string& name);
std::string to_string(Protocol protocol);

/// Options of a task stream.
struct StreamOptions {
  Protocol protocol = Protocol::Permuted;
  int64_t num_tasks = 10;
  int64_t classes_per_task = 2;  ///< Split only
  int64_t train_limit = 0;       ///< at most this many training samples per task; 0 = all
  double val_fraction = 0.1;     ///< fraction of the training file held out for validation
  uint64_t seed = 1;
};

/// A deterministic, seeded sequence of tasks built from one train/test data set. Tasks are
/// materialized on demand (`task(t)`), so a 10-task permuted stream does not hold ten copies of
/// the training data at once.
class TaskStream {
 public:
  /// Validates both data sets (DataError) and the options against the data (std::invalid_argument:
  /// e.g. more tasks than the protocol allows, classes_per_task < 1, train_limit < 0).
  TaskStream(Dataset train, Dataset test, StreamOptions options);

  /// Most tasks `protocol` can make from `num_classes` classes (Permuted: 1000, an arbitrary cap).
  static int64_t max_tasks(Protocol protocol, int64_t num_classes, int64_t classes_per_task);

  int64_t num_tasks() const { return options_.num_tasks; }
  int64_t input_dim() const { return train_.dim(); }
  const StreamOptions& options() const { return options_; }

  /// Task `t` (1-based): name (e.g. "permuted-3", "split-2[4,5]", "one-vs-rest-7"), class count
  /// and train/val/test tensors. Deterministic given the seed.
  engine::Task task(int64_t t) const;

 private:
  Dataset train_;
  Dataset val_;
  Dataset test_;
  StreamOptions options_;
};

}  // namespace den::data
