#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>

namespace den::engine {

/// A float tensor `[numel]` with `options`' device for a large, long-lived buffer. On the CPU its
/// memory is advised into transparent huge pages (NOTE: [huge pages]); elsewhere it is at::empty.
at::Tensor allocate_large_buffer(int64_t numel, const at::TensorOptions& options);

/// Storage that outlives a phase (NOTE: [frozen first-layer rows]): every phase's caches live in
/// it, so its pages are faulted in once per trainer, not once per phase. First-touch page faults are
/// slow on the 2-core machine: a fresh buffer per phase made a 30-step phase 2.3x slower. A copy
/// starts empty, so two trainers never share it.
class CacheStorage {
 public:
  CacheStorage() = default;
  CacheStorage(const CacheStorage&) {}
  CacheStorage& operator=(const CacheStorage&) { return *this; }
  /// A float tensor of at least `numel` elements with `options`. It grows by half again what is
  /// asked, up to `max_numel`, since the network, and with it the caches, grow a little every task.
  at::Tensor take(int64_t numel, int64_t max_numel, const at::TensorOptions& options) {
    if (!buffer_.defined() || buffer_.numel() < numel || buffer_.device() != options.device()) {
      buffer_ = at::Tensor();  // release the old buffer before the new one is allocated
      buffer_ = allocate_large_buffer(std::max(numel, std::min(numel + numel / 2, max_numel)), options);
    }
    return buffer_;
  }

 private:
  at::Tensor buffer_;
};

}  // namespace den::engine
