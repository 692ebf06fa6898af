#pragma once

#include "cuda/host_device.h"

#include <cmath>
#include <cstdint>

namespace den::ops {

// Per-element maths written once, shared by the CPU loops and the CUDA kernels.

/// Bits of an element mask for the masked optimizer step (uint8 per element).
constexpr uint8_t kTrainable = 1;  ///< the element is updated
constexpr uint8_t kAnchored = 2;   ///< the element is pulled toward its anchor (drift penalty)

/// Soft-threshold (L1 proximal operator): sign(w) * max(|w| - t, 0), written as w - clamp(w, -t, t)
/// so that it is branch-free (vectorizes) and a NaN stays NaN instead of being hidden as 0.
template <typename T>
DEN_HOST_DEVICE T soft_threshold(T w, T t) {
  const T low = w < -t ? -t : w;
  return w - (low > t ? t : low);
}

/// Group shrink factor (group-lasso proximal operator, DEN Eq. 5 with the l2,1 term):
/// max(0, 1 - t / ||w_g||); a zero group stays zero.
template <typename T>
DEN_HOST_DEVICE T group_shrink_factor(T group_norm, T t) {
  return group_norm > t ? T(1) - t / group_norm : T(0);
}

/// Hyperparameters of one Adam step, with bias corrections precomputed for step count `step`.
struct AdamStepConsts {
  float lr, beta1, beta2, eps;
  float bias_correction1;       ///< 1 - beta1^step
  float bias_correction2_sqrt;  ///< sqrt(1 - beta2^step)
};

/// One Adam update of a single element (Kingma & Ba, Alg. 1). `g` is the full gradient including
/// regularizer terms. Updates m and v in place, returns the new parameter value.
template <typename T>
DEN_HOST_DEVICE T adam_update(T w, T g, T& m, T& v, const AdamStepConsts& c) {
  m = c.beta1 * m + (T(1) - c.beta1) * g;
  v = c.beta2 * v + (T(1) - c.beta2) * g * g;
  const T denom = std::sqrt(v) / c.bias_correction2_sqrt + c.eps;
  return w - (c.lr / c.bias_correction1) * m / denom;
}

}  // namespace den::ops
