#pragma once

// Launch configuration shared by the kernels (internal).

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>

namespace den::cuda::detail {

/// Threads per block of every kernel.
constexpr int kBlockThreads = 256;
/// Elements per thread per iteration of the element-wise kernels (independent loads in flight).
constexpr int kElementUnroll = 4;
/// Elements per thread that the row kernels hold in registers.
constexpr int kRowItems = 8;

/// Streaming multiprocessors of the current device (cached per device); throws on CUDA errors.
int multiprocessor_count();

/// Blocks for a grid-stride loop over `work_items` items of `items_per_block`: enough to fill the
/// device several times over, never more than the work needs, at least 1.
inline unsigned grid_blocks(int64_t work_items, int64_t items_per_block) {
  const int64_t needed = (work_items + items_per_block - 1) / items_per_block;
  const int64_t fill = static_cast<int64_t>(multiprocessor_count()) * 8;
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(needed, fill)));
}

/// Threads that share one row in the row kernels: the smallest power of two (at most kBlockThreads)
/// whose threads hold the row in registers, kRowItems each; kBlockThreads for longer rows.
inline int row_threads(int64_t cols) {
  int g = 1;
  while (g < kBlockThreads && static_cast<int64_t>(g) * kRowItems < cols) g *= 2;
  return g;
}

static_assert(static_cast<int64_t>(kBlockThreads) * kRowItems == 2048, "kRowRegisterCapacity in cuda/kernels.h");

}  // namespace den::cuda::detail
