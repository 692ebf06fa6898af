#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace den::graph {

/// The units that a task's head reaches through nonzero weights (DEN selective retraining, Alg. 2).
struct Subnetwork {
  std::vector<int64_t> inputs;                 ///< input features reached, sorted
  std::vector<std::vector<int64_t>> hidden;    ///< per hidden layer (0-based), sorted positions
};

/// Breadth-first search (boost::breadth_first_search over a compressed_sparse_row_graph of the
/// nonzero pattern) from every output of the head down to the input:
///   - top hidden unit i is selected if head_nonzero[:, i] has any true entry;
///   - unit j of layer l-1 is selected if layer_nonzero[l][i, j] is true for a selected unit i of layer l.
/// `layer_nonzero[l]`: bool `[n_l, n_{l-1}]`, the pattern of hidden layer l's incoming weights
/// (l = 0 connects the input). `head_nonzero`: bool `[c, n_L]`. Shapes must chain; throws
/// std::invalid_argument otherwise.
Subnetwork select_subnetwork(const std::vector<at::Tensor>& layer_nonzero, const at::Tensor& head_nonzero);

}  // namespace den::graph
