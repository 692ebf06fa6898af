#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace den::engine {

/// Sets the threads used for training and prediction: the matrix products (OpenBLAS) get
/// `threads` (0 = all hardware threads) and ATen's element-wise ops run on the calling thread.
/// See NOTE: [threads] in engine/threads.cpp.
void configure_threads(int threads);

/// Keeps freed buffers in the heap (glibc mallopt) rather than returning them to the kernel, so
/// the activation-sized buffers that training allocates and frees every step do not fault in
/// afresh on the next one. Page faults are costly on the sandboxed 2-core machine (measured for
/// `den run`: 3.6 s -> 3.2 s for 600 steps). A process-wide setting: executables call it at start.
void keep_freed_buffers_in_heap();

/// While in scope, OpenBLAS runs on one thread if the product `a @ b` (`[rows, inner] x [inner,
/// cols]`, CPU) is narrow or small: NOTE: [threads]. The engine's products take one each.
/// OpenBLAS's thread count is process-wide, so engines training in parallel threads may see each
/// other's setting (a matter of speed only).
class ProductThreads {
 public:
  ProductThreads(const at::Tensor& a, const at::Tensor& b);
  ~ProductThreads();
  ProductThreads(const ProductThreads&) = delete;
  ProductThreads& operator=(const ProductThreads&) = delete;

  /// Whether a product of output `[rows, cols]` over `inner` runs on one thread.
  static bool single_threaded(int64_t rows, int64_t inner, int64_t cols);

 private:
  int restore_ = 0;  // OpenBLAS's thread count to put back; 0 = unchanged
};

}  // namespace den::engine
