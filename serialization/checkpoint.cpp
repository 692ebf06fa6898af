#include "serialization/checkpoint.h"

#include "engine/hyperparameters.h"

#include "den/version.h"
#include "serialization/den.pb.h"
#include "serialization/internal/framing.h"
#include "serialization/internal/proto_conversion.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <utility>

namespace den::io {

using namespace internal;
namespace fs = std::filesystem;

namespace {

/// A parameter tensor as contiguous float32 CPU data.
at::Tensor plain_float(const at::Tensor& t, const std::string& name) {
  if (!t.defined()) throw WriteError("cannot save a checkpoint: tensor " + name + " is undefined");
  return t.detach().to(at::kCPU, at::kFloat).contiguous();
}

class Reader {
 public:
  Reader(Source& source, std::string name, const LoadOptions& options)
      : source_(source), name_(std::move(name)), options_(options) {}

  LoadedCheckpoint read() {
    const uint64_t file_bytes = source_.remaining();
    const uint32_t version = read_preamble();
    pb::Header header;
    read_record("the header", kMaxHeaderBytes, payload_);
    if (!header.ParseFromString(payload_)) corrupt(name_, "the header does not parse");
    if (header.format_version() != version) {
      corrupt(name_, "the header says format version " + std::to_string(header.format_version()) +
                         " but the preamble says " + std::to_string(version));
    }
    engine::EngineState state;
    state.config = from_pb(header.config(), name_);
    state.graph = from_pb(header.graph(), name_);
    // The graph counts the units the lowest layer reads: a conv layer's input channels, so the data's
    // width is then the input shape's size.
    state.input_dim = header.graph().input_dim();
    const std::vector<int64_t>& shape = state.config.input_shape;
    if (!shape.empty()) {
      int64_t size = 1;
      for (int64_t d : shape) {
        if (d < 1 || __builtin_mul_overflow(size, d, &size)) corrupt(name_, "the input shape does not fit");
      }
      state.input_dim = size;
    }
    state.base_params = header.base_params();
    state.rng_state = at::empty({static_cast<int64_t>(header.rng_state().size())}, at::kByte);
    if (!header.rng_state().empty()) {
      std::memcpy(state.rng_state.data_ptr(), header.rng_state().data(), header.rng_state().size());
    }
    CheckpointExtras extras;
    for (const pb::TaskRecord& task : header.tasks()) {
      state.history.push_back(from_pb(task));
      if (task.has_evaluation()) {
        const pb::Evaluation& e = task.evaluation();
        const bool agnostic_ok = (e.agnostic_accuracy_size() == 0 || e.agnostic_accuracy_size() == task.task()) &&
                                 e.agnostic_samples_size() == e.agnostic_accuracy_size();
        if (e.accuracy_size() != task.task() || e.auroc_size() != task.task() || !agnostic_ok) {
          corrupt(name_, "task " + std::to_string(task.task()) + " has metrics for " +
                             std::to_string(e.accuracy_size()) + " tasks");
        }
        extras.evaluations.push_back(engine::TaskEvaluation{
            task.task(), {e.accuracy().begin(), e.accuracy().end()}, {e.auroc().begin(), e.auroc().end()},
            {e.agnostic_accuracy().begin(), e.agnostic_accuracy().end()},
            {e.agnostic_samples().begin(), e.agnostic_samples().end()}});
      }
    }
    if (header.has_run()) extras.run = from_pb(header.run());
    if (header.has_normalization()) extras.normalization = normalization_from_pb(header.normalization(), state.input_dim);
    if (header.has_trunk()) extras.trunk = trunk_from_pb(header.trunk(), state.input_dim);
    if (header.has_images()) {
      extras.images = images_from_pb(header.images(), extras.trunk ? extras.trunk->input_dim() : state.input_dim);
    }
    for (const auto& [id, name] : header.class_names()) {
      if (id < 0) corrupt(name_, "class name '" + name + "' has the negative id " + std::to_string(id));
      extras.class_names[id] = name;
    }

    at::Tensor memory = read_tensors(header, state, extras.trunk);
    if (header.has_agnostic()) extras.agnostic = agnostic_from_pb(header, std::move(memory));
    if (source_.remaining() != 0) {
      corrupt(name_, std::to_string(source_.remaining()) + " unexpected bytes after the last record");
    }
    try {
      return LoadedCheckpoint{engine::Engine::from_state(std::move(state)), std::move(extras), version, header.writer(),
                              file_bytes};
    } catch (const std::invalid_argument& e) {
      throw CheckpointError(CheckpointError::Kind::Inconsistent,
                            "checkpoint '" + name_ + "' does not fit together: " + e.what());
    }
  }

