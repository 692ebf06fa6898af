#include "serialization/internal/proto_conversion.h"

#include "serialization/internal/config_proto.h"
#include "serialization/internal/framing.h"
#include "serialization/internal/report_proto.h"

#include <cmath>
#include <limits>

namespace den::io::internal {

void to_pb(const engine::EngineConfig& c, pb::Config& m) { config_to_pb(c, m); }

pb::Origin to_pb(graph::Origin o) {
  switch (o) {
    case graph::Origin::Initial:
      return pb::ORIGIN_INITIAL;
    case graph::Origin::Expanded:
      return pb::ORIGIN_EXPANDED;
    case graph::Origin::Split:
      return pb::ORIGIN_SPLIT;
    case graph::Origin::Imported:
      return pb::ORIGIN_IMPORTED;
  }
  return pb::ORIGIN_UNSPECIFIED;
}

void to_pb(const graph::Unit& u, int64_t layer, int64_t position, pb::Unit& m) {
  m.set_id(u.id);
  m.set_layer(layer);
  m.set_position(position);
  m.set_birth_stage(u.birth_stage);
  m.set_origin(to_pb(u.origin));
  if (u.split_from >= 0) m.set_split_from(u.split_from);
  m.set_alive(u.alive);
}

void to_pb(const graph::UnitGraph& g, pb::Graph& m) {
  m.set_input_dim(g.input_dim());
  m.set_num_layers(g.num_layers());
  m.set_next_unit_id(g.next_id());
  for (int64_t l = 0; l < g.num_layers(); ++l) {
    const auto& units = g.units(l);
    for (size_t p = 0; p < units.size(); ++p) to_pb(units[p], l, static_cast<int64_t>(p), *m.add_units());
  }
  for (const auto& [layer, u] : g.removed_units()) to_pb(u, layer, -1, *m.add_removed());
  for (const graph::Head& h : g.heads()) {
    pb::Head* head = m.add_heads();
    head->set_task(h.task);
    head->set_num_outputs(h.num_outputs);
  }
}


void to_pb(const engine::TaskReport& r, pb::TaskRecord& m) { report_to_pb(r, m); }

void to_pb(const RunInfo& r, pb::RunInfo& m) {
  m.set_method(r.method);
  m.set_data_dir(r.data_dir);
  m.set_protocol(r.protocol);
  m.set_num_tasks(r.num_tasks);
  m.set_classes_per_task(r.classes_per_task);
  m.set_train_limit(r.train_limit);
  m.set_val_fraction(r.val_fraction);
  m.set_normalize(r.normalize);
  m.set_seed(r.seed);
  if (r.data_crc32) m.set_data_crc32(*r.data_crc32);
  m.set_seconds(r.seconds);
  m.set_base_classes(r.base_classes);
  if (r.exemplars_per_class) m.set_exemplars_per_class(*r.exemplars_per_class);
  m.set_negatives_from_memory(r.negatives_from_memory);
  m.set_memory(r.memory);
}

// Older checkpoints lack the fields added later and read proto3's zero: patience 0 (off), and
// prune_to_fixpoint, reset_zeroed_moments false, the behaviour they were trained with.
engine::EngineConfig from_pb(const pb::Config& m, const std::string& name) { return config_from_pb(m, name); }

graph::Unit from_pb(const pb::Unit& m, const std::string& name) {
  graph::Unit u;
  u.id = m.id();
  u.birth_stage = m.birth_stage();
  switch (m.origin()) {
    case pb::ORIGIN_INITIAL:
      u.origin = graph::Origin::Initial;
      break;
    case pb::ORIGIN_EXPANDED:
      u.origin = graph::Origin::Expanded;
      break;
    case pb::ORIGIN_SPLIT:
      u.origin = graph::Origin::Split;
      break;
    case pb::ORIGIN_IMPORTED:
      u.origin = graph::Origin::Imported;
      break;
    default:
      corrupt(name, "unit " + std::to_string(m.id()) + " has unknown origin " + std::to_string(m.origin()));
  }
  u.split_from = m.has_split_from() ? m.split_from() : -1;
  u.alive = m.alive();
  return u;
}

graph::UnitGraph from_pb(const pb::Graph& m, const std::string& name) {
  // Bounded by the header's size: every layer must hold at least one listed unit.
  if (m.num_layers() < 1 || m.num_layers() > m.units_size()) {
    corrupt(name, "graph has " + std::to_string(m.num_layers()) + " layers for " + std::to_string(m.units_size()) +
                      " units");
  }
  std::vector<std::vector<graph::Unit>> layers(static_cast<size_t>(m.num_layers()));
  for (const pb::Unit& u : m.units()) {
    if (u.layer() < 0 || u.layer() >= m.num_layers()) {
      corrupt(name, "unit " + std::to_string(u.id()) + " is in layer " + std::to_string(u.layer()) + " of " +
                        std::to_string(m.num_layers()));
    }
    auto& layer = layers[static_cast<size_t>(u.layer())];
    if (u.position() != static_cast<int64_t>(layer.size())) {
      corrupt(name, "unit " + std::to_string(u.id()) + " of layer " + std::to_string(u.layer()) + " has position " +
                        std::to_string(u.position()) + ", expected " + std::to_string(layer.size()));
    }
    layer.push_back(from_pb(u, name));
  }
  std::vector<std::pair<int64_t, graph::Unit>> removed;
  for (const pb::Unit& u : m.removed()) removed.emplace_back(u.layer(), from_pb(u, name));
  std::vector<graph::Head> heads;
  for (const pb::Head& h : m.heads()) heads.push_back(graph::Head{h.task(), h.num_outputs()});
  try {
    return graph::UnitGraph::restore(m.input_dim(), std::move(layers), std::move(heads), std::move(removed),
                                     m.next_unit_id());
  } catch (const std::invalid_argument& e) {
    corrupt(name, e.what());
  }
}

engine::TaskReport from_pb(const pb::TaskRecord& m) { return report_from_pb(m); }

RunInfo from_pb(const pb::RunInfo& m) {
  RunInfo r;
  r.method = m.method();
  r.data_dir = m.data_dir();
  r.protocol = m.protocol();
  r.num_tasks = m.num_tasks();
  r.classes_per_task = m.classes_per_task();
  r.train_limit = m.train_limit();
  r.val_fraction = m.val_fraction();
  r.normalize = m.normalize();
  r.seed = m.seed();
  if (m.has_data_crc32()) r.data_crc32 = m.data_crc32();
  r.seconds = m.seconds();
  r.base_classes = m.base_classes();
  if (m.has_exemplars_per_class()) r.exemplars_per_class = m.exemplars_per_class();
  r.negatives_from_memory = m.negatives_from_memory();
  r.memory = m.memory();
  return r;
}

}  // namespace den::io::internal
