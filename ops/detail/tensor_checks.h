#pragma once

// Entry-point checks shared by the ops (internal; not part of the public API).

#include <ATen/ATen.h>

#include <cmath>
#include <cstdint>

namespace den::ops::detail {

/// Elements per task for element-wise loops, and rows per task for row loops.
constexpr int64_t kElementGrain = 2048;
constexpr int64_t kRowGrain = 16;

/// A float32/float64 tensor on the CPU or a CUDA device (the devices the ops dispatch to).
inline void check_float(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK(t.defined(), op, ": ", name, " is undefined");
  TORCH_CHECK(t.device().is_cpu() || t.device().is_cuda(), op, ": ", name, " must be a CPU or CUDA tensor, got device ",
              t.device());
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, op, ": ", name,
              " must be float32 or float64, got ", t.scalar_type());
}

/// A float32/float64 CPU tensor (for the CPU-only ops).
inline void check_float_cpu(const at::Tensor& t, const char* op, const char* name) {
  check_float(t, op, name);
  TORCH_CHECK(t.device().is_cpu(), op, ": ", name, " must be a CPU tensor, got device ", t.device());
}

/// A tensor written in place: besides float it must be contiguous, since a silent copy would leave
/// the caller's tensor unchanged.
inline void check_inplace_target(const at::Tensor& t, const char* op, const char* name) {
  check_float(t, op, name);
  TORCH_CHECK(t.is_contiguous(), op, ": ", name, " must be contiguous (it is updated in place), got strides ",
              t.strides());
}

/// A second float operand with the reference tensor's shape, dtype and device.
inline void check_same_as(const at::Tensor& t, const at::Tensor& ref, const char* op, const char* name,
                          const char* ref_name) {
  check_float(t, op, name);
  TORCH_CHECK(t.sizes() == ref.sizes(), op, ": ", name, " has shape ", t.sizes(), " but ", ref_name, " has shape ",
              ref.sizes());
  TORCH_CHECK(t.scalar_type() == ref.scalar_type(), op, ": ", name, " has dtype ", t.scalar_type(), " but ",
              ref_name, " has dtype ", ref.scalar_type());
  TORCH_CHECK(t.device() == ref.device(), op, ": ", name, " is on ", t.device(), " but ", ref_name, " is on ",
              ref.device());
}

/// An optional uint8/bool mask of shape `sizes` on `device`. Returns a contiguous version (or undefined).
inline at::Tensor checked_mask(const at::Tensor& mask, at::IntArrayRef sizes, at::Device device, const char* op,
                               const char* name) {
  if (!mask.defined()) return mask;
  TORCH_CHECK(mask.device() == device, op, ": ", name, " must be on ", device, " like the tensor it masks, got ",
              mask.device());
  TORCH_CHECK(mask.scalar_type() == at::kByte || mask.scalar_type() == at::kBool, op, ": ", name,
              " must be uint8 or bool, got ", mask.scalar_type());
  TORCH_CHECK(mask.sizes() == sizes, op, ": ", name, " has shape ", mask.sizes(), " but expected ", sizes);
  return mask.contiguous();
}

/// An optional uint8/bool CPU mask of shape `sizes`.
inline at::Tensor checked_mask(const at::Tensor& mask, at::IntArrayRef sizes, const char* op, const char* name) {
  return checked_mask(mask, sizes, at::Device(at::kCPU), op, name);
}

/// Raw bytes of a checked mask (bool is stored as one byte 0/1), or nullptr for "all".
inline const uint8_t* mask_data(const at::Tensor& mask) {
  return mask.defined() ? static_cast<const uint8_t*>(mask.data_ptr()) : nullptr;
}

/// A finite, nonnegative hyperparameter.
inline void check_nonnegative(double value, const char* op, const char* name) {
  TORCH_CHECK(std::isfinite(value) && value >= 0.0, op, ": ", name, " must be finite and >= 0, got ", value);
}

}  // namespace den::ops::detail
