#pragma once

// The frozen trunk of an imported model (NOTE: [frozen trunk] in serialization/torchscript_import.cpp):
// a TorchScript module that runs before the den layers and never learns.

#include <ATen/ATen.h>
#include <torch/csrc/jit/api/module.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace den::io {

/// A frozen trunk as plain values: the TorchScript archive (torch.jit.save's bytes) and the shapes
/// of one sample on its two sides.
struct FrozenTrunk {
  std::string module;                  ///< the TorchScript archive
  std::vector<int64_t> input_shape;    ///< dims of one raw sample ([C, H, W], or [D])
  std::vector<int64_t> feature_shape;  ///< dims of one sample's output
  std::string cut;                     ///< the model's last module in the trunk, for messages

  int64_t input_dim() const;    ///< product of input_shape
  int64_t feature_dim() const;  ///< product of feature_shape
};

/// The trunk's archive as a module in eval mode. Throws std::runtime_error when it does not load.
torch::jit::Module load_trunk_module(const FrozenTrunk& trunk);

/// The input bytes of one batch through a trunk when no batch size is given: 32 MiB, 55 RGB images
/// of 224 x 224, whose ResNet-18 activations then take a few hundred MB.
constexpr int64_t kTrunkBatchBytes = int64_t{32} << 20;

/// A frozen trunk ready to run: its archive deserialized once, for many calls.
class TrunkRunner {
 public:
  /// Throws std::runtime_error when the archive does not load.
  explicit TrunkRunner(const FrozenTrunk& trunk);

  /// The trunk's features of `x` (float32 [N, input_dim], rows as den reads samples), computed in
  /// batches of `batch` without autograd (0: kTrunkBatchBytes of input, at most 256 samples, since
  /// an image model's activations are many times its input): float32 [N, feature_dim].
  /// `progress(done, total)` is called after each batch when given. Throws std::invalid_argument
  /// for rows of another width, and std::runtime_error when the module fails on the samples.
  at::Tensor features(const at::Tensor& x, int64_t batch = 0,
                      const std::function<void(int64_t, int64_t)>& progress = {});

 private:
  FrozenTrunk shapes_;  ///< the trunk's shapes and name (its archive is in module_)
  torch::jit::Module module_;
};

/// TrunkRunner(trunk).features(x, batch, progress): for one call.
at::Tensor trunk_features(const FrozenTrunk& trunk, const at::Tensor& x, int64_t batch = 0,
                          const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace den::io
