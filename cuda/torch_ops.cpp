#include "cuda/torch_ops.h"

#include "cuda/kernels.h"
#include "cuda/tensor_checks.h"

#include <ATen/Dispatch.h>
// The stream and the device guard are all the glue needs: <ATen/cuda/CUDAContext.h> would also pull
// in the cuBLAS, cuSPARSE and cuSOLVER headers (tests/cuda/torch_glue_headers.cmake checks this).
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

namespace den::cuda {

namespace {

void check_cuda_target(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK(t.defined(), op, ": ", name, " is undefined");
  TORCH_CHECK(t.is_cuda(), op, ": ", name, " must be a CUDA tensor, got one on ", t.device());
  TORCH_CHECK(t.is_contiguous(), op, ": ", name, " must be contiguous");
}

const uint8_t* bytes(const at::Tensor& mask) {
  return mask.defined() ? static_cast<const uint8_t*>(mask.data_ptr()) : nullptr;
}

template <typename T>
const T* data_or_null(const at::Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

cudaStream_t current_stream() { return c10::cuda::getCurrentCUDAStream().stream(); }

}  // namespace

void l1_prox_(at::Tensor& w, double threshold, const at::Tensor& mask) {
  constexpr const char* op = "den::cuda::l1_prox_";
  check_cuda_target(w, op, "w");
  detail::check_byte_mask(mask, w.numel(), w, op, "mask");
  const c10::cuda::CUDAGuard guard(w.device());
  AT_DISPATCH_FLOATING_TYPES(w.scalar_type(), op, [&] {
    detail::launch_with_c10_errors(op, [&] {
      l1_prox<scalar_t>(w.data_ptr<scalar_t>(), bytes(mask), w.numel(), static_cast<scalar_t>(threshold),
                        current_stream());
    });
  });
}

void group_prox_rows_(at::Tensor& w, double threshold, const at::Tensor& row_mask) {
  constexpr const char* op = "den::cuda::group_prox_rows_";
  check_cuda_target(w, op, "w");
  TORCH_CHECK(w.dim() == 2, op, ": w must be 2-D, got shape ", w.sizes());
  detail::check_byte_mask(row_mask, w.size(0), w, op, "row_mask");
  const c10::cuda::CUDAGuard guard(w.device());
  AT_DISPATCH_FLOATING_TYPES(w.scalar_type(), op, [&] {
    detail::launch_with_c10_errors(op, [&] {
      group_prox_rows<scalar_t>(w.data_ptr<scalar_t>(), bytes(row_mask), w.size(0), w.size(1), threshold,
                                current_stream());
    });
  });
}

at::Tensor row_norms(const at::Tensor& w, const at::Tensor& w_prev) {
  constexpr const char* op = "den::cuda::row_norms";
  check_cuda_target(w, op, "w");
  TORCH_CHECK(w.dim() == 2, op, ": w must be 2-D, got shape ", w.sizes());
  if (w_prev.defined()) detail::check_like(w_prev, w, op, "w_prev");
  const c10::cuda::CUDAGuard guard(w.device());
  at::Tensor out = at::empty({w.size(0)}, w.options());
  AT_DISPATCH_FLOATING_TYPES(w.scalar_type(), op, [&] {
    detail::launch_with_c10_errors(op, [&] {
      row_norms<scalar_t>(out.data_ptr<scalar_t>(), w.data_ptr<scalar_t>(), data_or_null<scalar_t>(w_prev),
                          w.size(0), w.size(1), current_stream());
    });
  });
  return out;
}

void masked_adam_step_(at::Tensor& param, const at::Tensor& grad, at::Tensor& exp_avg, at::Tensor& exp_avg_sq,
                       const at::Tensor& mask, const at::Tensor& group_rows, const TensorAdamStep& step) {
  constexpr const char* op = "den::cuda::masked_adam_step_";
  check_cuda_target(param, op, "param");
  detail::check_like(grad, param, op, "grad");
  detail::check_like(exp_avg, param, op, "exp_avg");
  detail::check_like(exp_avg_sq, param, op, "exp_avg_sq");
  if (step.anchor.defined()) detail::check_like(step.anchor, param, op, "anchor");
  detail::check_byte_mask(mask, param.numel(), param, op, "mask");
  TORCH_CHECK(!group_rows.defined() || param.dim() == 2, op, ": param must be 2-D with group_rows, got shape ",
              param.sizes());
  if (group_rows.defined()) detail::check_byte_mask(group_rows, param.size(0), param, op, "group_rows");
  const c10::cuda::CUDAGuard guard(param.device());
  AT_DISPATCH_FLOATING_TYPES(param.scalar_type(), op, [&] {
    MaskedAdamArgs<scalar_t> a;
    a.w = param.data_ptr<scalar_t>();
    a.grad = grad.data_ptr<scalar_t>();
    a.exp_avg = exp_avg.data_ptr<scalar_t>();
    a.exp_avg_sq = exp_avg_sq.data_ptr<scalar_t>();
    a.anchor = data_or_null<scalar_t>(step.anchor);
    a.mask = bytes(mask);
    a.group_rows = bytes(group_rows);
    // Flat tensors are one row; with group_rows the tensor is [rows, cols].
    a.rows = group_rows.defined() ? param.size(0) : 1;
    a.cols = group_rows.defined() ? param.size(1) : param.numel();
    a.consts = step.consts;
    a.reg = {static_cast<scalar_t>(step.two_l2), static_cast<scalar_t>(step.two_drift),
             static_cast<scalar_t>(step.l1_threshold)};
    a.group_threshold = step.group_threshold;
    detail::launch_with_c10_errors(op, [&] { masked_adam_step<scalar_t>(a, current_stream()); });
  });
}

}  // namespace den::cuda