 private:
  uint32_t read_preamble() {
    const uint64_t size = source_.remaining();
    if (size == 0) not_a_checkpoint("the file is empty");
    unsigned char pre[kPreambleBytes];
    const size_t head = static_cast<size_t>(std::min<uint64_t>(size, kPreambleBytes));
    source_.read(pre, head);
    const size_t magic_bytes = std::min<size_t>(head, 8);
    if (std::memcmp(pre, kMagic, magic_bytes) != 0) not_a_checkpoint("it does not start with the den magic bytes");
    if (head < kPreambleBytes) truncated("the file ends inside the preamble (" + std::to_string(size) + " bytes)");
    const uint32_t version = get_u32(pre + 8);
    if (options_.verify_checksums && get_u32(pre + 12) != crc32_of(pre, 12)) {
      corrupt(name_, "the preamble's checksum does not match");
    }
    if (version == 0) corrupt(name_, "format version 0");
    if (version > kFormatVersion) {
      throw CheckpointError(CheckpointError::Kind::NewerVersion,
                            "checkpoint '" + name_ + "' has format version " + std::to_string(version) +
                                ", newer than the version " + std::to_string(kFormatVersion) +
                                " this den reads; use a newer den");
    }
    return version;
  }

  /// Reads the next record into `payload`, whose buffer is reused from record to record (a fresh
  /// 64 MiB buffer per record costs page faults that dominated the load of large checkpoints).
  void read_record(const std::string& what, int64_t hard_limit, std::string& payload) {
    if (source_.remaining() < kFrameBytes) {
      truncated("the file ends before " + what + " (" + std::to_string(source_.remaining()) + " bytes left)");
    }
    unsigned char frame[kFrameBytes];
    source_.read(frame, sizeof frame);
    const uint64_t length = get_u64(frame);
    const uint32_t crc = get_u32(frame + 8);
    if (length > source_.remaining()) {
      truncated(what + " needs " + std::to_string(length) + " bytes but the file has " +
                std::to_string(source_.remaining()) + " left");
    }
    const auto limit = static_cast<uint64_t>(std::min(hard_limit, options_.max_record_bytes));
    if (length > limit) {
      corrupt(name_, what + " is " + std::to_string(length) + " bytes, over the record limit of " +
                         std::to_string(limit));
    }
    payload.resize(static_cast<size_t>(length));
    source_.read(payload.data(), payload.size());
    if (options_.verify_checksums && crc32_of(payload.data(), payload.size()) != crc) {
      corrupt(name_, "checksum mismatch in " + what);
    }
  }

  FeatureNormalization normalization_from_pb(const pb::Normalization& m, int64_t input_dim) {
    if (m.shift_size() != input_dim || m.scale_size() != input_dim) {
      corrupt(name_, "normalization has " + std::to_string(m.shift_size()) + " shifts and " +
                         std::to_string(m.scale_size()) + " scales for " + std::to_string(input_dim) + " features");
    }
    const auto values = [](const auto& repeated) {
      return at::tensor(std::vector<float>(repeated.begin(), repeated.end()), at::kFloat);
    };
    return FeatureNormalization{m.mode(), values(m.shift()), values(m.scale())};
  }

