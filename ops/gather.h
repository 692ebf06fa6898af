#pragma once

#include <ATen/ATen.h>

namespace den::ops {

/// Rows `indices` (int64 `[B]`, on `source`'s device) of `source` (`[N, ...]`), as
/// `source.index_select(0, indices)` gives them: a new contiguous `[B, ...]` tensor. Throws on an
/// index outside [0, N). On the CPU, for a contiguous source, the copy reads a few rows ahead
/// (NOTE: [prefetched gather]); elsewhere it is index_select.
at::Tensor gather_rows(const at::Tensor& source, const at::Tensor& indices);

}  // namespace den::ops
