#pragma once

#include "cuda/host_device.h"

#include <cmath>
#include <cstdint>

namespace den::cuda {

// Per-element maths written once, shared by the CPU loops (ops/, through ops/elementwise_math.h)
// and the CUDA kernels (cuda/*.cu). Plain C++17 plus DEN_HOST_DEVICE: no LibTorch, no CUDA headers.

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

/// Applies a group shrink factor to one element of the group: +0 for a zeroed group (x * 0 would
/// keep -0 for negative weights), else x * factor rounded to T.
template <typename T>
DEN_HOST_DEVICE T apply_group_factor(T x, double factor) {
  return factor == 0.0 ? T(0) : x * static_cast<T>(factor);
}

/// DEN's regularizer coefficients as folded into one Adam step, in the parameter's type.
template <typename T>
struct AdamRegularizers {
  T two_l2;        ///< 2*l2: gradient of l2*||w||^2 (DEN Eq. 4)
  T two_drift;     ///< 2*lambda: gradient of lambda*||w - w^{t-1}||^2 on anchored elements (DEN Eq. 6)
  T l1_threshold;  ///< soft-threshold after the step (proximal step of mu*||w||_1, DEN Eqs. 2, 3, 5)
};

/// The whole update of one trainable element: regularized gradient, Adam step, L1 prox.
/// `anchored` is 1 or 0, a multiplier rather than a branch so that CPU loops vectorize; it and
/// `anchor` are ignored unless kDrift. Updates m and v, returns the new parameter value.
template <bool kDrift, typename T>
DEN_HOST_DEVICE T regularized_adam_element(T w, T grad, T anchored, T anchor, T& m, T& v,
                                           const AdamRegularizers<T>& k, const AdamStepConsts& c) {
  T g = grad + k.two_l2 * w;
  if constexpr (kDrift) g += anchored * k.two_drift * (w - anchor);
  return soft_threshold(adam_update(w, g, m, v, c), k.l1_threshold);
}

}  // namespace den::cuda