  FrozenTrunk trunk_from_pb(const pb::Trunk& m, int64_t input_dim) {
    FrozenTrunk trunk;
    trunk.input_shape.assign(m.input_shape().begin(), m.input_shape().end());
    trunk.feature_shape.assign(m.feature_shape().begin(), m.feature_shape().end());
    trunk.cut = m.cut();
    const auto valid = [](const std::vector<int64_t>& dims) {
      int64_t size = 1;
      for (int64_t d : dims) {
        if (d < 1 || d > (int64_t{1} << 31) || size > (int64_t{1} << 40) / d) return false;
        size *= d;
      }
      return !dims.empty() && dims.size() <= 4;
    };
    if (!valid(trunk.input_shape) || !valid(trunk.feature_shape) || trunk.feature_dim() != input_dim) {
      corrupt(name_, "the frozen trunk takes " + engine::to_text(trunk.input_shape) + " and gives " +
                         engine::to_text(trunk.feature_shape) + ", which is not the network's " +
                         std::to_string(input_dim) + " inputs");
    }
    return trunk;
  }

  ImageInput images_from_pb(const pb::ImageInput& m, int64_t input_dim) {
    ImageInput images{m.channels(), m.height(), m.width(), m.resize(), {m.mean().begin(), m.mean().end()},
                      {m.std().begin(), m.std().end()}};
    const bool sizes_ok = (images.channels == 1 || images.channels == 3) && images.height >= 1 && images.width >= 1 &&
                          images.resize >= 0 && images.height <= (1 << 16) && images.width <= (1 << 16) &&
                          images.resize <= (1 << 16);
    const bool per_channel_ok = images.mean.size() == images.std.size() &&
                                (images.mean.empty() || static_cast<int64_t>(images.mean.size()) == images.channels);
    if (!sizes_ok || !per_channel_ok) {
      corrupt(name_, "image input " + std::to_string(images.channels) + "x" + std::to_string(images.height) + "x" +
                         std::to_string(images.width) + " (resize " + std::to_string(images.resize) + ", " +
                         std::to_string(images.mean.size()) + " means, " + std::to_string(images.std.size()) +
                         " stds) is not a valid preprocessing");
    }
    for (double s : images.std) {
      if (!(s > 0) || !std::isfinite(s)) corrupt(name_, "image input has the std " + std::to_string(s));
    }
    for (double v : images.mean) {
      if (!std::isfinite(v)) corrupt(name_, "image input has a mean that is not finite");
    }
    if (images.channels * images.height * images.width != input_dim) {
      corrupt(name_, "image input " + std::to_string(images.channels) + "x" + std::to_string(images.height) + "x" +
                         std::to_string(images.width) + " does not give the network's " + std::to_string(input_dim) +
                         " inputs");
    }
    return images;
  }

  engine::AgnosticState agnostic_from_pb(const pb::Header& header, at::Tensor memory) {
    const pb::Agnostic& m = header.agnostic();
    engine::AgnosticState a;
    for (const pb::TaskRecord& task : header.tasks()) {
      if (task.output_classes_size() != task.num_classes()) {
        corrupt(name_, "task " + std::to_string(task.task()) + " maps " + std::to_string(task.output_classes_size()) +
                           " outputs to classes, for " + std::to_string(task.num_classes()) + " outputs");
      }
      a.output_classes.emplace_back(task.output_classes().begin(), task.output_classes().end());
    }
    a.scale.assign(m.scale().begin(), m.scale().end());
    a.shift.assign(m.shift().begin(), m.shift().end());
    a.memory_classes.assign(m.memory_classes().begin(), m.memory_classes().end());
    a.memory_tasks.assign(m.memory_tasks().begin(), m.memory_tasks().end());
    a.memory_x = std::move(memory);
    try {
      engine::TaskAgnosticClassifier::restore({}, a);  // validates
    } catch (const std::invalid_argument& e) {
      throw CheckpointError(CheckpointError::Kind::Inconsistent,
                            "checkpoint '" + name_ + "' does not fit together: " + e.what());
    }
    return a;
  }

