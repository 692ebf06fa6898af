#include "graph/subnetwork.h"

#include <boost/graph/breadth_first_search.hpp>
#include <boost/graph/compressed_sparse_row_graph.hpp>
#include <boost/graph/properties.hpp>
#include <boost/property_map/property_map.hpp>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace den::graph {

namespace {

using Csr = boost::compressed_sparse_row_graph<boost::directedS>;
using Vertex = Csr::vertex_descriptor;

// A bool CPU contiguous copy of a 2-D nonzero pattern (uint8 is accepted and converted).
at::Tensor as_bool_pattern(const at::Tensor& t, const std::string& what) {
  if (!t.defined()) throw std::invalid_argument("select_subnetwork: " + what + " is undefined");
  if (t.dim() != 2) {
    throw std::invalid_argument("select_subnetwork: " + what + " must be 2-D, got " + std::to_string(t.dim()) +
                                "-D");
  }
  if (t.scalar_type() != at::kBool && t.scalar_type() != at::kByte) {
    throw std::invalid_argument("select_subnetwork: " + what + " must be bool or uint8, got " +
                                std::string(c10::toString(t.scalar_type())));
  }
  at::Tensor out = t.to(at::kCPU);
  if (out.scalar_type() != at::kBool) out = out.to(at::kBool);
  return out.contiguous();
}

// Appends an edge (row unit -> column unit) for every true entry of `pattern`, rows in order, so
// that edge sources stay sorted when blocks are appended from the lowest vertex numbers upward.
void append_edges(const at::Tensor& pattern, Vertex row_base, Vertex col_base,
                  std::vector<std::pair<Vertex, Vertex>>& edges) {
  const int64_t rows = pattern.size(0);
  const int64_t cols = pattern.size(1);
  const bool* p = pattern.data_ptr<bool>();
  for (int64_t i = 0; i < rows; ++i) {
    const bool* row = p + i * cols;
    for (int64_t j = 0; j < cols; ++j) {
      if (row[j]) edges.emplace_back(row_base + static_cast<Vertex>(i), col_base + static_cast<Vertex>(j));
    }
  }
}

}  // namespace

Subnetwork select_subnetwork(const std::vector<at::Tensor>& layer_nonzero, const at::Tensor& head_nonzero) {
  if (layer_nonzero.empty()) throw std::invalid_argument("select_subnetwork: at least one hidden layer is required");

  std::vector<at::Tensor> layers;
  layers.reserve(layer_nonzero.size());
  for (size_t l = 0; l < layer_nonzero.size(); ++l) {
    layers.push_back(as_bool_pattern(layer_nonzero[l], "layer_nonzero[" + std::to_string(l) + "]"));
    if (l > 0 && layers[l].size(1) != layers[l - 1].size(0)) {
      throw std::invalid_argument("select_subnetwork: layer_nonzero[" + std::to_string(l) + "] has " +
                                  std::to_string(layers[l].size(1)) + " columns but layer " + std::to_string(l - 1) +
                                  " has " + std::to_string(layers[l - 1].size(0)) + " units");
    }
  }
  const at::Tensor head = as_bool_pattern(head_nonzero, "head_nonzero");
  if (head.size(1) != layers.back().size(0)) {
    throw std::invalid_argument("select_subnetwork: head_nonzero has " + std::to_string(head.size(1)) +
                                " columns but the top hidden layer has " + std::to_string(layers.back().size(0)) +
                                " units");
  }

  // Vertex numbering, bottom up: input features, hidden layer 0, ..., hidden layer L-1, head outputs.
  const size_t num_layers = layers.size();
  std::vector<Vertex> base(num_layers + 2);
  base[0] = 0;
  base[1] = static_cast<Vertex>(layers[0].size(1));
  for (size_t l = 0; l < num_layers; ++l) base[l + 2] = base[l + 1] + static_cast<Vertex>(layers[l].size(0));
  const Vertex head_base = base[num_layers + 1];
  const Vertex num_vertices = head_base + static_cast<Vertex>(head.size(0));

  // Edges point from an upper unit to the lower unit it reads through a nonzero weight.
  std::vector<std::pair<Vertex, Vertex>> edges;
  int64_t num_edges = head.count_nonzero().item<int64_t>();
  for (const at::Tensor& layer : layers) num_edges += layer.count_nonzero().item<int64_t>();
  edges.reserve(static_cast<size_t>(num_edges));  // one allocation instead of log2(E) regrowths
  for (size_t l = 0; l < num_layers; ++l) append_edges(layers[l], base[l + 1], base[l], edges);
  append_edges(head, head_base, base[num_layers], edges);

  const Csr g(boost::edges_are_sorted, edges.begin(), edges.end(), num_vertices);

  // Multi-source BFS from every head output; every vertex left non-white was reached.
  std::vector<Vertex> sources;
  for (Vertex v = head_base; v < num_vertices; ++v) sources.push_back(v);
  std::vector<boost::default_color_type> colors(num_vertices, boost::white_color);
  auto color_map = boost::make_iterator_property_map(colors.begin(), boost::get(boost::vertex_index, g));
  boost::queue<Vertex> queue;
  if (!sources.empty()) {
    boost::breadth_first_search(g, sources.begin(), sources.end(), queue, boost::default_bfs_visitor(), color_map);
  }

  const auto reached = [&](Vertex v) { return colors[v] != boost::white_color; };
  Subnetwork out;
  for (Vertex v = base[0]; v < base[1]; ++v) {
    if (reached(v)) out.inputs.push_back(static_cast<int64_t>(v - base[0]));
  }
  out.hidden.resize(num_layers);
  for (size_t l = 0; l < num_layers; ++l) {
    for (Vertex v = base[l + 1]; v < base[l + 2]; ++v) {
      if (reached(v)) out.hidden[l].push_back(static_cast<int64_t>(v - base[l + 1]));
    }
  }
  return out;
}

}  // namespace den::graph
