#include "data/idx_reader.h"

#include "data/csv_reader.h"

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <memory>

namespace den::data {

namespace {

namespace fs = std::filesystem;

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
using GzHandle = std::unique_ptr<gzFile_s, GzCloser>;

std::string quoted(const std::string& path) { return "'" + path + "'"; }

/// Why `dir` is no data directory: missing, or a file. `option`: how the caller names it.
std::string missing_directory(const std::string& dir, const std::string& option = "--data") {
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    return "data directory " + quoted(dir) + " is a file, not a directory (" + option + " takes the folder that holds it)";
  }
  return "data directory " + quoted(dir) + " does not exist";
}

std::string hex_byte(unsigned char b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", b);
  return buf;
}

/// Reads up to `len` bytes, looping because gzread takes an unsigned int length. Returns the
/// bytes read; a short count means end of data. A zlib error (corrupt or cut gzip stream) throws.
size_t read_some(gzFile f, void* dst, size_t len, const std::string& path) {
  auto* out = static_cast<unsigned char*>(dst);
  size_t done = 0;
  while (done < len) {
    const auto chunk = static_cast<unsigned>(std::min<size_t>(len - done, 1u << 30));
    const int got = gzread(f, out + done, chunk);
    if (got < 0) {
      int errnum = 0;
      const char* msg = gzerror(f, &errnum);
      throw DataError(quoted(path) + " is corrupt or truncated: " + (msg ? msg : "gzread failed"));
    }
    if (got == 0) break;
    done += static_cast<size_t>(got);
  }
  // gzread reports a cut gzip stream as a short read with Z_BUF_ERROR pending.
  int errnum = 0;
  const char* msg = gzerror(f, &errnum);
  if (errnum != Z_OK && errnum != Z_STREAM_END) {
    throw DataError(quoted(path) + " is corrupt or truncated: " + (msg ? msg : "zlib error"));
  }
  return done;
}

/// `name.gz` if it exists, else `name` if it exists, else empty.
fs::path find_idx_file(const fs::path& dir, const std::string& name) {
  if (fs::is_regular_file(dir / (name + ".gz"))) return dir / (name + ".gz");
  if (fs::is_regular_file(dir / name)) return dir / name;
  return {};
}

void share_num_classes(TrainTest& tt, const std::string& dir, const DirectoryOptions& options) {
  const int64_t nc = std::max(tt.train.num_classes, tt.test.num_classes);
  tt.train.num_classes = nc;
  tt.test.num_classes = nc;
  if (!options.allow_label_gaps) check_no_label_gaps(tt.train, "data directory " + quoted(dir));
}

/// Sorted class ids as ranges: "4..249, 300".
std::string ranges_text(const std::vector<int64_t>& ids) {
  std::string out;
  for (size_t i = 0; i < ids.size();) {
    size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    out += (out.empty() ? "" : ", ") + std::to_string(ids[i]) + (j > i ? ".." + std::to_string(ids[j]) : "");
    i = j + 1;
  }
  return out;
}

/// Bytes to float32 in [0, 1] through a 256-entry table: exactly b / 255, and about 20x faster
/// than Tensor::to(kFloat) with Debian's LibTorch.
at::Tensor bytes_to_unit_float(const at::Tensor& bytes) {
  float table[256];
  for (int b = 0; b < 256; ++b) table[b] = static_cast<float>(b) / 255.0f;
  const at::Tensor in = bytes.contiguous();
  at::Tensor out = at::empty(in.sizes(), at::kFloat);
  const uint8_t* src = in.data_ptr<uint8_t>();
  float* dst = out.data_ptr<float>();
  const int64_t count = in.numel();
  for (int64_t i = 0; i < count; ++i) dst[i] = table[src[i]];
  return out;
}

std::string hex_magic(const unsigned char magic[4]) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%02x%02x%02x%02x", magic[0], magic[1], magic[2], magic[3]);
  return buf;
}

