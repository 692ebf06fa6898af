// CPU vs CUDA parity of the kernels in cuda/kernels.h, through their raw-pointer entry points, so
// that they run wherever the kernels are compiled (LibTorch with or without CUDA). The CPU ops of
// ops/ are the oracle. Tests named *_CUDA skip when the CUDA runtime reports no device.
//
// Tolerances: the element-wise ops are exact, the L1 prox and the masked Adam step without group rows:
// the same IEEE operations on both sides, with no multiply-add contracted into an FMA on either (NOTE:
// [no contraction] in cuda/CMakeLists.txt; -ffp-contract=off in ops/). Row norms, the group prox and
// the Adam step with group rows differ only in the summation order of the double-precision sum of
// squares: float rtol 1e-6 / atol 1e-7, double 1e-12 / 1e-14 (the Adam step with group rows 1e-5 /
// 1e-6 and 1e-10 / 1e-12, after three steps). Elements an op must not touch are compared bit for bit.

#include "cuda/cuda_check.h"
#include "cuda/kernels.h"
#include "ops/adam.h"
#include "ops/prox.h"

#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cuda_runtime_api.h>

#include <cmath>
#include <memory>
#include <regex>
#include <type_traits>
#include <stdexcept>
#include <string>
#include <vector>

namespace den::cuda {
namespace {

bool has_device() { return device_count() > 0; }

// The group-prox threshold reaches the kernels as double, as on the CPU (ops/prox.cpp): rounded to
// float it would zero float rows whose norm lies between float(t) and t (ProxThresholdTest in tests/ops).
static_assert(std::is_same_v<decltype(&group_prox_rows<float>),
                             void (*)(float*, const uint8_t*, int64_t, int64_t, double, cudaStream_t)>,
              "group_prox_rows must take its threshold as double for float weights too");

#define DEN_SKIP_WITHOUT_DEVICE() \
  if (!has_device()) GTEST_SKIP() << "no CUDA device (cudaGetDeviceCount reports none)"

// A device copy of a contiguous CPU tensor; read back with to_host().
class DeviceTensor {
 public:
  explicit DeviceTensor(const at::Tensor& host) : like_(host.contiguous()) {
    bytes_ = static_cast<size_t>(like_.numel()) * like_.element_size();
    if (bytes_ > 0) {
      DEN_CUDA_CHECK(cudaMalloc(&ptr_, bytes_));
      DEN_CUDA_CHECK(cudaMemcpy(ptr_, like_.data_ptr(), bytes_, cudaMemcpyHostToDevice));
    }
  }
  DeviceTensor(const DeviceTensor&) = delete;
  DeviceTensor& operator=(const DeviceTensor&) = delete;
  ~DeviceTensor() {
    if (ptr_ != nullptr) cudaFree(ptr_);
  }
  template <typename T>
  T* data() const {
    return static_cast<T*>(ptr_);
  }
  at::Tensor to_host() const {
    at::Tensor out = at::empty_like(like_);
    if (bytes_ > 0) {
      DEN_CUDA_CHECK(cudaDeviceSynchronize());
      DEN_CUDA_CHECK(cudaMemcpy(out.data_ptr(), ptr_, bytes_, cudaMemcpyDeviceToHost));
    }
    return out;
  }