  /// Reads the tensors into `state` and the trunk's archive into `trunk`; returns the task-agnostic
  /// exemplars (undefined when none).
  at::Tensor read_tensors(const pb::Header& header, engine::EngineState& state, std::optional<FrozenTrunk>& trunk) {
    const int64_t layers = state.graph.num_layers();
    const int64_t heads = state.graph.num_heads();
    const int64_t memory_rows = header.has_agnostic() ? header.agnostic().memory_classes_size() : 0;
    const int64_t floats = layers + heads + (memory_rows > 0 ? 1 : 0);  // float32 tensors; the trunk's bytes follow
    const int64_t expected_tensors = floats + (trunk ? 1 : 0);
    if (header.tensors_size() != expected_tensors) {
      throw CheckpointError(CheckpointError::Kind::Inconsistent,
                            "checkpoint '" + name_ + "' has " + std::to_string(header.tensors_size()) +
                                " tensors for " + std::to_string(layers) + " layers, " + std::to_string(heads) +
                                " heads and " + std::to_string(memory_rows) + " task-agnostic exemplars");
    }
    // Shapes are checked against what the file can hold before anything is allocated.
    std::vector<at::Tensor> tensors;
    uint64_t total = 0;
    for (int i = 0; i < header.tensors_size(); ++i) {
      const pb::TensorInfo& info = header.tensors(i);
      const bool bytes = i == floats;  // the trunk's archive
      const std::string expected = bytes ? std::string(kTrunkName) : tensor_name(i, layers, heads);
      if (info.name() != expected) corrupt(name_, "tensor " + std::to_string(i) + " is '" + info.name() + "', expected '" + expected + "'");
      if (info.dtype() != (bytes ? pb::DTYPE_UINT8 : pb::DTYPE_FLOAT32)) {
        corrupt(name_, "tensor " + expected + " has unsupported dtype " + std::to_string(info.dtype()));
      }
      if (info.shape_size() != 2) corrupt(name_, "tensor " + expected + " has " + std::to_string(info.shape_size()) + " dimensions, expected 2");
      uint64_t numel = 1;
      for (int64_t d : info.shape()) {
        if (d < 0 || (d > 0 && numel > std::numeric_limits<uint64_t>::max() / 8 / static_cast<uint64_t>(d))) {
          corrupt(name_, "tensor " + expected + " has an invalid dimension " + std::to_string(d));
        }
        numel *= static_cast<uint64_t>(d);
      }
      if (i == layers + heads && memory_rows > 0 && (info.shape(0) != memory_rows || info.shape(1) != state.input_dim)) {
        corrupt(name_, "tensor " + expected + " is [" + std::to_string(info.shape(0)) + ", " +
                           std::to_string(info.shape(1)) + "], expected [" + std::to_string(memory_rows) + ", " +
                           std::to_string(state.input_dim) + "]");
      }
      if (bytes && info.shape(0) != 1) corrupt(name_, "tensor " + expected + " is not [1, bytes]");
      if (info.num_bytes() != numel * (bytes ? 1 : kFloatBytes)) {
        corrupt(name_, "tensor " + expected + " claims " + std::to_string(info.num_bytes()) + " bytes for " +
                           std::to_string(numel) + " elements");
      }
      total += info.num_bytes();
      if (total > source_.remaining()) {
        truncated("the tensors need " + std::to_string(total) + " bytes but only " +
                  std::to_string(source_.remaining()) + " are left");
      }
    }
    for (const pb::TensorInfo& info : header.tensors()) {
      tensors.push_back(at::empty({info.shape(0), info.shape(1)},
                                  info.dtype() == pb::DTYPE_UINT8 ? at::kByte : at::kFloat));
    }
    if (header.chunk_records() > source_.remaining() / kFrameBytes + 1) {
      corrupt(name_, "the header announces " + std::to_string(header.chunk_records()) + " tensor records");
    }

    size_t current = 0;
    uint64_t offset = 0;
    const auto skip_full = [&] {
      while (current < tensors.size() && offset == header.tensors(static_cast<int>(current)).num_bytes()) {
        ++current;
        offset = 0;
      }
    };
    skip_full();
    pb::TensorChunk chunk;
    for (uint64_t r = 0; r < header.chunk_records(); ++r) {
      const std::string what = "tensor record " + std::to_string(r + 1) + " of " + std::to_string(header.chunk_records());
      read_record(what, kMaxHeaderBytes, payload_);
      if (!chunk.ParseFromString(payload_)) corrupt(name_, what + " does not parse");
      if (current >= tensors.size()) corrupt(name_, what + " is beyond the last tensor");
      const uint64_t size = header.tensors(static_cast<int>(current)).num_bytes();
      if (chunk.tensor() != current || chunk.offset() != offset || chunk.data().empty() ||
          chunk.data().size() > size - offset) {
        corrupt(name_, what + " holds bytes " + std::to_string(chunk.offset()) + ".." +
                           std::to_string(chunk.offset() + chunk.data().size()) + " of tensor " +
                           std::to_string(chunk.tensor()) + ", expected tensor " + std::to_string(current) +
                           " from byte " + std::to_string(offset));
      }
      char* dst = static_cast<char*>(tensors[current].data_ptr()) + offset;
      std::memcpy(dst, chunk.data().data(), chunk.data().size());
      if (!kHostLittleEndian && tensors[current].scalar_type() == at::kFloat) swap_float_bytes(dst, chunk.data().size());
      offset += chunk.data().size();
      skip_full();
    }
    if (current < tensors.size()) {
      corrupt(name_, "tensor " + header.tensors(static_cast<int>(current)).name() + " is incomplete after the last record");
    }
    for (int64_t l = 0; l < layers; ++l) state.layers.push_back(tensors[l]);
    for (int64_t t = 0; t < heads; ++t) state.heads.push_back(tensors[layers + t]);
    if (trunk) {
      const at::Tensor& archive = tensors[floats];
      trunk->module.assign(static_cast<const char*>(archive.data_ptr()), static_cast<size_t>(archive.numel()));
    }
    return memory_rows > 0 ? tensors[layers + heads] : at::Tensor();
  }

