#include "ops/gather.h"

#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace den::ops {
namespace {

at::Tensor long_tensor(const std::vector<int64_t>& values) { return at::tensor(values, at::kLong); }

TEST(GatherRows, EqualsIndexSelectForEveryDtypeAndShape) {
  at::manual_seed(3);
  // Repeated and unordered rows, more rows than the prefetch distance, and fewer.
  const std::vector<at::Tensor> index_sets = {long_tensor({5, 0, 5, 9, 2, 7, 7, 1, 3}), long_tensor({4}),
                                              long_tensor({9, 8})};
  const std::vector<at::Tensor> sources = {at::randn({10, 13}), at::randn({10, 3, 4}, at::kDouble),
                                           at::randint(100, {10, 6}, at::kLong), at::randn({10})};
  for (const at::Tensor& source : sources) {
    for (const at::Tensor& indices : index_sets) {
      const at::Tensor rows = gather_rows(source, indices);
      EXPECT_TRUE(rows.is_contiguous());
      EXPECT_TRUE(at::equal(rows, source.index_select(0, indices))) << "dtype " << source.scalar_type();
    }
  }
}

TEST(GatherRows, ReturnsAFreshTensorThatCallersMayOverwrite) {
  const at::Tensor source = at::arange(12, at::kFloat).view({4, 3});
  at::Tensor rows = gather_rows(source, long_tensor({1, 2}));
  rows.fill_(-1.0);
  EXPECT_TRUE(at::equal(source, at::arange(12, at::kFloat).view({4, 3})));
}

TEST(GatherRows, NonContiguousSourceAndNoIndicesAreHandled) {
  const at::Tensor source = at::randn({6, 5}).t();  // [5, 6], not contiguous
  const at::Tensor indices = long_tensor({4, 0, 2});
  EXPECT_TRUE(at::equal(gather_rows(source, indices), source.index_select(0, indices)));
  const at::Tensor none = gather_rows(at::randn({6, 5}), at::empty({0}, at::kLong));
  EXPECT_EQ(none.sizes(), (std::vector<int64_t>{0, 5}));
}

TEST(GatherRows, RejectsIndicesOutOfRangeOrOfTheWrongType) {
  const at::Tensor source = at::randn({4, 3});
  EXPECT_THROW(gather_rows(source, long_tensor({0, 4})), c10::Error);
  EXPECT_THROW(gather_rows(source, long_tensor({-1})), c10::Error);
  EXPECT_THROW(gather_rows(source, at::tensor(std::vector<int32_t>{0, 1}, at::kInt)), c10::Error);
  EXPECT_THROW(gather_rows(source, long_tensor({0, 1}).view({1, 2})), c10::Error);
  EXPECT_THROW(gather_rows(at::randn({0, 3}), long_tensor({0})), c10::Error);
}

}  // namespace
}  // namespace den::ops
