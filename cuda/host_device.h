#pragma once

/// Marks a function usable from host code and, when compiled by nvcc, from device code, so that
/// per-element maths is written once and shared by the CPU ops and the CUDA kernels.
#if defined(__CUDACC__)
#define DEN_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define DEN_HOST_DEVICE inline
#endif
