#include "serialization/checkpoint.h"

#include "den/version.h"
#include "serialization/den.pb.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <utility>

namespace den::io {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Atomic files
// ---------------------------------------------------------------------------------------------

namespace detail {

namespace {

/// The process's umask. Read from /proc (reading it with umask() means setting it for a moment,
/// which races with other threads creating files); umask() only where /proc is missing.
mode_t process_umask() {
  std::FILE* status = std::fopen("/proc/self/status", "re");
  if (status != nullptr) {
    char line[256];
    unsigned value = 0;
    bool found = false;
    while (!found && std::fgets(line, sizeof line, status) != nullptr) {
      found = std::sscanf(line, "Umask: %o", &value) == 1;
    }
    std::fclose(status);
    if (found) return static_cast<mode_t>(value);
  }
  const mode_t mask = ::umask(022);
  ::umask(mask);
  return mask;
}

/// Whether `name` is one of `target`'s temporaries: ".<target>.tmp-" and mkstemp's 6 characters.
bool is_temp_of(const std::string& name, const std::string& prefix) {
  return name.size() == prefix.size() + 6 && name.compare(0, prefix.size(), prefix) == 0;
}

/// Removes temporaries of `target` left by a writer that died (SIGKILL, power loss) before it could
/// clean up. NOTE: [temp file locks] A live writer holds an exclusive flock on its temporary for as
/// long as it writes; a temporary that can be locked has no writer left.
void remove_stale_temps(const fs::path& dir, const std::string& prefix) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!is_temp_of(name, prefix)) continue;
    const int fd = ::open(it->path().c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) continue;
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) ::unlink(it->path().c_str());
    ::close(fd);
  }
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  const fs::path target(path_);
  if (target.filename().empty()) throw WriteError("cannot write '" + path_ + "': not a file name");
  std::error_code ec;
  if (fs::is_directory(target, ec)) throw WriteError("cannot write '" + path_ + "': it is a directory");
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  const std::string prefix = "." + target.filename().string() + ".tmp-";
  remove_stale_temps(dir, prefix);
  int fd = -1;
  // A cleaner in another process may lock and remove a temporary between its creation and its
  // flock (NOTE: [temp file locks]); then the name no longer leads to it, and a new one is made.
  for (int attempt = 0; attempt < 8 && fd < 0; ++attempt) {
    std::string pattern = (dir / (prefix + "XXXXXX")).string();
    fd = ::mkostemp(pattern.data(), O_CLOEXEC);
    if (fd < 0) {
      throw WriteError("cannot write '" + path_ + "': cannot create a file in '" + dir.string() +
                       "': " + std::strerror(errno));
    }
    struct stat held {}, named {};
    if (::flock(fd, LOCK_EX) != 0 || ::fstat(fd, &held) != 0 || ::stat(pattern.c_str(), &named) != 0 ||
        held.st_ino != named.st_ino || held.st_dev != named.st_dev) {
      ::close(fd);
      fd = -1;
      continue;
    }
    temp_path_ = pattern;
  }
  if (fd < 0) throw WriteError("cannot write '" + path_ + "': cannot hold a temporary file in '" + dir.string() + "'");
  // mkstemp makes 0600; a checkpoint or model is an ordinary file, so 0666 less the umask.
  ::fchmod(fd, 0666 & ~process_umask());
  file_ = ::fdopen(fd, "wb");
  if (file_ == nullptr) {
    const int err = errno;
    ::close(fd);
    ::unlink(temp_path_.c_str());
    throw WriteError("cannot write '" + path_ + "': " + std::strerror(err));
  }
}

AtomicFile::~AtomicFile() {
  if (file_ != nullptr) std::fclose(file_);
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
}

void AtomicFile::fail(const std::string& what) {
  const int err = errno;
  if (file_ != nullptr) std::fclose(file_);
  file_ = nullptr;
  ::unlink(temp_path_.c_str());
  temp_path_.clear();
  throw WriteError("cannot write '" + path_ + "': " + what + (err ? std::string(": ") + std::strerror(err) : ""));
}

