#include "data/normalize.h"

namespace den::data {

Normalization parse_normalization(const std::string& name) {
  if (name == "none") return Normalization::None;
  if (name == "minmax") return Normalization::MinMax;
  if (name == "standardize") return Normalization::Standardize;
  throw std::invalid_argument("--normalize '" + name + "' is not one of none, minmax, standardize");
}

FeatureScaling normalize_(Dataset& train, Dataset& test, Normalization mode) {
  if (mode == Normalization::None) return {};
  if (!train.features.defined() || train.features.dim() != 2 || train.size() == 0) {
    throw DataError("normalize: the training set holds no samples to take statistics from");
  }
  const bool has_test = test.features.defined() && test.features.numel() > 0;
  if (has_test && (test.features.dim() != 2 || test.features.size(1) != train.dim())) {
    throw DataError("normalize: test features have " + std::to_string(test.features.size(-1)) +
                    " columns but training features have " + std::to_string(train.dim()));
  }

  // x' = (x - shift) * scale per feature; a zero scale sends constant features to 0.
  // amin/amax rather than min(0)/max(0): no argmin indices, about 10x faster.
  const at::Tensor lo = at::amin(train.features, 0);
  const at::Tensor hi = at::amax(train.features, 0);
  at::Tensor shift = lo;
  at::Tensor spread = hi - lo;
  if (mode == Normalization::Standardize) {
    auto [std_dev, mean] = at::std_mean(train.features, at::IntArrayRef{0}, /*unbiased=*/false);
    shift = mean;
    spread = std_dev;
  }
  // Constant is decided by max == min: a rounded mean can give a constant column a tiny nonzero std.
  const at::Tensor scale = at::where(hi > lo, spread.reciprocal(), at::zeros_like(spread));

  // A new tensor per set rather than editing in place: a Dataset copy shares storage, and the
  // caller's other copies must not change under it. One allocation each, then in-place scaling.
  const FeatureScaling scaling{shift.contiguous(), scale.contiguous()};
  train.features = apply_scaling(train.features, scaling);
  if (has_test) test.features = apply_scaling(test.features, scaling);
  return scaling;
}

at::Tensor apply_scaling(const at::Tensor& x, const FeatureScaling& scaling) {
  if (!scaling.shift.defined()) return x;
  if (x.dim() != 2 || x.size(1) != scaling.shift.numel()) {
    throw DataError("normalize: samples have " + std::to_string(x.size(-1)) + " features but the statistics " +
                    std::to_string(scaling.shift.numel()));
  }
  return (x - scaling.shift).mul_(scaling.scale);
}

}  // namespace den::data
