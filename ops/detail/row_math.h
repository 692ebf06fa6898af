#pragma once

// Row loops shared by the CPU ops (internal).

#include "ops/elementwise_math.h"

#include <cmath>
#include <cstdint>

namespace den::ops::detail {

/// Sum of squares of one row, accumulated in double so float rows keep their precision.
template <typename T>
double row_sum_squares(const T* row, int64_t cols) {
  double acc = 0.0;
  for (int64_t j = 0; j < cols; ++j) {
    const double x = static_cast<double>(row[j]);
    acc += x * x;
  }
  return acc;
}

/// Group-lasso proximal step on one row (DEN Eq. 5, group sparsity): w_g <- max(0, 1 - t/||w_g||) * w_g.
/// The same arithmetic as the CUDA kernels: norm in double, factor applied by apply_group_factor.
template <typename T>
void group_prox_row(T* row, int64_t cols, double threshold) {
  const double factor = group_shrink_factor(std::sqrt(row_sum_squares(row, cols)), threshold);
  if (factor == 1.0) return;
  if (factor == 0.0) {
    // Write +0 explicitly: w * 0 would leave -0 for negative weights.
    for (int64_t j = 0; j < cols; ++j) row[j] = T(0);
  } else {
    const auto f = static_cast<T>(factor);
    for (int64_t j = 0; j < cols; ++j) row[j] *= f;
  }
}

}  // namespace den::ops::detail
