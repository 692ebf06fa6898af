#include "ops/regularizers.h"

#include <gtest/gtest.h>

#include <ATen/ATen.h>

namespace den::ops {
namespace {

// The ops accumulate in double; the ATen references are computed on float64 copies. Only the
// summation order differs, so a relative tolerance of 1e-10 is ample.
void expect_close(double actual, double expected) {
  EXPECT_NEAR(actual, expected, 1e-10 * std::max(1.0, std::abs(expected)));
}

class RegularizersTest : public ::testing::TestWithParam<at::ScalarType> {
 protected:
  void SetUp() override { at::manual_seed(3); }
  at::ScalarType dtype() const { return GetParam(); }
};

TEST_P(RegularizersTest, ElementValuesMatchAten) {
  const at::Tensor w = at::randn({120, 70}, dtype());
  const at::Tensor anchor = w + at::randn({120, 70}, dtype()) * 0.1;
  const at::Tensor wd = w.to(at::kDouble), ad = anchor.to(at::kDouble);
  expect_close(l1_value(w), wd.abs().sum().item<double>());
  expect_close(squared_l2_value(w), wd.pow(2).sum().item<double>());
  expect_close(squared_drift_value(w, anchor), (wd - ad).pow(2).sum().item<double>());

  const at::Tensor on = at::rand({120, 70}).lt(0.3);
  for (auto mask : {on, on.to(at::kByte)}) {
    expect_close(l1_value(w, mask), wd.abs().masked_select(on).sum().item<double>());
    expect_close(squared_l2_value(w, mask), wd.pow(2).masked_select(on).sum().item<double>());
    expect_close(squared_drift_value(w, anchor, mask), (wd - ad).pow(2).masked_select(on).sum().item<double>());
  }
}

TEST_P(RegularizersTest, GroupValueMatchesAten) {
  at::Tensor w = at::randn({40, 25}, dtype());
  w[3].zero_();
  const at::Tensor norms = w.to(at::kDouble).norm(2, {1});
  expect_close(group_l2_value(w), norms.sum().item<double>());
  const at::Tensor rows_on = at::rand({40}).lt(0.5);
  for (auto mask : {rows_on, rows_on.to(at::kByte)}) {
    expect_close(group_l2_value(w, mask), norms.masked_select(rows_on).sum().item<double>());
  }
}

TEST_P(RegularizersTest, EmptyAndNonContiguousInputs) {
  EXPECT_EQ(l1_value(at::zeros({0, 5}, dtype())), 0.0);
  EXPECT_EQ(group_l2_value(at::zeros({0, 5}, dtype())), 0.0);
  const at::Tensor w = at::randn({9, 14}, dtype()).t();  // read-only inputs may be views
  expect_close(l1_value(w), w.to(at::kDouble).abs().sum().item<double>());
  expect_close(group_l2_value(w), w.to(at::kDouble).norm(2, {1}).sum().item<double>());
}

INSTANTIATE_TEST_SUITE_P(Dtypes, RegularizersTest, ::testing::Values(at::kFloat, at::kDouble),
                         [](const auto& info) { return std::string(c10::toString(info.param)); });

TEST(RegularizersErrorsTest, BadInputsThrow) {
  const at::Tensor w = at::randn({4, 6});
  EXPECT_THROW(l1_value(w, at::ones({4, 5}, at::kBool)), c10::Error);
  EXPECT_THROW(squared_l2_value(w, at::ones({4, 6}, at::kInt)), c10::Error);
  EXPECT_THROW(squared_drift_value(w, at::randn({4, 6}, at::kDouble)), c10::Error);
  EXPECT_THROW(squared_drift_value(w, at::randn({4, 5})), c10::Error);
  EXPECT_THROW(group_l2_value(at::randn({6})), c10::Error);
  EXPECT_THROW(group_l2_value(w, at::ones({6}, at::kBool)), c10::Error);
  EXPECT_THROW(l1_value(at::ones({3}, at::kLong)), c10::Error);
  EXPECT_THROW(l1_value(at::Tensor()), c10::Error);
}

}  // namespace
}  // namespace den::ops