  [[noreturn]] void not_a_checkpoint(const std::string& why) {
    throw CheckpointError(CheckpointError::Kind::NotACheckpoint, "'" + name_ + "' is not a den checkpoint: " + why);
  }
  [[noreturn]] void truncated(const std::string& why) {
    throw CheckpointError(CheckpointError::Kind::Truncated, "checkpoint '" + name_ + "' is truncated: " + why);
  }

  Source& source_;
  std::string name_;
  LoadOptions options_;
  std::string payload_;
};

}  // namespace

void save_state(const engine::EngineState& state, const std::string& path, const CheckpointExtras& extras,
                const SaveOptions& options) {
  if (options.max_record_bytes < 256) {
    throw WriteError("cannot write '" + path + "': record limit " + std::to_string(options.max_record_bytes) +
                     " is below 256 bytes");
  }
  pb::Header header;
  header.set_format_version(kFormatVersion);
  header.set_writer(std::string("den ") + kVersion);
  to_pb(state.config, *header.mutable_config());
  to_pb(state.graph, *header.mutable_graph());
  header.set_base_params(state.base_params);
  if (state.rng_state.defined()) {
    const at::Tensor rng = state.rng_state.contiguous().to(at::kByte);
    header.set_rng_state(std::string(static_cast<const char*>(rng.data_ptr()), static_cast<size_t>(rng.numel())));
  }
  size_t next_evaluation = 0;
  for (const engine::TaskReport& report : state.history) {
    pb::TaskRecord* task = header.add_tasks();
    to_pb(report, *task);
    while (next_evaluation < extras.evaluations.size() && extras.evaluations[next_evaluation].after_task < report.task) {
      ++next_evaluation;
    }
    if (next_evaluation < extras.evaluations.size() && extras.evaluations[next_evaluation].after_task == report.task) {
      const engine::TaskEvaluation& e = extras.evaluations[next_evaluation];
      for (double a : e.accuracy) task->mutable_evaluation()->add_accuracy(a);
      for (double a : e.auroc) task->mutable_evaluation()->add_auroc(a);
      for (double a : e.agnostic_accuracy) task->mutable_evaluation()->add_agnostic_accuracy(a);
      for (int64_t n : e.agnostic_samples) task->mutable_evaluation()->add_agnostic_samples(n);
    }
  }
  if (extras.run) to_pb(*extras.run, *header.mutable_run());
  if (extras.agnostic) {
    const engine::AgnosticState& a = *extras.agnostic;
    if (a.output_classes.size() != state.history.size()) {
      throw WriteError("cannot write '" + path + "': task-agnostic state of " + std::to_string(a.output_classes.size()) +
                       " tasks for " + std::to_string(state.history.size()) + " tasks learned");
    }
    for (size_t t = 0; t < a.output_classes.size(); ++t) append(header.mutable_tasks(static_cast<int>(t))->mutable_output_classes(), a.output_classes[t]);
    pb::Agnostic* m = header.mutable_agnostic();
    for (double v : a.scale) m->add_scale(v);
    for (double v : a.shift) m->add_shift(v);
    append(m->mutable_memory_classes(), a.memory_classes);
    append(m->mutable_memory_tasks(), a.memory_tasks);
  }
  if (extras.normalization) {
    pb::Normalization* m = header.mutable_normalization();
    m->set_mode(extras.normalization->mode);
    const at::Tensor shift = plain_float(extras.normalization->shift, "normalization shift");
    const at::Tensor scale = plain_float(extras.normalization->scale, "normalization scale");
    m->mutable_shift()->Add(shift.data_ptr<float>(), shift.data_ptr<float>() + shift.numel());
    m->mutable_scale()->Add(scale.data_ptr<float>(), scale.data_ptr<float>() + scale.numel());
  }

  if (extras.images) {
    pb::ImageInput* m = header.mutable_images();
    m->set_channels(extras.images->channels);
    m->set_height(extras.images->height);
    m->set_width(extras.images->width);
    m->set_resize(extras.images->resize);
    for (double v : extras.images->mean) m->add_mean(v);
    for (double v : extras.images->std) m->add_std(v);
  }
  for (const auto& [id, name] : extras.class_names) (*header.mutable_class_names())[id] = name;
  if (extras.trunk) {
    pb::Trunk* m = header.mutable_trunk();
    for (int64_t d : extras.trunk->input_shape) m->add_input_shape(d);
    for (int64_t d : extras.trunk->feature_shape) m->add_feature_shape(d);
    m->set_cut(extras.trunk->cut);
  }

  // Tensors: layers, heads, then the exemplars, as contiguous float32, cut into chunks that fit one record.
  std::vector<at::Tensor> tensors;
  const auto num_layers = static_cast<int64_t>(state.layers.size());
  const auto num_heads = static_cast<int64_t>(state.heads.size());
  const auto name = [&](size_t i) { return tensor_name(static_cast<int64_t>(i), num_layers, num_heads); };
  for (const at::Tensor& layer : state.layers) tensors.push_back(plain_float(layer, name(tensors.size())));
  for (const at::Tensor& head : state.heads) tensors.push_back(plain_float(head, name(tensors.size())));
  const bool has_memory = extras.agnostic && !extras.agnostic->memory_classes.empty();
  if (has_memory) tensors.push_back(plain_float(extras.agnostic->memory_x, name(tensors.size())));
  const size_t floats = tensors.size();
  if (extras.trunk) {
    const std::string& archive = extras.trunk->module;
    at::Tensor bytes = at::empty({1, static_cast<int64_t>(archive.size())}, at::kByte);
    std::memcpy(bytes.data_ptr(), archive.data(), archive.size());
    tensors.push_back(bytes);
  }
  const auto chunk_bytes = static_cast<uint64_t>(options.max_record_bytes - kChunkOverhead);
  uint64_t chunks = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    pb::TensorInfo* info = header.add_tensors();
    info->set_name(i == floats ? std::string(kTrunkName) : name(i));
    for (int64_t d : tensors[i].sizes()) info->add_shape(d);
    info->set_dtype(i == floats ? pb::DTYPE_UINT8 : pb::DTYPE_FLOAT32);
    const uint64_t bytes = static_cast<uint64_t>(tensors[i].numel()) * tensors[i].element_size();
    info->set_num_bytes(bytes);
    chunks += (bytes + chunk_bytes - 1) / chunk_bytes;
  }
  header.set_chunk_records(chunks);

