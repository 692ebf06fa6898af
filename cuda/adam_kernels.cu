// Kernels for the fused masked Adam step (L2 and drift gradient terms, L1 prox and, for flagged rows,
// the group prox). NOTE: [three layers] in cuda/kernels.h; NOTE: [row tiles] in cuda/detail/row_reduce.cuh.

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

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("den::cuda::masked_adam_step: " + what);
}

bool finite_nonnegative(double x) { return std::isfinite(x) && x >= 0.0; }

// The new value of trainable element i (its exp_avg and exp_avg_sq written back), given its mask bits.
// Anchored elements read their anchor; others take the same arithmetic as the CPU loop's kDrift = false.
template <typename T>
__device__ __forceinline__ T update_trainable(const MaskedAdamArgs<T>& a, int64_t i, uint8_t bits, T w) {
  T m = a.exp_avg[i];
  T v = a.exp_avg_sq[i];
  const T updated = (a.anchor != nullptr && (bits & kAnchored) != 0)
                        ? regularized_adam_element<true>(w, a.grad[i], T(1), a.anchor[i], m, v, a.reg, a.consts)
                        : regularized_adam_element<false>(w, a.grad[i], T(0), T(0), m, v, a.reg, a.consts);
  a.exp_avg[i] = m;
  a.exp_avg_sq[i] = v;
  return updated;
}

template <typename T>
__device__ __forceinline__ uint8_t mask_bits(const MaskedAdamArgs<T>& a, int64_t i) {
  return a.mask == nullptr ? kTrainable : a.mask[i];
}

// No group prox: one element-wise pass. Elements without kTrainable are neither read nor written.
template <typename T>
__global__ void masked_adam_kernel(MaskedAdamArgs<T> a, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x * detail::kElementUnroll;
  for (int64_t base = static_cast<int64_t>(blockIdx.x) * blockDim.x * detail::kElementUnroll + threadIdx.x;
       base < n; base += stride) {
#pragma unroll
    for (int u = 0; u < detail::kElementUnroll; ++u) {
      const int64_t i = base + static_cast<int64_t>(u) * blockDim.x;
      if (i >= n) continue;
      const uint8_t bits = mask_bits(a, i);
      if ((bits & kTrainable) == 0) continue;
      a.w[i] = update_trainable(a, i, bits, a.w[i]);
    }
  }
}

// With group_rows, rows of up to G * kRowItems elements: the updated row stays in registers while its
// norm is reduced, so each element is read and written once.
template <typename T, int G>
__global__ void masked_adam_rows_kernel(MaskedAdamArgs<T> a) {
  constexpr int kRows = detail::kBlockThreads / G;
  for (int64_t first = static_cast<int64_t>(blockIdx.x) * kRows; first < a.rows;
       first += static_cast<int64_t>(gridDim.x) * kRows) {
    const int64_t r = first + threadIdx.y;
    const bool in_range = r < a.rows;
    const bool grouped = in_range && a.group_rows[r] != 0;
    T x[detail::kRowItems];
    bool trainable[detail::kRowItems];
    double sum_sq = 0.0;
#pragma unroll
    for (int k = 0; k < detail::kRowItems; ++k) {
      const int64_t j = threadIdx.x + static_cast<int64_t>(k) * G;
      x[k] = T(0);
      trainable[k] = false;
      if (in_range && j < a.cols) {
        const int64_t i = r * a.cols + j;
        const uint8_t bits = mask_bits(a, i);
        trainable[k] = (bits & kTrainable) != 0;
        if (trainable[k]) {
          x[k] = update_trainable(a, i, bits, a.w[i]);
          if (!grouped) a.w[i] = x[k];
        } else if (grouped) {
          x[k] = a.w[i];  // frozen elements still count in (and are scaled with) their group
        }
        sum_sq += static_cast<double>(x[k]) * static_cast<double>(x[k]);
      }
    }
    const double norm = sqrt(detail::row_sum<G>(sum_sq));
    if (!grouped) continue;
    // DEN Eq. 5 (group sparsity), proximal step on the updated row.
    const double factor = group_shrink_factor(norm, a.group_threshold);
#pragma unroll
    for (int k = 0; k < detail::kRowItems; ++k) {
      const int64_t j = threadIdx.x + static_cast<int64_t>(k) * G;
      if (j >= a.cols) continue;
      const int64_t i = r * a.cols + j;
      if (factor != 1.0) {
        a.w[i] = apply_group_factor(x[k], factor);
      } else if (trainable[k]) {
        a.w[i] = x[k];
      }
    }
  }
}

