#include "ops/gather.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace den::ops {

// NOTE: [prefetched gather] Every training step copies its batch's rows out of the task's samples
// (256 rows of 784 floats out of 12,800 or more, most of them not in any cache). index_select copies
// one row at a time and waits for each row's memory in turn. Here the cache lines of the row
// kPrefetchRows ahead are requested while the current row is copied, so several rows are in
// flight at once. With 8 MB streamed between calls (as a step's optimizer does), 256 x 784 floats
// took 36-38 us against 60-67 us for index_select and 52-54 us for a plain row-by-row memcpy.
namespace {

constexpr int64_t kPrefetchRows = 4;
constexpr int64_t kCacheLine = 64;

void prefetch_row(const char* row, int64_t bytes) {
  for (int64_t offset = 0; offset < bytes; offset += kCacheLine) __builtin_prefetch(row + offset);
}

}  // namespace

at::Tensor gather_rows(const at::Tensor& source, const at::Tensor& indices) {
  TORCH_CHECK(source.defined() && source.dim() >= 1, "gather_rows: source must have at least one dimension");
  TORCH_CHECK(indices.dim() == 1 && indices.scalar_type() == at::kLong,
              "gather_rows: indices must be a 1-D int64 tensor, got ", indices.scalar_type(), " of shape ",
              indices.sizes());
  if (!source.is_cpu() || !source.is_contiguous() || !indices.is_cpu()) return source.index_select(0, indices);

  const int64_t rows = source.size(0), count = indices.size(0);
  const at::Tensor positions = indices.contiguous();
  const int64_t* index = positions.data_ptr<int64_t>();
  for (int64_t i = 0; i < count; ++i) {
    TORCH_CHECK(index[i] >= 0 && index[i] < rows, "gather_rows: index ", index[i], " out of range for ", rows,
                " rows");
  }
  std::vector<int64_t> sizes = source.sizes().vec();
  sizes[0] = count;
  at::Tensor out = at::empty(sizes, source.options());
  const int64_t row_bytes = source.numel() == 0 ? 0 : source.stride(0) * static_cast<int64_t>(source.element_size());
  if (row_bytes == 0) return out;
  const char* from = static_cast<const char*>(source.data_ptr());
  char* to = static_cast<char*>(out.data_ptr());
  for (int64_t i = 0; i < std::min(kPrefetchRows, count); ++i) prefetch_row(from + index[i] * row_bytes, row_bytes);
  for (int64_t i = 0; i < count; ++i) {
    if (i + kPrefetchRows < count) prefetch_row(from + index[i + kPrefetchRows] * row_bytes, row_bytes);
    std::memcpy(to + i * row_bytes, from + index[i] * row_bytes, static_cast<size_t>(row_bytes));
  }
  return out;
}

}  // namespace den::ops
