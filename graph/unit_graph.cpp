#include "graph/unit_graph.h"

// GCC 12 reports a false -Wmaybe-uninitialized inside Boost's adjacency_list edge iterator
// (a boost::optional member) when write_graphviz is inlined; the warning is not ours.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/graphviz.hpp>
#pragma GCC diagnostic pop

#include <algorithm>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace den::graph {

std::string to_string(Origin origin) {
  switch (origin) {
    case Origin::Initial:
      return "initial";
    case Origin::Expanded:
      return "expanded";
    case Origin::Split:
      return "split";
    case Origin::Imported:
      return "imported";
  }
  return "unknown";
}

namespace {

std::string str(int64_t v) { return std::to_string(v); }

void check_stage(int64_t stage) {
  if (stage < 1) {
    throw std::invalid_argument("UnitGraph: stage must be >= 1 (stages are 1-based task ids), got " + str(stage));
  }
}

}  // namespace

UnitGraph::UnitGraph(int64_t input_dim, const std::vector<int64_t>& hidden_sizes, Origin origin)
    : input_dim_(input_dim) {
  if (origin != Origin::Initial && origin != Origin::Imported) {
    throw std::invalid_argument("UnitGraph: a base network's units are initial or imported, not " + to_string(origin));
  }
  if (input_dim < 1) {
    throw std::invalid_argument("UnitGraph: input_dim must be >= 1, got " + str(input_dim));
  }
  if (hidden_sizes.empty()) {
    throw std::invalid_argument("UnitGraph: at least one hidden layer is required");
  }
  for (size_t l = 0; l < hidden_sizes.size(); ++l) {
    if (hidden_sizes[l] < 1) {
      throw std::invalid_argument("UnitGraph: hidden layer " + str(static_cast<int64_t>(l)) +
                                  " must have >= 1 unit, got " + str(hidden_sizes[l]));
    }
  }
  layers_.resize(hidden_sizes.size());
  for (size_t l = 0; l < hidden_sizes.size(); ++l) {
    add_units(static_cast<int64_t>(l), hidden_sizes[l], 1, origin);
  }
}

void UnitGraph::check_layer(int64_t layer) const {
  if (layer < 0 || layer >= num_layers()) {
    throw std::out_of_range("UnitGraph: layer " + str(layer) + " out of range [0, " + str(num_layers()) + ")");
  }
}

int64_t UnitGraph::layer_size(int64_t layer) const {
  check_layer(layer);
  return static_cast<int64_t>(layers_[layer].size());
}

std::vector<int64_t> UnitGraph::layer_sizes() const {
  std::vector<int64_t> sizes;
  sizes.reserve(layers_.size());
  for (const auto& units : layers_) sizes.push_back(static_cast<int64_t>(units.size()));
  return sizes;
}

const std::vector<Unit>& UnitGraph::units(int64_t layer) const {
  check_layer(layer);
  return layers_[layer];
}

const Unit& UnitGraph::unit(int64_t layer, int64_t position) const {
  check_layer(layer);
  const auto& units = layers_[layer];
  if (position < 0 || position >= static_cast<int64_t>(units.size())) {
    throw std::out_of_range("UnitGraph: position " + str(position) + " out of range [0, " +
                            str(static_cast<int64_t>(units.size())) + ") in layer " + str(layer));
  }
  return units[position];
}

int64_t UnitGraph::add_units(int64_t layer, int64_t count, int64_t stage, Origin origin) {
  check_layer(layer);
  check_stage(stage);
  if (count < 0) {
    throw std::invalid_argument("UnitGraph::add_units: count must be >= 0, got " + str(count));
  }
  // A split copy without its source would break the lineage; split_unit records it.
  if (origin == Origin::Split) {
    throw std::invalid_argument("UnitGraph::add_units: use split_unit to create Origin::Split units");
  }
  auto& units = layers_[layer];
  const auto first = static_cast<int64_t>(units.size());
  for (int64_t i = 0; i < count; ++i) {
    Unit u;
    u.id = next_id_++;
    u.birth_stage = stage;
    u.origin = origin;
    units.push_back(u);
  }
  return first;
}

