#include "engine/den/masks.h"

#include "ops/elementwise_math.h"

namespace den::engine {

at::Tensor selector(int64_t n, const std::vector<int64_t>& positions) {
  at::Tensor sel = at::zeros({n}, at::kBool);
  if (!positions.empty()) sel.index_fill_(0, at::tensor(positions, at::kLong), true);
  return sel;
}

at::Tensor range_selector(int64_t n, int64_t begin, int64_t end) {
  at::Tensor sel = at::zeros({n}, at::kBool);
  if (end > begin) sel.narrow(0, begin, end - begin).fill_(true);
  return sel;
}

at::Tensor with_bias(const at::Tensor& columns, bool bias) {
  return at::cat({columns, at::full({1}, bias, at::kBool)});
}

at::Tensor unit_columns_with_bias(const at::Tensor& units, int64_t block, bool bias) {
  return with_bias(block == 1 ? units : units.repeat_interleave(block), bias);
}

at::Tensor outer_and(const at::Tensor& rows, const at::Tensor& cols) {
  return rows.unsqueeze(1).logical_and(cols.unsqueeze(0));
}

at::Tensor outer_or(const at::Tensor& rows, const at::Tensor& cols) {
  return rows.unsqueeze(1).logical_or(cols.unsqueeze(0));
}

at::Tensor element_mask(const at::Tensor& trainable, const at::Tensor& anchored) {
  at::Tensor mask = trainable.to(at::kByte).mul_(ops::kTrainable);
  if (anchored.defined()) mask.bitwise_or_(anchored.logical_and(trainable).to(at::kByte).mul_(ops::kAnchored));
  return mask.contiguous();
}

at::Tensor pad_augmented(const at::Tensor& previous, int64_t rows, int64_t cols_plus_bias) {
  const int64_t old_rows = previous.size(0);
  const int64_t old_cols = previous.size(1) - 1;
  at::Tensor padded = at::zeros({rows, cols_plus_bias}, previous.options());
  padded.narrow(0, 0, old_rows).narrow(1, 0, old_cols).copy_(previous.narrow(1, 0, old_cols));
  padded.narrow(0, 0, old_rows).select(1, cols_plus_bias - 1).copy_(previous.select(1, old_cols));
  return padded;
}

}  // namespace den::engine
