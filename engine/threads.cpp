#include "engine/threads.h"

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
void configure_threads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(1);
  using SetThreads = void (*)(int);
  if (auto* openblas = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    openblas(threads);
  }
}

void keep_freed_buffers_in_heap() {
  // glibc caps the mmap threshold at 32 MiB: larger blocks still come from mmap.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

}  // namespace den::engine