/// What an IDX file of `dims` dimensions holds, for messages.
std::string idx_kind(int dims) {
  if (dims == 3) return "an images file ([N, rows, columns])";
  if (dims == 1) return "a labels file ([N])";
  return "a " + std::to_string(dims) + "-D file";
}

/// Deflate cannot compress more than 1032:1, so a gzip file of `bytes` bytes holds at most this much.
uint64_t max_gzip_payload(uint64_t bytes) { return bytes * 1032 + 1024; }

}  // namespace

at::Tensor read_idx(const std::string& path, int expected_dims) {
  if (!fs::is_regular_file(path)) throw DataError("IDX file " + quoted(path) + " does not exist");
  std::error_code size_ec;
  const uint64_t file_bytes = fs::file_size(path, size_ec);
  GzHandle file(gzopen(path.c_str(), "rb"));
  if (!file || size_ec) throw DataError("cannot open IDX file " + quoted(path));
  gzbuffer(file.get(), 1u << 18);

  unsigned char magic[4];
  const size_t got = read_some(file.get(), magic, 4, path);
  if (got == 0) throw DataError("IDX file " + quoted(path) + " is empty");
  if (got < 4) throw DataError("IDX file " + quoted(path) + " is truncated inside its 4-byte magic number");
  if (magic[0] != 0 || magic[1] != 0) {
    throw DataError(quoted(path) + " is not an IDX file: magic starts " + hex_byte(magic[0]) + " " +
                    hex_byte(magic[1]) + ", expected 0x00 0x00");
  }
  if (magic[2] != 0x08) {
    throw DataError(quoted(path) + ": IDX type byte " + hex_byte(magic[2]) +
                    " is not supported (only 0x08, unsigned byte)");
  }
  const int ndims = magic[3];
  if (ndims == 0) throw DataError(quoted(path) + ": IDX header declares 0 dimensions");
  // Checked before the dimensions are read: a wrong count would shift every size after it and end
  // in a nonsensical allocation instead of this message.
  if (expected_dims > 0 && ndims != expected_dims) {
    throw DataError(quoted(path) + ": wrong IDX magic " + hex_magic(magic) + ": it declares " +
                    std::to_string(ndims) + " dimensions, " + idx_kind(expected_dims) + " has " +
                    std::to_string(expected_dims) + " (magic 0x0000080" + std::to_string(expected_dims) + ")");
  }

  std::vector<unsigned char> raw_dims(4 * static_cast<size_t>(ndims));
  if (read_some(file.get(), raw_dims.data(), raw_dims.size(), path) < raw_dims.size()) {
    throw DataError("IDX file " + quoted(path) + " is truncated inside its " + std::to_string(ndims) +
                    " dimension sizes");
  }
  std::vector<int64_t> dims(ndims);
  int64_t total = 1;
  for (int d = 0; d < ndims; ++d) {
    const unsigned char* b = &raw_dims[4 * d];
    // IDX sizes are big-endian 32-bit.
    dims[d] = (int64_t{b[0]} << 24) | (int64_t{b[1]} << 16) | (int64_t{b[2]} << 8) | int64_t{b[3]};
    if (dims[d] != 0 && total > INT64_MAX / dims[d]) {
      throw DataError(quoted(path) + ": IDX dimensions overflow a 64-bit size");
    }
    total *= dims[d];
  }

  // The declared size against what the file can hold, before allocating it: exactly for a raw
  // file, by deflate's largest ratio for a gzip one.
  const uint64_t header_bytes = 4 + raw_dims.size();
  const auto declared = static_cast<uint64_t>(total);
  if (gzdirect(file.get()) == 1) {
    const uint64_t payload = file_bytes - std::min(file_bytes, header_bytes);
    if (payload < declared) {
      throw DataError("IDX file " + quoted(path) + " is truncated: payload holds " + std::to_string(payload) +
                      " bytes, the header declares " + std::to_string(declared));
    }
    if (payload > declared) {
      throw DataError("IDX file " + quoted(path) + " has trailing bytes after its " + std::to_string(declared) +
                      "-byte payload (" + std::to_string(payload - declared) + " more)");
    }
  } else if (declared > max_gzip_payload(file_bytes)) {
    throw DataError("IDX file " + quoted(path) + " is truncated: the header declares " + std::to_string(declared) +
                    " bytes, more than a " + std::to_string(file_bytes) + "-byte gzip file can hold");
  }

  at::Tensor out;
  try {
    out = at::empty(dims, at::kByte);
  } catch (const std::exception&) {
    throw DataError(quoted(path) + ": cannot allocate " + std::to_string(total) + " bytes for the IDX payload");
  }
  const size_t payload = read_some(file.get(), out.data_ptr<uint8_t>(), static_cast<size_t>(total), path);
  if (payload < static_cast<size_t>(total)) {
    throw DataError("IDX file " + quoted(path) + " is truncated: payload holds " + std::to_string(payload) +
                    " bytes, the header declares " + std::to_string(total));
  }
  unsigned char extra;
  if (read_some(file.get(), &extra, 1, path) != 0) {
    throw DataError("IDX file " + quoted(path) + " has trailing bytes after its " + std::to_string(total) +
                    "-byte payload");
  }
  return out;
}

