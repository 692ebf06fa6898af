#pragma once

// Row-tiled reductions for the row kernels (internal, device code).
//
// NOTE: [row tiles] A row kernel runs blocks of dim3(G, kBlockThreads / G): G threads share one row
// (G a power of two), each block handles kBlockThreads / G rows at a time, and the grid strides over
// rows. Thread x of a row touches elements x, x + G, x + 2G, ... so a warp reads contiguous memory.
// Short rows pack several rows into a warp instead of idling 31 of 32 threads on a row of length 1;
// rows of up to G * kRowItems elements stay in registers between the norm and the write.

#include "cuda/detail/launch.h"

namespace den::cuda::detail {

/// Sum of `v` over the G threads (threadIdx.x) that share a row; every thread of the block must call
/// it (it synchronizes the block when G > 32). Deterministic order for a given G.
template <int G>
__device__ __forceinline__ double row_sum(double v) {
  static_assert(G >= 1 && G <= kBlockThreads && (G & (G - 1)) == 0, "G must be a power of two");
  // Within a warp: G < 32 groups are aligned to G lanes, so xor offsets below G stay in the row.
#pragma unroll
  for (int offset = (G < 32 ? G : 32) / 2; offset > 0; offset /= 2) {
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  }
  if constexpr (G > 32) {
    constexpr int kWarps = G / 32;
    __shared__ double partial[kBlockThreads / 32];
    double* slot = partial + threadIdx.y * kWarps;
    __syncthreads();  // the previous call's readers are done with `partial`
    if (threadIdx.x % 32 == 0) slot[threadIdx.x / 32] = v;
    __syncthreads();
    v = 0.0;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) v += slot[w];
  }
  return v;
}

/// Host side: calls f.template operator()<G>() with the compile-time G equal to `g` (a power of two <= 256).
template <typename F>
void with_row_threads(int g, F&& f) {
  switch (g) {
    case 1: f.template operator()<1>(); break;
    case 2: f.template operator()<2>(); break;
    case 4: f.template operator()<4>(); break;
    case 8: f.template operator()<8>(); break;
    case 16: f.template operator()<16>(); break;
    case 32: f.template operator()<32>(); break;
    case 64: f.template operator()<64>(); break;
    case 128: f.template operator()<128>(); break;
    default: f.template operator()<256>(); break;
  }
}

}  // namespace den::cuda::detail
