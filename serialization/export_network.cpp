// Compaction of a grown network for export, and the DOT exporter.

#include "serialization/checkpoint.h"
#include "serialization/export.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>
#include <stdexcept>

namespace den::io {

namespace {

/// An augmented weight (NOTE: [augmented rows]) as a layer's weight and bias: a conv layer's rows
/// become `[n, C_in, kh, kw]` filters.
AffineLayer split_augmented(const at::Tensor& augmented, const engine::LayerSpec& spec) {
  const int64_t n_in = augmented.size(1) - 1;
  at::Tensor weight = augmented.narrow(1, 0, n_in).contiguous().clone();
  if (spec.kind == engine::LayerKind::Conv) {
    weight = weight.view({weight.size(0), n_in / (spec.kernel_h * spec.kernel_w), spec.kernel_h, spec.kernel_w});
  }
  engine::LayerSpec own = spec;
  own.units = augmented.size(0);
  return {weight, augmented.select(1, n_in).contiguous().clone(), own};
}

/// The input shape an exported network reads: C,H,W before a conv first layer, none before an fc one.
std::vector<int64_t> exported_input_shape(const engine::Engine& engine) {
  return engine.network().spec(0).kind == engine::LayerKind::Conv ? engine.network().input_shape()
                                                                   : std::vector<int64_t>{};
}

at::Tensor index(const std::vector<int64_t>& values) { return at::tensor(values, at::kLong); }

/// Positions 0..n-1 where keep[i].
std::vector<int64_t> kept(const std::vector<bool>& keep) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < keep.size(); ++i) {
    if (keep[i]) out.push_back(static_cast<int64_t>(i));
  }
  return out;
}

}  // namespace

void check_export_task(const engine::Engine& engine, int64_t task, bool allow_all) {
  if (engine.num_tasks() == 0) throw std::invalid_argument("the checkpoint holds no task yet; nothing to export");
  if (allow_all && task == kAllTasks) return;
  if (task < 1 || task > engine.num_tasks()) {
    throw std::invalid_argument("task " + std::to_string(task) + " does not exist: the network has tasks 1.." +
                                std::to_string(engine.num_tasks()) + (allow_all ? " (or all)" : ""));
  }
}

TaskNetwork task_network(const engine::Engine& engine, int64_t task) {
  check_export_task(engine, task, false);
  at::NoGradGuard no_grad;
  const engine::Network& network = engine.network();
  const int64_t num_layers = network.num_layers();
  // The network as it was after `task` (the one compaction, Engine::compact), copied: the dead-unit
  // removal below changes it.
  const engine::Engine::CompactNetwork& compact = engine.compact(task);
  std::vector<at::Tensor> layers;
  for (const at::Tensor& w : compact.layers) layers.push_back(w.clone());
  at::Tensor head = compact.head.clone();
  TaskNetwork out;
  out.task = task;
  out.input_dim = engine.input_dim();
  out.input_shape = exported_input_shape(engine);
  for (const at::Tensor& w : layers) out.visible_units.push_back(w.size(0));

  // NOTE: [dead units] Remove units that cannot change the output, until none is left: a unit
  // whose augmented row is zero outputs relu(0) = 0, and a unit whose outgoing column block (NOTE:
  // [augmented rows]) is zero is never read. Removing one can make a unit below dead, hence the loop.
  bool changed = true;
  while (changed) {
    changed = false;
    for (int64_t l = 0; l < num_layers; ++l) {
      at::Tensor& above = l + 1 < num_layers ? layers[l + 1] : head;
      const int64_t n = layers[l].size(0), block = network.block(l + 1);
      const at::Tensor row_alive = layers[l].ne(0).any(1);
      const at::Tensor col_alive = engine::column_blocks(above, block).ne(0).any(2).any(0);
      const at::Tensor alive = row_alive.logical_and(col_alive);
      std::vector<bool> keep(static_cast<size_t>(n));
      int64_t count = 0;
      const auto* a = alive.data_ptr<bool>();
      for (int64_t i = 0; i < n; ++i) {
        keep[i] = a[i];
        count += a[i] ? 1 : 0;
      }
      if (count == n) continue;
      if (count == 0) keep[0] = true;  // keep one unit so every layer has a shape
      if (count == 0 && n == 1) continue;
      const std::vector<int64_t> rows = kept(keep);
      layers[l] = layers[l].index_select(0, index(rows));
      std::vector<int64_t> columns = engine::unit_columns(rows, block);
      columns.push_back(n * block);  // bias column of the layer above
      above = above.index_select(1, index(columns));
      changed = true;
    }
  }
  for (int64_t l = 0; l < num_layers; ++l) out.hidden.push_back(split_augmented(layers[l], network.spec(l)));
  out.head = split_augmented(head, engine::LayerSpec(head.size(0)));
  return out;
}

