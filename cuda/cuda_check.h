#pragma once

// Error checking for CUDA runtime calls and kernel launches. Needs only the CUDA toolkit.

#include <cuda_runtime_api.h>

namespace den::cuda::detail {

/// Throws std::runtime_error "<file>:<line>: <expr> failed: <cudaGetErrorName>: <message>" when
/// `status` is not cudaSuccess. Clears the sticky per-thread error of a failed launch.
void check_cuda(cudaError_t status, const char* expr, const char* file, int line);

}  // namespace den::cuda::detail

/// Checks the cudaError_t of a CUDA runtime call, with file and line.
#define DEN_CUDA_CHECK(expr) ::den::cuda::detail::check_cuda((expr), #expr, __FILE__, __LINE__)

/// Checks the kernel launch just made on this thread (bad configuration, no device, ...).
#define DEN_CUDA_CHECK_LAUNCH() ::den::cuda::detail::check_cuda(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)
