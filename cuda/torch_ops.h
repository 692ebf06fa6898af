#pragma once

// at::Tensor entry points for the kernels of cuda/kernels.h, on the current CUDA stream. Compiled
// only when LibTorch was built with CUDA (DEN_WITH_CUDA_TORCH); ops/ calls them for CUDA tensors after
// validating shapes, dtypes and devices, so they only check what the raw kernels need (CUDA,
// contiguous, one device). Same semantics as the CPU ops in ops/prox.h and ops/adam.h.

#include "cuda/elementwise_math.h"

#include <ATen/ATen.h>

namespace den::cuda {

/// L1 prox of CUDA tensor `w` in place where `mask` (uint8/bool, contiguous, or undefined) is set.
void l1_prox_(at::Tensor& w, double threshold, const at::Tensor& mask);

/// Group prox over the rows of 2-D CUDA tensor `w` in place, for rows set in `row_mask` (or all).
void group_prox_rows_(at::Tensor& w, double threshold, const at::Tensor& row_mask);

/// ||w[i,:] - w_prev[i,:]||_2 (or ||w[i,:]||_2 when w_prev is undefined) of contiguous 2-D CUDA tensors.
at::Tensor row_norms(const at::Tensor& w, const at::Tensor& w_prev);

/// Scalars and optional anchor of one fused masked Adam step (see MaskedAdamArgs in cuda/kernels.h).
struct TensorAdamStep {
  AdamStepConsts consts{};
  double two_l2 = 0.0;
  double two_drift = 0.0;
  double l1_threshold = 0.0;
  double group_threshold = 0.0;
  at::Tensor anchor;  ///< contiguous drift anchor, or undefined for no drift term
};

/// Fused masked Adam step on CUDA tensors; group prox on the rows set in `group_rows` (undefined = none).
void masked_adam_step_(at::Tensor& param, const at::Tensor& grad, at::Tensor& exp_avg, at::Tensor& exp_avg_sq,
                       const at::Tensor& mask, const at::Tensor& group_rows, const TensorAdamStep& step);

}  // namespace den::cuda
