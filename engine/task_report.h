#pragma once

#include "engine/training/trainer.h"
#include "graph/subnetwork.h"

#include <cstdint>
#include <string>
#include <vector>

namespace den::engine {

/// A unit duplicated by the split phase: `original` keeps its old weights, `copy` the new ones.
struct SplitPair {
  int64_t layer = 0;
  int64_t original_id = 0;
  int64_t copy_id = 0;
  double drift = 0.0;
};

/// What `Method::add_task` did and measured. Per-layer vectors have one entry per hidden layer; the
/// selection, expansion and split fields are DEN's and stay empty for the baselines.
struct TaskReport {
  int64_t task = 0;  ///< 1-based task id
  std::string name;
  int64_t num_classes = 0;
  std::vector<PhaseResult> phases;
  std::vector<int64_t> selected_units;  ///< units per layer in selective retraining's subnetwork (empty for task 1)
  graph::Subnetwork subnetwork;         ///< that subnetwork's units (positions before any growth of this task)
  std::vector<int64_t> added;           ///< units that survived expansion
  std::vector<int64_t> pruned;          ///< expanded units removed by group sparsity
  std::vector<int64_t> split;           ///< units duplicated
  std::vector<SplitPair> split_pairs;
  std::vector<int64_t> hidden_units;    ///< layer sizes after the task
  bool expanded = false;
  /// NOTE: [expansion evidence] The expansion's units were all removed again, because the
  /// validation loss after it (val_loss_after_expansion) was not lower than before it.
  bool expansion_undone = false;
  double val_loss_after_expansion = 0.0;  ///< when expanded
  double val_loss_after_selective = 0.0;
  double val_loss = 0.0;  ///< validation loss at the end of the task
  int64_t params = 0;
  int64_t nonzero_params = 0;
  double seconds = 0.0;
};

}  // namespace den::engine
