#include "engine/training/cache_storage.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace den::engine {

TEST(CacheStorage, LargeBufferIsAWritableFloatTensorOfTheAskedSize) {
  const int64_t numel = (int64_t{3} << 20) + 5;  // 12 MiB and a little: more than one huge page
  at::Tensor buffer = allocate_large_buffer(numel, at::TensorOptions().dtype(at::kDouble));
  ASSERT_EQ(buffer.numel(), numel);
  EXPECT_EQ(buffer.scalar_type(), at::kFloat);  // the options' dtype is replaced, the device kept
  EXPECT_TRUE(buffer.device().is_cpu());
  buffer.fill_(2.0f);
  EXPECT_EQ(buffer.sum().item<double>(), 2.0 * static_cast<double>(numel));
#if defined(__linux__)
  // Aligned to a 2 MiB huge page, so that the kernel can back all of it with them (NOTE: [huge pages]).
  EXPECT_EQ(reinterpret_cast<uintptr_t>(buffer.data_ptr()) % (uintptr_t{2} << 20), 0u);
#endif
  EXPECT_EQ(allocate_large_buffer(0, at::TensorOptions()).numel(), 0);
}

TEST(CacheStorage, ReusesItsBufferAndGrowsByHalfUpToTheCap) {
  CacheStorage storage;
  const at::TensorOptions cpu;
  const at::Tensor first = storage.take(1000, 100000, cpu);
  EXPECT_EQ(first.numel(), 1500);  // half again, for the next task's slightly larger caches
  EXPECT_EQ(storage.take(1400, 100000, cpu).data_ptr(), first.data_ptr());
  EXPECT_EQ(storage.take(10000, 12000, cpu).numel(), 12000);  // capped
  EXPECT_EQ(storage.take(20000, 12000, cpu).numel(), 20000);  // never below what is asked
  CacheStorage copy = storage;  // a copy starts empty: two trainers never share storage
  EXPECT_NE(copy.take(10, 10, cpu).data_ptr(), storage.take(10, 10, cpu).data_ptr());
}

}  // namespace den::engine
