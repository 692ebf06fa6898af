#pragma once

#include <ATen/ATen.h>

namespace den::ops {

// Values of DEN's regularizers, for reporting losses. `mask` is a uint8/bool element mask of w's
// shape (or undefined for all elements); `row_mask` a uint8/bool `[rows]` mask.

/// sum |w| over masked elements.
double l1_value(const at::Tensor& w, const at::Tensor& mask = {});
/// sum w^2 over masked elements.
double squared_l2_value(const at::Tensor& w, const at::Tensor& mask = {});
/// sum (w - anchor)^2 over masked elements.
double squared_drift_value(const at::Tensor& w, const at::Tensor& anchor, const at::Tensor& mask = {});
/// sum_i ||w_i||_2 over masked rows (the group-lasso term).
double group_l2_value(const at::Tensor& w, const at::Tensor& row_mask = {});

}  // namespace den::ops
