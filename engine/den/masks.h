#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace den::engine {

// Builders of the element masks that tell ops::masked_adam_step_ which weights a phase may move
// (ops::kTrainable) and which are pulled toward W^{t-1} (ops::kAnchored). Built once per phase.

/// bool `[n]`, true at `positions`.
at::Tensor selector(int64_t n, const std::vector<int64_t>& positions);
/// bool `[n]`, true on the half-open range [begin, end).
at::Tensor range_selector(int64_t n, int64_t begin, int64_t end);
/// Columns selector for an augmented weight: `columns` (bool `[n_in]`) plus the bias column set to `bias`.
at::Tensor with_bias(const at::Tensor& columns, bool bias);
/// Columns selector for an augmented weight from a selector of the units below (bool `[units]`),
/// each owning `block` columns (the column map, NOTE: [augmented rows]), plus the bias column set
/// to `bias`.
at::Tensor unit_columns_with_bias(const at::Tensor& units, int64_t block, bool bias);
/// bool `[rows, cols]`: rows[i] && cols[j].
at::Tensor outer_and(const at::Tensor& rows, const at::Tensor& cols);
/// bool `[rows, cols]`: rows[i] || cols[j].
at::Tensor outer_or(const at::Tensor& rows, const at::Tensor& cols);
/// uint8 mask: kTrainable where `trainable`, plus kAnchored where `anchored` (may be undefined).
at::Tensor element_mask(const at::Tensor& trainable, const at::Tensor& anchored = {});
/// `previous` `[p, q + 1]` (augmented) placed into a zero tensor of augmented shape `[rows, cols + 1]`:
/// old rows and old unit columns keep their values, the bias goes to the new bias column.
at::Tensor pad_augmented(const at::Tensor& previous, int64_t rows, int64_t cols_plus_bias);

}  // namespace den::engine
