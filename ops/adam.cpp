#include "ops/adam.h"

#include "ops/detail/cuda_dispatch.h"
#include "ops/detail/row_math.h"
#include "ops/detail/tensor_checks.h"
#include "ops/elementwise_math.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <cmath>

// NOTE: [vector width]
// Not under ASan or TSan (DEN_SANITIZE): the clones' ifunc resolver runs at relocation time, before
// the sanitizer's runtime is set up, and its instrumented code crashes the process at load.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__SANITIZE_THREAD__)
#define DEN_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define DEN_VECTOR_CLONES
#endif
#define DEN_ALWAYS_INLINE inline __attribute__((always_inline))

namespace den::ops {

namespace {

void check_options(const char* op, const MaskedAdamOptions& o) {
  detail::check_nonnegative(o.lr, op, "lr");
  // The step's constants are float on the CPU and on the GPU (AdamStepConsts): a beta just below 1
  // would round to 1.0f there and stop the moments from ever moving.
  TORCH_CHECK(o.beta1 >= 0.0 && static_cast<float>(o.beta1) < 1.0f, op, ": beta1 must be in [0, 1) in float, got ",
              o.beta1);
  TORCH_CHECK(o.beta2 >= 0.0 && static_cast<float>(o.beta2) < 1.0f, op, ": beta2 must be in [0, 1) in float, got ",
              o.beta2, static_cast<float>(o.beta2) == 1.0f && o.beta2 < 1.0 ? " (rounds to 1 in float)" : "");
  detail::check_nonnegative(o.eps, op, "eps");
  TORCH_CHECK(o.step >= 1, op, ": step must be >= 1 (1-based), got ", o.step);
  detail::check_nonnegative(o.l2, op, "l2");
  detail::check_nonnegative(o.drift, op, "drift");
  detail::check_nonnegative(o.l1_threshold, op, "l1_threshold");
  detail::check_nonnegative(o.group_threshold, op, "group_threshold");
}

bool any_anchored(const uint8_t* mask, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (mask[i] & kAnchored) return true;
  }
  return false;
}

template <typename T>
struct AdamPointers {
  T* w;
  const T* g;
  T* m;
  T* v;
  const T* anchor;
  const uint8_t* mask;
};

// NOTE: [branch-free masked step] Every element is computed and the mask only selects between the
// new and the old values. A `continue` on masked-out elements kept GCC from vectorizing the loop
// (scalar sqrt and divide: 4x slower than the sgemm of the same step); a select keeps the old bits
// exactly and vectorizes. Soft-threshold by 0 is the identity on trainable elements. GCC if-converts
// the selects only under -fno-trapping-math (ops/CMakeLists.txt): with trapping maths it keeps a
// branch around FP operations ("tree could trap") and the masked loops stayed scalar.
// The arrays never overlap and the scalars come by value: without __restrict GCC needs more run-time
// alias checks than it allows (vect-max-version-for-alias-checks) and leaves the loop scalar.
template <typename T, bool kMasked, bool kDrift>
DEN_ALWAYS_INLINE void adam_range(T* __restrict pw, const T* __restrict pg, T* __restrict pm, T* __restrict pv,
                                  const T* __restrict panchor, const uint8_t* __restrict pmask,
                                  const AdamRegularizers<T> k, const AdamStepConsts consts, int64_t begin,
                                  int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const T w = pw[i];
    T m = pm[i];
    T v = pv[i];
    // d/dw of l2*||w||^2 (DEN Eq. 4) and of lambda*||W - W^{t-1}||^2 (DEN Eq. 6, drift penalty) join
    // the gradient; the L1 proximal step for the mu*||W||_1 terms of DEN Eqs. 2, 3 and 5 follows it.
    T anchored = T(0), anchor = T(0);
    if constexpr (kDrift) {
      anchored = (pmask[i] & kAnchored) ? T(1) : T(0);
      anchor = panchor[i];
    }
    const T updated = regularized_adam_element<kDrift>(w, pg[i], anchored, anchor, m, v, k, consts);
    if constexpr (kMasked) {
      const bool trainable = (pmask[i] & kTrainable) != 0;
      pw[i] = trainable ? updated : w;
      pm[i] = trainable ? m : pm[i];
      pv[i] = trainable ? v : pv[i];
    } else {
      pw[i] = updated;
      pm[i] = m;
      pv[i] = v;
    }
  }
}

// adam_range over [begin, end) with the variant that the mask and drift call for.
template <typename T>
DEN_ALWAYS_INLINE void adam_range_variant(const AdamPointers<T>& p, const AdamRegularizers<T>& k,
                                          const AdamStepConsts& consts, bool use_drift, int64_t begin, int64_t end) {
  if (p.mask == nullptr) {
    adam_range<T, false, false>(p.w, p.g, p.m, p.v, p.anchor, p.mask, k, consts, begin, end);
  } else if (use_drift) {
    adam_range<T, true, true>(p.w, p.g, p.m, p.v, p.anchor, p.mask, k, consts, begin, end);
  } else {
    adam_range<T, true, false>(p.w, p.g, p.m, p.v, p.anchor, p.mask, k, consts, begin, end);
  }
}

