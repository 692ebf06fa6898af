#pragma once

// Argument checks of the at::Tensor entry points in cuda/torch_ops.h. The entry points are public, so
// they check everything the raw kernels read (sizes, element sizes, dtypes, layout, one device) before
// taking a pointer, and raise c10 errors like the rest of LibTorch. Nothing here needs CUDA: the
// checks compare against a reference tensor's device, so tests/cuda runs them on CPU tensors.

#include <ATen/ATen.h>

#include <cstdint>
#include <exception>
#include <stdexcept>

namespace den::cuda::detail {

/// `t` is defined, contiguous and on `ref`'s device, with `ref`'s dtype and number of elements.
void check_like(const at::Tensor& t, const at::Tensor& ref, const char* op, const char* name);

/// `mask` is undefined (no mask), or a contiguous one-byte tensor (uint8 or bool) on `ref`'s device
/// with exactly `numel` elements.
void check_byte_mask(const at::Tensor& mask, int64_t numel, const at::Tensor& ref, const char* op, const char* name);

/// Runs `launch` (a call of a raw entry point of cuda/kernels.h) and rethrows its errors as c10
/// errors that keep the message: std::invalid_argument as c10::ValueError, any other std::exception
/// as c10::Error.
template <typename Launch>
void launch_with_c10_errors(const char* op, Launch&& launch) {
  try {
    launch();
  } catch (const c10::Error&) {
    throw;
  } catch (const std::invalid_argument& e) {
    TORCH_CHECK_VALUE(false, op, ": ", e.what());
  } catch (const std::exception& e) {
    TORCH_CHECK(false, op, ": ", e.what());
  }
}

}  // namespace den::cuda::detail