Dataset load_idx_pair(const std::string& images_path, const std::string& labels_path, int64_t num_classes) {
  const at::Tensor images = read_idx(images_path, 3);
  const at::Tensor labels = read_idx(labels_path, 1);
  const int64_t n = images.size(0);
  if (labels.size(0) != n) {
    throw DataError("images file " + quoted(images_path) + " holds " + std::to_string(n) + " images but labels file " +
                    quoted(labels_path) + " holds " + std::to_string(labels.size(0)) + " labels");
  }
  if (n == 0) throw DataError("images file " + quoted(images_path) + " holds no images");

  Dataset ds;
  ds.sample_shape.assign(images.sizes().begin() + 1, images.sizes().end());
  const int64_t dim = images.numel() / n;
  if (dim == 0) throw DataError("images file " + quoted(images_path) + " has images of size 0");
  ds.features = bytes_to_unit_float(images.view({n, dim}));
  ds.labels = labels.to(at::kLong);

  const int64_t max_label = ds.labels.max().item<int64_t>();
  if (num_classes > 0) {
    if (max_label >= num_classes) {
      const int64_t i = at::nonzero(ds.labels >= num_classes).view({-1})[0].item<int64_t>();
      throw DataError("labels file " + quoted(labels_path) + ": label " + std::to_string(ds.labels[i].item<int64_t>()) +
                      " at index " + std::to_string(i) + " is not below num_classes " + std::to_string(num_classes));
    }
    ds.num_classes = num_classes;
  } else {
    ds.num_classes = max_label + 1;
  }
  return ds;
}

void check_no_label_gaps(const Dataset& train, const std::string& where) {
  if (train.num_classes < 1 || !train.labels.defined()) return;
  const at::Tensor counts = at::bincount(train.labels.view({-1}), {}, train.num_classes).contiguous();
  const int64_t* c = counts.data_ptr<int64_t>();
  std::vector<int64_t> empty;
  for (int64_t k = 0; k < train.num_classes; ++k) {
    if (c[k] == 0) empty.push_back(k);
  }
  if (empty.empty()) return;
  throw DataError(where + ": " + std::to_string(empty.size()) + " of " + std::to_string(train.num_classes) +
                  " classes have no training sample (labels " + ranges_text(empty) +
                  "); den makes one output per class 0.." + std::to_string(train.num_classes - 1) +
                  ", so labels should be 0..C-1 without gaps. Relabel the data, or allow the gaps "
                  "(den: --allow-label-gaps)");
}

