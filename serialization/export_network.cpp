// Compaction of a grown network for export, and the DOT exporter.

#include "serialization/checkpoint.h"
#include "serialization/export.h"

#include <sstream>
#include <stdexcept>

namespace den::io {

namespace {

AffineLayer split_augmented(const at::Tensor& augmented) {
  const int64_t n_in = augmented.size(1) - 1;
  return {augmented.narrow(1, 0, n_in).contiguous().clone(), augmented.select(1, n_in).contiguous().clone()};
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
    throw std::invalid_argument("--task " + std::to_string(task) + " does not exist: the network has tasks 1.." +
                                std::to_string(engine.num_tasks()) + (allow_all ? " (or all)" : ""));
  }
}

TaskNetwork task_network(const engine::Engine& engine, int64_t task) {
  check_export_task(engine, task, false);
  at::NoGradGuard no_grad;
  const graph::UnitGraph& g = engine.graph();
  const int64_t num_layers = g.num_layers();

  // Augmented layers restricted to the units task `task` may use (as Engine::predict does).
  std::vector<at::Tensor> layers;
  at::Tensor columns;  // visible units of the layer below plus the bias column
  TaskNetwork out;
  out.task = task;
  out.input_dim = engine.input_dim();
  for (int64_t l = 0; l < num_layers; ++l) {
    const std::vector<int64_t> rows = g.visible_units(l, task);
    at::Tensor w = engine.network().layer(l).index_select(0, index(rows));
    if (columns.defined()) w = w.index_select(1, columns);
    layers.push_back(w);
    out.visible_units.push_back(static_cast<int64_t>(rows.size()));
    std::vector<int64_t> cols = rows;
    cols.push_back(engine.network().layer_size(l));
    columns = index(cols);
  }
  at::Tensor head = engine.network().head(task).index_select(1, columns);

  // NOTE: [dead units] Remove units that cannot change the output, until none is left: a unit
  // whose augmented row is zero outputs relu(0) = 0, and a unit whose outgoing column is zero is
  // never read. Removing one can make a unit below dead, hence the loop.
  bool changed = true;
  while (changed) {
    changed = false;
    for (int64_t l = 0; l < num_layers; ++l) {
      at::Tensor& above = l + 1 < num_layers ? layers[l + 1] : head;
      const int64_t n = layers[l].size(0);
      const at::Tensor row_alive = layers[l].ne(0).any(1);
      const at::Tensor col_alive = above.narrow(1, 0, n).ne(0).any(0);
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
      std::vector<int64_t> rows = kept(keep);
      layers[l] = layers[l].index_select(0, index(rows));
      rows.push_back(n);  // bias column of the layer above
      above = above.index_select(1, index(rows));
      changed = true;
    }
  }
  for (const at::Tensor& w : layers) out.hidden.push_back(split_augmented(w));
  out.head = split_augmented(head);
  return out;
}

MultiTaskNetwork multi_task_network(const engine::Engine& engine) {
  check_export_task(engine, kAllTasks, true);
  const graph::UnitGraph& g = engine.graph();
  MultiTaskNetwork out;
  out.input_dim = engine.input_dim();
  for (int64_t l = 0; l < g.num_layers(); ++l) out.hidden.push_back(split_augmented(engine.network().layer(l)));
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
    const at::Tensor& head = engine.network().head(s);
    const int64_t width = sizes.back();
    out.heads.push_back({head.narrow(1, 0, width).contiguous().clone(), head.select(1, head.size(1) - 1).contiguous().clone()});
    out.sizes.push_back(std::move(sizes));
  }
  return out;
}

std::string dot_graph(const engine::Engine& engine, int64_t task) {
  check_export_task(engine, task, true);
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

void export_dot(const engine::Engine& engine, int64_t task, const std::string& path) {
  write_file_atomically(path, dot_graph(engine, task));
}

}  // namespace den::io