MultiTaskNetwork multi_task_network(const engine::Engine& engine) {
  check_export_task(engine, kAllTasks, true);
  const graph::UnitGraph& g = engine.graph();
  const engine::Network& network = engine.network();
  MultiTaskNetwork out;
  out.input_dim = engine.input_dim();
  out.input_shape = exported_input_shape(engine);
  for (int64_t l = 0; l <= g.num_layers(); ++l) out.blocks.push_back(network.block(l));
  for (int64_t l = 0; l < g.num_layers(); ++l) out.hidden.push_back(split_augmented(network.layer(l), network.spec(l)));
  for (int64_t s = 1; s <= engine.num_tasks(); ++s) {
    std::vector<int64_t> sizes;
    for (int64_t l = 0; l < g.num_layers(); ++l) {
      const std::vector<int64_t> rows = g.visible_units(l, s);
      for (size_t i = 0; i < rows.size(); ++i) {
        if (rows[i] != static_cast<int64_t>(i)) {
          throw std::runtime_error("cannot export all tasks: the units task " + std::to_string(s) + " uses in layer " +
                                   std::to_string(l) + " are not the first ones (units must be appended)");
        }
      }
      sizes.push_back(static_cast<int64_t>(rows.size()));
    }
    const at::Tensor& head = network.head(s);
    const int64_t width = sizes.back() * out.blocks.back();
    out.heads.push_back({head.narrow(1, 0, width).contiguous().clone(), head.select(1, head.size(1) - 1).contiguous().clone(),
                         engine::LayerSpec(head.size(0))});
    out.sizes.push_back(std::move(sizes));
  }
  return out;
}

