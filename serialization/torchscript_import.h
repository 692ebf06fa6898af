#pragma once

#include "engine/config.h"
#include "engine/engine.h"

#include <cstdint>
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
    Unsupported,  ///< a module or operation den cannot map, or a structure that is no Linear/ReLU chain
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
  /// Hyperparameters for the tasks learned after the import (`hidden` is replaced by the model's
  /// layer sizes, `loss` must be softmax: a classifier trained with cross-entropy).
  engine::EngineConfig config;
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
};

// NOTE: [import mapping] A model maps when its forward is a chain Linear, ReLU, Linear, ReLU, ...,
// Linear (at least two Linears): the hidden Linears become hidden layers of units born at stage 1
// with Origin::Imported, the last Linear becomes task 1's head. Modules are read by type
// (torch.nn Linear, ReLU; Dropout, Identity and Flatten are the identity at inference on [N, D]
// inputs) and any other module is walked through its forward graph, so nn.Sequential, nested
// Sequentials and a plain nn.Module whose forward calls its submodules and relu (torch.relu,
// F.relu) in a chain map, from torch.jit.script and torch.jit.trace alike. Anything else that
// touches the data (another activation, a normalization, a convolution, a residual sum, control
// flow) is refused, naming the module and its type: mapping it approximately would silently change
// the model's predictions.

/// Loads a TorchScript model (torch.jit.save of a script or trace) and maps it (NOTE: [import
/// mapping]). The engine's task 1 outputs equal the model's outputs up to float rounding. Throws
/// ImportError, and std::invalid_argument for bad options (classes of the wrong count, repeated or
/// negative; an invalid config).
ImportedModel import_torchscript(const std::string& path, const ImportOptions& options = {});

}  // namespace den::io