// With group_rows, rows longer than the register tile: one block per row, the update is written in a
// first pass and a flagged row is scaled in a second one, which reads the row back from L2.
template <typename T>
__global__ void masked_adam_long_rows_kernel(MaskedAdamArgs<T> a) {
  constexpr int G = detail::kBlockThreads;
  for (int64_t r = blockIdx.x; r < a.rows; r += gridDim.x) {
    const bool grouped = a.group_rows[r] != 0;  // block-uniform
    double sum_sq = 0.0;
    for (int64_t j = threadIdx.x; j < a.cols; j += G) {
      const int64_t i = r * a.cols + j;
      const uint8_t bits = mask_bits(a, i);
      T x = a.w[i];
      if ((bits & kTrainable) != 0) {
        x = update_trainable(a, i, bits, x);
        a.w[i] = x;
      }
      sum_sq += static_cast<double>(x) * static_cast<double>(x);
    }
    const double norm = sqrt(detail::row_sum<G>(sum_sq));
    if (!grouped) continue;
    const double factor = group_shrink_factor(norm, a.group_threshold);
    if (factor == 1.0) continue;
    // Each thread rescales exactly the elements it wrote above, so no further synchronization.
    for (int64_t j = threadIdx.x; j < a.cols; j += G) {
      const int64_t i = r * a.cols + j;
      a.w[i] = apply_group_factor(a.w[i], factor);
    }
  }
}

template <typename T>
struct AdamRowsTile {
  MaskedAdamArgs<T> args;
  cudaStream_t stream;
  template <int G>
  void operator()() const {
    const dim3 block(G, detail::kBlockThreads / G);
    masked_adam_rows_kernel<T, G><<<detail::grid_blocks(args.rows, detail::kBlockThreads / G), block, 0, stream>>>(args);
  }
};

}  // namespace

namespace detail {

template <typename T>
void launch_masked_adam_step(const MaskedAdamArgs<T>& args, cudaStream_t stream) {
  if (args.group_rows == nullptr) {
    const int64_t n = args.rows * args.cols;
    masked_adam_kernel<T><<<grid_blocks(n, static_cast<int64_t>(kBlockThreads) * kElementUnroll), kBlockThreads, 0,
                            stream>>>(args, n);
  } else if (args.cols > kRowRegisterCapacity) {
    masked_adam_long_rows_kernel<T><<<grid_blocks(args.rows, 1), kBlockThreads, 0, stream>>>(args);
  } else {
    with_row_threads(row_threads(args.cols), AdamRowsTile<T>{args, stream});
  }
  DEN_CUDA_CHECK_LAUNCH();
}

}  // namespace detail

template <typename T>
void masked_adam_step(const MaskedAdamArgs<T>& a, cudaStream_t stream) {
  require(a.rows >= 0 && a.cols >= 0,
          "rows and cols must be >= 0, got " + std::to_string(a.rows) + " x " + std::to_string(a.cols));
  const AdamStepConsts& c = a.consts;
  require(finite_nonnegative(c.lr), "lr must be finite and >= 0, got " + std::to_string(c.lr));
  require(c.beta1 >= 0.0f && c.beta1 < 1.0f, "beta1 must be in [0, 1), got " + std::to_string(c.beta1));
  require(c.beta2 >= 0.0f && c.beta2 < 1.0f, "beta2 must be in [0, 1), got " + std::to_string(c.beta2));
  require(finite_nonnegative(c.eps), "eps must be finite and >= 0, got " + std::to_string(c.eps));
  require(c.bias_correction1 > 0.0f && c.bias_correction1 <= 1.0f,
          "bias_correction1 must be in (0, 1], got " + std::to_string(c.bias_correction1));
  require(c.bias_correction2_sqrt > 0.0f && c.bias_correction2_sqrt <= 1.0f,
          "bias_correction2_sqrt must be in (0, 1], got " + std::to_string(c.bias_correction2_sqrt));
  require(finite_nonnegative(static_cast<double>(a.reg.two_l2)) && finite_nonnegative(static_cast<double>(a.reg.two_drift)) &&
              finite_nonnegative(static_cast<double>(a.reg.l1_threshold)),
          "regularizer coefficients must be finite and >= 0");
  require(finite_nonnegative(a.group_threshold),
          "group_threshold must be finite and >= 0, got " + std::to_string(a.group_threshold));
  if (a.rows == 0 || a.cols == 0) return;
  require(a.w != nullptr && a.grad != nullptr && a.exp_avg != nullptr && a.exp_avg_sq != nullptr,
          "w, grad, exp_avg and exp_avg_sq must be non-null");
  detail::launch_masked_adam_step(a, stream);
}

template void masked_adam_step<float>(const MaskedAdamArgs<float>&, cudaStream_t);
template void masked_adam_step<double>(const MaskedAdamArgs<double>&, cudaStream_t);

}  // namespace den::cuda
