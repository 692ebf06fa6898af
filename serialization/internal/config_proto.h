#pragma once

// engine::EngineConfig <-> the checkpoint's Config message (serialization/den.proto), generated
// from the hyperparameter table (NOTE: [hyperparameter table] in engine/hyperparameters.h): each
// entry is the proto field of the same name, found through protobuf reflection. Internal to
// serialization/; not installed.

#include "engine/config.h"
#include "serialization/den.pb.h"

#include <string>
#include <vector>

namespace den::io::internal {

/// Writes every checkpointed field of `config` into `message`.
void config_to_pb(const engine::EngineConfig& config, pb::Config& message);

/// The config stored in `message` (fields of older checkpoints absent: proto3's zero, their
/// behaviour). Throws CheckpointError (corrupt) naming checkpoint `name` for an enum value that
/// is not one of the engine's.
engine::EngineConfig config_from_pb(const pb::Config& message, const std::string& name);

/// Why `message` cannot hold the table: a checkpointed entry without a field of that name, or
/// with a field of another type, or an enum value without a proto value. Empty for den.proto's
/// Config; the converters refuse to run otherwise.
std::vector<std::string> config_field_problems(const google::protobuf::Descriptor& message);

}  // namespace den::io::internal