namespace {

struct HalfFiles {
  fs::path images, labels, csv;
};

HalfFiles half_files(const fs::path& root, Half half) {
  const std::string prefix = half == Half::Train ? "train" : "t10k";
  return {find_idx_file(root, prefix + "-images-idx3-ubyte"), find_idx_file(root, prefix + "-labels-idx1-ubyte"),
          root / (half == Half::Train ? "train.csv" : "test.csv")};
}

}  // namespace

bool has_half(const std::string& dir, Half half) {
  const HalfFiles f = half_files(dir, half);
  return !f.images.empty() || !f.labels.empty() || fs::is_regular_file(f.csv);
}

Dataset load_half(const std::string& dir, Half half) {
  if (!fs::is_directory(dir)) throw DataError(missing_directory(dir));
  const HalfFiles f = half_files(dir, half);
  const std::string prefix = half == Half::Train ? "train" : "t10k";
  if (!f.images.empty() || !f.labels.empty()) {
    if (f.images.empty() || f.labels.empty()) {
      throw DataError("data directory " + quoted(dir) + " holds " + (f.images.empty() ? f.labels : f.images).string() +
                      " but no " + prefix + (f.images.empty() ? "-images-idx3-ubyte" : "-labels-idx1-ubyte") +
                      "[.gz]");
    }
    return load_idx_pair(f.images.string(), f.labels.string());
  }
  if (fs::is_regular_file(f.csv)) return load_csv(f.csv.string());
  throw DataError("data directory " + quoted(dir) + " holds neither " + prefix + "-images-idx3-ubyte[.gz] with " +
                  prefix + "-labels-idx1-ubyte[.gz] nor " + f.csv.filename().string());
}

TrainTest load_directory(const std::string& dir, const DirectoryOptions& options) {
  const fs::path root(dir);
  if (!fs::is_directory(root)) throw DataError(missing_directory(dir, options.option));

  const std::vector<std::string> idx_names = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
  std::vector<fs::path> idx_paths;
  bool any_idx = false;
  for (const auto& name : idx_names) {
    idx_paths.push_back(find_idx_file(root, name));
    any_idx = any_idx || !idx_paths.back().empty();
  }
  if (any_idx) {
    // A partial IDX layout is a mistake worth naming rather than silently falling back to CSV.
    for (size_t i = 0; i < idx_names.size(); ++i) {
      if (idx_paths[i].empty()) {
        throw DataError("data directory " + quoted(dir) + " holds IDX files but no " + idx_names[i] + "[.gz]");
      }
    }
    TrainTest tt{load_idx_pair(idx_paths[0].string(), idx_paths[1].string()),
                 load_idx_pair(idx_paths[2].string(), idx_paths[3].string())};
    if (tt.train.dim() != tt.test.dim()) {
      throw DataError("data directory " + quoted(dir) + ": training images have " + std::to_string(tt.train.dim()) +
                      " values each but test images have " + std::to_string(tt.test.dim()));
    }
    share_num_classes(tt, dir, options);
    return tt;
  }

  const fs::path train_csv = root / "train.csv";
  const fs::path test_csv = root / "test.csv";
  const bool has_train = fs::is_regular_file(train_csv);
  const bool has_test = fs::is_regular_file(test_csv);
  if (has_train != has_test) {
    throw DataError("data directory " + quoted(dir) + " holds " + (has_train ? "train.csv" : "test.csv") +
                    " but no " + (has_train ? "test.csv" : "train.csv"));
  }
  if (!has_train) {
    throw DataError("data directory " + quoted(dir) +
                    " holds neither IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
                    "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]) nor train.csv/test.csv");
  }
  TrainTest tt{load_csv(train_csv.string()), load_csv(test_csv.string())};
  if (tt.train.dim() != tt.test.dim()) {
    throw DataError("data directory " + quoted(dir) + ": train.csv rows have " + std::to_string(tt.train.dim()) +
                    " features but test.csv rows have " + std::to_string(tt.test.dim()));
  }
  share_num_classes(tt, dir, options);
  return tt;
}

}  // namespace den::data
