// The argument checks of the at::Tensor CUDA entry points (cuda/tensor_checks.h), on CPU tensors: they
// compare with a reference tensor's device, so they run here as they run on the GPU.

#include "cuda/tensor_checks.h"

#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <stdexcept>
#include <string>

namespace den::cuda::detail {
namespace {

constexpr const char* kOp = "den::cuda::masked_adam_step_";

// The c10 error of `call`, or a failure when it does not throw one.
template <typename Call>
std::string c10_message(Call&& call) {
  try {
    call();
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  }
  ADD_FAILURE() << "no c10::Error";
  return "";
}

TEST(CudaTensorChecksTest, LikeAcceptsTheSameShapeDtypeAndDevice) {
  const at::Tensor param = at::zeros({4, 5});
  EXPECT_NO_THROW(check_like(at::ones({4, 5}), param, kOp, "grad"));
  EXPECT_NO_THROW(check_like(at::ones({20}), param, kOp, "grad"));  // the kernels read numel elements
}

TEST(CudaTensorChecksTest, LikeRejectsWhatTheKernelsCannotRead) {
  const at::Tensor param = at::zeros({4, 5});
  EXPECT_NE(c10_message([&] { check_like(at::Tensor(), param, kOp, "grad"); }).find("grad is undefined"),
            std::string::npos);
  EXPECT_NE(c10_message([&] { check_like(at::ones({4, 6}), param, kOp, "anchor"); }).find("anchor must have 20 elements, got 24"),
            std::string::npos);
  EXPECT_NE(c10_message([&] { check_like(at::ones({4, 5}, at::kDouble), param, kOp, "exp_avg"); }).find("dtype"),
            std::string::npos);
  EXPECT_NE(c10_message([&] { check_like(at::ones({5, 4}).t(), param, kOp, "exp_avg_sq"); }).find("contiguous"),
            std::string::npos);
  EXPECT_NE(c10_message([&] { check_like(at::ones({4, 5}, at::TensorOptions().device(at::kMeta)), param, kOp, "grad"); })
                .find("must be on cpu"),
            std::string::npos);
}

TEST(CudaTensorChecksTest, ByteMaskNeedsOneByteAndOneElementPerEntry) {
  const at::Tensor param = at::zeros({4, 5});
  EXPECT_NO_THROW(check_byte_mask(at::Tensor(), 20, param, kOp, "mask"));  // no mask
  EXPECT_NO_THROW(check_byte_mask(at::ones({4, 5}, at::kByte), 20, param, kOp, "mask"));
  EXPECT_NO_THROW(check_byte_mask(at::ones({4}, at::kBool), 4, param, kOp, "group_rows"));
  EXPECT_NE(c10_message([&] { check_byte_mask(at::ones({4, 5}, at::kInt), 20, param, kOp, "mask"); }).find("one byte per element"),
            std::string::npos);
  EXPECT_NE(c10_message([&] { check_byte_mask(at::ones({5}, at::kByte), 4, param, kOp, "group_rows"); })
                .find("group_rows must have 4 elements, got 5"),
            std::string::npos);
  EXPECT_NE(c10_message([&] { check_byte_mask(at::ones({5, 4}, at::kByte).t(), 20, param, kOp, "mask"); }).find("contiguous"),
            std::string::npos);
}

TEST(CudaTensorChecksTest, KernelErrorsBecomeC10ErrorsWithTheirMessage) {
  try {
    launch_with_c10_errors(kOp, [] { throw std::invalid_argument("beta2 must be in [0, 1), got 1"); });
    FAIL() << "nothing thrown";
  } catch (const c10::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("masked_adam_step_: beta2 must be in [0, 1), got 1"), std::string::npos);
  }
  try {
    launch_with_c10_errors(kOp, [] { throw std::runtime_error("cuda/adam_kernels.cu:9: kernel launch failed"); });
    FAIL() << "nothing thrown";
  } catch (const c10::ValueError&) {
    FAIL() << "a runtime error is not a ValueError";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("kernel launch failed"), std::string::npos);
  }
  int calls = 0;
  EXPECT_NO_THROW(launch_with_c10_errors(kOp, [&] { ++calls; }));
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace den::cuda::detail
