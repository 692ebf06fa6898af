#pragma once

// engine::TaskReport (with its PhaseResults and SplitPairs) <-> the checkpoint's TaskRecord message
// (serialization/den.proto), generated from the report tables (NOTE: [report fields] in
// engine/task_report.h): each checkpointed field is the proto field of the same name, found through
// protobuf reflection. Internal to serialization/; not installed.

#include "engine/task_report.h"
#include "serialization/den.pb.h"

#include <string>
#include <vector>

namespace den::io::internal {

/// Writes every checkpointed field of `report` into `message` (the record's evaluation and output
/// classes are the checkpoint's extras, written apart).
void report_to_pb(const engine::TaskReport& report, pb::TaskRecord& message);

/// The report stored in `message` (fields of older checkpoints absent: proto3's zero).
engine::TaskReport report_from_pb(const pb::TaskRecord& message);

/// Why `message` cannot hold the table of S (engine::TaskReport, PhaseResult or SplitPair): a
/// checkpointed field without a proto field of its name and type. Empty for den.proto's TaskRecord,
/// Phase and SplitPair; the converters refuse to run otherwise.
template <typename S>
std::vector<std::string> report_field_problems(const google::protobuf::Descriptor& message);

}  // namespace den::io::internal
