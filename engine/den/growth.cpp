#include "engine/den/growth.h"

#include "engine/den/masks.h"
#include "ops/prox.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace den::engine {

void NetworkUnits::add_head(int64_t task, int64_t outputs) {
  graph_.add_head(task, outputs);
  network_.add_head(outputs);
}

void NetworkUnits::add_units(int64_t layer, int64_t count, int64_t stage, graph::Origin origin) {
  network_.add_units(layer, count, stage);
  graph_.add_units(layer, count, stage, origin);
}

void NetworkUnits::remove_units(int64_t layer, const std::vector<int64_t>& positions) {
  network_.remove_units(layer, positions);
  graph_.remove_units(layer, positions);
}

int64_t NetworkUnits::split_unit(int64_t layer, int64_t position, int64_t stage) {
  const int64_t copy = network_.duplicate_unit(layer, position, stage);
  graph_.split_unit(layer, position, stage);
  return copy;
}

namespace {

/// The pre-existing block of augmented `w`: its first `rows` rows restricted to the first `cols`
/// unit columns plus the bias column, i.e. laid out like W^{t-1} `[rows, cols + 1]`.
at::Tensor old_block(const at::Tensor& w, int64_t rows, int64_t cols) {
  const at::Tensor top = w.narrow(0, 0, rows);
  return at::cat({top.narrow(1, 0, cols), top.narrow(1, w.size(1) - 1, 1)}, 1);
}

/// Positions of the (at most `limit`) largest entries of `drift` above `sigma`, largest first.
std::vector<int64_t> largest_above(const at::Tensor& drift, double sigma, int64_t limit) {
  const at::Tensor values = drift.to(at::kCPU, at::kDouble).contiguous();
  const double* rho = values.data_ptr<double>();
  std::vector<int64_t> order(values.numel());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [rho](int64_t a, int64_t b) { return rho[a] > rho[b]; });
  std::vector<int64_t> chosen;
  for (int64_t i : order) {
    if (static_cast<int64_t>(chosen.size()) >= limit || !(rho[i] > sigma)) break;
    chosen.push_back(i);
  }
  return chosen;
}

std::vector<int64_t> to_vector(const at::Tensor& positions) {
  const at::Tensor p = positions.to(at::kCPU, at::kLong).contiguous();
  return std::vector<int64_t>(p.data_ptr<int64_t>(), p.data_ptr<int64_t>() + p.numel());
}

/// Whether each new unit of layer `l` (positions first_new.. of it) has a zero incoming row.
at::Tensor zero_incoming(const Network& network, int64_t l, int64_t first_new) {
  return ops::row_norms(network.layer(l)).narrow(0, first_new, network.layer_size(l) - first_new).eq(0);
}

/// Removes the new units of layer `l` flagged in `flags` (one per unit from first_new on) from the
/// network and the graph; returns their positions before the removal.
std::vector<int64_t> remove_flagged(Network& network, graph::UnitGraph& graph, int64_t l, int64_t first_new,
                                    const at::Tensor& flags) {
  std::vector<int64_t> positions = to_vector(flags.nonzero().view(-1).add(first_new));
  NetworkUnits(network, graph).remove_units(l, positions);
  return positions;
}

}  // namespace

std::vector<std::vector<int64_t>> prune_zero_units(Network& network, graph::UnitGraph& graph,
                                                   const std::vector<int64_t>& first_new) {
  std::vector<std::vector<int64_t>> removed(network.num_layers());
  for (int64_t l = network.num_layers() - 1; l >= 0; --l) {
    removed[l] = remove_flagged(network, graph, l, first_new[l], zero_incoming(network, l, first_new[l]));
  }
  return removed;
}

std::vector<std::vector<int64_t>> prune_dead_units(Network& network, graph::UnitGraph& graph,
                                                   const std::vector<int64_t>& first_new) {
  const int64_t num_layers = network.num_layers();
  // original[l][p]: the position before the first sweep of the unit now at position p.
  std::vector<std::vector<int64_t>> original(num_layers), removed(num_layers);
  for (int64_t l = 0; l < num_layers; ++l) {
    original[l].resize(network.layer_size(l));
    std::iota(original[l].begin(), original[l].end(), 0);
  }
  for (bool changed = true; changed;) {
    changed = false;
    for (int64_t l = num_layers - 1; l >= 0; --l) {
      const int64_t n = network.layer_size(l);
      const int64_t fresh = n - first_new[l];
      if (fresh == 0) continue;
      at::Tensor dead = zero_incoming(network, l, first_new[l]);
      // A unit's outgoing weights are its column block in every consumer (NOTE: [augmented rows]).
      const int64_t block = network.block(l + 1);
      const auto uses = [&](const at::Tensor& consumer) {
        return consumer.narrow(1, first_new[l] * block, fresh * block).reshape({consumer.size(0), fresh, block}).ne(0).any(2).any(0);
      };
      at::Tensor used = at::zeros({fresh}, at::kBool).to(network.layer(l).device());
      if (l + 1 < num_layers) {
        used.logical_or_(uses(network.layer(l + 1)));
      } else {
        for (const at::Tensor& head : network.heads()) used.logical_or_(uses(head));
      }
      dead.logical_or_(used.logical_not());
      const std::vector<int64_t> positions = remove_flagged(network, graph, l, first_new[l], dead);
      if (positions.empty()) continue;
      for (auto it = positions.rbegin(); it != positions.rend(); ++it) {
        removed[l].push_back(original[l][*it]);
        original[l].erase(original[l].begin() + *it);
      }
      changed = true;
    }
  }
  for (std::vector<int64_t>& r : removed) std::sort(r.begin(), r.end());
  return removed;
}

