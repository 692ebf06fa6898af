#pragma once

// The checkpoint file's byte level (NOTE: [checkpoint layout] in den.proto): little-endian integers,
// CRC-32s, length-prefixed records, tensor names, and where the bytes are read from. Internal to
// serialization/; not installed.

#include "serialization/atomic_file.h"
#include "serialization/checkpoint.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

namespace den::io::internal {

constexpr bool kHostLittleEndian = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;
constexpr size_t kPreambleBytes = 16;  // magic, version, crc
constexpr size_t kFrameBytes = 12;     // length u64, crc u32
constexpr size_t kFloatBytes = 4;
/// Bytes a TensorChunk message adds around its data (field tags and varints), generously.
constexpr int64_t kChunkOverhead = 48;
/// The header is one message; protobuf refuses messages of 2 GiB and more.
constexpr int64_t kMaxHeaderBytes = int64_t{1} << 30;

void put_u32(unsigned char* out, uint32_t v);
void put_u64(unsigned char* out, uint64_t v);
uint32_t get_u32(const unsigned char* in);
uint64_t get_u64(const unsigned char* in);
uint32_t crc32_of(const void* data, size_t size);
/// The CRC-32 of the bytes before (`crc_so_far`, 0 for none) followed by `data`.
uint32_t crc32_update(uint32_t crc_so_far, const void* data, size_t size);
/// Reverses the bytes of every 4-byte element (only on big-endian hosts).
void swap_float_bytes(char* data, size_t size);

/// Name of tensor `i` of a checkpoint: layers, then heads, then the task-agnostic exemplars.
std::string tensor_name(int64_t i, int64_t layers, int64_t heads);
/// The name of the frozen trunk's archive, the uint8 tensor after the float32 ones.
constexpr const char* kTrunkName = "trunk";

/// Writes one record: its length and CRC-32, then `payload`.
void write_record(AtomicFile& file, const std::string& payload);

/// The error of a checkpoint whose contents contradict themselves.
[[noreturn]] void corrupt(const std::string& name, const std::string& what);

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

}  // namespace den::io::internal
