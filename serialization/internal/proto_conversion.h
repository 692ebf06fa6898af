#pragma once

// Engine, graph and run types to their den.proto messages and back. from_pb checks what a message
// can get wrong and throws CheckpointError (Kind::Corrupt) naming the checkpoint. Internal to
// serialization/; not installed.

#include "engine/config.h"
#include "engine/task_report.h"
#include "graph/unit_graph.h"
#include "serialization/checkpoint.h"
#include "serialization/den.pb.h"

#include <string>
#include <vector>

namespace den::io::internal {

/// Appends `values` to a repeated int64 field.
template <typename Repeated>
void append(Repeated* out, const std::vector<int64_t>& values) {
  for (int64_t v : values) out->Add(v);
}

void to_pb(const engine::EngineConfig& c, pb::Config& m);
pb::Origin to_pb(graph::Origin o);
void to_pb(const graph::Unit& u, int64_t layer, int64_t position, pb::Unit& m);
void to_pb(const graph::UnitGraph& g, pb::Graph& m);
void to_pb(const engine::TaskReport& r, pb::TaskRecord& m);
void to_pb(const RunInfo& r, pb::RunInfo& m);
engine::EngineConfig from_pb(const pb::Config& m, const std::string& name);
graph::Unit from_pb(const pb::Unit& m, const std::string& name);
graph::UnitGraph from_pb(const pb::Graph& m, const std::string& name);
engine::TaskReport from_pb(const pb::TaskRecord& m);
RunInfo from_pb(const pb::RunInfo& m);

}  // namespace den::io::internal
