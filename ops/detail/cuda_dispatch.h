#pragma once

// Device dispatch of the ops (internal): CUDA tensors go to the at::Tensor glue of cuda/ when den was
// built with it (DEN_WITH_CUDA_TORCH: LibTorch with CUDA and DEN_CUDA not OFF), else they are refused
// with a message saying why. Everything else runs the CPU loops of ops/.

#include <ATen/ATen.h>

#if defined(DEN_WITH_CUDA_TORCH)
#include "cuda/torch_ops.h"
#endif

namespace den::ops::detail {

/// Whether this build sends CUDA tensors to the CUDA kernels.
#if defined(DEN_WITH_CUDA_TORCH)
constexpr bool kCudaDispatch = true;
#else
constexpr bool kCudaDispatch = false;
#endif

/// Raises the error for a CUDA tensor in a build without the CUDA glue.
inline void fail_no_cuda(const char* op, const at::Tensor& t) {
#if defined(DEN_WITH_CUDA_KERNELS)
  constexpr const char* kernels = "the CUDA kernels were compiled, but LibTorch has no CUDA";
#else
  constexpr const char* kernels = "the CUDA kernels were not compiled (DEN_CUDA=OFF or no nvcc)";
#endif
  TORCH_CHECK(false, op, ": got a tensor on ", t.device(), ", but den was built without CUDA support (", kernels,
              "); move the tensors to the CPU, or rebuild with a CUDA LibTorch and DEN_CUDA=ON (docs/cuda.md)");
}

}  // namespace den::ops::detail

/// Runs `call` (a statement using den::cuda::*) in builds with CUDA dispatch, else raises the
/// no-CUDA error for tensor `t`.
#if defined(DEN_WITH_CUDA_TORCH)
#define DEN_OPS_CUDA(op, t, call) call
#else
#define DEN_OPS_CUDA(op, t, call) ::den::ops::detail::fail_no_cuda(op, t)
#endif
