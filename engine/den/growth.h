#pragma once

#include "engine/engine.h"
#include "engine/training/network.h"
#include "graph/unit_graph.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace den::engine {

// The structural steps of DEN, apart from training, so that each is exact and testable on its own.
// Each changes units through NetworkUnits, which keeps the Network's tensors and the UnitGraph in
// the same unit order.

/// The one place where units come and go: every call changes the parameters (Network) and the
/// structure (graph::UnitGraph) together, so both always hold the same units in the same order.
class NetworkUnits {
 public:
  NetworkUnits(Network& network, graph::UnitGraph& graph) : network_(network), graph_(graph) {}
  /// Task `task`'s head (the next task id) with `outputs` outputs.
  void add_head(int64_t task, int64_t outputs);
  /// Appends `count` units born at `stage` to `layer` (Network::add_units; their outgoing columns
  /// train in head `stage`, the task that adds them).
  void add_units(int64_t layer, int64_t count, int64_t stage, graph::Origin origin);
  /// Removes the units at `positions` of `layer` with their outgoing column blocks.
  void remove_units(int64_t layer, const std::vector<int64_t>& positions);
  /// Appends a copy of unit `position` of `layer`, born at `stage` (Origin::Split); returns the
  /// copy's position.
  int64_t split_unit(int64_t layer, int64_t position, int64_t stage);

 private:
  Network& network_;
  graph::UnitGraph& graph_;
};

/// Dynamic expansion's pruning: in every layer, the units at positions >= first_new[l] whose
/// incoming row (weights and bias, NOTE: [augmented rows]) is exactly zero are removed, with their
/// outgoing columns, top layer first. Returns the removed positions per layer (as they were).
std::vector<std::vector<int64_t>> prune_zero_units(Network& network, graph::UnitGraph& graph,
                                                   const std::vector<int64_t>& first_new);

/// NOTE: [prune to fixpoint] Pruning after expansion until nothing changes: in every layer, the units
/// at positions >= first_new[l] whose incoming row (weights and bias) is exactly zero, or whose
/// outgoing weights are exactly zero in the layer above (in every head, for the top layer), are
/// removed with their columns; sweeps run top layer first and repeat while a sweep removed a unit,
/// since a removal can leave a unit above without inputs or one below without outputs. Either kind
/// of unit contributes exactly nothing to any output, so all outputs stay the same. Returns the
/// removed positions per layer, as they were before the first sweep, in increasing order.
std::vector<std::vector<int64_t>> prune_dead_units(Network& network, graph::UnitGraph& graph,
                                                   const std::vector<int64_t>& first_new);

/// Split/duplication (DEN Alg. 1): per layer, the pre-existing units (rows of `previous[l]`) whose
/// drift rho_i = ||w_i - w_i^{t-1}||_2 over the pre-existing columns and bias exceeds `sigma`, at
/// most `max_per_layer`, largest first, are duplicated. The copy (born at `stage`) takes the current
/// row and outgoing column (zero toward other tasks' heads); the original gets its t-1 row back
/// exactly, with zeros toward units born after t-1. Returns the pairs; `restored[l]` receives the
/// positions of the originals.
/// With `relative_sigma` the drift compared with sigma is rho_i / ||w_i^{t-1}||_2.
std::vector<SplitPair> split_drifted_units(Network& network, graph::UnitGraph& graph,
                                           const std::vector<at::Tensor>& previous, double sigma,
                                           bool relative_sigma, int64_t max_per_layer, int64_t stage,
                                           std::vector<std::vector<int64_t>>& restored);

/// NOTE: [restore drifted] Puts `previous[l]` back into the pre-existing block of every layer (the
/// old rows' old unit columns and bias), so every unit that existed before this task has its t-1
/// incoming weights again, bit for bit. Columns toward units born later are left as they are: no
/// earlier task sees them.
void restore_previous_block(Network& network, const std::vector<at::Tensor>& previous);

/// NOTE: [selection budget] Selective retraining's subnetwork under a budget: in the top layer the
/// ceil(budget * n) units with the largest strength sum_c |H_t[c, i]| (head weights, bias apart),
/// then, layer by layer downward, the ceil(budget * n) units j with the largest strength
/// sum_{i selected above} strength_i * |W[i, j]|. Units of strength 0 are never selected, so the
/// result is a subset of what the breadth-first search over nonzero weights reaches. Every input
/// feature is listed: inputs are not units, and a selected first-layer unit trains its whole row.
graph::Subnetwork select_strongest(const Network& network, int64_t task_id, double budget);

/// The removal of an undone expansion (NOTE: [expansion evidence]): every unit at positions
/// >= first_new[l], with its outgoing columns, top layer first; the network is then as before the
/// expansion, apart from the new task's head where the expansion trained it whole.
void remove_new_units(Network& network, graph::UnitGraph& graph, const std::vector<int64_t>& first_new);

/// The element masks (engine/den/masks.h) of split retraining after split_drifted_units at `stage`, one
/// per hidden layer, in the network's current shapes:
///  - trainable: whole rows (every column and the bias) of the units born at `stage` (expanded units
///    and split copies) and of the selected units `selected.hidden[l]`, plus, in every row, the
///    columns of units born at `stage` in the layer below; nothing in the rows of `restored[l]`, the
///    originals that got their t-1 rows back;
///  - anchored (drift penalty toward `previous`): the trainable elements of the pre-existing block,
///    the rows and unit columns of `previous[l]` and the bias.
std::vector<at::Tensor> split_retrain_masks(const Network& network, const graph::UnitGraph& graph,
                                            const std::vector<at::Tensor>& previous, const graph::Subnetwork& selected,
                                            const std::vector<std::vector<int64_t>>& restored, int64_t stage);

}  // namespace den::engine
