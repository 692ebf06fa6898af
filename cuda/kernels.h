#pragma once

// Hand-written CUDA kernels for DEN's sparse, group-regularized updates: checked entry points on raw
// device pointers. Needs only the CUDA toolkit (no LibTorch, Boost, protobuf or spdlog), so it builds
// on a GPU machine alone; cuda/torch_ops.h wraps it for at::Tensor when LibTorch has CUDA.
//
// NOTE: [three layers] Every op is a __global__ kernel, a launcher that takes the stream (in
// cuda/*.cu, namespace detail), and the entry point below, which checks its preconditions (throws
// std::invalid_argument naming the value), then launches and checks the launch with file and line
// (std::runtime_error). All pointers are device pointers to contiguous row-major data; masks are one
// byte per element (uint8 or bool). Work is queued on `stream`; nothing synchronizes.
//
// The CPU implementations with the same semantics are in ops/ (ops/prox.h, ops/adam.h) and are the
// oracle in tests/cuda. The per-element maths is shared with them (cuda/elementwise_math.h).

#include "cuda/elementwise_math.h"

#include <cuda_runtime_api.h>

#include <cstdint>

namespace den::cuda {

/// L1 proximal step in place: w[i] <- soft_threshold(w[i], threshold) for i < n where mask (may be
/// nullptr for all) is nonzero; other elements untouched. threshold == 0 launches nothing (identity).
template <typename T>
void l1_prox(T* w, const uint8_t* mask, int64_t n, T threshold, cudaStream_t stream);

/// Group-lasso proximal step over the rows of w `[rows, cols]` (DEN Eq. 5, one row = one group):
/// w_i <- max(0, 1 - threshold / ||w_i||_2) * w_i for rows where row_mask `[rows]` (nullptr = all) is
/// nonzero; other rows untouched. Row norms accumulate in double and are compared with `threshold` in
/// double, as on the CPU (a threshold rounded to float would zero rows whose norm lies between the two).
/// Any row length: rows of up to kRowRegisterCapacity elements take one read and one write per element,
/// longer rows a second (L2-resident) read.
template <typename T>
void group_prox_rows(T* w, const uint8_t* row_mask, int64_t rows, int64_t cols, double threshold, cudaStream_t stream);

/// out[i] = ||w[i,:] - w_prev[i,:]||_2 for w, w_prev `[rows, cols]` (DEN's split criterion rho_i), or
/// ||w[i,:]||_2 when w_prev is nullptr. `out` has `rows` elements. Accumulates in double.
template <typename T>
void row_norms(T* out, const T* w, const T* w_prev, int64_t rows, int64_t cols, cudaStream_t stream);

/// Arguments of the fused masked Adam step (see masked_adam_step).
template <typename T>
struct MaskedAdamArgs {
  T* w = nullptr;                       ///< parameter, updated in place
  const T* grad = nullptr;              ///< loss gradient
  T* exp_avg = nullptr;                 ///< Adam first moment, updated in place
  T* exp_avg_sq = nullptr;              ///< Adam second moment, updated in place
  const T* anchor = nullptr;            ///< drift anchor w^{t-1}; nullptr = no drift term
  const uint8_t* mask = nullptr;        ///< kTrainable | kAnchored bits per element; nullptr = all trainable
  const uint8_t* group_rows = nullptr;  ///< `[rows]` rows that get the group prox; nullptr = none
  int64_t rows = 0;                     ///< the tensor viewed as `[rows, cols]`; n = rows * cols
  int64_t cols = 0;
  AdamStepConsts consts{};              ///< lr, betas, eps, bias corrections (float, as on the CPU)
  AdamRegularizers<T> reg{};            ///< 2*l2, 2*drift, L1 threshold
  double group_threshold = 0.0;         ///< group-lasso threshold for rows flagged in group_rows
};

/// One Adam step restricted to a mask, fused with the L2 and drift gradient terms, the L1 prox and,
/// for rows flagged in group_rows, the group prox of the updated row:
///   for elements with (mask & kTrainable): (w, m, v) <- regularized_adam_element(...)
///   for flagged rows: w_i <- max(0, 1 - group_threshold / ||w_i||_2) * w_i  (the whole row)
/// Elements without kTrainable keep w (unless their row is group-shrunk), exp_avg, exp_avg_sq
/// bit-for-bit. Without group_rows it is one element-wise pass; with it, rows of up to
/// kRowRegisterCapacity elements still take one read and one write per element.
template <typename T>
void masked_adam_step(const MaskedAdamArgs<T>& args, cudaStream_t stream);

/// Elements per row that the row kernels hold in registers (threads per row x items per thread).
constexpr int64_t kRowRegisterCapacity = 2048;

/// Number of CUDA devices, or 0 when the runtime reports none or fails (no driver): never throws.
int device_count() noexcept;

}  // namespace den::cuda