// NOTE: [vector width] The distribution's baseline x86-64 has SSE2 only, 4 floats a vector, and at
// that width the step is bound by its square roots and divisions rather than by memory: on a
// 312x785 layer it ran at a quarter of a copy of the same bytes. The element loop is therefore also
// compiled for AVX2 and AVX-512, and the loader picks the widest the CPU has (GCC target_clones).
// Each element goes through the same operations at any width (the loop has no reduction, and ops/
// is built with -ffp-contract=off, so no multiply-add is fused), so results are bit-identical on
// every CPU. The group prox, a sum of squares, stays at the baseline width for the same reason.
DEN_VECTOR_CLONES void adam_range_any(const AdamPointers<float>& p, const AdamRegularizers<float>& k,
                                      const AdamStepConsts& consts, bool use_drift, int64_t begin, int64_t end) {
  adam_range_variant(p, k, consts, use_drift, begin, end);
}
DEN_VECTOR_CLONES void adam_range_any(const AdamPointers<double>& p, const AdamRegularizers<double>& k,
                                      const AdamStepConsts& consts, bool use_drift, int64_t begin, int64_t end) {
  adam_range_variant(p, k, consts, use_drift, begin, end);
}

// The checked, contiguous operands of one step, shared by both entry points.
struct StepOperands {
  at::Tensor mask;    // contiguous or undefined
  at::Tensor anchor;  // contiguous where the drift term is used, else undefined
  bool use_drift = false;
};

StepOperands check_step(const char* op, const at::Tensor& param, const at::Tensor& grad, const at::Tensor& exp_avg,
                        const at::Tensor& exp_avg_sq, const at::Tensor& mask, const at::Tensor& anchor,
                        const MaskedAdamOptions& options) {
  detail::check_inplace_target(param, op, "param");
  detail::check_same_as(grad, param, op, "grad", "param");
  TORCH_CHECK(grad.is_contiguous(), op, ": grad must be contiguous, got strides ", grad.strides());
  detail::check_same_as(exp_avg, param, op, "exp_avg", "param");
  detail::check_inplace_target(exp_avg, op, "exp_avg");
  detail::check_same_as(exp_avg_sq, param, op, "exp_avg_sq", "param");
  detail::check_inplace_target(exp_avg_sq, op, "exp_avg_sq");
  check_options(op, options);

  StepOperands out;
  out.mask = detail::checked_mask(mask, param.sizes(), param.device(), op, "mask");
  // The drift term only matters where some element is anchored and drift > 0. On CUDA the anchored
  // bits are only scanned (a device sync) when no anchor was given; the kernel reads the anchor
  // only where an element is anchored.
  if (options.drift > 0.0 && out.mask.defined()) {
    if (param.is_cuda()) {
      out.use_drift = anchor.defined() || out.mask.bitwise_and(kAnchored).any().item<bool>();
    } else {
      out.use_drift = any_anchored(detail::mask_data(out.mask), param.numel());
    }
  }
  if (out.use_drift) {
    TORCH_CHECK(anchor.defined(), op, ": anchor is undefined but drift = ", options.drift,
                " > 0 and the mask marks elements as anchored");
    detail::check_same_as(anchor, param, op, "anchor", "param");
    out.anchor = anchor.contiguous();
  }
  return out;
}

AdamStepConsts step_consts(const MaskedAdamOptions& options) {
  const double bc1 = 1.0 - std::pow(options.beta1, static_cast<double>(options.step));
  const double bc2 = 1.0 - std::pow(options.beta2, static_cast<double>(options.step));
  return AdamStepConsts{static_cast<float>(options.lr),   static_cast<float>(options.beta1),
                        static_cast<float>(options.beta2), static_cast<float>(options.eps),
                        static_cast<float>(bc1),           static_cast<float>(std::sqrt(bc2))};
}

template <typename T>
AdamRegularizers<T> regularizers(const MaskedAdamOptions& options) {
  return {static_cast<T>(2.0 * options.l2), static_cast<T>(2.0 * options.drift),
          static_cast<T>(options.l1_threshold)};
}

#if defined(DEN_WITH_CUDA_TORCH)
cuda::TensorAdamStep cuda_step(const MaskedAdamOptions& options, const StepOperands& s, double group_threshold) {
  cuda::TensorAdamStep step;
  step.consts = step_consts(options);
  step.two_l2 = 2.0 * options.l2;
  step.two_drift = 2.0 * options.drift;
  step.l1_threshold = options.l1_threshold;
  step.group_threshold = group_threshold;
  step.anchor = s.use_drift ? s.anchor : at::Tensor();
  return step;
}
#endif

