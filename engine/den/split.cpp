#include "engine/engine.h"
#include "engine/den/growth.h"
#include "engine/den/masks.h"

namespace den::engine {

std::vector<at::Tensor> split_retrain_masks(const Network& network, const graph::UnitGraph& graph,
                                            const std::vector<at::Tensor>& previous, const graph::Subnetwork& selected,
                                            const std::vector<std::vector<int64_t>>& restored, int64_t stage) {
  std::vector<at::Tensor> masks;
  for (int64_t l = 0; l < network.num_layers(); ++l) {
    const at::Tensor& w = network.layer(l);
    const int64_t n = w.size(0);
    const int64_t n_in = w.size(1) - 1;
    const at::Tensor kept = selector(n, restored[l]).logical_not();
    const at::Tensor unit_trainable =
        selector(n, graph.units_born_at(l, stage)).logical_or(selector(n, selected.hidden[l])).logical_and(kept);
    const int64_t below = network.units_below(l);
    const at::Tensor new_below = l == 0 ? at::zeros({below}, at::kBool) : selector(below, graph.units_born_at(l - 1, stage));
    const at::Tensor trainable =
        outer_or(unit_trainable, unit_columns_with_bias(new_below, network.block(l), false)).logical_and(kept.unsqueeze(1));
    const int64_t old_rows = previous[l].size(0);
    const int64_t old_cols = previous[l].size(1) - 1;
    const at::Tensor anchored = outer_and(range_selector(n, 0, old_rows), with_bias(range_selector(n_in, 0, old_cols), true));
    masks.push_back(element_mask(trainable, anchored));
  }
  return masks;
}

// DEN Alg. 1, split/duplication: a pre-existing unit whose incoming weights drifted by
// rho_i = ||w_i^t - w_i^{t-1}||_2 > sigma is duplicated. The copy, born at t, takes the current row
// and outgoing column; the original gets its t-1 row back exactly (zeros toward units born at t),
// so earlier tasks see it as it was. Then the task retrains with the drift penalty
// lambda*||W - W^{t-1}||^2 on the pre-existing block; restored originals stay frozen.
void Engine::split(int64_t t, const Task& task, const std::vector<at::Tensor>& previous,
                   const graph::Subnetwork& selected, const ProgressCallback& progress, TaskReport& report) {
  const int64_t num_layers = network_.num_layers();
  std::vector<std::vector<int64_t>> restored;
  report.split_pairs = split_drifted_units(network_, graph_, previous, config_.sigma, config_.relative_sigma,
                                           config_.resolved_max_splits(), t, restored);
  for (int64_t l = 0; l < num_layers; ++l) report.split[l] = static_cast<int64_t>(restored[l].size());
  // NOTE: [restore drifted] Every old unit gets its t-1 weights back, and what this task learned
  // lives on only in its own parameters: the copies, the expanded units, the columns from them (in
  // old rows too, which no earlier task sees) and the head. Those are refit with the old network
  // frozen. Selective retraining then serves to find which old units this task needs changed, and
  // to start their copies. Unlike the paper's split, where units that drifted less than sigma keep
  // their drift, no earlier task's outputs change at all; the price is that what this task gained by
  // moving an old unit that was not split must be regained by the refit.
  const bool restore_all = config_.restore_drifted;
  if (restore_all) {
    restore_previous_block(network_, previous);
    restored.assign(num_layers, {});
  } else if (report.split_pairs.empty()) {
    return;
  }

  PhaseSpec spec;
  spec.name = restore_all ? "refit" : "split";
  spec.max_iter = config_.max_iter;
  spec.l2 = config_.l2;
  spec.lambda = config_.lambda;
  spec.mu = config_.mu;
  graph::Subnetwork nothing_old;  // with restore_all, no old row trains
  nothing_old.hidden.assign(num_layers, {});
  const std::vector<at::Tensor> masks =
      split_retrain_masks(network_, graph_, previous, restore_all ? nothing_old : selected, restored, t);
  for (int64_t l = 0; l < num_layers; ++l) {
    at::Tensor& w = network_.layer(l);
    spec.params.push_back({&w, masks[l], pad_augmented(previous[l], w.size(0), w.size(1)), {}, {}});
  }
  spec.params.push_back({&network_.head(t), {}, {}, {}, {}});
  report.phases.push_back(trainer_.train(network_, t, task, spec, progress));
}

}  // namespace den::engine
