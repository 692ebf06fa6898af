#pragma once

#include "data/dataset.h"
#include "engine/task.h"

#include <cstdint>
#include <string>
#include <vector>

namespace den::data {

/// How a data set is turned into a sequence of tasks.
enum class Protocol {
  Permuted,   ///< task 1: the original features; task t > 1: a fixed seeded feature permutation
  Split,      ///< task t: classes [(t-1)K, tK) relabelled 0..K-1 (K = classes_per_task); with
              ///< base_classes, the "new classes" scenario (StreamOptions::base_classes)
  OneVsRest,  ///< task t: class t-1 (label 1) against all others (label 0), negatives subsampled to balance
};

/// Parses "permuted", "split" or "one-vs-rest"; throws std::invalid_argument naming `option`
/// (how the caller spells the setting) otherwise.
Protocol parse_protocol(const std::string& name, const std::string& option = "--protocol");
std::string to_string(Protocol protocol);

/// How the caller spells each StreamOptions setting, for messages: the CLI's flags by default
/// (add-task sets num_tasks through --task-index), the Python module's argument names there.
struct StreamOptionNames {
  std::string protocol = "--protocol";
  std::string num_tasks = "--tasks";
  std::string classes_per_task = "--classes-per-task";
  std::string base_classes = "--base-classes";
  std::string train_limit = "--train-limit";
  std::string val_fraction = "--val-fraction";
};

/// Options of a task stream.
struct StreamOptions {
  Protocol protocol = Protocol::Permuted;
  int64_t num_tasks = 10;
  StreamOptionNames names;
  int64_t classes_per_task = 2;  ///< Split only
  /// Split only; 0 = off. The "new classes" scenario: task 1 learns classes [0, K) (K =
  /// base_classes, labels 0..K-1); each later task t adds one new class c = K + t - 2 as a binary
  /// task, label 1 = class c against label 0 = as many samples of the classes already known,
  /// [0, c), drawn seeded and evenly from them (train, val and test alike). Like the paper's
  /// one-vs-rest protocol it is "new class against the rest", with the rest limited to the classes
  /// seen so far. classes_per_task is ignored. At most 1 + C - K tasks for C classes.
  int64_t base_classes = 0;
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
  /// e.g. more tasks than the protocol allows, classes_per_task < 1, train_limit < 0, base_classes
  /// outside 1..C-1 or with a protocol other than Split).
  TaskStream(Dataset train, Dataset test, StreamOptions options);

  /// Most tasks `protocol` can make from `num_classes` classes (Permuted: 1000, an arbitrary cap;
  /// Split with base_classes K > 0: 1 + num_classes - K).
  static int64_t max_tasks(Protocol protocol, int64_t num_classes, int64_t classes_per_task, int64_t base_classes = 0);

  int64_t num_tasks() const { return options_.num_tasks; }
  int64_t input_dim() const { return train_.dim(); }
  /// Classes of the data set (the larger label count of the training and test sets).
  int64_t num_classes() const { return num_classes_; }
  /// Head outputs (`Task::num_classes`) of tasks 1..num_tasks(), without building the tasks.
  std::vector<int64_t> task_classes() const;
  const StreamOptions& options() const { return options_; }

  /// Task `t` (1-based): name (e.g. "permuted-3", "split-2[4,5]", "one-vs-rest-7", "base[0-7]",
  /// "new-class-8"), class count, train/val/test tensors, and `output_classes`: the class of the
  /// data set each head output stands for (-1 for the "rest" output of a binary task against
  /// other classes). Deterministic given the seed.
  engine::Task task(int64_t t) const;

 private:
  Dataset train_;
  Dataset val_;
  Dataset test_;
  StreamOptions options_;
  int64_t num_classes_ = 0;
};

}  // namespace den::data
