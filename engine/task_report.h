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

/// What `Method::add_task` did and measured (its fields: NOTE: [report fields] below). Per-layer vectors have one entry per hidden layer; the
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

// NOTE: [report fields] Every field of PhaseResult, SplitPair and TaskReport is described once, here,
// as the hyperparameter table describes EngineConfig (NOTE: [hyperparameter table]): its name, which is
// the checkpoint's proto field (den.proto's Phase, SplitPair and TaskRecord, matched by name through
// reflection, serialization/internal/report_proto.h), the Python attribute and, unless `json` names it
// otherwise, the key of `den run`'s JSON report; and the member. The checkpoint, the JSON report and
// the Python module iterate these tables. A field added to a report is one entry here, plus its
// proto field unless it is a `diagnostic()` (a test fails without it).

/// One row of a report's table, built with report_field() and the chained setters.
template <typename S, typename T>
struct ReportField {
  using Struct = S;
  using Value = T;
  const char* name;
  T S::*member;
  const char* json = nullptr;  ///< the JSON report's key when it is not `name`; "" = not in the report
  /// false: a diagnostic of the process that ran it (a cache's statistics), which a resumed run
  /// cannot restore: checkpoints and the JSON report leave it out, Python shows it.
  bool checkpointed = true;

  ReportField& json_key(const char* key) { json = key; return *this; }
  ReportField& diagnostic() { checkpointed = false; json = ""; return *this; }
  const char* json_name() const { return json != nullptr ? json : name; }
};

template <typename S, typename T>
ReportField<S, T> report_field(const char* name, T S::*member) {
  return ReportField<S, T>{name, member};
}

/// Calls `visit(field)` for every field of PhaseResult, in declaration order.
template <typename Visitor>
void visit_report_fields(const PhaseResult*, Visitor&& visit) {
  using P = PhaseResult;
  visit(report_field("name", &P::name).json_key("phase"));
  visit(report_field("iterations", &P::iterations));
  visit(report_field("train_loss", &P::train_loss));
  visit(report_field("val_loss", &P::val_loss));
  visit(report_field("seconds", &P::seconds));
  visit(report_field("optimizer_seconds", &P::optimizer_seconds));
  visit(report_field("early_stopped", &P::early_stopped));
  visit(report_field("best_iteration", &P::best_iteration));
  visit(report_field("frozen_first_rows", &P::frozen_first_rows).diagnostic());
  visit(report_field("frozen_second_rows", &P::frozen_second_rows).diagnostic());
  visit(report_field("cached_samples", &P::cached_samples).diagnostic());
}

/// Calls `visit(field)` for every field of SplitPair.
template <typename Visitor>
void visit_report_fields(const SplitPair*, Visitor&& visit) {
  visit(report_field("layer", &SplitPair::layer));
  visit(report_field("original_id", &SplitPair::original_id).json_key("original"));
  visit(report_field("copy_id", &SplitPair::copy_id).json_key("copy"));
  visit(report_field("drift", &SplitPair::drift));
}

/// Calls `visit(field)` for every field of TaskReport. A graph::Subnetwork field is stored as
/// `<name>_inputs` and `<name>_hidden` in the checkpoint.
template <typename Visitor>
void visit_report_fields(const TaskReport*, Visitor&& visit) {
  using R = TaskReport;
  visit(report_field("task", &R::task));
  visit(report_field("name", &R::name));
  visit(report_field("num_classes", &R::num_classes));
  visit(report_field("phases", &R::phases));
  visit(report_field("selected_units", &R::selected_units));
  visit(report_field("subnetwork", &R::subnetwork).json_key(""));  // long lists of positions: the checkpoint's
  visit(report_field("added", &R::added));
  visit(report_field("pruned", &R::pruned));
  visit(report_field("split", &R::split));
  visit(report_field("split_pairs", &R::split_pairs));
  visit(report_field("hidden_units", &R::hidden_units));
  visit(report_field("expanded", &R::expanded));
  visit(report_field("expansion_undone", &R::expansion_undone));
  visit(report_field("val_loss_after_expansion", &R::val_loss_after_expansion));
  visit(report_field("val_loss_after_selective", &R::val_loss_after_selective));
  visit(report_field("val_loss", &R::val_loss));
  visit(report_field("params", &R::params));
  visit(report_field("nonzero_params", &R::nonzero_params));
  visit(report_field("seconds", &R::seconds));
}

}  // namespace den::engine