void AtomicFile::write(const void* data, size_t size) {
  if (file_ == nullptr) throw WriteError("cannot write '" + path_ + "': file already closed");
  errno = 0;
  if (size > 0 && std::fwrite(data, 1, size, file_) != size) fail("write failed");
}

void AtomicFile::commit() {
  if (file_ == nullptr) throw WriteError("cannot write '" + path_ + "': file already closed");
  errno = 0;
  if (std::fflush(file_) != 0) fail("flush failed");
  if (::fsync(::fileno(file_)) != 0) fail("fsync failed");
  const int closed = std::fclose(file_);
  file_ = nullptr;
  if (closed != 0) fail("close failed");
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) fail("rename failed");
  temp_path_.clear();
  // Make the rename itself durable; a failure here leaves a complete file, so it is not an error.
  const fs::path target(path_);
  const std::string dir = target.has_parent_path() ? target.parent_path().string() : std::string(".");
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

void write_file_atomically(const std::string& path, std::string_view bytes) {
  AtomicFile file(path);
  file.write(bytes.data(), bytes.size());
  file.commit();
}

}  // namespace detail

namespace {

// ---------------------------------------------------------------------------------------------
// Little-endian framing
// ---------------------------------------------------------------------------------------------

constexpr bool kHostLittleEndian = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;
constexpr size_t kPreambleBytes = 16;  // magic, version, crc
constexpr size_t kFrameBytes = 12;     // length u64, crc u32
constexpr size_t kFloatBytes = 4;
/// Bytes a TensorChunk message adds around its data (field tags and varints), generously.
constexpr int64_t kChunkOverhead = 48;
/// The header is one message; protobuf refuses messages of 2 GiB and more.
constexpr int64_t kMaxHeaderBytes = int64_t{1} << 30;

void put_u32(unsigned char* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<unsigned char>(v >> (8 * i));
}
void put_u64(unsigned char* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<unsigned char>(v >> (8 * i));
}
uint32_t get_u32(const unsigned char* in) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | in[i];
  return v;
}
uint64_t get_u64(const unsigned char* in) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | in[i];
  return v;
}

uint32_t crc32_of(const void* data, size_t size) {
  uLong crc = ::crc32(0L, Z_NULL, 0);
  const auto* p = static_cast<const Bytef*>(data);
  while (size > 0) {  // zlib takes uInt lengths
    const uInt piece = static_cast<uInt>(std::min<size_t>(size, 1u << 30));
    crc = ::crc32(crc, p, piece);
    p += piece;
    size -= piece;
  }
  return static_cast<uint32_t>(crc);
}

/// Reverses the bytes of every 4-byte element (only on big-endian hosts).
void swap_float_bytes(char* data, size_t size) {
  for (size_t i = 0; i + 3 < size; i += 4) {
    std::swap(data[i], data[i + 3]);
    std::swap(data[i + 1], data[i + 2]);
  }
}

std::string layer_name(int64_t l) { return "layer." + std::to_string(l); }
std::string head_name(int64_t t) { return "head." + std::to_string(t); }
const std::string kMemoryName = "agnostic.memory";

/// Name of tensor `i` of a checkpoint: layers, then heads, then the task-agnostic exemplars.
std::string tensor_name(int64_t i, int64_t layers, int64_t heads) {
  return i < layers ? layer_name(i) : i < layers + heads ? head_name(i - layers + 1) : kMemoryName;
}

// ---------------------------------------------------------------------------------------------
// Engine types <-> messages
// ---------------------------------------------------------------------------------------------

