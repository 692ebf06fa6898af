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
};

/// One Adam step restricted to a mask, fused with the L2 and drift gradient terms and the L1 prox:
/// for every element with (mask & kTrainable):
///   g = grad + 2*l2*w + [mask & kAnchored] * 2*drift*(w - anchor)
///   (m, v, w) <- adam_update(w, g, m, v);  w <- soft_threshold(w, l1_threshold)
/// Elements without kTrainable keep param, exp_avg and exp_avg_sq bit-for-bit. `mask` is uint8 of
/// param's shape, or undefined for "all trainable, none anchored". `anchor` must be defined (same
/// shape) when drift > 0 and some element is anchored. One pass over memory, parallel over chunks.
void masked_adam_step_(at::Tensor& param, const at::Tensor& grad, at::Tensor& exp_avg, at::Tensor& exp_avg_sq,
                       const at::Tensor& mask, const at::Tensor& anchor, const MaskedAdamOptions& options);

}  // namespace den::ops
