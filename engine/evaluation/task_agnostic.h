#pragma once

#include "engine/method.h"
#include "engine/task.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace den::engine {

/// Settings of task-agnostic prediction.
struct AgnosticOptions {
  int64_t exemplars_per_class = 20;  ///< validation samples kept per class; 0 turns task-agnostic prediction off
  int64_t fit_steps = 500;           ///< full-batch Adam steps of the calibration fit
  uint64_t seed = 1;                 ///< which exemplars are kept
  /// false for a method whose heads are already comparable (Method::heads_comparable): no exemplar
  /// is kept and the calibration stays (1, 0), so classes compete on the raw logits.
  bool calibrate = true;
  /// > 0: a memory of this many samples in all instead, shared evenly among the class-bearing
  /// outputs seen so far; each new task shrinks the earlier outputs' share (a prefix of their
  /// seeded draw is kept), so that the memory never holds more.
  int64_t memory = 0;
};

// NOTE: [task-agnostic prediction] Every method keeps one head per task, and a head's scores are
// only comparable within its task: a head trained later, or on an easier task, is more confident.
// To classify an input among all classes seen so far without its task id, each task s gets two
// numbers, a scale a_s and a shift b_s, and the score of class c is
//   logsumexp over the outputs (s, o) standing for c of  a_s * u_s,o(x) + b_s,
// where u is the head's evidence for output o: its logit, or for a softmax head that has "rest"
// outputs (a one-vs-rest task) the log-odds against them, z_o - logsumexp(z_rest). Raw logits
// rather than log-softmax, because normalizing within a task would erase what tells the tasks
// apart: how strongly an input belongs to any of the task's classes. A class shared by several
// tasks (permuted streams reuse the labels) gathers all its outputs. The 2T numbers are fitted by
// cross-entropy over all classes on a small exemplar memory: up to M samples per class taken,
// seeded, from each task's *validation* split when the task is learned, so they are held out from
// training and their scores are not over-confident. This is the per-task bias correction of Wu et
// al. (BiC, CVPR 2019) applied per task head; it needs no change to any method, only every task's
// logits per input (Method::predict_all: T forward passes, or for DEN one shared first layer and T
// upper parts), and a memory of M samples per class. A method whose heads are already comparable
// (Method::heads_comparable: trained in one output space) is taken as it is: raw logits as evidence,
// calibration (1, 0), no memory.

// NOTE: [negatives from exemplars] A head trained on its task's classes alone has never seen a
// sample of another class, and among all classes it claims them too; a task of one class cannot be
// learned at all. When a memory holds samples of other classes, the task's head gets one more
// output, the "rest" (output 0), whose samples are those: split for validation as the task's own are,
// and repeated to as many rows as one of the task's classes has, so that the rest weighs as one
// class does. Task-agnostic prediction then reads the head's evidence for a class as its log-odds
// against the rest. The same exemplars later calibrate the task-agnostic scores, so the head has
// seen them: its scores on them are a little more confident than on unseen samples of those classes.
// den add-task uses it for every task of new classes (cli/task_data.cpp); a stream run with
// RunSettings::negatives_from_memory for every task after the first.

/// `task` with the rest output of NOTE: [negatives from exemplars]: output 0 stands for no class of
/// its own (output_classes gets -1 first), the task's outputs move up by one (labels too, test
/// labels included), and `rest_train` / `rest_val` `[M, D]` join the training and validation rows.
Task with_rest_output(Task task, const at::Tensor& rest_train, const at::Tensor& rest_val);

/// What a TaskAgnosticClassifier holds beyond its options, to save and restore it (checkpoints):
/// a resumed run must calibrate from the same exemplars and the same starting calibration.
struct AgnosticState {
  std::vector<std::vector<int64_t>> output_classes;  ///< per task: class of each head output (-1: none)
  at::Tensor memory_x;                   ///< `[M, D]` float32 exemplars; undefined when none are kept
  std::vector<int64_t> memory_classes;   ///< class of each exemplar row
  std::vector<int64_t> memory_tasks;     ///< task (1-based) each row came from; empty in older checkpoints
  std::vector<double> scale, shift;      ///< per task, as last fitted
};

/// Class-incremental prediction on top of a method's task heads (NOTE: [task-agnostic prediction]).
class TaskAgnosticClassifier {
 public:
  explicit TaskAgnosticClassifier(AgnosticOptions options = {});
  /// The classifier that state() described. std::invalid_argument when `state` contradicts itself
  /// (sizes, an exemplar of a class no task has, an empty task).
  static TaskAgnosticClassifier restore(AgnosticOptions options, const AgnosticState& state);
  AgnosticState state() const;
  int64_t num_tasks() const { return static_cast<int64_t>(output_classes_.size()); }

