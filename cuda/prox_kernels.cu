// Kernels for the L1 prox, the group prox over rows and the (drift) row norms.
// NOTE: [three layers] in cuda/kernels.h; NOTE: [row tiles] in cuda/detail/row_reduce.cuh.

#include "cuda/cuda_check.h"
#include "cuda/detail/launch.h"
#include "cuda/detail/row_reduce.cuh"
#include "cuda/elementwise_math.h"
#include "cuda/kernels.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace den::cuda {

namespace {

void require(bool ok, const char* op, const std::string& what) {
  if (!ok) throw std::invalid_argument(std::string("den::cuda::") + op + ": " + what);
}

// ---------------------------------------------------------------------------------------------
// Kernels

template <typename T>
__global__ void l1_prox_kernel(T* w, const uint8_t* mask, int64_t n, T threshold) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x * detail::kElementUnroll;
  for (int64_t base = static_cast<int64_t>(blockIdx.x) * blockDim.x * detail::kElementUnroll + threadIdx.x;
       base < n; base += stride) {
#pragma unroll
    for (int u = 0; u < detail::kElementUnroll; ++u) {
      const int64_t i = base + static_cast<int64_t>(u) * blockDim.x;
      // A masked-out element is neither read nor written: its bits cannot change.
      if (i < n && (mask == nullptr || mask[i] != 0)) w[i] = soft_threshold(w[i], threshold);
    }
  }
}

// Rows of up to G * kRowItems elements: one read and one write per element.
template <typename T, int G>
__global__ void group_prox_rows_kernel(T* w, const uint8_t* row_mask, int64_t rows, int64_t cols, double threshold) {
  constexpr int kRows = detail::kBlockThreads / G;
  for (int64_t first = static_cast<int64_t>(blockIdx.x) * kRows; first < rows;
       first += static_cast<int64_t>(gridDim.x) * kRows) {
    const int64_t r = first + threadIdx.y;
    const bool active = r < rows && (row_mask == nullptr || row_mask[r] != 0);
    T* row = active ? w + r * cols : nullptr;
    T x[detail::kRowItems];
    double sum_sq = 0.0;
#pragma unroll
    for (int k = 0; k < detail::kRowItems; ++k) {
      const int64_t j = threadIdx.x + static_cast<int64_t>(k) * G;
      x[k] = (active && j < cols) ? row[j] : T(0);
      sum_sq += static_cast<double>(x[k]) * static_cast<double>(x[k]);
    }
    const double norm = sqrt(detail::row_sum<G>(sum_sq));
    if (!active) continue;
    // DEN Eq. 5 (group sparsity), proximal step: w_g <- max(0, 1 - t/||w_g||) * w_g.
    const double factor = group_shrink_factor(norm, threshold);
    if (factor == 1.0) continue;
#pragma unroll
    for (int k = 0; k < detail::kRowItems; ++k) {
      const int64_t j = threadIdx.x + static_cast<int64_t>(k) * G;
      if (j < cols) row[j] = apply_group_factor(x[k], factor);
    }
  }
}

// Rows longer than the register tile: one block per row; the second read hits L2.
template <typename T>
__global__ void group_prox_long_rows_kernel(T* w, const uint8_t* row_mask, int64_t rows, int64_t cols,
                                            double threshold) {
  constexpr int G = detail::kBlockThreads;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    if (row_mask != nullptr && row_mask[r] == 0) continue;  // block-uniform
    T* row = w + r * cols;
    double sum_sq = 0.0;
    for (int64_t j = threadIdx.x; j < cols; j += G) sum_sq += static_cast<double>(row[j]) * static_cast<double>(row[j]);
    const double factor = group_shrink_factor(sqrt(detail::row_sum<G>(sum_sq)), threshold);
    if (factor == 1.0) continue;
    for (int64_t j = threadIdx.x; j < cols; j += G) row[j] = apply_group_factor(row[j], factor);
  }
}

template <typename T, int G>
__global__ void row_norms_kernel(T* out, const T* w, const T* w_prev, int64_t rows, int64_t cols) {
  constexpr int kRows = detail::kBlockThreads / G;
  for (int64_t first = static_cast<int64_t>(blockIdx.x) * kRows; first < rows;
       first += static_cast<int64_t>(gridDim.x) * kRows) {
    const int64_t r = first + threadIdx.y;
    double sum_sq = 0.0;
    if (r < rows) {
      const T* a = w + r * cols;
      const T* b = w_prev == nullptr ? nullptr : w_prev + r * cols;
      for (int64_t j = threadIdx.x; j < cols; j += G) {
        // rho_i = ||w_i^t - w_i^{t-1}||_2, DEN's split criterion; differences taken in double as on the CPU.
        const double d = b == nullptr ? static_cast<double>(a[j]) : static_cast<double>(a[j]) - static_cast<double>(b[j]);
        sum_sq += d * d;
      }
    }
    const double norm = sqrt(detail::row_sum<G>(sum_sq));
    if (r < rows && threadIdx.x == 0) out[r] = static_cast<T>(norm);
  }
}

// ---------------------------------------------------------------------------------------------
// Launchers

template <typename T, int G>
void launch_group_prox_tile(T* w, const uint8_t* row_mask, int64_t rows, int64_t cols, double threshold,
                            cudaStream_t stream) {
  const dim3 block(G, detail::kBlockThreads / G);
  group_prox_rows_kernel<T, G>
      <<<detail::grid_blocks(rows, detail::kBlockThreads / G), block, 0, stream>>>(w, row_mask, rows, cols, threshold);
}

