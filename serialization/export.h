#pragma once

#include "engine/engine.h"
#include "engine/evaluation/task_agnostic.h"
#include "serialization/checkpoint.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace den::io {

/// `task` value of the exporters that means every task at once.
constexpr int64_t kAllTasks = 0;

/// Facts an exported model records about itself (attributes / metadata), so that a user of the
/// file knows what input it expects.
struct ExportInfo {
  /// The feature normalization `den run` applied before the network ("none", "minmax",
  /// "standardize").
  std::string normalization = "none";
  std::string data_dir;  ///< where the training data came from, if known
  /// The normalization's statistics, x' = (x - shift) * scale, `[input_dim]` float32. When defined,
  /// the exported model applies them first, so that it takes raw inputs; undefined: inputs go in
  /// as they are.
  at::Tensor shift = {}, scale = {};  // initialized, so aggregate initialisation with fewer fields is clean under -Wextra
  /// How images become the input (a checkpoint learned from image folders). When set, a
  /// TorchScript module takes raw images [N, C, H, W] of pixel values 0..255 (uint8 or float, any
  /// size, gray or RGB) and prepares them as `den predict --images` does (NOTE: [exported image
  /// input]); ONNX records the preprocessing in its metadata.
  std::optional<ImageInput> images = std::nullopt;
  /// The frozen trunk of an imported model (NOTE: [frozen trunk]): a TorchScript export runs it
  /// first, as a submodule `trunk`, so that it takes the model's own inputs; ONNX writes it as
  /// nodes (NOTE: [trunk as ONNX] in onnx_trunk.cpp).
  std::optional<FrozenTrunk> trunk = std::nullopt;
  /// Class id -> name, recorded by the exports (TorchScript attributes `class_name_ids` and
  /// `class_names`, ONNX metadata `class_name_<id>`).
  std::map<int64_t, std::string> class_names = {};
};

/// One layer of an exported network. A hidden fc layer is relu(x weight^T + bias); a hidden conv
/// layer is pooling(relu(conv2d(x, weight, bias))) with the spec's stride, padding and pooling, and
/// the first fc layer after it reads its output flattened (PyTorch's flatten(1)); a head is affine.
struct AffineLayer {
  at::Tensor weight;  ///< float32 `[n_out, n_in]` (fc, heads) or `[n_out, C_in, kh, kw]` (conv)
  at::Tensor bias;    ///< float32 `[n_out]`
  engine::LayerSpec spec;  ///< kind and geometry (units = n_out); fc for heads
};

/// The network one task uses, compacted for deployment: the hidden units born at stages <= task
/// (timestamped inference, Engine::compact), then, repeatedly, every unit that cannot affect the
/// output removed (a zero incoming row including its bias outputs relu(0) = 0; a unit whose
/// outgoing columns are zero is never read), keeping at least one unit per layer. Outputs equal
/// Engine::predict(task, x) up to float summation order.
struct TaskNetwork {
  int64_t task = 0;
  int64_t input_dim = 0;
  std::vector<int64_t> input_shape;  ///< C,H,W that a conv first layer reads the input as; empty for fc
  std::vector<AffineLayer> hidden;   ///< relu after each
  AffineLayer head;                  ///< logits
  /// Hidden units per layer before the dead-unit removal (the network as it was after `task`).
  std::vector<int64_t> visible_units;
};

/// Every task's network over shared tensors: task s uses the first sizes[s-1][l] units of hidden
/// layer l (new units are appended, so a task's units are a prefix: the leading filters of a conv
/// weight and their channels, the leading columns of an fc weight) and its head.
struct MultiTaskNetwork {
  int64_t input_dim = 0;
  std::vector<int64_t> input_shape;  ///< as in TaskNetwork
  std::vector<AffineLayer> hidden;   ///< all live units
  std::vector<AffineLayer> heads;    ///< heads[s-1]: `[c_s, sizes[s-1].back() * blocks.back()]`
  std::vector<std::vector<int64_t>> sizes;
  /// The column map (engine/training/network.h): columns per unit below of each hidden layer, then of
  /// the heads.
  std::vector<int64_t> blocks;
};

/// Throws std::invalid_argument for a task id outside 1..num_tasks (or kAllTasks where allowed).
void check_export_task(const engine::Engine& engine, int64_t task, bool allow_all);

/// The compacted network of task `task` (1..num_tasks).
TaskNetwork task_network(const engine::Engine& engine, int64_t task);
/// Every task's network; throws std::runtime_error if the engine has no task.
MultiTaskNetwork multi_task_network(const engine::Engine& engine);

/// Writes a TorchScript module (torch::jit::load / torch.jit.load) to `path` atomically.
/// One task: `forward(x) -> logits` `[N, c]` and `scores(x)` (softmax or sigmoid, as trained).
/// kAllTasks: `forward(x, task: int)` and `scores(x, task: int)`. Attributes: `task`, `num_tasks`,
/// `input_dim`, `loss`, `normalization`, `description`. Throws WriteError, std::invalid_argument.
void export_torchscript(const engine::Engine& engine, int64_t task, const std::string& path,
                        const ExportInfo& info = {});

/// Writes one TorchScript module that classifies among every class the engine has seen, without a
/// task id (NOTE: [task-agnostic prediction] in engine/task_agnostic.h): `forward(x)` returns the
/// calibrated class scores `[N, K]` in the column order of the attribute `classes` (the
/// classifier's classes()), `predict(x)` the class id of each row's best score (den predict's
/// classes), `scores(x)` their softmax. float64 after the heads, as the classifier computes.
/// Throws WriteError, std::invalid_argument when the classifier does not describe the engine's tasks.
void export_torchscript_agnostic(const engine::Engine& engine, const engine::TaskAgnosticClassifier& classifier,
                                 const std::string& path, const ExportInfo& info = {});

/// Whether this build can write ONNX (Debian's libonnx-dev was found at configure time).
bool onnx_supported();
/// The ONNX model (opset 13, serialized onnx::ModelProto) of task `task`: input "input"
/// `[N, input_dim]`, output "logits" `[N, c]` through Gemm and Relu nodes. kAllTasks: one output
/// "logits_task_<s>" per task, each through Slice nodes over the shared weights. With a frozen trunk
/// (info.trunk) the input is the trunk's `[N, trunk input_dim]` and the trunk's nodes come first.
/// The model passes onnx::checker::check_model before it is returned. Throws std::runtime_error when
/// ONNX support is not built in, std::invalid_argument for a trunk op it does not write.
std::string onnx_model(const engine::Engine& engine, int64_t task, const ExportInfo& info = {});
/// Writes onnx_model() to `path` atomically.
void export_onnx(const engine::Engine& engine, int64_t task, const std::string& path, const ExportInfo& info = {});

/// How dot_graph draws the hidden layers.
enum class NetworkView {
  /// One node per layer and birth stage, sized and labelled by its unit count; edges where nonzero
  /// weights connect two groups; split lineage as dashed edges with counts. Readable at any size.
  Grouped,
  /// One node per unit (graph::UnitGraph::write_graphviz): for small networks.
  PerUnit,
};

/// The grown network as a Graphviz DOT graph, coloured by birth stage (graph::graphviz_stage_color).
/// A task id restricts it to what that task sees (units born at stages <= task, heads 1..task);
/// kAllTasks draws everything.
std::string dot_graph(const engine::Engine& engine, int64_t task, NetworkView view = NetworkView::Grouped);
/// Writes dot_graph() to `path` atomically.
void export_dot(const engine::Engine& engine, int64_t task, const std::string& path,
                NetworkView view = NetworkView::Grouped);

}  // namespace den::io