int64_t UnitGraph::split_unit(int64_t layer, int64_t position, int64_t stage) {
  const Unit source = unit(layer, position);  // validates layer and position
  check_stage(stage);
  if (stage < source.birth_stage) {
    throw std::invalid_argument("UnitGraph::split_unit: stage " + str(stage) + " is before the birth stage " +
                                str(source.birth_stage) + " of unit " + str(source.id));
  }
  Unit copy;
  copy.id = next_id_++;
  copy.birth_stage = stage;
  copy.origin = Origin::Split;
  copy.split_from = source.id;
  layers_[layer].push_back(copy);
  return static_cast<int64_t>(layers_[layer].size()) - 1;
}

void UnitGraph::remove_units(int64_t layer, std::vector<int64_t> positions) {
  check_layer(layer);
  auto& units = layers_[layer];
  const auto size = static_cast<int64_t>(units.size());
  std::sort(positions.begin(), positions.end());
  for (size_t i = 0; i < positions.size(); ++i) {
    if (positions[i] < 0 || positions[i] >= size) {
      throw std::out_of_range("UnitGraph::remove_units: position " + str(positions[i]) + " out of range [0, " +
                              str(size) + ") in layer " + str(layer));
    }
    if (i > 0 && positions[i] == positions[i - 1]) {
      throw std::invalid_argument("UnitGraph::remove_units: duplicate position " + str(positions[i]));
    }
  }
  // Validate everything before mutating, so a bad call leaves the graph unchanged.
  std::vector<bool> removed(units.size(), false);
  for (int64_t p : positions) {
    removed[p] = true;
    Unit dead = units[p];
    dead.alive = false;
    removed_.emplace_back(layer, dead);
  }
  std::vector<Unit> kept;
  kept.reserve(units.size() - positions.size());
  for (size_t i = 0; i < units.size(); ++i) {
    if (!removed[i]) kept.push_back(units[i]);
  }
  units = std::move(kept);
}

void UnitGraph::add_head(int64_t task, int64_t num_outputs) {
  if (task != num_heads() + 1) {
    throw std::invalid_argument("UnitGraph::add_head: heads are added in task order; expected task " +
                                str(num_heads() + 1) + ", got " + str(task));
  }
  if (num_outputs < 1) {
    throw std::invalid_argument("UnitGraph::add_head: num_outputs must be >= 1, got " + str(num_outputs));
  }
  heads_.push_back(Head{task, num_outputs});
}

const Head& UnitGraph::head(int64_t task) const {
  if (task < 1 || task > num_heads()) {
    throw std::out_of_range("UnitGraph::head: unknown task " + str(task) + " (" + str(num_heads()) +
                            " heads registered)");
  }
  return heads_[task - 1];
}

std::vector<int64_t> UnitGraph::visible_units(int64_t layer, int64_t stage) const {
  check_layer(layer);
  std::vector<int64_t> out;
  const auto& units = layers_[layer];
  for (size_t i = 0; i < units.size(); ++i) {
    if (units[i].alive && units[i].birth_stage <= stage) out.push_back(static_cast<int64_t>(i));
  }
  return out;
}

std::vector<int64_t> UnitGraph::units_born_at(int64_t layer, int64_t stage) const {
  check_layer(layer);
  std::vector<int64_t> out;
  const auto& units = layers_[layer];
  for (size_t i = 0; i < units.size(); ++i) {
    if (units[i].birth_stage == stage) out.push_back(static_cast<int64_t>(i));
  }
  return out;
}

