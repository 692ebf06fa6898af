#pragma once

#include "ops/elementwise_math.h"

#include <ATen/ATen.h>

#include <cstdint>

namespace den::ops {

/// Settings of one masked Adam step with DEN's regularizers folded into the gradient.
struct MaskedAdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  int64_t step = 1;          ///< 1-based step count of this parameter's optimizer state
  double l2 = 0.0;           ///< adds d/dw l2*||w||^2 = 2*l2*w to the gradient of trainable elements
  double drift = 0.0;        ///< adds d/dw drift*||w - anchor||^2 = 2*drift*(w - anchor) where kAnchored
  double l1_threshold = 0.0; ///< soft-threshold applied to trainable elements after the update
  double group_threshold = 0.0;  ///< group-lasso threshold for the rows flagged in masked_adam_group_step_
};

/// One Adam step restricted to a mask, fused with the L2 and drift gradient terms and the L1 prox:
/// for every element with (mask & kTrainable):
///   g = grad + 2*l2*w + [mask & kAnchored] * 2*drift*(w - anchor)
///   (m, v, w) <- adam_update(w, g, m, v);  w <- soft_threshold(w, l1_threshold)
/// Elements without kTrainable keep param, exp_avg and exp_avg_sq bit-for-bit. `mask` is uint8 of
/// param's shape, or undefined for "all trainable, none anchored". `anchor` must be defined (same
/// shape) when drift > 0 and some element is anchored. One pass over memory, parallel over chunks.
/// CPU or CUDA tensors (all on one device); options.group_threshold is not used here.
void masked_adam_step_(at::Tensor& param, const at::Tensor& grad, at::Tensor& exp_avg, at::Tensor& exp_avg_sq,
                       const at::Tensor& mask, const at::Tensor& anchor, const MaskedAdamOptions& options);

/// masked_adam_step_ fused with the group-lasso proximal step (DEN Eq. 5) on the rows of 2-D `param`
/// flagged in `group_rows` (uint8/bool `[rows]`; undefined = none, then it is masked_adam_step_):
///   masked_adam_step_(param, grad, exp_avg, exp_avg_sq, mask, anchor, options);
///   group_prox_rows_(param, options.group_threshold, group_rows);
/// with the same results as that sequence (the group prox acts on the whole flagged row, frozen
/// elements included), in one pass per row: parallel over rows, each row updated and then shrunk
/// while it is still in cache (on CUDA, in registers for rows of up to 2048 elements).
void masked_adam_group_step_(at::Tensor& param, const at::Tensor& grad, at::Tensor& exp_avg, at::Tensor& exp_avg_sq,
                             const at::Tensor& mask, const at::Tensor& anchor, const at::Tensor& group_rows,
                             const MaskedAdamOptions& options);

/// NOTE: [zeroed-group momentum] Zeroes the rows of `exp_avg` (Adam's first moment, the shape of
/// 2-D `param`) where `group_rows` (uint8/bool `[rows]`) is set and `param`'s row is exactly zero;
/// every other element keeps its bits, and the second moment is not touched.
void reset_momentum_of_zero_rows_(const at::Tensor& param, at::Tensor& exp_avg, const at::Tensor& group_rows);

}  // namespace den::ops