void to_pb(const engine::EngineConfig& c, pb::Config& m) {
  for (int64_t h : c.hidden) m.add_hidden(h);
  m.set_max_iter(c.max_iter);
  m.set_head_iters(c.head_iters);
  m.set_batch_size(c.batch_size);
  m.set_lr(c.lr);
  m.set_lr_decay(c.lr_decay);
  m.set_mu(c.mu);
  m.set_l2(c.l2);
  m.set_gamma(c.gamma);
  m.set_lambda(c.lambda);
  m.set_k(c.k);
  m.set_tau(c.tau);
  m.set_sigma(c.sigma);
  m.set_max_splits_per_layer(c.max_splits_per_layer);
  m.set_split_policy(c.split_policy == engine::SplitPolicy::Always ? pb::SPLIT_POLICY_ALWAYS
                                                                   : pb::SPLIT_POLICY_AFTER_EXPANSION);
  m.set_loss(c.loss == engine::LossKind::Softmax ? pb::LOSS_SOFTMAX : pb::LOSS_SIGMOID);
  m.set_prox_scale_by_lr(c.prox_scale_by_lr);
  m.set_freeze_existing(c.freeze_existing);
  m.set_eval_every(c.eval_every);
  m.set_early_stop_window(c.early_stop_window);
  m.set_early_stop_tol(c.early_stop_tol);
  m.set_early_stop_patience(c.early_stop_patience);
  m.set_early_stop_min_delta(c.early_stop_min_delta);
  m.set_prune_to_fixpoint(c.prune_to_fixpoint);
  m.set_reset_zeroed_moments(c.reset_zeroed_moments);
  m.set_max_eval_samples(c.max_eval_samples);
  m.set_seed(c.seed);
}

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

template <typename Repeated>
void append(Repeated* out, const std::vector<int64_t>& values) {
  for (int64_t v : values) out->Add(v);
}

void to_pb(const engine::TaskReport& r, pb::TaskRecord& m) {
  m.set_task(r.task);
  m.set_name(r.name);
  m.set_num_classes(r.num_classes);
  for (const engine::PhaseResult& p : r.phases) {
    pb::Phase* phase = m.add_phases();
    phase->set_name(p.name);
    phase->set_iterations(p.iterations);
    phase->set_train_loss(p.train_loss);
    phase->set_val_loss(p.val_loss);
    phase->set_seconds(p.seconds);
    phase->set_optimizer_seconds(p.optimizer_seconds);
    phase->set_early_stopped(p.early_stopped);
    phase->set_best_iteration(p.best_iteration);
  }
  append(m.mutable_selected_units(), r.selected_units);
  append(m.mutable_subnetwork_inputs(), r.subnetwork.inputs);
  for (const auto& layer : r.subnetwork.hidden) append(m.add_subnetwork_hidden()->mutable_positions(), layer);
  m.set_val_loss_after_selective(r.val_loss_after_selective);
  m.set_expanded(r.expanded);
  append(m.mutable_added(), r.added);
  append(m.mutable_pruned(), r.pruned);
  append(m.mutable_split(), r.split);
  for (const engine::SplitPair& s : r.split_pairs) {
    pb::SplitPair* pair = m.add_split_pairs();
    pair->set_layer(s.layer);
    pair->set_original_id(s.original_id);
    pair->set_copy_id(s.copy_id);
    pair->set_drift(s.drift);
  }
  append(m.mutable_hidden_units(), r.hidden_units);
  m.set_val_loss(r.val_loss);
  m.set_params(r.params);
  m.set_nonzero_params(r.nonzero_params);
  m.set_seconds(r.seconds);
}

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
}

/// The error of a checkpoint whose contents contradict themselves.
[[noreturn]] void corrupt(const std::string& name, const std::string& what) {
  throw CheckpointError(CheckpointError::Kind::Corrupt, "checkpoint '" + name + "' is corrupt: " + what);
}