std::vector<SplitPair> split_drifted_units(Network& network, graph::UnitGraph& graph,
                                           const std::vector<at::Tensor>& previous, double sigma,
                                           bool relative_sigma, int64_t max_per_layer, int64_t stage,
                                           std::vector<std::vector<int64_t>>& restored) {
  std::vector<SplitPair> pairs;
  restored.assign(network.num_layers(), {});
  for (int64_t l = 0; l < network.num_layers(); ++l) {
    const int64_t old_rows = previous[l].size(0);
    const int64_t old_cols = previous[l].size(1) - 1;
    at::Tensor drift = ops::drift_row_norms(old_block(network.layer(l), old_rows, old_cols), previous[l]);
    // A row that was zero and moved has drifted by any measure: it stays above every sigma.
    if (relative_sigma) drift = drift / ops::row_norms(previous[l]).clamp_min(1e-12);
    for (int64_t i : largest_above(drift, sigma, max_per_layer)) {
      const int64_t copy = NetworkUnits(network, graph).split_unit(l, i, stage);
      at::Tensor row = network.layer(l).select(0, i);
      row.copy_(pad_augmented(previous[l].narrow(0, i, 1), 1, row.size(0)).squeeze(0));
      pairs.push_back({l, graph.unit(l, i).id, graph.unit(l, copy).id, drift[i].item<double>()});
      restored[l].push_back(i);
    }
  }
  return pairs;
}

void restore_previous_block(Network& network, const std::vector<at::Tensor>& previous) {
  for (int64_t l = 0; l < network.num_layers(); ++l) {
    at::Tensor w = network.layer(l);
    const int64_t old_rows = previous[l].size(0);
    const int64_t old_cols = previous[l].size(1) - 1;
    at::Tensor top = w.narrow(0, 0, old_rows);
    top.narrow(1, 0, old_cols).copy_(previous[l].narrow(1, 0, old_cols));
    top.select(1, w.size(1) - 1).copy_(previous[l].select(1, old_cols));
  }
}

namespace {

/// Positions of the (at most) `count` largest entries of `strength` that are above zero, ascending.
std::vector<int64_t> strongest(const at::Tensor& strength, int64_t count) {
  const at::Tensor s = strength.to(at::kCPU, at::kDouble).contiguous();
  std::vector<int64_t> chosen = largest_above(s, 0.0, count);
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

int64_t budget_count(double budget, int64_t n) {
  // The slack keeps 0.3 * 320 = 96.00000000000001 from rounding up to 97.
  return std::min<int64_t>(n, static_cast<int64_t>(std::ceil(budget * static_cast<double>(n) - 1e-9)));
}

}  // namespace

graph::Subnetwork select_strongest(const Network& network, int64_t task_id, double budget) {
  const int64_t num_layers = network.num_layers();
  graph::Subnetwork selected;
  selected.hidden.assign(num_layers, {});
  // A unit's connection to a unit above is the sum of its column block's magnitudes (a filter's
  // whole kh x kw slice on a channel; one weight between fc units). The head's sums are taken in
  // float, as before conv layers, so that fc networks select exactly as they did.
  const auto block_magnitudes = [&](const at::Tensor& w, int64_t l) {
    return column_blocks(w.to(at::kCPU, at::kDouble), network.block(l)).abs().sum(2);
  };
  at::Tensor strength = column_blocks(network.head(task_id), network.block(num_layers))
                            .abs()
                            .sum(2)
                            .sum(0)
                            .to(at::kCPU, at::kDouble);
  for (int64_t l = num_layers - 1; l >= 0; --l) {
    selected.hidden[l] = strongest(strength, budget_count(budget, network.layer_size(l)));
    if (l == 0) break;
    // Strength flows down only from the selected units, through the magnitudes of their weights.
    const at::Tensor rows = at::tensor(selected.hidden[l], at::kLong);
    const at::Tensor magnitudes = block_magnitudes(network.layer(l).index_select(0, rows.to(network.device())), l);
    strength = (magnitudes * strength.index_select(0, rows).unsqueeze(1)).sum(0);
  }
  selected.inputs.resize(network.units_below(0));
  std::iota(selected.inputs.begin(), selected.inputs.end(), 0);
  return selected;
}

void remove_new_units(Network& network, graph::UnitGraph& graph, const std::vector<int64_t>& first_new) {
  for (int64_t l = network.num_layers() - 1; l >= 0; --l) {
    std::vector<int64_t> positions(network.layer_size(l) - first_new[l]);
    std::iota(positions.begin(), positions.end(), first_new[l]);
    NetworkUnits(network, graph).remove_units(l, positions);
  }
}

}  // namespace den::engine
