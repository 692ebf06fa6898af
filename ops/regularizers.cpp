#include "ops/regularizers.h"

#include "ops/detail/tensor_checks.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <cmath>

namespace den::ops {

namespace {

// NOTE: [regularizer reductions] Values are reported as double and accumulated in double whatever
// w's dtype, in one pass: a parallel_reduce over element chunks (or row chunks) summing
// term(i) for every element (row) the mask selects.
template <typename Term>
double masked_sum(int64_t n, int64_t grain, const uint8_t* mask, const Term& term) {
  if (n == 0) return 0.0;
  return at::parallel_reduce(
      0, n, grain, 0.0,
      [&](int64_t begin, int64_t end, double acc) {
        if (mask == nullptr) {
          for (int64_t i = begin; i < end; ++i) acc += term(i);
        } else {
          for (int64_t i = begin; i < end; ++i) {
            if (mask[i]) acc += term(i);
          }
        }
        return acc;
      },
      [](double a, double b) { return a + b; });
}

}  // namespace

double l1_value(const at::Tensor& w, const at::Tensor& mask) {
  constexpr const char* op = "l1_value";
  detail::check_float_cpu(w, op, "w");
  const at::Tensor m = detail::checked_mask(mask, w.sizes(), op, "mask");
  const at::Tensor a = w.contiguous();
  const uint8_t* mp = detail::mask_data(m);
  double out = 0.0;
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "l1_value", [&] {
    const scalar_t* p = a.data_ptr<scalar_t>();
    out = masked_sum(a.numel(), detail::kElementGrain, mp,
                     [p](int64_t i) { return std::abs(static_cast<double>(p[i])); });
  });
  return out;
}

double squared_l2_value(const at::Tensor& w, const at::Tensor& mask) {
  constexpr const char* op = "squared_l2_value";
  detail::check_float_cpu(w, op, "w");
  const at::Tensor m = detail::checked_mask(mask, w.sizes(), op, "mask");
  const at::Tensor a = w.contiguous();
  const uint8_t* mp = detail::mask_data(m);
  double out = 0.0;
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "squared_l2_value", [&] {
    const scalar_t* p = a.data_ptr<scalar_t>();
    out = masked_sum(a.numel(), detail::kElementGrain, mp, [p](int64_t i) {
      const double x = static_cast<double>(p[i]);
      return x * x;
    });
  });
  return out;
}

double squared_drift_value(const at::Tensor& w, const at::Tensor& anchor, const at::Tensor& mask) {
  constexpr const char* op = "squared_drift_value";
  detail::check_float_cpu(w, op, "w");
  detail::check_same_as(anchor, w, op, "anchor", "w");
  const at::Tensor m = detail::checked_mask(mask, w.sizes(), op, "mask");
  const at::Tensor a = w.contiguous();
  const at::Tensor b = anchor.contiguous();
  const uint8_t* mp = detail::mask_data(m);
  double out = 0.0;
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "squared_drift_value", [&] {
    const scalar_t* p = a.data_ptr<scalar_t>();
    const scalar_t* q = b.data_ptr<scalar_t>();
    // ||W - W^{t-1}||^2 of DEN Eq. 6.
    out = masked_sum(a.numel(), detail::kElementGrain, mp, [p, q](int64_t i) {
      const double d = static_cast<double>(p[i]) - static_cast<double>(q[i]);
      return d * d;
    });
  });
  return out;
}

double group_l2_value(const at::Tensor& w, const at::Tensor& row_mask) {
  constexpr const char* op = "group_l2_value";
  detail::check_float_cpu(w, op, "w");
  TORCH_CHECK(w.dim() == 2, op, ": w must be 2-D [rows, cols], got shape ", w.sizes());
  const int64_t rows = w.size(0);
  const int64_t cols = w.size(1);
  const at::Tensor m = detail::checked_mask(row_mask, {rows}, op, "row_mask");
  const at::Tensor a = w.contiguous();
  const uint8_t* mp = detail::mask_data(m);
  double out = 0.0;
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "group_l2_value", [&] {
    const scalar_t* p = a.data_ptr<scalar_t>();
    // sum_g ||W_g||_2 of DEN Eq. 5 (one group = one row).
    out = masked_sum(rows, detail::kRowGrain, mp, [p, cols](int64_t i) {
      const scalar_t* row = p + i * cols;
      double acc = 0.0;
      for (int64_t j = 0; j < cols; ++j) {
        const double x = static_cast<double>(row[j]);
        acc += x * x;
      }
      return std::sqrt(acc);
    });
  });
  return out;
}

}  // namespace den::ops
