#pragma once

#include <ATen/ATen.h>

#include <vector>

namespace den::engine {

/// Fraction of rows of `scores` `[N, c]` whose argmax equals `labels` `[N]`.
double accuracy(const at::Tensor& scores, const at::Tensor& labels);

/// Area under the ROC curve of `scores` `[N]` for binary `positive` `[N]` (bool), with ties
/// counted as half (Mann-Whitney U). NaN when one class is absent.
double binary_auroc(const at::Tensor& scores, const at::Tensor& positive);

/// Mean one-vs-rest AUROC over the outputs of a head (what the DEN paper reports): column j of
/// `scores` `[N, c]` against labels == j, averaged over the classes present with both outcomes.
double mean_auroc(const at::Tensor& scores, const at::Tensor& labels);

/// Backward transfer (Lopez-Paz & Ranzato 2017): mean over tasks j < T of R[T][j] - R[j][j], where
/// R[i][j] is the metric of task j evaluated after task i (0-based). 0 with fewer than two tasks.
double backward_transfer(const std::vector<std::vector<double>>& matrix);

}  // namespace den::engine