  const std::string header_bytes = header.SerializeAsString();
  if (static_cast<int64_t>(header_bytes.size()) > kMaxHeaderBytes) {
    throw WriteError("cannot write '" + path + "': the header is " + std::to_string(header_bytes.size()) + " bytes");
  }

  AtomicFile file(path);
  unsigned char pre[kPreambleBytes];
  std::memcpy(pre, kMagic, 8);
  put_u32(pre + 8, kFormatVersion);
  put_u32(pre + 12, crc32_of(pre, 12));
  file.write(pre, sizeof pre);
  write_record(file, header_bytes);
  int64_t record = 0;
  if (options.on_record_written) options.on_record_written(record);

  pb::TensorChunk chunk;
  std::string payload;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const char* data = static_cast<const char*>(tensors[i].data_ptr());
    const uint64_t bytes = static_cast<uint64_t>(tensors[i].numel()) * tensors[i].element_size();
    for (uint64_t offset = 0; offset < bytes; offset += chunk_bytes) {
      const size_t len = static_cast<size_t>(std::min(chunk_bytes, bytes - offset));
      chunk.set_tensor(static_cast<uint32_t>(i));
      chunk.set_offset(offset);
      chunk.set_data(data + offset, len);
      if (!kHostLittleEndian && i < floats) swap_float_bytes(chunk.mutable_data()->data(), len);
      chunk.SerializeToString(&payload);
      write_record(file, payload);
      if (options.on_record_written) options.on_record_written(++record);
    }
  }
  file.commit();
}

