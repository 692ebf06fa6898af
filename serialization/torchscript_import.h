#pragma once

#include "engine/config.h"
#include "engine/engine.h"
#include "serialization/trunk.h"

#include <torch/csrc/jit/api/module.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace den::io {

/// A TorchScript model that cannot become a DEN network. `kind()` says why; the message names the
/// file and, for an unmappable layer, the module's path and type.
class ImportError : public std::runtime_error {
 public:
  enum class Kind {
    Unreadable,   ///< missing, or not a TorchScript archive torch::jit::load can read
    Unsupported,  ///< a module or operation den cannot map, or a structure that is no chain of den layers
  };
  ImportError(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

/// Settings of an import.
struct ImportOptions {
  /// Class id of each output of the model's last Linear; empty: 0..c-1. Distinct and >= 0.
  std::vector<int64_t> classes;
  /// Hyperparameters for the tasks learned after the import (`layers` is replaced by the model's
  /// layers, `input_shape` is the images' C,H,W for a model with conv layers and ignored otherwise,
  /// `loss` must be softmax: a classifier trained with cross-entropy).
  engine::EngineConfig config;
  /// The frozen trunk (NOTE: [frozen trunk]): empty, the shortest that lets the rest map; a
  /// top-level module's path, the trunk ends after it; "none", no trunk (a module that does not map
  /// is refused).
  std::string trunk;
};

/// One step of the model's forward as den read it, for messages.
struct ImportedLayer {
  std::string module;  ///< path of the module in the model ("0", "body.fc1"; "<model>" for the top module)
  std::string type;    ///< "torch.nn.Linear", "torch.nn.Dropout", ..., or a functional op ("aten::relu", "function relu")
};

/// A model trained elsewhere as a DEN engine that has learned one task.
struct ImportedModel {
  engine::Engine engine;
  std::vector<int64_t> output_classes;  ///< class id of each of task 1's head outputs
  std::vector<ImportedLayer> layers;    ///< what each module became, in forward order
  /// The part of the model that runs frozen before the den layers, when the model does not map
  /// whole; the engine's inputs are its features.
  std::optional<FrozenTrunk> trunk;
};

// NOTE: [import mapping] A model maps when its forward is a chain of den layers: conv layers
// (Conv2d, an optional BatchNorm2d, ReLU, then at most one MaxPool2d, AvgPool2d or
// AdaptiveAvgPool2d(1); max pooling may also come before the ReLU, with which it commutes), then fc
// layers (Linear, an optional BatchNorm1d, ReLU), then the last Linear, the head, with at least one
// hidden layer. The hidden layers become layers of units (conv filters) born at stage 1 with
// Origin::Imported, the last Linear becomes task 1's head. A BatchNorm is folded into the layer
// before it with its running statistics, exactly as at inference: W' = W * s, b' = b * s + beta -
// mean * s with s = gamma / sqrt(var + eps), computed in float64. A Conv2d maps when it is a plain
// convolution (groups 1, dilation 1, zero padding, the same stride and padding both ways); a
// pooling when it is square with its stride equal to its window, no padding and no ceil mode, or
// when it averages the whole map (AdaptiveAvgPool2d to 1x1, den's "gap"). Settings are read from
// the module's attributes (torch.jit.script) or from the constant arguments of its op
// (torch.jit.trace). Modules are read by type (torch.nn Conv2d, BatchNorm2d, BatchNorm1d,
// MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Linear, ReLU, Flatten; Dropout, Dropout1d, Dropout2d
// and Identity are the identity at inference) and any other module is walked through its forward
// graph, so nn.Sequential, nested Sequentials and a plain nn.Module whose forward calls its
// submodules, relu (torch.relu, F.relu), F.adaptive_avg_pool2d and torch.flatten in a chain map,
// from script and trace alike. A conv model needs the input's C,H,W (ImportOptions::config's
// input_shape), and its first Linear must read the last conv layer's output flattened. Anything
// else that touches the data (another activation, a BatchNorm without running statistics or after
// a ReLU, a residual sum, control flow) is refused, naming the module and its type: mapping it
// approximately would silently change the model's predictions.

/// Loads a TorchScript model (torch.jit.save of a script or trace) and maps it (NOTE: [import
/// mapping]). The engine's task 1 outputs equal the model's outputs up to float rounding. Throws
/// ImportError, and std::invalid_argument for bad options (classes of the wrong count, repeated or
/// negative; an invalid config).
ImportedModel import_torchscript(const std::string& path, const ImportOptions& options = {});

/// import_torchscript() of a module already loaded (or built: the ONNX translator's); `path` names it
/// in messages. The module's forward graph is cut when a trunk is (NOTE: [frozen trunk]).
ImportedModel import_module(torch::jit::Module model, const std::string& path, const ImportOptions& options = {});

/// An ONNX model (torch.onnx.export, or tf2onnx for Keras models) imported as import_torchscript()
/// imports its translation into TorchScript (serialization/onnx_import.h): the operators den maps
/// become den layers, the rest the frozen trunk, a final Softmax is dropped. A graph that transposes
/// an NHWC input to NCHW first (tf2onnx's Keras layout) is imported without that transpose: den's
/// samples are C,H,W. Throws ImportError (exit 7) naming the node and its op type for an operator
/// the translator does not take.
ImportedModel import_onnx(const std::string& path, const ImportOptions& options = {});

}  // namespace den::io