namespace {

/// The live units of one hidden layer born at one stage.
struct UnitGroup {
  int64_t layer = 0;
  int64_t stage = 0;
  std::vector<int64_t> positions;  ///< rows of the layer's tensor
  std::string node;                ///< DOT node id
};

/// Nonzero elements of `nonzero` (bool) in `rows` x `columns`.
int64_t count_between(const at::Tensor& nonzero, const std::vector<int64_t>& rows, const std::vector<int64_t>& columns) {
  return nonzero.index_select(0, index(rows)).index_select(1, index(columns)).sum().item<int64_t>();
}

std::vector<int64_t> range(int64_t n) {
  std::vector<int64_t> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = i;
  return out;
}

/// A DOT edge drawn where weights connect `from` to `to`: its width grows with the share of the
/// possible weights that are nonzero; the count is the tooltip.
void weight_edge(std::ostream& out, const std::string& from, const std::string& to, int64_t nonzero, int64_t possible) {
  if (nonzero == 0) return;
  const double density = possible > 0 ? static_cast<double>(nonzero) / static_cast<double>(possible) : 0.0;
  out << from << " -> " << to << " [penwidth=" << 0.3 + 2.2 * density << ", tooltip=\"" << nonzero
      << " nonzero weights\"];\n";
}

// NOTE: [grouped network picture] A grown network has hundreds of units, too many to draw one by
// one; units of one layer born at one stage share their history (timestamped inference uses them
// from that task on), so they are drawn as one node. Edges come from the weights, not from the
// structure: two groups are joined where some weight between them is nonzero.
std::string grouped_dot_graph(const engine::Engine& engine, int64_t task) {
  at::NoGradGuard no_grad;
  const graph::UnitGraph& g = engine.graph();
  const int64_t last_stage = task == kAllTasks ? std::max<int64_t>(1, g.num_heads()) : task;
  std::vector<std::vector<UnitGroup>> layers(static_cast<size_t>(g.num_layers()));
  size_t largest = 1;
  for (int64_t l = 0; l < g.num_layers(); ++l) {
    for (int64_t s = 1; s <= last_stage; ++s) {
      std::vector<int64_t> positions = g.units_born_at(l, s);
      if (positions.empty()) continue;
      largest = std::max(largest, positions.size());
      layers[l].push_back({l, s, std::move(positions), "l" + std::to_string(l) + "_s" + std::to_string(s)});
    }
  }

  std::ostringstream out;
  // Weight edges are many (most groups are joined): thin and grey, so that the groups and the red
  // split lineage stand out; straight lines and one rank per layer keep the picture regular.
  out << "digraph network {\nrankdir=BT;\nsplines=line;\nranksep=1.2;\nnodesep=0.3;\n"
      << "node [shape=box, style=\"filled,rounded\", colorscheme=set38, fontname=\"sans-serif\"];\n"
      << "edge [color=\"#80808080\", arrowsize=0.4];\n";
  const engine::Network& network = engine.network();
  const bool image_input = network.block(0) > 1;  // a conv layer reads the input's channels
  out << "input [label=\"input\\n" << g.input_dim() << (image_input ? " channels" : " features")
      << "\", style=rounded];\n";
  for (const auto& groups : layers) {
    int64_t units = 0;
    for (const UnitGroup& group : groups) units += static_cast<int64_t>(group.positions.size());
    const int64_t l = groups.empty() ? 0 : groups.front().layer;
    // A row per layer, its name first, then the groups in stage order, left to right (invisible
    // edges; a cluster box would let dot reorder them).
    const std::string name = "layer" + std::to_string(l);
    // A conv layer's units are its filters: channels of its output.
    const engine::LayerSpec& spec = network.spec(l);
    const bool conv = spec.kind == engine::LayerKind::Conv;
    out << "subgraph row_" << l << " {\nrank=same;\n"
        << name << " [shape=plaintext, style=\"\", label=\"hidden layer " << l
        << (conv ? " (" + engine::layer_token(spec) + ")" : std::string()) << "\\n" << units
        << (conv ? " channels" : " units") << "\"];\n";
    std::string previous = name;
    for (const UnitGroup& group : groups) {
      out << previous << " -> " << group.node << " [style=invis];\n";
      previous = group.node;
    }
    for (const UnitGroup& group : groups) {
      // Width (a minimum: the label always fits) grows with the square root of the unit count.
      const double width = 0.9 + 2.1 * std::sqrt(static_cast<double>(group.positions.size()) / static_cast<double>(largest));
      out << group.node << " [label=\"" << group.positions.size()
          << (network.spec(group.layer).kind == engine::LayerKind::Conv ? " filters" : " units") << "\\nborn at task "
          << group.stage
          << "\", width=" << width << ", fillcolor=" << graph::graphviz_stage_color(group.stage) << "];\n";
    }
    out << "}\n";
  }
  out << "subgraph heads {\nrank=same;\n";
  for (int64_t t = 1; t <= last_stage && t <= g.num_heads(); ++t) out << "head" << t << ";\n";
  out << "}\n";
  for (int64_t t = 2; t <= last_stage && t <= g.num_heads(); ++t) {
    out << "head" << t - 1 << " -> head" << t << " [style=invis];\n";
  }
  for (int64_t t = 1; t <= last_stage && t <= g.num_heads(); ++t) {
    out << "head" << t << " [label=\"head " << t << "\\n" << g.head(t).num_outputs
        << " outputs\", fillcolor=" << graph::graphviz_stage_color(t) << "];\n";
  }

  // Forward edges: input -> layer 0 -> ... -> top layer -> heads.
  // Nonzero weights between each unit and each unit below: a column block each (NOTE: [augmented
  // rows]), one weight between fc units.
  const auto nonzero_per_unit = [&](const at::Tensor& w, int64_t l) {
    return engine::column_blocks(w, network.block(l)).ne(0).sum(2);
  };
  for (size_t l = 0; l < layers.size(); ++l) {
    const auto level = static_cast<int64_t>(l);
    const at::Tensor nonzero = nonzero_per_unit(network.layer(level), level);
    const int64_t block = network.block(level);
    for (const UnitGroup& to : layers[l]) {
      const auto rows = static_cast<int64_t>(to.positions.size());
      if (l == 0) {
        const std::vector<int64_t> inputs = range(g.input_dim());
        weight_edge(out, "input", to.node, count_between(nonzero, to.positions, inputs), rows * g.input_dim() * block);
        continue;
      }
      for (const UnitGroup& from : layers[l - 1]) {
        weight_edge(out, from.node, to.node, count_between(nonzero, to.positions, from.positions),
                    rows * static_cast<int64_t>(from.positions.size()) * block);
      }
    }
  }
  const int64_t head_block = network.block(network.num_layers());
  for (int64_t t = 1; t <= last_stage && t <= g.num_heads(); ++t) {
    const at::Tensor nonzero = nonzero_per_unit(network.head(t), network.num_layers());
    const std::vector<int64_t> outputs = range(nonzero.size(0));
    for (const UnitGroup& from : layers.back()) {
      if (from.stage > t) continue;  // timestamped inference: task t never reads later units
      weight_edge(out, from.node, "head" + std::to_string(t), count_between(nonzero, outputs, from.positions),
                  nonzero.size(0) * static_cast<int64_t>(from.positions.size()) * head_block);
    }
  }

  // Split lineage: copies born at one stage from units of another, counted per pair of groups.
  for (size_t l = 0; l < layers.size(); ++l) {
    std::map<int64_t, int64_t> stage_of;  // unit id -> birth stage, pruned units included
    for (const graph::Unit& u : g.units(static_cast<int64_t>(l))) stage_of[u.id] = u.birth_stage;
    for (const auto& [layer, u] : g.removed_units()) {
      if (layer == static_cast<int64_t>(l)) stage_of[u.id] = u.birth_stage;
    }
    std::map<std::pair<int64_t, int64_t>, int64_t> splits;  // (source stage, copy stage) -> copies
    for (const graph::Unit& u : g.units(static_cast<int64_t>(l))) {
      const auto source = stage_of.find(u.split_from);
      if (u.origin != graph::Origin::Split || u.birth_stage > last_stage || source == stage_of.end()) continue;
      ++splits[{source->second, u.birth_stage}];
    }
    for (const auto& [stages, copies] : splits) {
      // A pruned source's group may be gone; the copy's group then has no dashed edge.
      const auto group_of = [&](int64_t stage) -> const UnitGroup* {
        for (const UnitGroup& group : layers[l]) {
          if (group.stage == stage) return &group;
        }
        return nullptr;
      };
      const UnitGroup* from = group_of(stages.first);
      const UnitGroup* to = group_of(stages.second);
      if (from == nullptr || to == nullptr) continue;
      out << from->node << " -> " << to->node
          << " [style=dashed, constraint=false, color=\"#d62728\", fontcolor=\"#d62728\", fontsize=10, "
             "arrowsize=0.6, label=\""
          << copies << " split\"];\n";
    }
  }
  out << "}\n";
  return out.str();
}

}  // namespace

