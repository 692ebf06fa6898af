#include "ops/prox.h"

#include "ops/detail/cuda_dispatch.h"
#include "ops/detail/row_math.h"
#include "ops/detail/tensor_checks.h"
#include "ops/elementwise_math.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <cmath>

namespace den::ops {

namespace {

template <typename T>
double row_sum_squared_diff(const T* a, const T* b, int64_t cols) {
  double acc = 0.0;
  for (int64_t j = 0; j < cols; ++j) {
    const double d = static_cast<double>(a[j]) - static_cast<double>(b[j]);
    acc += d * d;
  }
  return acc;
}

void check_2d(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK(t.dim() == 2, op, ": ", name, " must be 2-D [rows, cols], got shape ", t.sizes());
}

}  // namespace

void l1_prox_(at::Tensor& w, double threshold, const at::Tensor& mask) {
  constexpr const char* op = "l1_prox_";
  detail::check_inplace_target(w, op, "w");
  detail::check_nonnegative(threshold, op, "threshold");
  const at::Tensor m = detail::checked_mask(mask, w.sizes(), w.device(), op, "mask");
  // soft_threshold(w, 0) is the identity except that it maps -0 and NaN to 0; skip it.
  if (threshold == 0.0 || w.numel() == 0) return;
  if (w.is_cuda()) {
    DEN_OPS_CUDA(op, w, cuda::l1_prox_(w, threshold, m));
    return;
  }

  const uint8_t* mp = detail::mask_data(m);
  AT_DISPATCH_FLOATING_TYPES(w.scalar_type(), "l1_prox_", [&] {
    scalar_t* wp = w.data_ptr<scalar_t>();
    const auto t = static_cast<scalar_t>(threshold);
    at::parallel_for(0, w.numel(), detail::kElementGrain, [&](int64_t begin, int64_t end) {
      if (mp == nullptr) {
        for (int64_t i = begin; i < end; ++i) wp[i] = soft_threshold(wp[i], t);
      } else {
        // A select rather than a conditional store, so that the loop vectorizes (NOTE: [branch-free
        // masked step] in ops/adam.cpp); masked-out elements are rewritten with their own bits.
        for (int64_t i = begin; i < end; ++i) {
          const scalar_t x = wp[i];
          wp[i] = mp[i] ? soft_threshold(x, t) : x;
        }
      }
    });
  });
}

void group_prox_rows_(at::Tensor& w, double threshold, const at::Tensor& row_mask) {
  constexpr const char* op = "group_prox_rows_";
  detail::check_inplace_target(w, op, "w");
  check_2d(w, op, "w");
  detail::check_nonnegative(threshold, op, "threshold");
  const int64_t rows = w.size(0);
  const int64_t cols = w.size(1);
  const at::Tensor m = detail::checked_mask(row_mask, {rows}, w.device(), op, "row_mask");
  if (rows == 0 || cols == 0) return;
  if (w.is_cuda()) {
    DEN_OPS_CUDA(op, w, cuda::group_prox_rows_(w, threshold, m));
    return;
  }

  const uint8_t* mp = detail::mask_data(m);
  AT_DISPATCH_FLOATING_TYPES(w.scalar_type(), "group_prox_rows_", [&] {
    scalar_t* wp = w.data_ptr<scalar_t>();
    at::parallel_for(0, rows, detail::kRowGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        if (mp != nullptr && !mp[i]) continue;
        detail::group_prox_row(wp + i * cols, cols, threshold);
      }
    });
  });
}

at::Tensor drift_row_norms(const at::Tensor& w, const at::Tensor& w_prev) {
  constexpr const char* op = "drift_row_norms";
  detail::check_float(w, op, "w");
  check_2d(w, op, "w");
  detail::check_same_as(w_prev, w, op, "w_prev", "w");
  const at::Tensor a = w.contiguous();
  const at::Tensor b = w_prev.contiguous();
  if (a.is_cuda()) {
    at::Tensor out;
    DEN_OPS_CUDA(op, a, out = cuda::row_norms(a, b));
    return out;
  }
  const int64_t rows = a.size(0);
  const int64_t cols = a.size(1);
  at::Tensor out = at::empty({rows}, a.options());

  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "drift_row_norms", [&] {
    const scalar_t* ap = a.data_ptr<scalar_t>();
    const scalar_t* bp = b.data_ptr<scalar_t>();
    scalar_t* op_ = out.data_ptr<scalar_t>();
    at::parallel_for(0, rows, detail::kRowGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        // rho_i = ||w_i^t - w_i^{t-1}||_2, DEN's split criterion (network split/duplication).
        op_[i] = static_cast<scalar_t>(std::sqrt(row_sum_squared_diff(ap + i * cols, bp + i * cols, cols)));
      }
    });
  });
  return out;
}

at::Tensor row_norms(const at::Tensor& w) {
  constexpr const char* op = "row_norms";
  detail::check_float(w, op, "w");
  check_2d(w, op, "w");
  const at::Tensor a = w.contiguous();
  if (a.is_cuda()) {
    at::Tensor out;
    DEN_OPS_CUDA(op, a, out = cuda::row_norms(a, at::Tensor()));
    return out;
  }
  const int64_t rows = a.size(0);
  const int64_t cols = a.size(1);
  at::Tensor out = at::empty({rows}, a.options());

  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "row_norms", [&] {
    const scalar_t* ap = a.data_ptr<scalar_t>();
    scalar_t* op_ = out.data_ptr<scalar_t>();
    at::parallel_for(0, rows, detail::kRowGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        op_[i] = static_cast<scalar_t>(std::sqrt(detail::row_sum_squares(ap + i * cols, cols)));
      }
    });
  });
  return out;
}

}  // namespace den::ops
