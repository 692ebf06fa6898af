#include "engine/evaluation/metrics.h"

#include <gtest/gtest.h>

#include <cmath>

namespace den::engine {

TEST(Metrics, AccuracyCountsArgmaxMatches) {
  const at::Tensor scores = at::tensor({0.9f, 0.1f, 0.2f, 0.8f, 0.6f, 0.4f}).view({3, 2});
  EXPECT_DOUBLE_EQ(accuracy(scores, at::tensor({0L, 1L, 1L})), 2.0 / 3.0);
}

TEST(Metrics, BinaryAurocMatchesHandComputedPairs) {
  // Positives {0.8, 0.4}, negatives {0.5, 0.4, 0.1}: pairs won 1+1+1 and 0+0.5+1 of 6 -> 4.5 / 6.
  const at::Tensor scores = at::tensor({0.8f, 0.4f, 0.5f, 0.4f, 0.1f});
  const at::Tensor positive = at::tensor({1, 1, 0, 0, 0}).to(at::kBool);
  EXPECT_NEAR(binary_auroc(scores, positive), 4.5 / 6.0, 1e-12);
  EXPECT_TRUE(std::isnan(binary_auroc(scores, at::ones({5}, at::kBool))));
}

TEST(Metrics, MeanAurocAveragesOneVsRest) {
  // Perfectly ranked three-class scores give 1 for every class; reversed ranking gives 0.
  const at::Tensor labels = at::tensor({0L, 1L, 2L});
  EXPECT_DOUBLE_EQ(mean_auroc(at::eye(3), labels), 1.0);
  EXPECT_DOUBLE_EQ(mean_auroc(at::ones({3, 3}) - at::eye(3), labels), 0.0);
}

TEST(Metrics, BackwardTransferAveragesFinalMinusJustLearned) {
  const std::vector<std::vector<double>> r = {{0.9}, {0.8, 0.95}, {0.7, 0.9, 0.99}};
  EXPECT_NEAR(backward_transfer(r), ((0.7 - 0.9) + (0.9 - 0.95)) / 2.0, 1e-12);
  EXPECT_DOUBLE_EQ(backward_transfer({{0.5}}), 0.0);
}

}  // namespace den::engine
