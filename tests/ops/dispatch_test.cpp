// Device dispatch of the ops: CUDA tensors go to the kernels of cuda/ in builds with the CUDA
// at::Tensor glue (LibTorch with CUDA), and are refused with a clear error otherwise. The *_CUDA
// tests compare each op on a CUDA tensor with the same op on the CPU and skip without a device.
// Tolerances as in tests/cuda/kernels_test.cpp.

#include "ops/adam.h"
#include "ops/prox.h"

#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/Context.h>

#include <string>

namespace den::ops {
namespace {

bool cuda_tensors_available() { return at::hasCUDA() && at::getNumGPUs() > 0; }

#if defined(DEN_WITH_CUDA_TORCH)

class DispatchTest : public ::testing::TestWithParam<at::ScalarType> {
 protected:
  void SetUp() override {
    if (!cuda_tensors_available()) GTEST_SKIP() << "no CUDA device visible to LibTorch";
    at::manual_seed(3);
  }
  at::ScalarType dtype() const { return GetParam(); }
  double rtol() const { return dtype() == at::kFloat ? 1e-5 : 1e-10; }
  double atol() const { return dtype() == at::kFloat ? 1e-6 : 1e-12; }
};

TEST_P(DispatchTest, ProxOpsMatchCpu_CUDA) {
  for (auto [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {37, 53}, {3, 5000}, {300, 1}}) {
    const at::Tensor w = at::randn({rows, cols}, dtype()) * 0.3;
    const at::Tensor mask = at::rand({rows, cols}).lt(0.5);
    const at::Tensor row_mask = at::rand({rows}).lt(0.5);

    at::Tensor cpu = w.clone(), gpu = w.cuda();
    l1_prox_(cpu, 0.1, mask);
    l1_prox_(gpu, 0.1, mask.cuda());
    EXPECT_TRUE(at::equal(gpu.cpu(), cpu));

    cpu = w.clone();
    gpu = w.cuda();
    group_prox_rows_(cpu, 0.5, row_mask);
    group_prox_rows_(gpu, 0.5, row_mask.cuda());
    EXPECT_TRUE(at::allclose(gpu.cpu(), cpu, rtol(), atol()));

    const at::Tensor prev = w + 0.01;
    EXPECT_TRUE(at::allclose(row_norms(w.cuda()).cpu(), row_norms(w), rtol(), atol()));
    EXPECT_TRUE(at::allclose(drift_row_norms(w.cuda(), prev.cuda()).cpu(), drift_row_norms(w, prev), rtol(), atol()));
    EXPECT_TRUE(at::allclose(row_norms(w.t().cuda()).cpu(), row_norms(w.t()), rtol(), atol()));  // non-contiguous
  }
}

TEST_P(DispatchTest, FusedAdamMatchesCpu_CUDA) {
  const int64_t rows = 65, cols = 785;
  at::Tensor w = at::randn({rows, cols}, dtype()) * 0.05, m = at::zeros_like(w), v = at::zeros_like(w);
  at::Tensor gw = w.cuda(), gm = m.cuda(), gv = v.cuda();
  const at::Tensor anchor = w + 0.01, mask = at::randint(0, 4, {rows, cols}, at::kByte);
  const at::Tensor group_rows = at::rand({rows}).lt(0.5);
  MaskedAdamOptions o;
  o.l2 = 1e-3;
  o.drift = 0.5;
  o.l1_threshold = 1e-3;
  o.group_threshold = 0.3;
  for (int64_t step = 1; step <= 3; ++step) {
    o.step = step;
    const at::Tensor grad = at::randn({rows, cols}, dtype());
    masked_adam_group_step_(w, grad, m, v, mask, anchor, group_rows, o);
    masked_adam_group_step_(gw, grad.cuda(), gm, gv, mask.cuda(), anchor.cuda(), group_rows.cuda(), o);
  }
  EXPECT_TRUE(at::allclose(gw.cpu(), w, rtol(), atol()));
  EXPECT_TRUE(at::allclose(gm.cpu(), m, rtol(), atol()));
  EXPECT_TRUE(at::allclose(gv.cpu(), v, rtol(), atol()));
}

TEST_P(DispatchTest, MixedDevicesAreRejected_CUDA) {
  at::Tensor gw = at::randn({4, 4}, dtype()).cuda();
  EXPECT_THROW(l1_prox_(gw, 0.1, at::ones({4, 4}, at::kBool)), c10::Error);
  at::Tensor gm = at::zeros_like(gw), gv = at::zeros_like(gw);
  EXPECT_THROW(masked_adam_step_(gw, at::randn({4, 4}, dtype()), gm, gv, {}, {}, MaskedAdamOptions{}), c10::Error);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, DispatchTest, ::testing::Values(at::kFloat, at::kDouble),
                         [](const auto& info) { return std::string(c10::toString(info.param)); });

#else  // no CUDA glue

// A build whose LibTorch has CUDA but that skipped the glue (DEN_CUDA=OFF) must refuse CUDA tensors
// with a message that says why, instead of reading device memory on the host.
TEST(DispatchTest, CudaTensorWithoutCudaSupportIsAClearError_CUDA) {
  if (!cuda_tensors_available()) GTEST_SKIP() << "this LibTorch cannot make CUDA tensors";
  at::Tensor w = at::randn({4, 4}).cuda();
  try {
    l1_prox_(w, 0.1);
    FAIL() << "expected an error for a CUDA tensor";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("built without CUDA support"), std::string::npos) << e.what();
  }
}

#endif

// Tensors on devices the ops do not serve are refused at the boundary.
TEST(DispatchTest, MetaTensorsAreRejected) {
  at::Tensor w = at::empty({4, 4}, at::TensorOptions().device(at::kMeta));
  EXPECT_THROW(l1_prox_(w, 0.1), c10::Error);
  EXPECT_THROW(row_norms(w), c10::Error);
}

}  // namespace
}  // namespace den::ops
