#include "serialization/trunk.h"
#include "serialization/internal/torch_error.h"

#include <c10/core/InferenceMode.h>
#include <torch/csrc/jit/serialization/import.h>

#include <algorithm>
#include <sstream>
#include <stdexcept>

namespace den::io {

namespace {

int64_t product(const std::vector<int64_t>& dims) {
  int64_t p = 1;
  for (int64_t d : dims) p *= d;
  return p;
}

}  // namespace

int64_t FrozenTrunk::input_dim() const { return product(input_shape); }
int64_t FrozenTrunk::feature_dim() const { return product(feature_shape); }

torch::jit::Module load_trunk_module(const FrozenTrunk& trunk) {
  torch::jit::Module module;
  try {
    std::istringstream bytes(trunk.module);
    module = torch::jit::load(bytes, at::kCPU);
  } catch (const std::exception& e) {
    const std::string what = internal::torch_error_line(e);
    throw std::runtime_error("the frozen trunk does not load: " + what);
  }
  module.eval();
  return module;
}

TrunkRunner::TrunkRunner(const FrozenTrunk& trunk)
    : shapes_{std::string(), trunk.input_shape, trunk.feature_shape, trunk.cut}, module_(load_trunk_module(trunk)) {}

at::Tensor TrunkRunner::features(const at::Tensor& x, int64_t batch, const std::function<void(int64_t, int64_t)>& progress) {
  const FrozenTrunk& trunk = shapes_;
  if (x.dim() != 2 || x.size(1) != trunk.input_dim()) {
    throw std::invalid_argument("the frozen trunk reads samples of " + std::to_string(trunk.input_dim()) +
                                " values, got " + std::to_string(x.dim() == 2 ? x.size(1) : x.numel()));
  }
  const c10::InferenceMode inference;
  const int64_t n = x.size(0);
  if (batch <= 0) batch = std::clamp<int64_t>(kTrunkBatchBytes / (trunk.input_dim() * 4), 1, 256);
  at::Tensor out = at::empty({n, trunk.feature_dim()}, at::kFloat);
  std::vector<int64_t> shape = trunk.input_shape;
  shape.insert(shape.begin(), -1);
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t rows = std::min(batch, n - start);
    at::Tensor features;
    try {
      features = module_.forward({x.narrow(0, start, rows).to(at::kFloat).reshape(shape)}).toTensor();
    } catch (const std::exception& e) {
      const std::string what = internal::torch_error_line(e);
      throw std::runtime_error("the frozen trunk fails on samples " + std::to_string(start) + ".." +
                               std::to_string(start + rows - 1) + ": " + what);
    }
    if (features.numel() != rows * trunk.feature_dim()) {
      throw std::runtime_error("the frozen trunk gives " + std::to_string(features.numel() / std::max<int64_t>(rows, 1)) +
                               " features per sample, not " + std::to_string(trunk.feature_dim()));
    }
    out.narrow(0, start, rows).copy_(features.reshape({rows, -1}));
    if (progress) progress(start + rows, n);
  }
  return out;
}

at::Tensor trunk_features(const FrozenTrunk& trunk, const at::Tensor& x, int64_t batch,
                          const std::function<void(int64_t, int64_t)>& progress) {
  return TrunkRunner(trunk).features(x, batch, progress);
}

}  // namespace den::io
