#include "ops/prox.h"

#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>

namespace den::ops {
namespace {

// Tolerances: the fused loops and the ATen references do the same per-element arithmetic, except
// that row norms are accumulated in double by the ops; float32 gets 1e-6 relative slack for that.
struct Tol {
  double rtol, atol;
};
Tol tol_for(at::ScalarType t) { return t == at::kFloat ? Tol{1e-6, 1e-7} : Tol{1e-12, 1e-14}; }

at::Tensor ref_soft_threshold(const at::Tensor& w, double t) { return w.sign() * (w.abs() - t).clamp_min(0); }

// Masked-out elements are compared exactly (bitwise equal values; no NaNs in these tests).
void expect_equal_where(const at::Tensor& a, const at::Tensor& b, const at::Tensor& where) {
  EXPECT_TRUE(at::equal(a.masked_select(where), b.masked_select(where)));
}

class ProxTest : public ::testing::TestWithParam<at::ScalarType> {
 protected:
  void SetUp() override { at::manual_seed(1234); }
  at::ScalarType dtype() const { return GetParam(); }
};

TEST_P(ProxTest, L1ProxMatchesAten) {
  at::Tensor w = at::randn({37, 53}, dtype()) * 0.1;
  const at::Tensor expected = ref_soft_threshold(w, 0.05);
  l1_prox_(w, 0.05);
  const Tol tol = tol_for(dtype());
  EXPECT_TRUE(at::allclose(w, expected, tol.rtol, tol.atol));
  EXPECT_GT(w.eq(0).sum().item<int64_t>(), 0);
}

TEST_P(ProxTest, L1ProxLargeTensorMatchesAten) {
  // Larger than one grain, so several parallel chunks are used when threads are available.
  at::Tensor w = at::randn({300, 257}, dtype());
  const at::Tensor expected = ref_soft_threshold(w, 0.3);
  l1_prox_(w, 0.3);
  const Tol tol = tol_for(dtype());
  EXPECT_TRUE(at::allclose(w, expected, tol.rtol, tol.atol));
}

TEST_P(ProxTest, L1ProxValuesAtThresholdBecomeZero) {
  at::Tensor w = at::tensor({0.5, -0.5, 0.75, -0.25, 0.0, -1.5}, dtype());
  l1_prox_(w, 0.5);
  const at::Tensor expected = at::tensor({0.0, 0.0, 0.25, 0.0, 0.0, -1.0}, dtype());
  EXPECT_TRUE(at::equal(w, expected)) << w;
}

TEST_P(ProxTest, L1ProxWithMaskLeavesMaskedOutBitIdentical) {
  for (auto mask_type : {at::kBool, at::kByte}) {
    at::Tensor w = at::randn({41, 29}, dtype()) * 0.1;
    const at::Tensor original = w.clone();
    const at::Tensor on = at::rand({41, 29}).lt(0.5);
    l1_prox_(w, 0.05, on.to(mask_type));
    const Tol tol = tol_for(dtype());
    const at::Tensor expected = at::where(on, ref_soft_threshold(original, 0.05), original);
    EXPECT_TRUE(at::allclose(w, expected, tol.rtol, tol.atol));
    expect_equal_where(w, original, on.logical_not());
  }
}

TEST_P(ProxTest, L1ProxZeroThresholdIsIdentity) {
  at::Tensor w = at::randn({10, 10}, dtype());
  const at::Tensor original = w.clone();
  l1_prox_(w, 0.0);
  EXPECT_TRUE(at::equal(w, original));
}

TEST_P(ProxTest, GroupProxRowsMatchesAten) {
  // Row 0: large norm (shrunk); row 1: norm below the threshold (zeroed); row 2: zero row;
  // row 3: norm exactly at the threshold (zeroed); rows 4..: random.
  at::Tensor w = at::randn({12, 9}, dtype());
  w[1] = w[1] * (0.1 / w[1].norm().item<double>());
  w[2].zero_();
  w[3].zero_();
  w[3][2] = -0.5;  // ||row 3|| == 0.5 exactly
  const double t = 0.5;

  const at::Tensor wd = w.to(at::kDouble);
  const at::Tensor norms = wd.norm(2, {1}, /*keepdim=*/true);
  const at::Tensor factor = at::where(norms.gt(t), 1 - t / norms, at::zeros_like(norms));
  const at::Tensor expected = (wd * factor).to(dtype());

  group_prox_rows_(w, t);
  const Tol tol = tol_for(dtype());
  EXPECT_TRUE(at::allclose(w, expected, tol.rtol, tol.atol));
  for (int64_t r : {1, 2, 3}) {
    EXPECT_TRUE(at::equal(w[r], at::zeros({9}, dtype()))) << "row " << r << ": " << w[r];
    // Zeroed rows hold +0, not -0.
    EXPECT_FALSE(w[r].signbit().any().item<bool>()) << "row " << r;
  }
  EXPECT_GT(w[0].norm().item<double>(), 0.0);
}

TEST_P(ProxTest, GroupProxRowsMaskedRowsUntouched) {
  for (auto mask_type : {at::kBool, at::kByte}) {
    at::Tensor w = at::randn({20, 7}, dtype()) * 0.3;
    w[5].zero_();
    const at::Tensor original = w.clone();
    const at::Tensor rows_on = at::rand({20}).lt(0.5);
    rows_on[5] = true;
    group_prox_rows_(w, 0.4, rows_on.to(mask_type));

    const at::Tensor wd = original.to(at::kDouble);
    const at::Tensor norms = wd.norm(2, {1}, true);
    const at::Tensor factor = at::where(norms.gt(0.4), 1 - 0.4 / norms, at::zeros_like(norms));
    const at::Tensor shrunk = (wd * factor).to(dtype());
    const at::Tensor on = rows_on.unsqueeze(1).expand({20, 7});
    const Tol tol = tol_for(dtype());
    EXPECT_TRUE(at::allclose(w, at::where(on, shrunk, original), tol.rtol, tol.atol));
    expect_equal_where(w, original, on.logical_not());
    EXPECT_TRUE(at::equal(w[5], at::zeros({7}, dtype())));
  }
}

TEST_P(ProxTest, GroupProxRowsManyRowsMatchesAten) {
  at::Tensor w = at::randn({500, 64}, dtype()) * 0.15;
  const at::Tensor wd = w.to(at::kDouble);
  const at::Tensor norms = wd.norm(2, {1}, true);
  const at::Tensor factor = at::where(norms.gt(1.0), 1 - 1.0 / norms, at::zeros_like(norms));
  const at::Tensor expected = (wd * factor).to(dtype());
  group_prox_rows_(w, 1.0);
  const Tol tol = tol_for(dtype());
  EXPECT_TRUE(at::allclose(w, expected, tol.rtol, tol.atol));
  const int64_t zero_rows = w.eq(0).all(1).sum().item<int64_t>();
  EXPECT_GT(zero_rows, 0);
  EXPECT_LT(zero_rows, 500);
}

TEST_P(ProxTest, RowNormsAndDriftMatchAten) {
  at::Tensor w = at::randn({33, 17}, dtype());
  at::Tensor w_prev = w + at::randn({33, 17}, dtype()) * 0.01;
  w_prev[4] = w[4];  // no drift
  w[7].zero_();      // zero row
  const Tol tol = tol_for(dtype());

  const at::Tensor norms = row_norms(w);
  EXPECT_EQ(norms.scalar_type(), dtype());
  EXPECT_EQ(norms.sizes(), (at::IntArrayRef{33}));
  EXPECT_TRUE(at::allclose(norms, w.to(at::kDouble).norm(2, {1}).to(dtype()), tol.rtol, tol.atol));
  EXPECT_EQ(norms[7].item<double>(), 0.0);

  const at::Tensor drift = drift_row_norms(w, w_prev);
  EXPECT_EQ(drift.scalar_type(), dtype());
  const at::Tensor expected = (w.to(at::kDouble) - w_prev.to(at::kDouble)).norm(2, {1}).to(dtype());
  EXPECT_TRUE(at::allclose(drift, expected, tol.rtol, tol.atol));
  EXPECT_EQ(drift[4].item<double>(), 0.0);
}

TEST_P(ProxTest, RowNormsAcceptNonContiguousInputs) {
  // Read-only inputs may be views; they are not modified.
  at::Tensor base = at::randn({17, 33}, dtype());
  const at::Tensor w = base.t();
  const Tol tol = tol_for(dtype());
  EXPECT_TRUE(at::allclose(row_norms(w), w.to(at::kDouble).norm(2, {1}).to(dtype()), tol.rtol, tol.atol));
  const at::Tensor prev = at::zeros_like(w);
  EXPECT_TRUE(at::allclose(drift_row_norms(w, prev), row_norms(w), tol.rtol, tol.atol));
}

// The threshold is compared with the row norm in double, not in the weights' type: 0.1 is not a float,
// and a float row of norm float(0.1) = 0.100000001490116... lies above it, so the row only shrinks.
// (The CUDA entry point takes the threshold as double for the same result; tests/cuda checks both.)
TEST(ProxThresholdTest, GroupProxComparesTheThresholdInDouble) {
  const double t = 0.1;
  ASSERT_NE(static_cast<double>(static_cast<float>(t)), t);
  at::Tensor w = at::zeros({2, 3}, at::kFloat);
  w[0][1] = static_cast<float>(t);       // norm float(0.1) > 0.1: kept, shrunk by 1 - 0.1 / norm
  w[1][2] = std::nextafter(0.1f, 0.0f);  // norm below 0.1: zeroed
  group_prox_rows_(w, t);
  const double norm = static_cast<float>(t);
  EXPECT_EQ(w[0][1].item<float>(), static_cast<float>(t) * static_cast<float>(1.0 - t / norm));
  EXPECT_GT(w[0][1].item<float>(), 0.0f);
  EXPECT_EQ(w[1][2].item<float>(), 0.0f);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, ProxTest, ::testing::Values(at::kFloat, at::kDouble),
                         [](const auto& info) { return std::string(c10::toString(info.param)); });

TEST(ProxErrorsTest, BadInputsThrow) {
  at::Tensor w = at::randn({4, 6});
  EXPECT_THROW(l1_prox_(w, -0.1), c10::Error);
  EXPECT_THROW(l1_prox_(w, std::nan("")), c10::Error);
  EXPECT_THROW(l1_prox_(w, 0.1, at::ones({4, 5}, at::kBool)), c10::Error);
  EXPECT_THROW(l1_prox_(w, 0.1, at::ones({4, 6}, at::kFloat)), c10::Error);
  at::Tensor ints = at::ones({4, 6}, at::kInt);
  EXPECT_THROW(l1_prox_(ints, 0.1), c10::Error);
  at::Tensor undefined;
  EXPECT_THROW(l1_prox_(undefined, 0.1), c10::Error);
  // In-place targets must be contiguous; they are never silently copied.
  at::Tensor view = at::randn({6, 4}).t();
  EXPECT_THROW(l1_prox_(view, 0.1), c10::Error);
  EXPECT_THROW(group_prox_rows_(view, 0.1), c10::Error);

  at::Tensor vec = at::randn({6});
  EXPECT_THROW(group_prox_rows_(vec, 0.1), c10::Error);
  EXPECT_THROW(group_prox_rows_(w, -1.0), c10::Error);
  EXPECT_THROW(group_prox_rows_(w, 0.1, at::ones({5}, at::kBool)), c10::Error);
  EXPECT_THROW(group_prox_rows_(w, 0.1, at::ones({4, 1}, at::kBool)), c10::Error);

  EXPECT_THROW(row_norms(vec), c10::Error);
  EXPECT_THROW(drift_row_norms(w, at::randn({4, 5})), c10::Error);
  EXPECT_THROW(drift_row_norms(w, at::randn({4, 6}, at::kDouble)), c10::Error);
}

}  // namespace
}  // namespace den::ops
