#include "data/normalize.h"

#include <gtest/gtest.h>

#include <cmath>

namespace den::data {
namespace {

Dataset make(const std::vector<float>& values, int64_t cols) {
  Dataset ds;
  const auto rows = static_cast<int64_t>(values.size()) / cols;
  ds.features = at::tensor(values).view({rows, cols}).clone();
  ds.labels = at::zeros({rows}, at::kLong);
  ds.num_classes = 1;
  ds.sample_shape = {cols};
  return ds;
}

TEST(DataNormalize, ParsesNames) {
  EXPECT_EQ(parse_normalization("none"), Normalization::None);
  EXPECT_EQ(parse_normalization("minmax"), Normalization::MinMax);
  EXPECT_EQ(parse_normalization("standardize"), Normalization::Standardize);
  EXPECT_THROW(parse_normalization("zscore"), std::invalid_argument);
}

TEST(DataNormalize, NoneKeepsValues) {
  Dataset train = make({1, 2, 3, 4}, 2);
  Dataset test = make({5, 6}, 2);
  normalize_(train, test, Normalization::None);
  EXPECT_TRUE(at::equal(train.features, at::tensor({1.0f, 2.0f, 3.0f, 4.0f}).view({2, 2})));
  EXPECT_TRUE(at::equal(test.features, at::tensor({5.0f, 6.0f}).view({1, 2})));
}

TEST(DataNormalize, MinMaxUsesTrainingStatisticsOnly) {
  // Column 0 spans [0, 4] in training; the test value 6 must map to 1.5, not to 1.
  Dataset train = make({0, 10, 2, 20, 4, 30}, 2);
  Dataset test = make({6, 0}, 2);
  normalize_(train, test, Normalization::MinMax);
  EXPECT_TRUE(at::allclose(train.features, at::tensor({0.0f, 0.0f, 0.5f, 0.5f, 1.0f, 1.0f}).view({3, 2}), 1e-6, 1e-6));
  EXPECT_TRUE(at::allclose(test.features, at::tensor({1.5f, -0.5f}).view({1, 2}), 1e-6, 1e-6));
}

TEST(DataNormalize, StandardizeUsesTrainingStatisticsOnly) {
  Dataset train = make({1, 0, 3, 0, 5, 6}, 2);
  Dataset test = make({100, -3}, 2);
  normalize_(train, test, Normalization::Standardize);
  const at::Tensor mean = train.features.mean(0);
  const at::Tensor sd = train.features.std(0, /*unbiased=*/false);
  EXPECT_TRUE(at::allclose(mean, at::zeros({2}), 1e-5, 1e-5));
  EXPECT_TRUE(at::allclose(sd, at::ones({2}), 1e-5, 1e-5));
  // Training column 0 has mean 3 and population std sqrt(8/3); column 1 mean 2, std sqrt(8).
  const float expected0 = (100.0f - 3.0f) / std::sqrt(8.0f / 3.0f);
  const float expected1 = (-3.0f - 2.0f) / std::sqrt(8.0f);
  EXPECT_NEAR(test.features[0][0].item<float>(), expected0, 1e-3);
  EXPECT_NEAR(test.features[0][1].item<float>(), expected1, 1e-5);
}

TEST(DataNormalize, ConstantFeaturesMapToZero) {
  for (Normalization mode : {Normalization::MinMax, Normalization::Standardize}) {
    // 0.1 is not exact in float, so a naive mean could leave a tiny nonzero std.
    Dataset train = make({0.1f, 1, 0.1f, 2, 0.1f, 3}, 2);
    Dataset test = make({7, 2}, 2);
    normalize_(train, test, mode);
    EXPECT_TRUE(at::equal(train.features.select(1, 0), at::zeros({3})));
    EXPECT_EQ(test.features[0][0].item<float>(), 0.0f);
  }
}

TEST(DataNormalize, LeavesSharedCopiesAlone) {
  Dataset train = make({0, 2, 4}, 1);
  const Dataset original = train;  // shares the tensor
  Dataset test = make({1}, 1);
  normalize_(train, test, Normalization::MinMax);
  EXPECT_TRUE(at::equal(original.features, at::tensor({0.0f, 2.0f, 4.0f}).view({3, 1})));
}

TEST(DataNormalize, RejectsMismatchedWidths) {
  Dataset train = make({0, 2, 4, 6}, 2);
  Dataset test = make({1, 2, 3}, 3);
  EXPECT_THROW(normalize_(train, test, Normalization::MinMax), DataError);
}

TEST(DataNormalize, ApplyScalingRepeatsTheTrainingStatistics) {
  Dataset train = make({0, 10, 2, 20, 4, 40}, 2);
  Dataset test = make({1, 30}, 2);
  const at::Tensor raw = test.features.clone();
  const FeatureScaling scaling = normalize_(train, test, Normalization::Standardize);
  EXPECT_TRUE(at::allclose(apply_scaling(raw, scaling), test.features));
  EXPECT_TRUE(at::equal(apply_scaling(raw, FeatureScaling{}), raw));  // no normalization
  EXPECT_THROW(apply_scaling(at::zeros({1, 3}), scaling), DataError);
}

}  // namespace
}  // namespace den::data
