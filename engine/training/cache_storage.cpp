#include "engine/training/cache_storage.h"

#include <cstdlib>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace den::engine {

// NOTE: [huge pages]
// On the 2-core machine the first write to a fresh 4 KiB page costs about 12 us (the hypervisor
// traps every page): 3 ms per MiB, against 0.05 ms to write a MiB already mapped. The expansion
// phase's caches (22 MiB for a 12,800-sample task on 784-322-138) spent about 70 ms of a 0.33 s
// benchmark phase on it (perf, page-fault events). Memory advised into 2 MiB transparent huge pages
// faults once per 2 MiB: 48 MiB took 4-48 ms to touch over 9 runs, against 145-200 ms in 4 KiB
// pages (mmap, madvise, memset in a small program). The advice is only a hint: where transparent
// huge pages are off, the kernel ignores it and the buffer is an ordinary one.
at::Tensor allocate_large_buffer(int64_t numel, const at::TensorOptions& options) {
  const at::TensorOptions float_options = options.dtype(at::kFloat);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr size_t kHugePage = size_t{2} << 20;
  if (float_options.device().is_cpu() && numel > 0) {
    // Whole huge pages, aligned to one, so that the kernel can back all of it with them.
    const size_t bytes = (static_cast<size_t>(numel) * sizeof(float) + kHugePage - 1) / kHugePage * kHugePage;
    void* memory = nullptr;
    if (posix_memalign(&memory, kHugePage, bytes) != 0) throw std::bad_alloc();
    madvise(memory, bytes, MADV_HUGEPAGE);  // a hint; failure leaves ordinary pages
    return at::from_blob(memory, {numel}, [](void* p) { std::free(p); }, float_options);
  }
#endif
  return at::empty({numel}, float_options);
}

}  // namespace den::engine
