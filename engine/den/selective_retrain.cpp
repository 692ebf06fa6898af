#include "engine/engine.h"
#include "engine/den/growth.h"
#include "engine/den/masks.h"

namespace den::engine {

// DEN Alg. 2, selective retraining:
//  a. train only the new head H_t with the L1 prox, so it connects to few top units;
//  b. find the subnetwork S those connections reach (BFS over nonzero weights, graph module);
//  c. retrain only weights between units of S (and H_t) on loss + lambda*||W_S - W_S^{t-1}||^2 +
//     l2*||W_S||^2 with the L1 prox. Every other weight keeps its exact bits (masked Adam step).
graph::Subnetwork Engine::selective_retrain(int64_t t, const Task& task, const std::vector<at::Tensor>& previous,
                                            const ProgressCallback& progress, TaskReport& report) {
  PhaseSpec head_spec;
  head_spec.name = "head";
  head_spec.max_iter = config_.resolved_head_iters();
  head_spec.l2 = config_.l2;
  head_spec.mu = config_.mu;
  head_spec.params.push_back({&network_.head(t), {}, {}, {}, {}});
  report.phases.push_back(trainer_.train(network_, t, task, head_spec, progress));

  graph::Subnetwork selected;
  if (config_.selection_budget > 0) {
    selected = select_strongest(network_, t, config_.selection_budget);  // NOTE: [selection budget]
  } else {
    // Unit j below reaches unit i when i's column block on j has a nonzero (channel connectivity
    // for filters).
    const auto pattern = [&](const at::Tensor& w, int64_t l) { return column_blocks(w, network_.block(l)).ne(0).any(2); };
    std::vector<at::Tensor> patterns;
    for (int64_t l = 0; l < network_.num_layers(); ++l) patterns.push_back(pattern(network_.layer(l), l));
    selected = graph::select_subnetwork(patterns, pattern(network_.head(t), network_.num_layers()));
  }
  for (const std::vector<int64_t>& units : selected.hidden) {
    report.selected_units.push_back(static_cast<int64_t>(units.size()));
  }

  PhaseSpec spec;
  spec.name = "selective";
  // With restore_drifted, what this phase learns survives only in the copies of the most drifted
  // units; the refit trains them, with everything else of this task, to the full budget. The phase
  // then has to rank the drift, not finish the task, and a quarter of the budget ranks it well
  // enough: on the validation split the den preset lost no accuracy and ran 1.5x faster
  // (NOTE: [short selective phase], docs/algorithm.md).
  spec.max_iter = config_.resolved_selective_iters();
  spec.l2 = config_.l2;
  spec.lambda = config_.lambda;
  spec.mu = config_.mu;
  for (int64_t l = 0; l < network_.num_layers(); ++l) {
    if (selected.hidden[l].empty()) continue;
    const at::Tensor rows = selector(network_.layer_size(l), selected.hidden[l]);
    const at::Tensor units_below = l == 0 ? selector(network_.units_below(0), selected.inputs)
                                          : selector(network_.layer_size(l - 1), selected.hidden[l - 1]);
    const at::Tensor trainable = outer_and(rows, unit_columns_with_bias(units_below, network_.block(l), true));
    spec.params.push_back({&network_.layer(l), element_mask(trainable, trainable), previous[l], {}, {}});
  }
  spec.params.push_back({&network_.head(t), {}, {}, {}, {}});
  report.phases.push_back(trainer_.train(network_, t, task, spec, progress));
  report.val_loss_after_selective = trainer_.evaluate_loss(network_, t, task.val_x, task.val_y);
  report.subnetwork = selected;
  return selected;
}

}  // namespace den::engine
