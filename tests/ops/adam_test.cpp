#include "ops/adam.h"
#include "ops/prox.h"

#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>

namespace den::ops {
namespace {

// Unfused reference written with ATen ops, in float64. The op's hyperparameters are float by
// contract (AdamStepConsts), so the reference rounds them the same way; the remaining difference
// is float32 arithmetic in the fused loop.
struct RefState {
  at::Tensor w, m, v;
};

double as_float(double x) { return static_cast<double>(static_cast<float>(x)); }

void reference_step(RefState& s, const at::Tensor& grad, const at::Tensor& mask, const at::Tensor& anchor,
                    const MaskedAdamOptions& o) {
  const double lr = as_float(o.lr), beta1 = as_float(o.beta1), beta2 = as_float(o.beta2), eps = as_float(o.eps);
  const double bc1 = as_float(1.0 - std::pow(o.beta1, o.step));
  const double bc2_sqrt = as_float(std::sqrt(1.0 - std::pow(o.beta2, o.step)));
  const at::Tensor bits = mask.defined() ? mask.to(at::kInt) : at::full_like(s.w, kTrainable, at::kInt);
  const at::Tensor trainable = bits.bitwise_and(kTrainable).ne(0);
  const at::Tensor anchored = bits.bitwise_and(kAnchored).ne(0);

  at::Tensor g = grad.to(at::kDouble) + 2 * o.l2 * s.w;
  if (anchor.defined()) g = g + anchored.to(at::kDouble) * (2 * o.drift) * (s.w - anchor.to(at::kDouble));
  const at::Tensor m = beta1 * s.m + (1 - beta1) * g;
  const at::Tensor v = beta2 * s.v + (1 - beta2) * g * g;
  const at::Tensor denom = v.sqrt() / bc2_sqrt + eps;
  // adam_update forms lr / bias_correction1 from the float constants, in float.
  const double step_size = static_cast<double>(static_cast<float>(lr) / static_cast<float>(bc1));
  at::Tensor w = s.w - step_size * m / denom;
  if (o.l1_threshold > 0) w = w.sign() * (w.abs() - o.l1_threshold).clamp_min(0);
  s.w = at::where(trainable, w, s.w);
  s.m = at::where(trainable, m, s.m);
  s.v = at::where(trainable, v, s.v);
}

// Copies (for float64 inputs .to() would alias the tensors that the op updates in place).
RefState make_ref(const at::Tensor& w, const at::Tensor& m, const at::Tensor& v) {
  return {w.to(at::kDouble).clone(), m.to(at::kDouble).clone(), v.to(at::kDouble).clone()};
}

struct Tol {
  double rtol, atol;
};
Tol tol_for(at::ScalarType t) { return t == at::kFloat ? Tol{1e-5, 1e-6} : Tol{1e-10, 1e-12}; }

class AdamTest : public ::testing::TestWithParam<at::ScalarType> {
 protected:
  void SetUp() override { at::manual_seed(42); }
  at::ScalarType dtype() const { return GetParam(); }
};

TEST_P(AdamTest, MatchesUnfusedReferenceOverSeveralSteps) {
  const int64_t rows = 96, cols = 80;  // 7680 elements: several parallel chunks
  at::Tensor w = at::randn({rows, cols}, dtype()) * 0.05;
  at::Tensor m = at::randn({rows, cols}, dtype()) * 0.01;  // nonzero state, so "unchanged" means something
  at::Tensor v = at::rand({rows, cols}, dtype()) * 1e-4;
  const at::Tensor anchor = w + at::randn({rows, cols}, dtype()) * 0.01;
  const at::Tensor mask = at::randint(0, 4, {rows, cols}, at::kByte);  // all four bit combinations
  const at::Tensor w0 = w.clone(), m0 = m.clone(), v0 = v.clone();

  RefState ref = make_ref(w, m, v);
  MaskedAdamOptions o;
  o.lr = 1e-2;
  o.l2 = 1e-2;
  o.drift = 0.5;
  o.l1_threshold = 1e-3;
  for (int64_t step = 1; step <= 6; ++step) {
    o.step = step;
    const at::Tensor grad = at::randn({rows, cols}, dtype()) * 0.1;
    masked_adam_step_(w, grad, m, v, mask, anchor, o);
    reference_step(ref, grad, mask, anchor, o);
  }
  const Tol tol = tol_for(dtype());
  EXPECT_TRUE(at::allclose(w.to(at::kDouble), ref.w, tol.rtol, tol.atol))
      << (w.to(at::kDouble) - ref.w).abs().max().item<double>();
  EXPECT_TRUE(at::allclose(m.to(at::kDouble), ref.m, tol.rtol, tol.atol))
      << (m.to(at::kDouble) - ref.m).abs().max().item<double>() << " of " << ref.m.abs().max().item<double>();
  EXPECT_TRUE(at::allclose(v.to(at::kDouble), ref.v, tol.rtol, tol.atol));

  // The L1 prox produced exact zeros among trainable elements.
  const at::Tensor trainable = mask.bitwise_and(kTrainable).ne(0);
  EXPECT_GT(w.eq(0).logical_and(trainable).sum().item<int64_t>(), 0);

  // Masked-out elements (bits 0 or kAnchored only): param and state bit-for-bit unchanged.
  const at::Tensor frozen = trainable.logical_not();
  ASSERT_GT(frozen.sum().item<int64_t>(), 0);
  EXPECT_TRUE(at::equal(w.masked_select(frozen), w0.masked_select(frozen)));
  EXPECT_TRUE(at::equal(m.masked_select(frozen), m0.masked_select(frozen)));
  EXPECT_TRUE(at::equal(v.masked_select(frozen), v0.masked_select(frozen)));
}

TEST_P(AdamTest, PlainAdamWithoutMaskMatchesReference) {
  at::Tensor w = at::randn({10, 13}, dtype());
  at::Tensor m = at::zeros_like(w), v = at::zeros_like(w);
  RefState ref = make_ref(w, m, v);
  MaskedAdamOptions o;
  for (int64_t step = 1; step <= 4; ++step) {
    o.step = step;
    const at::Tensor grad = at::randn({10, 13}, dtype());
    masked_adam_step_(w, grad, m, v, at::Tensor(), at::Tensor(), o);
    reference_step(ref, grad, at::Tensor(), at::Tensor(), o);
  }
  const Tol tol = tol_for(dtype());
  EXPECT_TRUE(at::allclose(w.to(at::kDouble), ref.w, tol.rtol, tol.atol));
  EXPECT_TRUE(at::allclose(m.to(at::kDouble), ref.m, tol.rtol, tol.atol))
      << (m.to(at::kDouble) - ref.m).abs().max().item<double>() << " of " << ref.m.abs().max().item<double>();
  EXPECT_TRUE(at::allclose(v.to(at::kDouble), ref.v, tol.rtol, tol.atol));
}

// Invariance: an undefined mask, an all-kTrainable uint8 mask and an all-true bool mask take the
// same per-element path and give bit-identical results.
TEST_P(AdamTest, UndefinedMaskEqualsAllTrainableMask) {
  const at::Tensor w_init = at::randn({50, 50}, dtype());
  const at::Tensor grad = at::randn({50, 50}, dtype());
  MaskedAdamOptions o;
  o.l2 = 1e-3;
  o.l1_threshold = 1e-4;
  o.drift = 0.5;  // no element is anchored, so no anchor is needed
  auto run = [&](const at::Tensor& mask) {
    at::Tensor w = w_init.clone(), m = at::zeros_like(w), v = at::zeros_like(w);
    masked_adam_step_(w, grad, m, v, mask, at::Tensor(), o);
    return std::make_tuple(w, m, v);
  };
  const auto [w1, m1, v1] = run(at::Tensor());
  const auto [w2, m2, v2] = run(at::full({50, 50}, kTrainable, at::kByte));
  const auto [w3, m3, v3] = run(at::ones({50, 50}, at::kBool));
  EXPECT_TRUE(at::equal(w1, w2) && at::equal(m1, m2) && at::equal(v1, v2));
  EXPECT_TRUE(at::equal(w1, w3) && at::equal(m1, m3) && at::equal(v1, v3));
  EXPECT_FALSE(at::equal(w1, w_init));
}

TEST_P(AdamTest, AllFrozenMaskChangesNothing) {
  at::Tensor w = at::randn({8, 8}, dtype());
  at::Tensor m = at::randn({8, 8}, dtype()), v = at::rand({8, 8}, dtype());
  const at::Tensor w0 = w.clone(), m0 = m.clone(), v0 = v.clone();
  MaskedAdamOptions o;
  o.l1_threshold = 10.0;  // would zero everything if applied
  masked_adam_step_(w, at::randn({8, 8}, dtype()), m, v, at::full({8, 8}, kAnchored, at::kByte),
                    at::zeros({8, 8}, dtype()), o);
  EXPECT_TRUE(at::equal(w, w0) && at::equal(m, m0) && at::equal(v, v0));
}

// Group prox of the flagged rows, in ATen (float64 reference state).
void reference_group_prox(RefState& s, const at::Tensor& group_rows, double t) {
  const at::Tensor norms = s.w.norm(2, {1}, /*keepdim=*/true);
  const at::Tensor factor = at::where(norms.gt(t), 1 - t / norms, at::zeros_like(norms));
  s.w = at::where(group_rows.to(at::kBool).unsqueeze(1), s.w * factor, s.w);
}

// The fused step with group rows against the unfused ATen formulation, on shapes with a row of
// length 1, a single row, odd sizes and rows longer than one parallel grain.
TEST_P(AdamTest, GroupStepMatchesUnfusedAten) {
  for (auto [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{{37, 53}, {1, 300}, {50, 1}, {6, 5000}}) {
    at::Tensor w = at::randn({rows, cols}, dtype()) * 0.05;
    at::Tensor m = at::randn({rows, cols}, dtype()) * 0.01;
    at::Tensor v = at::rand({rows, cols}, dtype()) * 1e-4;
    const at::Tensor anchor = w + at::randn({rows, cols}, dtype()) * 0.01;
    const at::Tensor mask = at::randint(0, 4, {rows, cols}, at::kByte);
    const at::Tensor group_rows = at::rand({rows}).lt(0.6).to(at::kByte);
    const at::Tensor m0 = m.clone(), v0 = v.clone();
    RefState ref = make_ref(w, m, v);
    MaskedAdamOptions o;
    o.lr = 1e-2;
    o.l2 = 1e-2;
    o.drift = 0.5;
    o.l1_threshold = 1e-3;
    o.group_threshold = 0.02 * std::sqrt(static_cast<double>(cols));  // some rows zeroed, some shrunk
    for (int64_t step = 1; step <= 4; ++step) {
      o.step = step;
      const at::Tensor grad = at::randn({rows, cols}, dtype()) * 0.1;
      masked_adam_group_step_(w, grad, m, v, mask, anchor, group_rows, o);
      reference_step(ref, grad, mask, anchor, o);
      reference_group_prox(ref, group_rows, o.group_threshold);
    }
    const Tol tol = tol_for(dtype());
    const std::string what = std::to_string(rows) + "x" + std::to_string(cols);
    EXPECT_TRUE(at::allclose(w.to(at::kDouble), ref.w, tol.rtol, tol.atol))
        << what << ": " << (w.to(at::kDouble) - ref.w).abs().max().item<double>();
    EXPECT_TRUE(at::allclose(m.to(at::kDouble), ref.m, tol.rtol, tol.atol)) << what;
    EXPECT_TRUE(at::allclose(v.to(at::kDouble), ref.v, tol.rtol, tol.atol)) << what;
    const at::Tensor frozen = mask.bitwise_and(kTrainable).eq(0);
    EXPECT_TRUE(at::equal(m.masked_select(frozen), m0.masked_select(frozen))) << what;
    EXPECT_TRUE(at::equal(v.masked_select(frozen), v0.masked_select(frozen))) << what;
    if (rows > 1) {
      const int64_t zero_rows = w.eq(0).all(1).logical_and(group_rows.to(at::kBool)).sum().item<int64_t>();
      EXPECT_GT(zero_rows, 0) << what << ": the group prox zeroed no flagged row";
    }
  }
}

// Invariance: the fused op gives bit-identical results to the two-op sequence it replaces.
TEST_P(AdamTest, GroupStepEqualsStepThenGroupProx) {
  const int64_t rows = 40, cols = 785;
  const at::Tensor w_init = at::randn({rows, cols}, dtype()) * 0.05;
  const at::Tensor anchor = w_init + at::randn({rows, cols}, dtype()) * 0.01;
  const at::Tensor mask = at::randint(0, 4, {rows, cols}, at::kByte);
  for (const at::Tensor& group_rows : {at::rand({rows}).lt(0.5), at::ones({rows}, at::kBool), at::zeros({rows}, at::kBool)}) {
    at::Tensor w1 = w_init.clone(), m1 = at::zeros_like(w1), v1 = at::zeros_like(w1);
    at::Tensor w2 = w_init.clone(), m2 = at::zeros_like(w2), v2 = at::zeros_like(w2);
    MaskedAdamOptions o;
    o.l2 = 1e-3;
    o.drift = 0.5;
    o.l1_threshold = 1e-4;
    o.group_threshold = 0.9;
    for (int64_t step = 1; step <= 3; ++step) {
      o.step = step;
      const at::Tensor grad = at::randn({rows, cols}, dtype());
      masked_adam_group_step_(w1, grad, m1, v1, mask, anchor, group_rows, o);
      masked_adam_step_(w2, grad, m2, v2, mask, anchor, o);
      group_prox_rows_(w2, o.group_threshold, group_rows);
    }
    EXPECT_TRUE(at::equal(w1, w2) && at::equal(m1, m2) && at::equal(v1, v2));
  }
}

TEST_P(AdamTest, GroupStepWithoutGroupRowsIsPlainStep) {
  const at::Tensor w_init = at::randn({9, 11}, dtype()), grad = at::randn({9, 11}, dtype());
  MaskedAdamOptions o;
  o.group_threshold = 100.0;  // would zero every row if any were flagged
  at::Tensor w1 = w_init.clone(), m1 = at::zeros_like(w1), v1 = at::zeros_like(w1);
  at::Tensor w2 = w_init.clone(), m2 = at::zeros_like(w2), v2 = at::zeros_like(w2);
  masked_adam_group_step_(w1, grad, m1, v1, {}, {}, {}, o);
  masked_adam_step_(w2, grad, m2, v2, {}, {}, o);
  EXPECT_TRUE(at::equal(w1, w2) && at::equal(m1, m2) && at::equal(v1, v2));
  at::Tensor w3 = w_init.clone(), m3 = at::zeros_like(w3), v3 = at::zeros_like(w3);
  masked_adam_group_step_(w3, grad, m3, v3, {}, {}, at::zeros({9}, at::kByte), o);
  EXPECT_TRUE(at::equal(w1, w3));
}

// NOTE: [vector width]: the op runs a loop compiled for the widest vectors the CPU has; its bits
// must be those of the element maths applied one element at a time, as the baseline build does.
TEST(AdamVectorWidthTest, StepGivesTheBitsOfTheElementMathOneElementAtATime) {
  at::manual_seed(13);
  const int64_t rows = 37, cols = 129;  // odd sizes: vector bodies and remainders
  at::Tensor w = at::randn({rows, cols}), m = at::randn({rows, cols}).mul_(0.1), v = at::rand({rows, cols});
  const at::Tensor grad = at::randn({rows, cols}), anchor = at::randn({rows, cols});
  const at::Tensor mask = at::randint(0, 4, {rows, cols}, at::kByte);
  MaskedAdamOptions o;
  o.step = 3;
  o.l2 = 1e-3;
  o.drift = 0.5;
  o.l1_threshold = 1e-3;
  at::Tensor ew = w.clone(), em = m.clone(), ev = v.clone();
  const cuda::AdamStepConsts consts{static_cast<float>(o.lr), static_cast<float>(o.beta1), static_cast<float>(o.beta2),
                                    static_cast<float>(o.eps), static_cast<float>(1.0 - std::pow(o.beta1, 3.0)),
                                    static_cast<float>(std::sqrt(1.0 - std::pow(o.beta2, 3.0)))};
  const cuda::AdamRegularizers<float> k{static_cast<float>(2.0 * o.l2), static_cast<float>(2.0 * o.drift),
                                        static_cast<float>(o.l1_threshold)};
  float* pw = ew.data_ptr<float>();
  float* pm = em.data_ptr<float>();
  float* pv = ev.data_ptr<float>();
  for (int64_t i = 0; i < rows * cols; ++i) {
    const uint8_t bits = mask.data_ptr<uint8_t>()[i];
    if (!(bits & kTrainable)) continue;
    const float anchored = (bits & kAnchored) ? 1.0f : 0.0f;
    pw[i] = cuda::regularized_adam_element<true>(pw[i], grad.data_ptr<float>()[i], anchored,
                                                 anchor.data_ptr<float>()[i], pm[i], pv[i], k, consts);
  }
  masked_adam_step_(w, grad, m, v, mask, anchor, o);
  EXPECT_TRUE(at::equal(w, ew));
  EXPECT_TRUE(at::equal(m, em));
  EXPECT_TRUE(at::equal(v, ev));
}

INSTANTIATE_TEST_SUITE_P(Dtypes, AdamTest, ::testing::Values(at::kFloat, at::kDouble),
                         [](const auto& info) { return std::string(c10::toString(info.param)); });

TEST(AdamErrorsTest, BadInputsThrow) {
  at::Tensor w = at::randn({4, 6}), m = at::zeros({4, 6}), v = at::zeros({4, 6});
  const at::Tensor g = at::randn({4, 6});
  const MaskedAdamOptions ok;
  auto step = [&](at::Tensor& p, const at::Tensor& grad, at::Tensor& ea, at::Tensor& eas, const at::Tensor& mask,
                  const at::Tensor& anchor, const MaskedAdamOptions& o) {
    masked_adam_step_(p, grad, ea, eas, mask, anchor, o);
  };
  EXPECT_NO_THROW(step(w, g, m, v, {}, {}, ok));

  EXPECT_THROW(step(w, at::randn({4, 5}), m, v, {}, {}, ok), c10::Error);
  EXPECT_THROW(step(w, at::randn({4, 6}, at::kDouble), m, v, {}, {}, ok), c10::Error);
  EXPECT_THROW(step(w, at::randn({6, 4}).t(), m, v, {}, {}, ok), c10::Error);  // grad not contiguous
  at::Tensor m_bad = at::zeros({4, 5});
  EXPECT_THROW(step(w, g, m_bad, v, {}, {}, ok), c10::Error);
  at::Tensor v_view = at::zeros({6, 4}).t();
  EXPECT_THROW(step(w, g, m, v_view, {}, {}, ok), c10::Error);
  at::Tensor w_view = at::randn({6, 4}).t();
  EXPECT_THROW(step(w_view, g, m, v, {}, {}, ok), c10::Error);
  EXPECT_THROW(step(w, g, m, v, at::ones({4, 6}, at::kFloat), {}, ok), c10::Error);
  EXPECT_THROW(step(w, g, m, v, at::ones({4, 5}, at::kByte), {}, ok), c10::Error);

  // Anchored elements with drift > 0 need an anchor of the same shape.
  MaskedAdamOptions drift = ok;
  drift.drift = 0.5;
  const at::Tensor anchored = at::full({4, 6}, kTrainable | kAnchored, at::kByte);
  EXPECT_THROW(step(w, g, m, v, anchored, {}, drift), c10::Error);
  EXPECT_THROW(step(w, g, m, v, anchored, at::zeros({4, 5}), drift), c10::Error);
  EXPECT_NO_THROW(step(w, g, m, v, anchored, at::zeros({4, 6}), drift));

  auto bad = [&](auto edit) {
    MaskedAdamOptions o = ok;
    edit(o);
    return o;
  };
  EXPECT_THROW(step(w, g, m, v, {}, {}, bad([](auto& o) { o.lr = -1e-3; })), c10::Error);
  EXPECT_THROW(step(w, g, m, v, {}, {}, bad([](auto& o) { o.beta1 = 1.0; })), c10::Error);
  EXPECT_THROW(step(w, g, m, v, {}, {}, bad([](auto& o) { o.beta2 = -0.1; })), c10::Error);
  // The step's constants are float on both devices: a beta below 1 that rounds to 1.0f is refused here
  // as the CUDA entry point refuses it, and the message says why.
  const double just_below_one = 1.0 - 1e-9;
  ASSERT_EQ(static_cast<float>(just_below_one), 1.0f);
  EXPECT_THROW(step(w, g, m, v, {}, {}, bad([&](auto& o) { o.beta1 = just_below_one; })), c10::Error);
  try {
    step(w, g, m, v, {}, {}, bad([&](auto& o) { o.beta2 = just_below_one; }));
    ADD_FAILURE() << "beta2 = 1 - 1e-9 was accepted";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("rounds to 1 in float"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(step(w, g, m, v, {}, {}, bad([](auto& o) { o.beta2 = 0.9999; })));
  EXPECT_THROW(step(w, g, m, v, {}, {}, bad([](auto& o) { o.step = 0; })), c10::Error);
  EXPECT_THROW(step(w, g, m, v, {}, {}, bad([](auto& o) { o.l2 = -1.0; })), c10::Error);
  EXPECT_THROW(step(w, g, m, v, {}, {}, bad([](auto& o) { o.l1_threshold = -1.0; })), c10::Error);
  EXPECT_THROW(step(w, g, m, v, {}, {}, bad([](auto& o) { o.eps = std::nan(""); })), c10::Error);

  // The fused group step: group_rows is [rows] uint8/bool and needs a 2-D param.
  const at::Tensor rows_on = at::ones({4}, at::kByte);
  EXPECT_NO_THROW(masked_adam_group_step_(w, g, m, v, {}, {}, rows_on, ok));
  EXPECT_THROW(masked_adam_group_step_(w, g, m, v, {}, {}, at::ones({5}, at::kByte), ok), c10::Error);
  EXPECT_THROW(masked_adam_group_step_(w, g, m, v, {}, {}, at::ones({4}, at::kFloat), ok), c10::Error);
  EXPECT_THROW(masked_adam_group_step_(w, g, m, v, {}, {}, rows_on, bad([](auto& o) { o.group_threshold = -1; })),
               c10::Error);
  at::Tensor flat = at::randn({24}), fm = at::zeros({24}), fv = at::zeros({24});
  EXPECT_THROW(masked_adam_group_step_(flat, at::randn({24}), fm, fv, {}, {}, rows_on, ok), c10::Error);
}

}  // namespace

// NOTE: [zeroed-group momentum]
TEST(ResetMomentumOfZeroRows, ZeroesTheFirstMomentOfFlaggedZeroRowsOnly) {
  at::Tensor param = at::rand({4, 3}).add_(0.1);
  param.select(0, 1).zero_();
  param.select(0, 2).zero_();  // zero but not flagged
  param[3][0] = 0;             // flagged, partly zero
  at::Tensor exp_avg = at::rand({4, 3}).add_(0.1);
  const at::Tensor before = exp_avg.clone();
  const at::Tensor flagged = at::tensor({1, 1, 0, 1}, at::kByte);
  reset_momentum_of_zero_rows_(param, exp_avg, flagged);
  EXPECT_TRUE(exp_avg.select(0, 1).eq(0).all().item<bool>());
  for (int64_t r : {0, 2, 3}) EXPECT_TRUE(at::equal(exp_avg.select(0, r), before.select(0, r))) << "row " << r;
  EXPECT_THROW(reset_momentum_of_zero_rows_(param, exp_avg, at::ones({3}, at::kByte)), c10::Error);
}
}  // namespace den::ops
