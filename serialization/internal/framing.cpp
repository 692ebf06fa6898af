#include "serialization/internal/framing.h"

#include <zlib.h>

#include <algorithm>
#include <utility>

namespace den::io::internal {

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

uint32_t crc32_of(const void* data, size_t size) { return crc32_update(0, data, size); }

uint32_t crc32_update(uint32_t crc_so_far, const void* data, size_t size) {
  uLong crc = crc_so_far;
  const auto* p = static_cast<const Bytef*>(data);
  while (size > 0) {  // zlib takes uInt lengths
    const uInt piece = static_cast<uInt>(std::min<size_t>(size, 1u << 30));
    crc = ::crc32(crc, p, piece);
    p += piece;
    size -= piece;
  }
  return static_cast<uint32_t>(crc);
}

void swap_float_bytes(char* data, size_t size) {
  for (size_t i = 0; i + 3 < size; i += 4) {
    std::swap(data[i], data[i + 3]);
    std::swap(data[i + 1], data[i + 2]);
  }
}

namespace {

std::string layer_name(int64_t l) { return "layer." + std::to_string(l); }
std::string head_name(int64_t t) { return "head." + std::to_string(t); }
const std::string kMemoryName = "agnostic.memory";

}  // namespace

std::string tensor_name(int64_t i, int64_t layers, int64_t heads) {
  return i < layers ? layer_name(i) : i < layers + heads ? head_name(i - layers + 1) : kMemoryName;
}

void write_record(AtomicFile& file, const std::string& payload) {
  unsigned char frame[kFrameBytes];
  put_u64(frame, payload.size());
  put_u32(frame + 8, crc32_of(payload.data(), payload.size()));
  file.write(frame, sizeof frame);
  file.write(payload.data(), payload.size());
}

[[noreturn]] void corrupt(const std::string& name, const std::string& what) {
  throw CheckpointError(CheckpointError::Kind::Corrupt, "checkpoint '" + name + "' is corrupt: " + what);
}

}  // namespace den::io::internal