  bool enabled() const { return options_.exemplars_per_class > 0 || options_.memory > 0; }
  /// Registers task `task_id` (the next one) and keeps its exemplars from `task.val_x/val_y`.
  /// std::invalid_argument when task ids do not follow 1, 2, 3, ...
  void add_task(int64_t task_id, const Task& task);
  /// Fits the per-task scales and shifts to the exemplar memory, using `method.predict`.
  void fit(const Method& method);

  /// Global class ids seen so far, in the column order of class_scores().
  const std::vector<int64_t>& classes() const { return classes_; }
  /// Calibrated class scores `[N, classes().size()]`, evaluated in chunks without autograd.
  at::Tensor class_scores(const Method& method, const at::Tensor& x) const;
  /// Predicted global class id per row of `x`.
  at::Tensor predict(const Method& method, const at::Tensor& x) const;
  /// The same from every task's logits for the rows (`Method::predict_all`'s output, from a method
  /// with loss `loss`), for a caller that needs those logits anyway.
  at::Tensor predict_from_logits(const std::vector<at::Tensor>& logits, LossKind loss) const;
  /// Global class ids of task `task_id`'s labels `y` (-1 where an output stands for no class).
  at::Tensor global_labels(int64_t task_id, const at::Tensor& y) const;

  /// Per class-bearing output, in task then output order: its task (0-based), as combine() reads it.
  const std::vector<int64_t>& output_tasks() const { return output_task_; }
  /// `[classes * P]`: each class's class-bearing outputs, padded with their count (a -inf column),
  /// P per class, in the column order of classes(); what combine() gathers (for exporters).
  const at::Tensor& class_outputs() const { return class_outputs_; }
  /// Per task: the class of each head output (-1: none).
  const std::vector<std::vector<int64_t>>& output_classes() const { return output_classes_; }

  int64_t memory_size() const { return memory_x_.defined() ? memory_x_.size(0) : 0; }
  /// The exemplars of classes that are none of `classes`, `[M, D]` (M may be 0; undefined when no
  /// exemplar is kept).
  at::Tensor exemplars_outside(const std::vector<int64_t>& classes) const;
  /// Bytes of the exemplars: float32 features and an int64 class each.
  int64_t memory_bytes() const { return memory_x_.defined() ? memory_x_.numel() * 4 + memory_size() * 8 : 0; }
  const at::Tensor& scales() const { return scale_; }
  const at::Tensor& shifts() const { return shift_; }

 private:
  /// Column of global class `c` in classes(), or classes().size() when it is not there yet.
  int64_t column_of(int64_t c) const;
  /// Appends a task whose head outputs stand for `outputs`, with calibration (1, 0).
  void register_outputs(const std::vector<int64_t>& outputs);
  /// Uncalibrated evidence u of every class-bearing output of every task, `[N, outputs]`, from each
  /// task's logits (predict_all's output; tasks beyond the registered ones are ignored).
  at::Tensor output_evidence(const std::vector<at::Tensor>& logits, LossKind loss) const;
  /// Calibrated class scores from every task's logits, in row chunks.
  at::Tensor scores_from_logits(const std::vector<at::Tensor>& logits, LossKind loss) const;
  /// Global class id of the highest score in each row of class scores `[N, classes]`.
  at::Tensor best_classes(const at::Tensor& scores) const;
  /// Keeps at most `per_output` exemplars of each (task, class), the first ones.
  void shrink_memory(int64_t per_output);
  /// Class scores from output evidence with the calibration `scale`, `shift` `[T]`.
  at::Tensor combine(const at::Tensor& evidence, const at::Tensor& scale, const at::Tensor& shift) const;

  AgnosticOptions options_;
  std::vector<std::vector<int64_t>> output_classes_;  ///< per task: class id of each head output
  std::vector<int64_t> classes_;                      ///< global class ids in column order
  std::vector<int64_t> output_task_;                  ///< per class-bearing output: its task (0-based)
  at::Tensor class_outputs_;  ///< `[classes * P]`: each class's outputs, padded with `outputs` (see add_task)
  at::Tensor memory_x_, memory_column_;               ///< exemplars and their class columns
  std::vector<int64_t> memory_task_;                  ///< task (1-based; 0: unknown) of each exemplar
  at::Tensor scale_, shift_;                          ///< `[T]` float64
};

}  // namespace den::engine