engine::EngineConfig from_pb(const pb::Config& m, const std::string& name) {
  engine::EngineConfig c;
  c.hidden.assign(m.hidden().begin(), m.hidden().end());
  c.max_iter = m.max_iter();
  c.head_iters = m.head_iters();
  c.batch_size = m.batch_size();
  c.lr = m.lr();
  c.lr_decay = m.lr_decay();
  c.mu = m.mu();
  c.l2 = m.l2();
  c.gamma = m.gamma();
  c.lambda = m.lambda();
  c.k = m.k();
  c.tau = m.tau();
  c.sigma = m.sigma();
  c.max_splits_per_layer = m.max_splits_per_layer();
  switch (m.split_policy()) {
    case pb::SPLIT_POLICY_ALWAYS:
      c.split_policy = engine::SplitPolicy::Always;
      break;
    case pb::SPLIT_POLICY_AFTER_EXPANSION:
      c.split_policy = engine::SplitPolicy::AfterExpansion;
      break;
    default:
      corrupt(name, "unknown split policy " + std::to_string(m.split_policy()));
  }
  switch (m.loss()) {
    case pb::LOSS_SOFTMAX:
      c.loss = engine::LossKind::Softmax;
      break;
    case pb::LOSS_SIGMOID:
      c.loss = engine::LossKind::Sigmoid;
      break;
    default:
      corrupt(name, "unknown loss " + std::to_string(m.loss()));
  }
  c.prox_scale_by_lr = m.prox_scale_by_lr();
  c.freeze_existing = m.freeze_existing();
  c.eval_every = m.eval_every();
  c.early_stop_window = m.early_stop_window();
  c.early_stop_tol = m.early_stop_tol();
  c.early_stop_patience = m.early_stop_patience();  // 0 (off) in checkpoints written before it
  c.early_stop_min_delta = m.early_stop_min_delta();
  c.prune_to_fixpoint = m.prune_to_fixpoint();        // false in checkpoints written before it
  c.reset_zeroed_moments = m.reset_zeroed_moments();  // likewise
  c.max_eval_samples = m.max_eval_samples();
  c.seed = m.seed();
  return c;
}

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

engine::TaskReport from_pb(const pb::TaskRecord& m) {
  engine::TaskReport r;
  r.task = m.task();
  r.name = m.name();
  r.num_classes = m.num_classes();
  for (const pb::Phase& p : m.phases()) {
    engine::PhaseResult phase;
    phase.name = p.name();
    phase.iterations = p.iterations();
    phase.train_loss = p.train_loss();
    phase.val_loss = p.val_loss();
    phase.seconds = p.seconds();
    phase.optimizer_seconds = p.optimizer_seconds();
    phase.early_stopped = p.early_stopped();
    phase.best_iteration = p.best_iteration();
    r.phases.push_back(phase);
  }
  r.selected_units.assign(m.selected_units().begin(), m.selected_units().end());
  r.subnetwork.inputs.assign(m.subnetwork_inputs().begin(), m.subnetwork_inputs().end());
  for (const pb::Positions& p : m.subnetwork_hidden()) r.subnetwork.hidden.emplace_back(p.positions().begin(), p.positions().end());
  r.val_loss_after_selective = m.val_loss_after_selective();
  r.expanded = m.expanded();
  r.added.assign(m.added().begin(), m.added().end());
  r.pruned.assign(m.pruned().begin(), m.pruned().end());
  r.split.assign(m.split().begin(), m.split().end());
  for (const pb::SplitPair& s : m.split_pairs()) {
    r.split_pairs.push_back(engine::SplitPair{s.layer(), s.original_id(), s.copy_id(), s.drift()});
  }
  r.hidden_units.assign(m.hidden_units().begin(), m.hidden_units().end());
  r.val_loss = m.val_loss();
  r.params = m.params();
  r.nonzero_params = m.nonzero_params();
  r.seconds = m.seconds();
  return r;
}

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
  return r;
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

void write_record(detail::AtomicFile& file, const std::string& payload) {
  unsigned char frame[kFrameBytes];
  put_u64(frame, payload.size());
  put_u32(frame + 8, crc32_of(payload.data(), payload.size()));
  file.write(frame, sizeof frame);
  file.write(payload.data(), payload.size());
}