void save_checkpoint(const engine::Engine& engine, const std::string& path, const CheckpointExtras& extras,
                     const SaveOptions& options) {
  save_state(engine.state(), path, extras, options);
}

uint32_t tensors_crc32(const std::vector<at::Tensor>& tensors) {
  uint32_t crc = 0;
  for (const at::Tensor& t : tensors) {
    const at::Tensor c = t.contiguous();
    crc = crc32_update(crc, c.data_ptr(), static_cast<size_t>(c.numel()) * c.element_size());
  }
  return crc;
}

LoadedCheckpoint load_checkpoint(const std::string& path, const LoadOptions& options) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    throw CheckpointError(CheckpointError::Kind::Missing, "checkpoint '" + path + "' is a directory");
  }
  // A pipe or device has no size to check the records against (and opening a FIFO would wait).
  if (fs::exists(path, ec) && !fs::is_regular_file(path, ec)) {
    throw CheckpointError(CheckpointError::Kind::Missing,
                          "checkpoint '" + path + "' is not a regular file (a pipe or a device); give the file itself");
  }
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    const int err = errno;
    throw CheckpointError(CheckpointError::Kind::Missing,
                          "cannot open checkpoint '" + path + "': " + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(::fileno(file), &st) != 0) {
    std::fclose(file);
    throw CheckpointError(CheckpointError::Kind::Missing, "cannot stat checkpoint '" + path + "'");
  }
  FileSource source(file, static_cast<uint64_t>(st.st_size), path);
  return Reader(source, path, options).read();
}

LoadedCheckpoint load_checkpoint_bytes(std::string_view bytes, const std::string& name, const LoadOptions& options) {
  MemorySource source(bytes);
  return Reader(source, name, options).read();
}

engine::TaskAgnosticClassifier agnostic_classifier(const LoadedCheckpoint& checkpoint, const std::string& name,
                                                   const engine::AgnosticOptions& options) {
  if (!checkpoint.extras.agnostic) {
    const std::string why =
        checkpoint.format_version < kAgnosticStateVersion
            ? "it was written in format version " + std::to_string(checkpoint.format_version) +
                  ", before the task-agnostic state was saved (version " + std::to_string(kAgnosticStateVersion) +
                  "); continue its run (den run --resume or den add-task) with this den to write it"
            : "it was saved without a task-agnostic state (not by den run or den add-task)";
    throw CheckpointError(CheckpointError::Kind::LacksState,
                          "checkpoint '" + name + "' cannot predict task-agnostically: " + why);
  }
  return engine::TaskAgnosticClassifier::restore(options, *checkpoint.extras.agnostic);
}

}  // namespace den::io