UnitGraph UnitGraph::restore(int64_t input_dim, std::vector<std::vector<Unit>> layers, std::vector<Head> heads,
                             std::vector<std::pair<int64_t, Unit>> removed, int64_t next_id) {
  const auto fail = [](const std::string& message) { throw std::invalid_argument("UnitGraph::restore: " + message); };
  if (input_dim < 1) fail("input_dim must be >= 1, got " + str(input_dim));
  if (layers.empty()) fail("at least one hidden layer is required");
  if (next_id < 0) fail("next unit id must be >= 0, got " + str(next_id));
  for (size_t i = 0; i < heads.size(); ++i) {
    const auto expected = static_cast<int64_t>(i) + 1;
    if (heads[i].task != expected) fail("head " + str(expected) + " has task id " + str(heads[i].task));
    if (heads[i].num_outputs < 1) fail("head " + str(expected) + " has " + str(heads[i].num_outputs) + " outputs");
  }
  const int64_t max_stage = std::max<int64_t>(1, static_cast<int64_t>(heads.size()));
  const auto num_layers = static_cast<int64_t>(layers.size());

  // Every id, live or pruned, once; sorted for the split-source lookups below.
  std::vector<int64_t> ids;
  const auto check_unit = [&](const Unit& u, int64_t layer, bool alive) {
    const std::string where = "unit " + str(u.id) + " of layer " + str(layer);
    if (u.id < 0 || u.id >= next_id) fail(where + ": id out of range [0, " + str(next_id) + ")");
    if (u.birth_stage < 1 || u.birth_stage > max_stage) {
      fail(where + ": birth stage " + str(u.birth_stage) + " outside 1.." + str(max_stage));
    }
    if (u.alive != alive) fail(where + (alive ? ": a live unit is marked dead" : ": a pruned unit is marked alive"));
    if (u.origin != Origin::Initial && u.origin != Origin::Expanded && u.origin != Origin::Split &&
        u.origin != Origin::Imported) {
      fail(where + ": unknown origin " + str(static_cast<int64_t>(u.origin)));
    }
    if (u.origin == Origin::Split) {
      if (u.split_from < 0 || u.split_from >= u.id) {
        fail(where + ": split copy of unit " + str(u.split_from) + ", which is not an older unit");
      }
    } else if (u.split_from != -1) {
      fail(where + ": split_from " + str(u.split_from) + " on a unit of origin " + to_string(u.origin));
    }
    ids.push_back(u.id);
  };
  for (int64_t l = 0; l < num_layers; ++l) {
    if (layers[l].empty()) fail("hidden layer " + str(l) + " has no units");
    for (const Unit& u : layers[l]) check_unit(u, l, true);
  }
  for (const auto& [layer, u] : removed) {
    if (layer < 0 || layer >= num_layers) fail("pruned unit " + str(u.id) + " in unknown layer " + str(layer));
    check_unit(u, layer, false);
  }
  std::sort(ids.begin(), ids.end());
  const auto dup = std::adjacent_find(ids.begin(), ids.end());
  if (dup != ids.end()) fail("unit id " + str(*dup) + " appears twice");
  const auto known = [&](int64_t id) { return std::binary_search(ids.begin(), ids.end(), id); };
  const auto check_source = [&](const Unit& u) {
    if (u.origin == Origin::Split && !known(u.split_from)) {
      fail("unit " + str(u.id) + " is a split copy of unknown unit " + str(u.split_from));
    }
  };
  for (const auto& layer : layers) {
    for (const Unit& u : layer) check_source(u);
  }
  for (const auto& entry : removed) check_source(entry.second);

  UnitGraph g(input_dim);
  g.next_id_ = next_id;
  g.layers_ = std::move(layers);
  g.heads_ = std::move(heads);
  g.removed_ = std::move(removed);
  return g;
}

int graphviz_stage_color(int64_t stage) {
  constexpr int kPaletteSize = 8;  // set38
  return static_cast<int>((stage - 1) % kPaletteSize) + 1;
}

namespace {

// NOTE: [graphviz layout] Vertices are the input block, every live hidden unit and every head.
// Weights are not stored here, so edges between layers are summarized as one cluster-to-cluster
// edge (compound=true with ltail/lhead) instead of one edge per weight. Clusters are emitted as
// subgraph blocks by the graph property writer, before boost::write_graphviz lists the vertices.

struct DotVertex {
  std::string label;
  std::string shape;
  int color = 0;  // index into the set38 color scheme, 0 = none
};

struct DotEdge {
  std::string style;  // empty = solid
  std::string ltail;
  std::string lhead;
  std::string label;
};

using DotGraph = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS, DotVertex, DotEdge>;


class VertexWriter {
 public:
  explicit VertexWriter(const DotGraph& g) : g_(g) {}
  template <typename Vertex>
  void operator()(std::ostream& out, const Vertex& v) const {
    const DotVertex& p = g_[v];
    out << "[label=\"" << p.label << "\", shape=" << p.shape;
    if (p.color > 0) out << ", style=filled, colorscheme=set38, fillcolor=" << p.color;
    out << "]";
  }

 private:
  const DotGraph& g_;
};

class EdgeWriter {
 public:
  explicit EdgeWriter(const DotGraph& g) : g_(g) {}
  template <typename Edge>
  void operator()(std::ostream& out, const Edge& e) const {
    const DotEdge& p = g_[e];
    std::vector<std::string> attrs;
    if (!p.style.empty()) attrs.push_back("style=" + p.style);
    if (!p.ltail.empty()) attrs.push_back("ltail=" + p.ltail);
    if (!p.lhead.empty()) attrs.push_back("lhead=" + p.lhead);
    if (!p.label.empty()) attrs.push_back("label=\"" + p.label + "\"");
    if (attrs.empty()) return;
    out << "[";
    for (size_t i = 0; i < attrs.size(); ++i) out << (i ? ", " : "") << attrs[i];
    out << "]";
  }

