#include "engine/evaluation/metrics.h"

#include <cmath>
#include <limits>

namespace den::engine {

double accuracy(const at::Tensor& scores, const at::Tensor& labels) {
  if (labels.numel() == 0) return std::numeric_limits<double>::quiet_NaN();
  return scores.argmax(1).eq(labels).to(at::kDouble).mean().item<double>();
}

double binary_auroc(const at::Tensor& scores, const at::Tensor& positive) {
  const int64_t n = scores.numel();
  const int64_t n_pos = positive.sum().item<int64_t>();
  const int64_t n_neg = n - n_pos;
  if (n_pos == 0 || n_neg == 0) return std::numeric_limits<double>::quiet_NaN();

  // Rank-sum with average ranks for ties: AUC = (sum of positive ranks - n_pos(n_pos+1)/2) / (n_pos n_neg).
  const at::Tensor sorted_idx = std::get<1>(scores.to(at::kDouble).contiguous().sort(/*stable=*/true, 0, false));
  const at::Tensor sorted_scores = scores.to(at::kDouble).index_select(0, sorted_idx).contiguous();
  const at::Tensor sorted_pos = positive.index_select(0, sorted_idx).to(at::kBool).contiguous();
  const double* s = sorted_scores.data_ptr<double>();
  const bool* p = sorted_pos.data_ptr<bool>();
  double positive_rank_sum = 0.0;
  for (int64_t i = 0; i < n;) {
    int64_t j = i;
    while (j + 1 < n && s[j + 1] == s[i]) ++j;
    const double avg_rank = 0.5 * static_cast<double>(i + j) + 1.0;
    for (int64_t k = i; k <= j; ++k) {
      if (p[k]) positive_rank_sum += avg_rank;
    }
    i = j + 1;
  }
  const double np = static_cast<double>(n_pos);
  return (positive_rank_sum - np * (np + 1.0) / 2.0) / (np * static_cast<double>(n_neg));
}

double mean_auroc(const at::Tensor& scores, const at::Tensor& labels) {
  double total = 0.0;
  int64_t counted = 0;
  for (int64_t c = 0; c < scores.size(1); ++c) {
    const double auc = binary_auroc(scores.select(1, c), labels.eq(c));
    if (!std::isnan(auc)) {
      total += auc;
      ++counted;
    }
  }
  return counted > 0 ? total / static_cast<double>(counted) : std::numeric_limits<double>::quiet_NaN();
}

double backward_transfer(const std::vector<std::vector<double>>& matrix) {
  const size_t t = matrix.size();
  if (t < 2) return 0.0;
  double total = 0.0;
  for (size_t j = 0; j + 1 < t; ++j) total += matrix[t - 1][j] - matrix[j][j];
  return total / static_cast<double>(t - 1);
}

}  // namespace den::engine