/// A parameter tensor as contiguous float32 CPU data.
at::Tensor plain_float(const at::Tensor& t, const std::string& name) {
  if (!t.defined()) throw WriteError("cannot save a checkpoint: tensor " + name + " is undefined");
  return t.detach().to(at::kCPU, at::kFloat).contiguous();
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// Where checkpoint bytes come from: a file (read as needed) or memory.
class Source {
 public:
  virtual ~Source() = default;
  /// Bytes not yet read.
  virtual uint64_t remaining() const = 0;
  /// Reads exactly `size` bytes (the caller checked remaining()).
  virtual void read(void* out, size_t size) = 0;
};

class FileSource final : public Source {
 public:
  FileSource(std::FILE* file, uint64_t size, std::string name) : file_(file), left_(size), name_(std::move(name)) {}
  ~FileSource() override { std::fclose(file_); }
  uint64_t remaining() const override { return left_; }
  void read(void* out, size_t size) override {
    if (size > left_ || std::fread(out, 1, size, file_) != size) {
      throw CheckpointError(CheckpointError::Kind::Truncated,
                            "checkpoint '" + name_ + "' is truncated: reading failed (the file ended early or changed)");
    }
    left_ -= size;
  }

 private:
  std::FILE* file_;
  uint64_t left_;
  std::string name_;
};

class MemorySource final : public Source {
 public:
  explicit MemorySource(std::string_view bytes) : bytes_(bytes) {}
  uint64_t remaining() const override { return bytes_.size() - pos_; }
  void read(void* out, size_t size) override {
    std::memcpy(out, bytes_.data() + pos_, size);
    pos_ += size;
  }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
};

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
    state.input_dim = header.graph().input_dim();
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

    at::Tensor memory = read_tensors(header, state);
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
    a.memory_x = std::move(memory);
    try {
      engine::TaskAgnosticClassifier::restore({}, a);  // validates
    } catch (const std::invalid_argument& e) {
      throw CheckpointError(CheckpointError::Kind::Inconsistent,
                            "checkpoint '" + name_ + "' does not fit together: " + e.what());
    }
    return a;
  }

  /// Reads the tensors into `state`; returns the task-agnostic exemplars (undefined when none).
  at::Tensor read_tensors(const pb::Header& header, engine::EngineState& state) {
    const int64_t layers = state.graph.num_layers();
    const int64_t heads = state.graph.num_heads();
    const int64_t memory_rows = header.has_agnostic() ? header.agnostic().memory_classes_size() : 0;
    const int64_t expected_tensors = layers + heads + (memory_rows > 0 ? 1 : 0);
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
      const std::string expected = tensor_name(i, layers, heads);
      if (info.name() != expected) corrupt(name_, "tensor " + std::to_string(i) + " is '" + info.name() + "', expected '" + expected + "'");
      if (info.dtype() != pb::DTYPE_FLOAT32) corrupt(name_, "tensor " + expected + " has unsupported dtype " + std::to_string(info.dtype()));
      if (info.shape_size() != 2) corrupt(name_, "tensor " + expected + " has " + std::to_string(info.shape_size()) + " dimensions, expected 2");
      uint64_t numel = 1;
      for (int64_t d : info.shape()) {
        if (d < 0 || (d > 0 && numel > std::numeric_limits<uint64_t>::max() / 8 / static_cast<uint64_t>(d))) {
          corrupt(name_, "tensor " + expected + " has an invalid dimension " + std::to_string(d));
        }
        numel *= static_cast<uint64_t>(d);
      }
      if (i == layers + heads && (info.shape(0) != memory_rows || info.shape(1) != state.input_dim)) {
        corrupt(name_, "tensor " + expected + " is [" + std::to_string(info.shape(0)) + ", " +
                           std::to_string(info.shape(1)) + "], expected [" + std::to_string(memory_rows) + ", " +
                           std::to_string(state.input_dim) + "]");
      }
      if (info.num_bytes() != numel * kFloatBytes) {
        corrupt(name_, "tensor " + expected + " claims " + std::to_string(info.num_bytes()) + " bytes for " +
                           std::to_string(numel) + " floats");
      }
      total += info.num_bytes();
      if (total > source_.remaining()) {
        truncated("the tensors need " + std::to_string(total) + " bytes but only " +
                  std::to_string(source_.remaining()) + " are left");
      }
    }
    for (const pb::TensorInfo& info : header.tensors()) {
      tensors.push_back(at::empty({info.shape(0), info.shape(1)}, at::kFloat));
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
      if (!kHostLittleEndian) swap_float_bytes(dst, chunk.data().size());
      offset += chunk.data().size();
      skip_full();
    }
    if (current < tensors.size()) {
      corrupt(name_, "tensor " + header.tensors(static_cast<int>(current)).name() + " is incomplete after the last record");
    }
    for (int64_t l = 0; l < layers; ++l) state.layers.push_back(tensors[l]);
    for (int64_t t = 0; t < heads; ++t) state.heads.push_back(tensors[layers + t]);
    return memory_rows > 0 ? tensors.back() : at::Tensor();
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
  }
  if (extras.normalization) {
    pb::Normalization* m = header.mutable_normalization();
    m->set_mode(extras.normalization->mode);
    const at::Tensor shift = plain_float(extras.normalization->shift, "normalization shift");
    const at::Tensor scale = plain_float(extras.normalization->scale, "normalization scale");
    m->mutable_shift()->Add(shift.data_ptr<float>(), shift.data_ptr<float>() + shift.numel());
    m->mutable_scale()->Add(scale.data_ptr<float>(), scale.data_ptr<float>() + scale.numel());
  }

  // Tensors: layers, heads, then the exemplars, as contiguous float32, cut into chunks that fit one record.
  std::vector<at::Tensor> tensors;
  for (size_t l = 0; l < state.layers.size(); ++l) {
    tensors.push_back(plain_float(state.layers[l], layer_name(static_cast<int64_t>(l))));
  }
  for (size_t t = 0; t < state.heads.size(); ++t) {
    tensors.push_back(plain_float(state.heads[t], head_name(static_cast<int64_t>(t) + 1)));
  }
  const bool has_memory = extras.agnostic && !extras.agnostic->memory_classes.empty();
  if (has_memory) tensors.push_back(plain_float(extras.agnostic->memory_x, kMemoryName));
  const auto chunk_bytes = static_cast<uint64_t>(options.max_record_bytes - kChunkOverhead);
  uint64_t chunks = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    pb::TensorInfo* info = header.add_tensors();
    info->set_name(tensor_name(static_cast<int64_t>(i), static_cast<int64_t>(state.layers.size()),
                               static_cast<int64_t>(state.heads.size())));
    for (int64_t d : tensors[i].sizes()) info->add_shape(d);
    info->set_dtype(pb::DTYPE_FLOAT32);
    const uint64_t bytes = static_cast<uint64_t>(tensors[i].numel()) * kFloatBytes;
    info->set_num_bytes(bytes);
    chunks += (bytes + chunk_bytes - 1) / chunk_bytes;
  }
  header.set_chunk_records(chunks);

  const std::string header_bytes = header.SerializeAsString();
  if (static_cast<int64_t>(header_bytes.size()) > kMaxHeaderBytes) {
    throw WriteError("cannot write '" + path + "': the header is " + std::to_string(header_bytes.size()) + " bytes");
  }

  detail::AtomicFile file(path);
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
    const uint64_t bytes = static_cast<uint64_t>(tensors[i].numel()) * kFloatBytes;
    for (uint64_t offset = 0; offset < bytes; offset += chunk_bytes) {
      const size_t len = static_cast<size_t>(std::min(chunk_bytes, bytes - offset));
      chunk.set_tensor(static_cast<uint32_t>(i));
      chunk.set_offset(offset);
      chunk.set_data(data + offset, len);
      if (!kHostLittleEndian) swap_float_bytes(chunk.mutable_data()->data(), len);
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

LoadedCheckpoint load_checkpoint(const std::string& path, const LoadOptions& options) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    throw CheckpointError(CheckpointError::Kind::Missing, "checkpoint '" + path + "' is a directory");
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
