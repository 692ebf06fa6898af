#pragma once

#include "engine/engine.h"
#include "engine/engine_state.h"
#include "engine/evaluation/run.h"
#include "engine/evaluation/task_agnostic.h"
#include "serialization/atomic_file.h"
#include "serialization/trunk.h"

#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace den::io {

/// Version of the checkpoint format this build writes, and the newest it reads. 2 added the
/// task-agnostic state (with each task's output->class map) and the normalization statistics; 3
/// the layers' kinds and geometry (conv layers) and the input shape; 4 the image preprocessing and
/// the class names.
constexpr uint32_t kFormatVersion = 4;
/// The first format version that holds CheckpointExtras::agnostic and ::normalization.
constexpr uint32_t kAgnosticStateVersion = 2;
/// The 8 bytes every checkpoint starts with.
constexpr char kMagic[9] = "DENCKPT\n";

/// How a `den run` built its task stream (data directory, protocol, stream options), stored so that
/// `den run --resume` and `den add-task` can rebuild the same stream. Plain values: serialization
/// does not depend on data/.
struct RunInfo {
  std::string method = "den";
  std::string data_dir;
  std::string protocol;
  int64_t num_tasks = 0;
  int64_t classes_per_task = 0;
  int64_t train_limit = 0;
  double val_fraction = 0.0;
  std::string normalize = "none";
  uint64_t seed = 0;
  std::optional<uint32_t> data_crc32;  ///< fingerprint of the data set the run read
  double seconds = 0.0;                ///< wall time of the run so far
  int64_t base_classes = 0;            ///< split protocol's new-classes scenario (0 = off)
  std::optional<int64_t> exemplars_per_class;  ///< task-agnostic evaluation; unknown in older checkpoints
  bool negatives_from_memory = false;  ///< --memory-negatives (RunSettings::negatives_from_memory)
  int64_t memory = 0;                  ///< --memory (AgnosticOptions::memory); 0 in older checkpoints
};

/// The per-feature normalization a run applied to its data, x' = (x - shift) * scale
/// (data::FeatureScaling as plain values), so that new raw inputs can be fed to the model.
struct FeatureNormalization {
  std::string mode;          ///< "minmax" or "standardize"
  at::Tensor shift, scale;   ///< `[input_dim]` float32
};

/// How images from files become the network's input (data::ImagePreprocess as plain values):
/// converted to `channels` (1 gray, 3 RGB), the shorter side resized to `resize`, center-cropped to
/// height x width, pixels / 255, then (x - mean) / std per channel (both empty: none).
struct ImageInput {
  int64_t channels = 1;
  int64_t height = 0, width = 0;
  int64_t resize = 0;
  std::vector<double> mean, std;
};

/// What a checkpoint stores beside the engine.
struct CheckpointExtras {
  /// Test metrics measured after tasks (`after_task` in 1..num_tasks, increasing); tasks without
  /// one were learned outside a measured stream.
  std::vector<engine::TaskEvaluation> evaluations;
  std::optional<RunInfo> run;
  /// The task-agnostic classifier after the last task, one entry per task learned; absent in
  /// checkpoints before format 2 (and for an engine saved without one).
  std::optional<engine::AgnosticState> agnostic = std::nullopt;
  /// Absent when the data was not normalized, and in checkpoints before format 2.
  std::optional<FeatureNormalization> normalization = std::nullopt;
  /// Present when tasks come from image folders; absent in checkpoints before format 4.
  std::optional<ImageInput> images = std::nullopt;
  /// Class id -> name, for classes whose image folder had a name that is no integer.
  std::map<int64_t, std::string> class_names = {};
  /// The frozen trunk of an imported model (NOTE: [frozen trunk]); the engine's inputs are its
  /// features. Loaded as bytes: the archive is only deserialized when it runs.
  std::optional<FrozenTrunk> trunk = std::nullopt;
};

/// Options of a checkpoint write.
struct SaveOptions {
  /// Largest record written, in bytes (NOTE: [checkpoint layout] in den.proto). Tensors are cut
  /// into chunks that fit, so no protobuf message comes near protobuf's 2 GiB limit. >= 256.
  int64_t max_record_bytes = int64_t{64} << 20;
  /// Called after every record written (0 = header); an exception thrown here aborts the write,
  /// which then leaves any existing file untouched.
  std::function<void(int64_t record)> on_record_written;
};

/// Options of a checkpoint read.
struct LoadOptions {
  /// Largest record accepted, in bytes; longer ones are refused as corrupt before allocating.
  int64_t max_record_bytes = int64_t{1} << 30;
  /// Verify each record's CRC-32 (off only for fuzzing the parser behind the checksums).
  bool verify_checksums = true;
};

/// A checkpoint that cannot be used. `kind()` says why; the message names the file and the value.
class CheckpointError : public std::runtime_error {
 public:
  enum class Kind {
    Missing,         ///< the file does not exist or cannot be opened
    NotACheckpoint,  ///< wrong magic bytes
    Truncated,       ///< the file ends inside a record or before the last record
    Corrupt,         ///< checksum mismatch, unparsable or contradictory contents
    NewerVersion,    ///< written by a newer format version than this build reads
    Inconsistent,    ///< well-formed, but the tensors do not match the graph (or config, history)
    LacksState,      ///< valid, but without the state asked for (older format version)
  };
  CheckpointError(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

/// A checkpoint read back: the engine, ready to predict or learn more tasks, and the extras.
struct LoadedCheckpoint {
  engine::Engine engine;
  CheckpointExtras extras;
  uint32_t format_version = 0;
  std::string writer;       ///< "den <version>" of the program that wrote it
  uint64_t file_bytes = 0;  ///< size of the checkpoint
};

/// Writes `engine` and `extras` to `path` atomically: a temporary file in the same directory,
/// flushed and fsync'ed, then renamed over `path` (and the directory fsync'ed). On any failure the
/// temporary file is removed and an existing `path` is untouched. Throws WriteError.
void save_checkpoint(const engine::Engine& engine, const std::string& path, const CheckpointExtras& extras = {},
                     const SaveOptions& options = {});

/// As save_checkpoint, for a state that is written as given, unvalidated (tools and tests that need
/// to write unusual checkpoints; a reader validates).
void save_state(const engine::EngineState& state, const std::string& path, const CheckpointExtras& extras = {},
                const SaveOptions& options = {});

/// Reads a checkpoint. Throws CheckpointError (see Kind) for a missing file, a file that is not a
/// checkpoint, a truncated or corrupted one, a newer format version, or tensors that do not match
/// the graph. Nothing is allocated beyond what the file's size can hold.
LoadedCheckpoint load_checkpoint(const std::string& path, const LoadOptions& options = {});

/// As load_checkpoint, from bytes in memory (`name` is used in messages). The fuzz target's entry.
LoadedCheckpoint load_checkpoint_bytes(std::string_view bytes, const std::string& name = "<memory>",
                                       const LoadOptions& options = {});

/// CRC-32 of the bytes of `tensors`, one after the other: the data fingerprint of RunInfo::data_crc32.
uint32_t tensors_crc32(const std::vector<at::Tensor>& tensors);

/// The task-agnostic classifier a checkpoint holds, to predict among all classes without a task id.
/// Throws CheckpointError (Kind::LacksState) naming the file and why: a checkpoint before format
/// version 2 never stored it, and a newer one may come from an engine saved without a run.
engine::TaskAgnosticClassifier agnostic_classifier(const LoadedCheckpoint& checkpoint, const std::string& name,
                                                   const engine::AgnosticOptions& options = {});

}  // namespace den::io