 private:
  const DotGraph& g_;
};

class GraphWriter {
 public:
  GraphWriter(const std::vector<std::vector<size_t>>& clusters, const std::vector<std::string>& cluster_labels)
      : clusters_(clusters), labels_(cluster_labels) {}
  void operator()(std::ostream& out) const {
    out << "compound=true;\nrankdir=BT;\n";
    for (size_t c = 0; c < clusters_.size(); ++c) {
      out << "subgraph cluster_" << c << " {\nlabel=\"" << labels_[c] << "\";\n";
      for (size_t v : clusters_[c]) out << v << ";\n";
      out << "}\n";
    }
  }

 private:
  const std::vector<std::vector<size_t>>& clusters_;
  const std::vector<std::string>& labels_;
};

}  // namespace

void UnitGraph::write_graphviz(std::ostream& out) const {
  DotGraph g;
  std::vector<std::vector<size_t>> clusters;
  std::vector<std::string> cluster_labels;

  const auto input = boost::add_vertex(DotVertex{"input\\n" + str(input_dim_) + " features", "box", 0}, g);

  // One cluster per hidden layer; remember where every live unit id landed for split edges.
  std::vector<std::pair<int64_t, size_t>> id_to_vertex;
  for (size_t l = 0; l < layers_.size(); ++l) {
    clusters.emplace_back();
    cluster_labels.push_back("hidden " + str(static_cast<int64_t>(l)) + " (" +
                             str(static_cast<int64_t>(layers_[l].size())) + " units)");
    for (const Unit& u : layers_[l]) {
      std::string label = "u" + str(u.id) + "\\nstage " + str(u.birth_stage);
      if (u.origin != Origin::Initial) label += "\\n" + to_string(u.origin);
      const auto v = boost::add_vertex(DotVertex{label, "ellipse", graphviz_stage_color(u.birth_stage)}, g);
      clusters.back().push_back(v);
      id_to_vertex.emplace_back(u.id, v);
    }
  }
  const auto first_unit = [&](size_t l) { return clusters[l].front(); };
  const auto cluster_name = [](size_t l) { return "cluster_" + std::to_string(l); };

  // Summarized forward connections, input -> layer 0 -> ... -> top layer.
  if (!clusters.empty() && !clusters[0].empty()) {
    boost::add_edge(input, first_unit(0), DotEdge{"", "", cluster_name(0), ""}, g);
  }
  for (size_t l = 1; l < clusters.size(); ++l) {
    if (clusters[l - 1].empty() || clusters[l].empty()) continue;
    boost::add_edge(first_unit(l - 1), first_unit(l), DotEdge{"", cluster_name(l - 1), cluster_name(l), ""}, g);
  }

  // Heads read the top layer's units visible at their stage.
  const size_t top = clusters.size() - 1;
  for (const Head& h : heads_) {
    const auto v = boost::add_vertex(
        DotVertex{"head " + str(h.task) + "\\n" + str(h.num_outputs) + " outputs", "box", graphviz_stage_color(h.task)}, g);
    if (!clusters[top].empty()) {
      boost::add_edge(first_unit(top), v, DotEdge{"", cluster_name(top), "", "stage <= " + str(h.task)}, g);
    }
  }

  // Split lineage: source unit -> copy, dashed. A pruned source is not drawn, so neither is its edge.
  std::sort(id_to_vertex.begin(), id_to_vertex.end());
  const auto find_vertex = [&](int64_t id) -> long {
    auto it = std::lower_bound(id_to_vertex.begin(), id_to_vertex.end(), std::make_pair(id, size_t{0}));
    return (it != id_to_vertex.end() && it->first == id) ? static_cast<long>(it->second) : -1L;
  };
  for (const auto& layer : layers_) {
    for (const Unit& u : layer) {
      if (u.origin != Origin::Split) continue;
      const long from = find_vertex(u.split_from);
      const long to = find_vertex(u.id);
      if (from >= 0 && to >= 0) {
        boost::add_edge(static_cast<size_t>(from), static_cast<size_t>(to), DotEdge{"dashed", "", "", "split"}, g);
      }
    }
  }

  boost::write_graphviz(out, g, VertexWriter(g), EdgeWriter(g), GraphWriter(clusters, cluster_labels));
}

}  // namespace den::graph
