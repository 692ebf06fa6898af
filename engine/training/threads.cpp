#include "engine/training/threads.h"

#include <ATen/Parallel.h>

#include <dlfcn.h>
#include <malloc.h>

#include <algorithm>
#include <thread>

namespace den::engine {

// NOTE: [threads] OpenBLAS keeps its own thread pool whose idle workers spin (sched_yield) for a
// while after every sgemm, and OpenMP workers spin too. Running both pools at `threads` puts up to
// 2x threads on the cores and the spinners steal time from the matrix products (measured on 2
// cores: 9.5 s versus 6.3 s for 300 steps). The products are where the time goes, so OpenBLAS gets
// all `threads` and ATen's element-wise ops (memory-bound, small at these layer sizes) run on the
// calling thread. OpenBLAS is found at run time, so another BLAS simply keeps its own settings.
//
// A narrow or small product is faster on one thread: handing half of it to the second thread
// costs more than it saves. Measured on 2 cores (at::mm and the engine's addmm, microseconds,
// 1 thread / 2 threads): 256x784 by 784x10 67 / 133, 64x784 by 784x10 20 / 44, 256x312 by 312x20
// 42 / 61, 256x784 by 784x40 168 / 198, 4x784 by 784x312 64 / 95, the weight gradient 10x256 by
// 256x784 91 / 102. But a product narrow in its rows only gains from the second thread once it is
// not small: 40x256 by 256x784 183 / 158, 16x784 by 784x312 120 / 95, 256x128 by 128x80 52 / 55
// with its gradient 54 / 44, and 256x784 by 784x312 1299 / 828. Expansion's products with the k
// new units and the heads' are narrow; a single sample's products (GEMV) run alike on both.
namespace {

struct OpenBlas {
  using SetThreads = void (*)(int);
  using GetThreads = int (*)();
  SetThreads set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  GetThreads get = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
};

const OpenBlas& openblas() {
  static const OpenBlas functions;
  return functions;
}

}  // namespace

void configure_threads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(1);
  if (openblas().set) openblas().set(threads);
}

bool ProductThreads::single_threaded(int64_t rows, int64_t inner, int64_t cols) {
  constexpr int64_t kNarrowCols = 48, kSmallMultiplyAdds = 2'500'000;
  return cols <= kNarrowCols || rows * inner * cols < kSmallMultiplyAdds;
}

ProductThreads::ProductThreads(const at::Tensor& a, const at::Tensor& b) {
  if (!a.is_cpu() || !single_threaded(a.size(0), a.size(1), b.size(1))) return;
  const OpenBlas& blas = openblas();
  if (!blas.set || !blas.get) return;
  const int current = blas.get();
  if (current <= 1) return;
  blas.set(1);
  restore_ = current;
}

ProductThreads::~ProductThreads() {
  if (restore_ > 0) openblas().set(restore_);
}

void keep_freed_buffers_in_heap() {
  // glibc caps the mmap threshold at 32 MiB: larger blocks still come from mmap.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

}  // namespace den::engine