 private:
  at::Tensor like_;
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

const uint8_t* bytes_or_null(const DeviceTensor* t) { return t == nullptr ? nullptr : t->data<uint8_t>(); }

struct Tol {
  double rtol, atol;
};
Tol norm_tol(at::ScalarType t) { return t == at::kFloat ? Tol{1e-6, 1e-7} : Tol{1e-12, 1e-14}; }
Tol adam_tol(at::ScalarType t) { return t == at::kFloat ? Tol{1e-5, 1e-6} : Tol{1e-10, 1e-12}; }

::testing::AssertionResult close(const at::Tensor& got, const at::Tensor& want, Tol tol) {
  if (got.sizes() != want.sizes()) return ::testing::AssertionFailure() << "shape " << got.sizes() << " vs " << want.sizes();
  if (got.numel() == 0 || at::allclose(got, want, tol.rtol, tol.atol)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "max |diff| " << (got - want).abs().max().item<double>();
}

// Shapes [rows, cols]: odd sizes, a single row, rows of length 1, rows around and beyond the register
// tile (2048) and longer than a block's worth of threads, empty tensors.
struct Shape {
  int64_t rows, cols;
};
const std::vector<Shape> kShapes = {{1, 1},  {1, 7},     {7, 1},     {1000, 1}, {37, 53},  {513, 1027}, {64, 2048},
                                    {3, 2049}, {2, 5000}, {1, 20000}, {300, 9},  {0, 5},    {5, 0}};

enum class MaskKind { kNone, kAllOff, kAllOn, kRandom };
const MaskKind kMaskKinds[] = {MaskKind::kNone, MaskKind::kAllOff, MaskKind::kAllOn, MaskKind::kRandom};

at::Tensor make_mask(MaskKind kind, at::IntArrayRef sizes) {
  switch (kind) {
    case MaskKind::kNone: return {};
    case MaskKind::kAllOff: return at::zeros(sizes, at::kByte);
    case MaskKind::kAllOn: return at::ones(sizes, at::kByte);
    case MaskKind::kRandom: return at::rand(sizes).lt(0.5).to(at::kByte);
  }
  return {};
}

std::string describe(const Shape& s, MaskKind k, at::ScalarType t) {
  return std::string(c10::toString(t)) + " [" + std::to_string(s.rows) + ", " + std::to_string(s.cols) + "] mask " +
         std::to_string(static_cast<int>(k));
}

// Weights (random, times `scale`) with zeros, values exactly at +-threshold and, when there are rows
// enough, a zero row and a row whose norm is exactly the threshold (four elements of +-threshold/2, or
// one of
// threshold; with threshold 0.5 these sums are exact in any order).
at::Tensor make_weights(const Shape& s, at::ScalarType dtype, double threshold, double scale) {
  at::Tensor w = at::randn({s.rows, s.cols}, dtype) * scale;
  if (w.numel() == 0) return w;
  at::Tensor flat = w.view({-1});
  flat.index_put_({at::rand({flat.numel()}).lt(0.1)}, 0.0);
  flat.index_put_({at::rand({flat.numel()}).lt(0.05)}, threshold);
  flat.index_put_({at::rand({flat.numel()}).lt(0.05)}, -threshold);
  if (s.rows >= 3) {
    w[0].zero_();
    w[1].zero_();
    if (s.cols >= 4) {
      for (int64_t j = 0; j < 4; ++j) w[1][j] = (j % 2 ? -0.5 : 0.5) * threshold;
    } else {
      w[1][0] = -threshold;
    }
  }
  return w;
}

class KernelParity : public ::testing::TestWithParam<at::ScalarType> {
 protected:
  void SetUp() override { at::manual_seed(7); }
  at::ScalarType dtype() const { return GetParam(); }
};

TEST_P(KernelParity, L1Prox_CUDA) {
  DEN_SKIP_WITHOUT_DEVICE();
  const double t = 0.05;
  for (const Shape& s : kShapes) {
    for (MaskKind k : kMaskKinds) {
      const at::Tensor w0 = make_weights(s, dtype(), t, 0.1);
      const at::Tensor mask = make_mask(k, w0.sizes());
      at::Tensor want = w0.clone();
      ops::l1_prox_(want, t, mask);
      DeviceTensor dw(w0);
      std::unique_ptr<DeviceTensor> dm = mask.defined() ? std::make_unique<DeviceTensor>(mask) : nullptr;
      AT_DISPATCH_FLOATING_TYPES(dtype(), "l1", [&] {
        l1_prox<scalar_t>(dw.data<scalar_t>(), bytes_or_null(dm.get()), w0.numel(), static_cast<scalar_t>(t), nullptr);
      });
      EXPECT_TRUE(at::equal(dw.to_host(), want)) << describe(s, k, dtype());
    }
  }
}

TEST_P(KernelParity, GroupProxRows_CUDA) {
  DEN_SKIP_WITHOUT_DEVICE();
  const double t = 0.5;
  for (const Shape& s : kShapes) {
    for (MaskKind k : kMaskKinds) {
      const at::Tensor w0 = make_weights(s, dtype(), t, 0.3);  // row norms on both sides of t
      const at::Tensor row_mask = make_mask(k, {s.rows});
      at::Tensor want = w0.clone();
      ops::group_prox_rows_(want, t, row_mask);
      DeviceTensor dw(w0);
      std::unique_ptr<DeviceTensor> dm = row_mask.defined() ? std::make_unique<DeviceTensor>(row_mask) : nullptr;
      AT_DISPATCH_FLOATING_TYPES(dtype(), "group", [&] {
        group_prox_rows<scalar_t>(dw.data<scalar_t>(), bytes_or_null(dm.get()), s.rows, s.cols, t, nullptr);
      });
      const at::Tensor got = dw.to_host();
      EXPECT_TRUE(close(got, want, norm_tol(dtype()))) << describe(s, k, dtype());
      if (s.rows == 0 || s.cols == 0) continue;
      // Rows the mask leaves out, and rows zeroed by the prox, are exact.
      const at::Tensor off = row_mask.defined() ? row_mask.eq(0) : at::zeros({s.rows}, at::kBool);
      EXPECT_TRUE(at::equal(got.index({off}), w0.index({off}))) << describe(s, k, dtype());
      const at::Tensor zeroed = want.eq(0).all(1);
      EXPECT_TRUE(at::equal(got.index({zeroed}), want.index({zeroed}))) << describe(s, k, dtype());
      EXPECT_FALSE(got.index({zeroed}).signbit().any().item<bool>()) << "zeroed rows hold +0";
    }
  }
}

// A threshold that float cannot hold: rows of norm float(0.1) > 0.1 shrink, rows just below are zeroed,
// on the GPU exactly as on the CPU (one element per row, so the norm has no summation order).
TEST(KernelThreshold, GroupProxComparesTheThresholdInDouble_CUDA) {
  DEN_SKIP_WITHOUT_DEVICE();
  const double t = 0.1;
  at::Tensor w0 = at::zeros({4, 3}, at::kFloat);
  w0[0][0] = static_cast<float>(t);
  w0[1][1] = -static_cast<float>(t);
  w0[2][2] = std::nextafter(0.1f, 0.0f);
  w0[3][0] = 0.3f;
  at::Tensor want = w0.clone();
  ops::group_prox_rows_(want, t);
  DeviceTensor dw(w0);
  group_prox_rows<float>(dw.data<float>(), nullptr, 4, 3, t, nullptr);
  const at::Tensor got = dw.to_host();
  EXPECT_TRUE(at::equal(got, want)) << got << want;
  EXPECT_NE(got[0][0].item<float>(), 0.0f);
  EXPECT_EQ(got[2][2].item<float>(), 0.0f);
}

TEST_P(KernelParity, RowNormsAndDrift_CUDA) {
  DEN_SKIP_WITHOUT_DEVICE();
  for (const Shape& s : kShapes) {
    const at::Tensor w = make_weights(s, dtype(), 0.1, 0.1);
    at::Tensor prev = w + at::randn(w.sizes(), dtype()) * 0.01;
    if (s.rows > 2) prev[2] = w[2];  // no drift
    DeviceTensor dw(w), dp(prev), dn(at::zeros({s.rows}, dtype())), dd(at::zeros({s.rows}, dtype()));
    AT_DISPATCH_FLOATING_TYPES(dtype(), "norms", [&] {
      row_norms<scalar_t>(dn.data<scalar_t>(), dw.data<scalar_t>(), nullptr, s.rows, s.cols, nullptr);
      row_norms<scalar_t>(dd.data<scalar_t>(), dw.data<scalar_t>(), dp.data<scalar_t>(), s.rows, s.cols, nullptr);
    });
    const std::string what = describe(s, MaskKind::kNone, dtype());
    EXPECT_TRUE(close(dn.to_host(), ops::row_norms(w), norm_tol(dtype()))) << what;
    const at::Tensor drift = dd.to_host();
    EXPECT_TRUE(close(drift, ops::drift_row_norms(w, prev), norm_tol(dtype()))) << what;
    if (s.rows > 2) {
      EXPECT_EQ(drift[2].item<double>(), 0.0) << what;
    }
  }
}

// Several fused steps on device and on the CPU (ops::masked_adam_group_step_, itself tested against
// unfused ATen in tests/ops), with all four mask-bit combinations, drift, L1 and group rows.
void run_adam_parity(at::ScalarType dtype, const Shape& s, MaskKind mask_kind, bool with_group_rows) {
  const int64_t rows = s.rows, cols = s.cols;
  at::Tensor w = at::randn({rows, cols}, dtype) * 0.05;
  at::Tensor m = at::randn({rows, cols}, dtype) * 0.01;
  at::Tensor v = at::rand({rows, cols}, dtype) * 1e-4;
  const at::Tensor anchor = w + at::randn({rows, cols}, dtype) * 0.01;
  at::Tensor mask;
  if (mask_kind == MaskKind::kRandom) mask = at::randint(0, 4, {rows, cols}, at::kByte);
  if (mask_kind == MaskKind::kAllOff) mask = at::full({rows, cols}, kAnchored, at::kByte);
  if (mask_kind == MaskKind::kAllOn) mask = at::full({rows, cols}, kTrainable | kAnchored, at::kByte);
  const at::Tensor group_rows = with_group_rows ? at::rand({rows}).lt(0.6).to(at::kByte) : at::Tensor();
  const at::Tensor w0 = w.clone(), m0 = m.clone(), v0 = v.clone();

  DeviceTensor dw(w), dm(m), dv(v), da(anchor);
  std::unique_ptr<DeviceTensor> dmask = mask.defined() ? std::make_unique<DeviceTensor>(mask) : nullptr;
  std::unique_ptr<DeviceTensor> dgroup = group_rows.defined() ? std::make_unique<DeviceTensor>(group_rows) : nullptr;

  ops::MaskedAdamOptions o;
  o.lr = 1e-2;
  o.l2 = 1e-2;
  o.drift = 0.5;
  o.l1_threshold = 1e-3;
  o.group_threshold = 0.05;
  for (int64_t step = 1; step <= 3; ++step) {
    o.step = step;
    const at::Tensor grad = at::randn({rows, cols}, dtype) * 0.1;
    ops::masked_adam_group_step_(w, grad, m, v, mask, anchor, group_rows, o);
    DeviceTensor dg(grad);
    AT_DISPATCH_FLOATING_TYPES(dtype, "adam", [&] {
      MaskedAdamArgs<scalar_t> a;
      a.w = dw.data<scalar_t>();
      a.grad = dg.data<scalar_t>();
      a.exp_avg = dm.data<scalar_t>();
      a.exp_avg_sq = dv.data<scalar_t>();
      a.anchor = mask.defined() ? da.data<scalar_t>() : nullptr;
      a.mask = bytes_or_null(dmask.get());
      a.group_rows = bytes_or_null(dgroup.get());
      a.rows = rows;
      a.cols = cols;
      const double bc1 = 1.0 - std::pow(o.beta1, static_cast<double>(step));
      const double bc2 = 1.0 - std::pow(o.beta2, static_cast<double>(step));
      a.consts = {static_cast<float>(o.lr), static_cast<float>(o.beta1), static_cast<float>(o.beta2),
                  static_cast<float>(o.eps), static_cast<float>(bc1), static_cast<float>(std::sqrt(bc2))};
      a.reg = {static_cast<scalar_t>(2 * o.l2), static_cast<scalar_t>(2 * o.drift), static_cast<scalar_t>(o.l1_threshold)};
      a.group_threshold = o.group_threshold;
      masked_adam_step<scalar_t>(a, nullptr);
    });
  }
  const std::string what = describe(s, mask_kind, dtype) + (with_group_rows ? " with group rows" : "");
  const at::Tensor gw = dw.to_host(), gm = dm.to_host(), gv = dv.to_host();
  if (with_group_rows) {
    const Tol tol = adam_tol(dtype);
    EXPECT_TRUE(close(gw, w, tol)) << what;
    EXPECT_TRUE(close(gm, m, tol)) << what;
    EXPECT_TRUE(close(gv, v, tol)) << what;
  } else {
    // Element-wise only: the same operations, rounded the same way (NOTE: [no contraction]).
    EXPECT_TRUE(at::equal(gw, w)) << what << ": max |diff| " << (gw - w).abs().max().item<double>();
    EXPECT_TRUE(at::equal(gm, m)) << what;
    EXPECT_TRUE(at::equal(gv, v)) << what;
  }
  if (w.numel() == 0) return;
  // Frozen elements keep their state bits; and their weights too, outside group-shrunk rows.
  const at::Tensor frozen = mask.defined() ? mask.bitwise_and(kTrainable).eq(0) : at::zeros({rows, cols}, at::kBool);
  EXPECT_TRUE(at::equal(gm.masked_select(frozen), m0.masked_select(frozen))) << what;
  EXPECT_TRUE(at::equal(gv.masked_select(frozen), v0.masked_select(frozen))) << what;
  const at::Tensor plain_rows = group_rows.defined() ? group_rows.eq(0).unsqueeze(1).expand({rows, cols})
                                                     : at::ones({rows, cols}, at::kBool);
  const at::Tensor untouched = frozen.logical_and(plain_rows);
  EXPECT_TRUE(at::equal(gw.masked_select(untouched), w0.masked_select(untouched))) << what;
}

TEST_P(KernelParity, MaskedAdamStep_CUDA) {
  DEN_SKIP_WITHOUT_DEVICE();
  for (const Shape& s : kShapes) {
    for (MaskKind k : kMaskKinds) run_adam_parity(dtype(), s, k, /*with_group_rows=*/false);
  }
}

TEST_P(KernelParity, MaskedAdamGroupStep_CUDA) {
  DEN_SKIP_WITHOUT_DEVICE();
  for (const Shape& s : kShapes) {
    for (MaskKind k : kMaskKinds) run_adam_parity(dtype(), s, k, /*with_group_rows=*/true);
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, KernelParity, ::testing::Values(at::kFloat, at::kDouble),
                         [](const auto& info) { return std::string(c10::toString(info.param)); });

// The checked entry points reject bad arguments before touching the device, so this runs anywhere.
TEST(KernelEntryPointsTest, BadArgumentsThrowBeforeAnyLaunch) {
  float dummy = 0.0f;
  EXPECT_THROW(l1_prox<float>(&dummy, nullptr, -1, 0.1f, nullptr), std::invalid_argument);
  EXPECT_THROW(l1_prox<float>(&dummy, nullptr, 1, -0.1f, nullptr), std::invalid_argument);
  EXPECT_THROW(l1_prox<float>(nullptr, nullptr, 4, 0.1f, nullptr), std::invalid_argument);
  EXPECT_THROW(group_prox_rows<double>(nullptr, nullptr, -2, 3, 0.1, nullptr), std::invalid_argument);
  EXPECT_THROW(group_prox_rows<float>(&dummy, nullptr, 1, 1, std::nanf(""), nullptr), std::invalid_argument);
  EXPECT_THROW(row_norms<float>(nullptr, &dummy, nullptr, 1, 1, nullptr), std::invalid_argument);
  MaskedAdamArgs<float> a;
  a.rows = 1;
  a.cols = 1;
  a.consts = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.1f, 0.0316f};
  EXPECT_THROW(masked_adam_step<float>(a, nullptr), std::invalid_argument);  // null pointers
  a.w = a.exp_avg = a.exp_avg_sq = &dummy;
  a.grad = &dummy;
  a.consts.beta1 = 1.0f;
  EXPECT_THROW(masked_adam_step<float>(a, nullptr), std::invalid_argument);
  a.consts.beta1 = 0.9f;
  a.group_threshold = -1.0;
  EXPECT_THROW(masked_adam_step<float>(a, nullptr), std::invalid_argument);
  // Empty work launches nothing and needs no device.
  EXPECT_NO_THROW(l1_prox<float>(nullptr, nullptr, 0, 0.1f, nullptr));
  EXPECT_NO_THROW(group_prox_rows<float>(nullptr, nullptr, 3, 0, 0.1f, nullptr));
  EXPECT_NO_THROW(l1_prox<float>(&dummy, nullptr, 1, 0.0f, nullptr));  // threshold 0: identity
}

// Without a device, a launch fails and the error names the file and line of the check.
TEST(KernelEntryPointsTest, CudaErrorsCarryFileAndLine) {
  if (has_device()) GTEST_SKIP() << "a CUDA device is present; this checks the error path without one";
  float dummy = 0.0f;
  try {
    l1_prox<float>(&dummy, nullptr, 1, 0.1f, nullptr);
    FAIL() << "expected a CUDA error without a device";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_TRUE(std::regex_search(what, std::regex(R"(cuda/\w+\.(cu|cpp):[0-9]+: .* failed: )"))) << what;
  }
}

}  // namespace
}  // namespace den::cuda