template <typename T, int G>
void launch_row_norms_tile(T* out, const T* w, const T* w_prev, int64_t rows, int64_t cols, cudaStream_t stream) {
  const dim3 block(G, detail::kBlockThreads / G);
  row_norms_kernel<T, G>
      <<<detail::grid_blocks(rows, detail::kBlockThreads / G), block, 0, stream>>>(out, w, w_prev, rows, cols);
}

// Launch functors for with_row_threads (local classes cannot have member templates).
template <typename T>
struct GroupProxTile {
  T* w;
  const uint8_t* row_mask;
  int64_t rows, cols;
  double threshold;
  cudaStream_t stream;
  template <int G>
  void operator()() const {
    launch_group_prox_tile<T, G>(w, row_mask, rows, cols, threshold, stream);
  }
};

template <typename T>
struct RowNormsTile {
  T* out;
  const T* w;
  const T* w_prev;
  int64_t rows, cols;
  cudaStream_t stream;
  template <int G>
  void operator()() const {
    launch_row_norms_tile<T, G>(out, w, w_prev, rows, cols, stream);
  }
};

}  // namespace

namespace detail {

template <typename T>
void launch_l1_prox(T* w, const uint8_t* mask, int64_t n, T threshold, cudaStream_t stream) {
  const unsigned blocks = grid_blocks(n, static_cast<int64_t>(kBlockThreads) * kElementUnroll);
  l1_prox_kernel<T><<<blocks, kBlockThreads, 0, stream>>>(w, mask, n, threshold);
  DEN_CUDA_CHECK_LAUNCH();
}

template <typename T>
void launch_group_prox_rows(T* w, const uint8_t* row_mask, int64_t rows, int64_t cols, double threshold,
                            cudaStream_t stream) {
  if (cols > kRowRegisterCapacity) {
    group_prox_long_rows_kernel<T><<<grid_blocks(rows, 1), kBlockThreads, 0, stream>>>(w, row_mask, rows, cols, threshold);
  } else {
    detail::with_row_threads(row_threads(cols), GroupProxTile<T>{w, row_mask, rows, cols, threshold, stream});
  }
  DEN_CUDA_CHECK_LAUNCH();
}

template <typename T>
void launch_row_norms(T* out, const T* w, const T* w_prev, int64_t rows, int64_t cols, cudaStream_t stream) {
  detail::with_row_threads(row_threads(cols), RowNormsTile<T>{out, w, w_prev, rows, cols, stream});
  DEN_CUDA_CHECK_LAUNCH();
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Checked entry points

template <typename T>
void l1_prox(T* w, const uint8_t* mask, int64_t n, T threshold, cudaStream_t stream) {
  require(n >= 0, "l1_prox", "n must be >= 0, got " + std::to_string(n));
  require(std::isfinite(static_cast<double>(threshold)) && threshold >= T(0), "l1_prox",
          "threshold must be finite and >= 0, got " + std::to_string(static_cast<double>(threshold)));
  // soft_threshold(w, 0) is the identity except that it maps -0 and NaN to 0; skip it (as on the CPU).
  if (n == 0 || threshold == T(0)) return;
  require(w != nullptr, "l1_prox", "w is null for n = " + std::to_string(n));
  detail::launch_l1_prox(w, mask, n, threshold, stream);
}

template <typename T>
void group_prox_rows(T* w, const uint8_t* row_mask, int64_t rows, int64_t cols, double threshold, cudaStream_t stream) {
  require(rows >= 0 && cols >= 0, "group_prox_rows",
          "rows and cols must be >= 0, got " + std::to_string(rows) + " x " + std::to_string(cols));
  require(std::isfinite(threshold) && threshold >= 0.0, "group_prox_rows",
          "threshold must be finite and >= 0, got " + std::to_string(threshold));
  if (rows == 0 || cols == 0) return;  // zero-length rows are left alone, as on the CPU
  require(w != nullptr, "group_prox_rows", "w is null");
  detail::launch_group_prox_rows(w, row_mask, rows, cols, threshold, stream);
}

template <typename T>
void row_norms(T* out, const T* w, const T* w_prev, int64_t rows, int64_t cols, cudaStream_t stream) {
  require(rows >= 0 && cols >= 0, "row_norms",
          "rows and cols must be >= 0, got " + std::to_string(rows) + " x " + std::to_string(cols));
  if (rows == 0) return;
  require(out != nullptr, "row_norms", "out is null");
  require(cols == 0 || w != nullptr, "row_norms", "w is null");
  detail::launch_row_norms(out, w, w_prev, rows, cols, stream);
}

template void l1_prox<float>(float*, const uint8_t*, int64_t, float, cudaStream_t);
template void l1_prox<double>(double*, const uint8_t*, int64_t, double, cudaStream_t);
template void group_prox_rows<float>(float*, const uint8_t*, int64_t, int64_t, double, cudaStream_t);
template void group_prox_rows<double>(double*, const uint8_t*, int64_t, int64_t, double, cudaStream_t);
template void row_norms<float>(float*, const float*, const float*, int64_t, int64_t, cudaStream_t);
template void row_norms<double>(double*, const double*, const double*, int64_t, int64_t, cudaStream_t);

}  // namespace den::cuda