std::string dot_graph(const engine::Engine& engine, int64_t task, NetworkView view) {
  check_export_task(engine, task, true);
  if (view == NetworkView::Grouped) return grouped_dot_graph(engine, task);
  const graph::UnitGraph& g = engine.graph();
  std::ostringstream out;
  if (task == kAllTasks) {
    g.write_graphviz(out);
    return out.str();
  }
  // The graph as task `task` sees it: units born at stages <= task, heads 1..task.
  std::vector<std::vector<graph::Unit>> layers;
  for (int64_t l = 0; l < g.num_layers(); ++l) {
    layers.emplace_back();
    for (int64_t p : g.visible_units(l, task)) layers.back().push_back(g.unit(l, p));
  }
  std::vector<graph::Head> heads(g.heads().begin(), g.heads().begin() + task);
  std::vector<std::pair<int64_t, graph::Unit>> removed;
  for (const auto& entry : g.removed_units()) {
    if (entry.second.birth_stage <= task) removed.push_back(entry);
  }
  graph::UnitGraph::restore(g.input_dim(), std::move(layers), std::move(heads), std::move(removed), g.next_id())
      .write_graphviz(out);
  return out.str();
}

void export_dot(const engine::Engine& engine, int64_t task, const std::string& path, NetworkView view) {
  write_file_atomically(path, dot_graph(engine, task, view));
}

}  // namespace den::io
