#include "engine/engine.h"
#include "engine/den/growth.h"
#include "engine/den/masks.h"

#include <algorithm>

namespace den::engine {

// DEN Alg. 3, dynamic expansion: add k units to every hidden layer, train only the new units'
// parameters on loss + mu*||W^N||_1 + gamma*sum_g ||W^N_g||_2 (L1 prox, then group prox over each
// new unit's incoming row, Eq. 5), then drop every new unit whose group ended at zero, top layer
// first, together with its outgoing column.
//
// NOTE: [expansion evidence] Expansion is a bet that new units lower the task's loss; with
// expansion_min_gain > 0 the bet is checked on the validation set: unless the validation loss after
// expansion and pruning is below the loss before it by at least that fraction, every added unit is
// removed again, and the network is exactly as before the expansion. Growth then happens only where
// it is measured to pay: any added unit lowers the loss a little, so the margin is what growth must
// buy. Neither the paper nor the released code checks.
//
// NOTE: [frozen-existing head] With freeze_existing no selective retraining ran before, so the new
// head H_t has not been trained at all: its bias and its columns on old units would keep their
// random initial values if only the columns on new units trained. Then the whole head trains here
// (it is task t's alone, so no earlier task changes), and with k = 0 it trains alone.
void Engine::train_head_alone(int64_t t, const Task& task, const ProgressCallback& progress, TaskReport& report) {
  PhaseSpec head_spec;
  head_spec.name = "head";
  head_spec.max_iter = config_.max_iter;
  head_spec.l2 = config_.l2;
  head_spec.params.push_back({&network_.head(t), {}, {}, {}, {}});
  report.phases.push_back(trainer_.train(network_, t, task, head_spec, progress));
}

void Engine::expand(int64_t t, const Task& task, const ProgressCallback& progress, TaskReport& report) {
  const bool whole_head = config_.freeze_existing;
  if (config_.k == 0) {
    if (whole_head) train_head_alone(t, task, progress, report);
    return;
  }
  const std::vector<int64_t> old_sizes = graph_.layer_sizes();
  const double loss_before = report.val_loss_after_selective;
  const at::Tensor head_before = whole_head ? network_.head(t).clone() : at::Tensor();
  const int64_t num_layers = network_.num_layers();
  for (int64_t l = 0; l < num_layers; ++l) NetworkUnits(network_, graph_).add_units(l, config_.k, t, graph::Origin::Expanded);
  report.expanded = true;

  PhaseSpec spec;
  spec.name = "expansion";
  spec.max_iter = config_.max_iter;
  spec.mu = config_.mu;
  spec.gamma = config_.gamma;
  // The first layer's input columns are data, so only its new rows train; its old rows are then
  // served from the frozen-row cache (NOTE: [frozen first-layer rows]).
  for (int64_t l = 0; l < num_layers; ++l) {
    const int64_t n = network_.layer_size(l);
    const int64_t below = network_.units_below(l);
    const at::Tensor new_rows = range_selector(n, old_sizes[l], n);
    const at::Tensor new_below = l == 0 ? at::zeros({below}, at::kBool) : range_selector(below, old_sizes[l - 1], below);
    spec.params.push_back({&network_.layer(l),
                           element_mask(outer_or(new_rows, unit_columns_with_bias(new_below, network_.block(l), false))),
                           {}, new_rows.to(at::kByte), {}});
  }
  at::Tensor& head = network_.head(t);
  const int64_t top = network_.layer_size(num_layers - 1);
  const at::Tensor head_cols = range_selector(top, old_sizes[num_layers - 1], top);
  const at::Tensor head_mask =
      whole_head ? at::Tensor()
                 : element_mask(outer_or(at::zeros({head.size(0)}, at::kBool),
                                         unit_columns_with_bias(head_cols, network_.block(num_layers), false)));
  spec.params.push_back({&head, head_mask, {}, {}, {}});
  report.phases.push_back(trainer_.train(network_, t, task, spec, progress));

  // NOTE: [prune to fixpoint]: not in the paper or the released code, which prune zero incoming
  // groups once; units with no outgoing weights, or left without inputs by a removal, cost
  // parameters and compute and contribute nothing.
  const std::vector<std::vector<int64_t>> removed = config_.prune_to_fixpoint
                                                        ? prune_dead_units(network_, graph_, old_sizes)
                                                        : prune_zero_units(network_, graph_, old_sizes);
  for (int64_t l = 0; l < num_layers; ++l) {
    report.pruned[l] = static_cast<int64_t>(removed[l].size());
    report.added[l] = config_.k - report.pruned[l];
  }
  report.val_loss_after_expansion = trainer_.evaluate_loss(network_, t, task.val_x, task.val_y);
  if (config_.expansion_min_gain == 0 ||
      report.val_loss_after_expansion <= loss_before * (1.0 - config_.expansion_min_gain)) {
    return;
  }
  // The head's columns on the new units go with them; only a head trained whole needs its old values.
  remove_new_units(network_, graph_, old_sizes);
  report.expansion_undone = true;
  std::fill(report.added.begin(), report.added.end(), 0);
  if (whole_head) {
    network_.head(t).copy_(head_before);
    train_head_alone(t, task, progress, report);
  }
}

}  // namespace den::engine