template <typename T>
AdamPointers<T> pointers(at::Tensor& param, const at::Tensor& grad, at::Tensor& exp_avg, at::Tensor& exp_avg_sq,
                         const StepOperands& s) {
  return {param.data_ptr<T>(),      grad.data_ptr<T>(),
          exp_avg.data_ptr<T>(),    exp_avg_sq.data_ptr<T>(),
          s.use_drift ? s.anchor.data_ptr<T>() : nullptr, detail::mask_data(s.mask)};
}

}  // namespace

void masked_adam_step_(at::Tensor& param, const at::Tensor& grad, at::Tensor& exp_avg, at::Tensor& exp_avg_sq,
                       const at::Tensor& mask, const at::Tensor& anchor, const MaskedAdamOptions& options) {
  constexpr const char* op = "masked_adam_step_";
  const StepOperands s = check_step(op, param, grad, exp_avg, exp_avg_sq, mask, anchor, options);
  const int64_t n = param.numel();
  if (n == 0) return;
  if (param.is_cuda()) {
    DEN_OPS_CUDA(op, param,
                 cuda::masked_adam_step_(param, grad, exp_avg, exp_avg_sq, s.mask, at::Tensor(), cuda_step(options, s, 0.0)));
    return;
  }

  const AdamStepConsts consts = step_consts(options);
  AT_DISPATCH_FLOATING_TYPES(param.scalar_type(), "masked_adam_step_", [&] {
    const AdamPointers<scalar_t> p = pointers<scalar_t>(param, grad, exp_avg, exp_avg_sq, s);
    const AdamRegularizers<scalar_t> k = regularizers<scalar_t>(options);
    at::parallel_for(0, n, detail::kElementGrain, [&](int64_t begin, int64_t end) {
      adam_range_any(p, k, consts, s.use_drift, begin, end);
    });
  });
}

void reset_momentum_of_zero_rows_(const at::Tensor& param, at::Tensor& exp_avg, const at::Tensor& group_rows) {
  TORCH_CHECK(param.dim() == 2 && exp_avg.sizes() == param.sizes(),
              "reset_momentum_of_zero_rows_: exp_avg must have the shape of 2-D param, got ", exp_avg.sizes(),
              " and ", param.sizes());
  TORCH_CHECK(group_rows.dim() == 1 && group_rows.size(0) == param.size(0),
              "reset_momentum_of_zero_rows_: group_rows must be [", param.size(0), "], got ", group_rows.sizes());
  const at::Tensor zero_rows = param.ne(0).any(1).logical_not().logical_and(group_rows.ne(0));
  exp_avg.masked_fill_(zero_rows.unsqueeze(1), 0);
}

void masked_adam_group_step_(at::Tensor& param, const at::Tensor& grad, at::Tensor& exp_avg, at::Tensor& exp_avg_sq,
                             const at::Tensor& mask, const at::Tensor& anchor, const at::Tensor& group_rows,
                             const MaskedAdamOptions& options) {
  constexpr const char* op = "masked_adam_group_step_";
  if (!group_rows.defined()) {
    masked_adam_step_(param, grad, exp_avg, exp_avg_sq, mask, anchor, options);
    return;
  }
  const StepOperands s = check_step(op, param, grad, exp_avg, exp_avg_sq, mask, anchor, options);
  TORCH_CHECK(param.dim() == 2, op, ": param must be 2-D [rows, cols] when group_rows is given, got shape ",
              param.sizes());
  const int64_t rows = param.size(0);
  const int64_t cols = param.size(1);
  const at::Tensor g = detail::checked_mask(group_rows, {rows}, param.device(), op, "group_rows");
  if (rows == 0 || cols == 0) return;
  if (param.is_cuda()) {
    DEN_OPS_CUDA(op, param,
                 cuda::masked_adam_step_(param, grad, exp_avg, exp_avg_sq, s.mask, g,
                                         cuda_step(options, s, options.group_threshold)));
    return;
  }

  // NOTE: [fused group step] Parallel over rows: each row gets the element-wise step (the same
  // vectorized loop as masked_adam_step_) and, if flagged, the group prox right after, while the row
  // is still in L1/L2 cache, instead of a second sweep over the whole tensor.
  const AdamStepConsts consts = step_consts(options);
  const uint8_t* gp = detail::mask_data(g);
  const double group_threshold = options.group_threshold;
  const int64_t grain = std::max<int64_t>(1, detail::kElementGrain / cols);
  AT_DISPATCH_FLOATING_TYPES(param.scalar_type(), "masked_adam_group_step_", [&] {
    const AdamPointers<scalar_t> p = pointers<scalar_t>(param, grad, exp_avg, exp_avg_sq, s);
    const AdamRegularizers<scalar_t> k = regularizers<scalar_t>(options);
    at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        adam_range_any(p, k, consts, s.use_drift, r * cols, (r + 1) * cols);
        if (gp[r]) detail::group_prox_row(p.w + r * cols, cols, group_threshold);
      }
    });
  });
}

}  // namespace den::ops
