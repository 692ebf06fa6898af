#pragma once

#include <ATen/ATen.h>

namespace den::ops {

// Proximal operators of DEN's sparsity regularizers, applied after an optimizer step. All act in
// place on float32/float64 tensors in a single pass over memory, on the CPU or, for CUDA tensors, with
// the kernels of cuda/ (all tensors of one call on one device; see docs/cuda.md).

/// L1 proximal step (soft-threshold by `threshold` >= 0) on every element of `w`, or only where
/// `mask` (uint8/bool, same shape as w, or undefined for all) is nonzero; other elements untouched.
void l1_prox_(at::Tensor& w, double threshold, const at::Tensor& mask = {});

/// Group-lasso proximal step over the rows of 2-D `w` (one row = one unit's incoming weights =
/// one group): w_i <- max(0, 1 - threshold / ||w_i||_2) * w_i, for rows where `row_mask` (uint8/bool
/// `[rows]`, or undefined for all) is nonzero. Zero-length rows are left alone.
void group_prox_rows_(at::Tensor& w, double threshold, const at::Tensor& row_mask = {});

/// Per-row Euclidean distance ||w[i,:] - w_prev[i,:]||_2 of two 2-D tensors of the same shape;
/// returns a 1-D tensor `[rows]` of w's dtype. Used for DEN's split criterion (rho_i).
at::Tensor drift_row_norms(const at::Tensor& w, const at::Tensor& w_prev);

/// Per-row Euclidean norm ||w[i,:]||_2 of 2-D `w`, `[rows]`. A row that is exactly zero has norm 0.
at::Tensor row_norms(const at::Tensor& w);

}  // namespace den::ops
