#include "engine/engine.h"
#include "engine/growth.h"
#include "engine/masks.h"

namespace den::engine {

// DEN Alg. 3, dynamic expansion: add k units to every hidden layer, train only the new units'
// parameters on loss + mu*||W^N||_1 + gamma*sum_g ||W^N_g||_2 (L1 prox, then group prox over each
// new unit's incoming row, Eq. 5), then drop every new unit whose group ended at zero, top layer
// first, together with its outgoing column.
void Engine::expand(int64_t t, const Task& task, const ProgressCallback& progress, TaskReport& report) {
  if (config_.k == 0) return;
  const std::vector<int64_t> old_sizes = graph_.layer_sizes();
  const int64_t num_layers = network_.num_layers();
  for (int64_t l = 0; l < num_layers; ++l) {
    network_.add_units(l, config_.k, t);
    graph_.add_units(l, config_.k, t, graph::Origin::Expanded);
  }
  report.expanded = true;

  PhaseSpec spec;
  spec.name = "expansion";
  spec.max_iter = config_.max_iter;
  spec.mu = config_.mu;
  spec.gamma = config_.gamma;
  // The first layer trains its new rows only (its input columns are data), so they are a tensor of
  // their own: a view, so that updates land in the layer, and the step's weight gradient, Adam
  // state and update cover those rows alone. The old rows enter the forward pass detached.
  const int64_t first_new = old_sizes[0];
  at::Tensor first_layer_new = network_.layer(0).narrow(0, first_new, network_.layer_size(0) - first_new);
  const at::Tensor first_layer_old = network_.layer(0).narrow(0, 0, first_new);
  spec.params.push_back({&first_layer_new, {}, {}, at::ones({first_layer_new.size(0)}, at::kByte), {}});
  for (int64_t l = 1; l < num_layers; ++l) {
    const int64_t n = network_.layer_size(l);
    const at::Tensor new_rows = range_selector(n, old_sizes[l], n);
    const at::Tensor new_cols = range_selector(network_.layer_size(l - 1), old_sizes[l - 1], network_.layer_size(l - 1));
    spec.params.push_back({&network_.layer(l), element_mask(outer_or(new_rows, with_bias(new_cols, false))), {},
                           new_rows.to(at::kByte), {}});
  }
  at::Tensor& head = network_.head(t);
  const int64_t top = network_.layer_size(num_layers - 1);
  const at::Tensor head_cols = range_selector(top, old_sizes[num_layers - 1], top);
  spec.params.push_back(
      {&head, element_mask(outer_or(at::zeros({head.size(0)}, at::kBool), with_bias(head_cols, false))), {}, {}, {}});
  Objective objective = trainer_.task_objective(network_, t, task);
  objective.batch_loss = [&](const at::Tensor& idx) {
    const at::Tensor first = affine_frozen_then_trainable(task.train_x.index_select(0, idx), first_layer_old,
                                                          first_layer_new);
    return data_loss(network_.logits_from_first(t, first), task.train_y.index_select(0, idx), config_.loss);
  };
  report.phases.push_back(trainer_.train(objective, t, spec, progress));

  const std::vector<std::vector<int64_t>> removed = prune_zero_units(network_, graph_, old_sizes);
  for (int64_t l = 0; l < num_layers; ++l) {
    report.pruned[l] = static_cast<int64_t>(removed[l].size());
    report.added[l] = config_.k - report.pruned[l];
  }
}

}  // namespace den::engine
