#include "cuda/tensor_checks.h"

namespace den::cuda::detail {

namespace {

void check_placement(const at::Tensor& t, const at::Tensor& ref, const char* op, const char* name) {
  TORCH_CHECK(t.device() == ref.device(), op, ": ", name, " must be on ", ref.device(), ", got ", t.device());
  TORCH_CHECK(t.is_contiguous(), op, ": ", name, " must be contiguous");
}

}  // namespace

void check_like(const at::Tensor& t, const at::Tensor& ref, const char* op, const char* name) {
  TORCH_CHECK(t.defined(), op, ": ", name, " is undefined");
  check_placement(t, ref, op, name);
  TORCH_CHECK(t.scalar_type() == ref.scalar_type(), op, ": ", name, " must have dtype ", ref.scalar_type(), ", got ",
              t.scalar_type());
  TORCH_CHECK(t.numel() == ref.numel(), op, ": ", name, " must have ", ref.numel(), " elements, got ", t.numel(),
              " (shape ", t.sizes(), ")");
}

void check_byte_mask(const at::Tensor& mask, int64_t numel, const at::Tensor& ref, const char* op, const char* name) {
  if (!mask.defined()) return;
  check_placement(mask, ref, op, name);
  // The kernels read one byte per element.
  TORCH_CHECK(mask.scalar_type() == at::kByte || mask.scalar_type() == at::kBool, op, ": ", name,
              " must be uint8 or bool (one byte per element), got ", mask.scalar_type());
  TORCH_CHECK(mask.numel() == numel, op, ": ", name, " must have ", numel, " elements, got ", mask.numel(),
              " (shape ", mask.sizes(), ")");
}

}  // namespace den::cuda::detail
