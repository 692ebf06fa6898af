#pragma once

#include "data/dataset.h"

#include <string>

namespace den::data {

/// How features are normalized before training.
enum class Normalization {
  None,         ///< keep as read (IDX is already scaled to [0, 1])
  MinMax,       ///< per feature to [0, 1] using the training set's min and max
  Standardize,  ///< per feature to zero mean, unit variance using the training set's statistics
};

/// Parses "none", "minmax" or "standardize"; throws std::invalid_argument otherwise.
Normalization parse_normalization(const std::string& name);

/// The per-feature statistics of a normalization: x' = (x - shift) * scale. Both undefined for
/// Normalization::None. Checkpoints keep them, so that new raw inputs can be fed to a trained model.
struct FeatureScaling {
  at::Tensor shift, scale;  ///< `[D]` float32
};

/// `x` `[N, D]` normalized with `scaling`'s statistics, a new tensor; `x` itself when they are
/// undefined (no normalization). Throws DataError when D differs from the statistics' width.
at::Tensor apply_scaling(const at::Tensor& x, const FeatureScaling& scaling);

/// Normalizes `train` in place and applies the same (training-set) statistics to `test`, so no
/// information leaks from the test set. Constant features map to 0. Returns the statistics.
FeatureScaling normalize_(Dataset& train, Dataset& test, Normalization mode);

}  // namespace den::data
