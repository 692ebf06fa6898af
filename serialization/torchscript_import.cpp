// TorchScript import: a model trained by PyTorch becomes task 1 of a DEN engine (NOTE: [import mapping]).

#include "serialization/torchscript_import.h"
#include "serialization/internal/torch_error.h"

#include "serialization/onnx_import.h"

#include "engine/engine_state.h"
#include "engine/hyperparameters.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/serialization/import.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

namespace den::io {

namespace {

using torch::jit::Module;
using torch::jit::Node;
using torch::jit::Value;

/// A module's type without the TorchScript prefixes: "torch.nn.modules.linear.Linear" for both
/// "__torch__.torch.nn.modules.linear.Linear" and a trace's "...linear.___torch_mangle_3.Linear".
std::string type_name(const Module& m) {
  const auto name = m.type()->name();
  if (!name) return "<unnamed>";
  std::string out;
  for (const std::string& atom : name->atoms()) {
    if (atom == "__torch__" || atom.rfind("___torch_mangle_", 0) == 0) continue;
    out += (out.empty() ? "" : ".") + atom;
  }
  return out;
}

/// "Linear" for a torch.nn module type, empty for a user's own class.
std::string torch_nn_class(const std::string& type) {
  const std::string prefix = "torch.nn.modules.";
  if (type.rfind(prefix, 0) != 0) return "";
  return type.substr(type.rfind('.') + 1);
}

/// "torch.nn.Linear" for a torch.nn type, else the type as it is.
std::string display_type(const std::string& type) {
  const std::string cls = torch_nn_class(type);
  return cls.empty() ? type : "torch.nn." + cls;
}

/// One step of the model's forward chain.
struct Step {
  enum class Kind { Linear, Conv, Norm, Pool, Relu, Flatten, Identity } kind;
  std::string module;  ///< path in the model
  std::string type;    ///< display type of the module, or the functional op
  /// Linear and Conv: `[out, in]` or `[out, in, kh, kw]` and `[out]`. Norm: the per-channel scale
  /// and shift a BatchNorm applies at inference, y = x * weight + bias.
  at::Tensor weight, bias;
  engine::LayerSpec spec;   ///< Conv: stride and padding; Pool: its kind and window
};

/// One node of the model's top-level forward (a child module called, or an op on the data): the
/// frozen trunk is cut between two of them (NOTE: [frozen trunk]).
struct TopItem {
  std::string module;  ///< path of the child module, or "<model>" for an op
  std::string type;
  size_t first_step = 0, end_step = 0;  ///< its steps in ChainReader::steps()
  torch::jit::Graph* graph = nullptr;   ///< the method graph the node is in
  Value* output = nullptr;              ///< the node's output there
  std::string error;                    ///< why it does not map (empty when it maps)
};

// The argument names of the ATen ops whose settings OpSettings reads.
const std::vector<std::string> kConvArguments = {"input",    "weight",     "bias",           "stride", "padding",
                                                 "dilation", "transposed", "output_padding", "groups"};
const std::vector<std::string> kConv2dArguments = {"input", "weight", "bias", "stride", "padding", "dilation", "groups"};
const std::vector<std::string> kMaxPoolArguments = {"input", "kernel_size", "stride", "padding", "dilation", "ceil_mode"};
const std::vector<std::string> kAvgPoolArguments = {"input", "kernel_size", "stride", "padding", "ceil_mode"};
const std::vector<std::string> kBatchNormArguments = {"input",       "weight",   "bias", "running_mean", "running_var",
                                                      "training",    "momentum", "eps",  "cudnn_enabled"};

/// The integers of an attribute or a constant: an int, or a tuple or list of ints.
std::optional<std::vector<int64_t>> ints_of(const c10::IValue& v) {
  if (v.isInt()) return std::vector<int64_t>{v.toInt()};
  std::vector<int64_t> out;
  if (v.isIntList()) return v.toIntVector();
  if (v.isTuple()) {
    for (const c10::IValue& e : v.toTupleRef().elements()) {
      if (!e.isInt()) return std::nullopt;
      out.push_back(e.toInt());
    }
    return out;
  }
  return std::nullopt;
}

/// A traced graph's constant integers: a prim::Constant, or a prim::ListConstruct of them.
std::optional<std::vector<int64_t>> constant_ints(const Value* v) {
  if (v->node()->kind() == c10::prim::ListConstruct) {
    std::vector<int64_t> out;
    for (const Value* e : v->node()->inputs()) {
      const std::optional<c10::IValue> c = torch::jit::toIValue(e);
      if (!c || !c->isInt()) return std::nullopt;
      out.push_back(c->toInt());
    }
    return out;
  }
  const std::optional<c10::IValue> c = torch::jit::toIValue(v);
  return c ? ints_of(*c) : std::nullopt;
}

/// Both entries of a 2-D setting when they are equal (den's stride, padding and windows are
/// square); one entry counts for both.
std::optional<int64_t> square(const std::optional<std::vector<int64_t>>& v) {
  if (!v || v->empty() || v->size() > 2 || (v->size() == 2 && (*v)[0] != (*v)[1])) return std::nullopt;
  return v->front();
}

/// The settings of a module's 2-D op, from its attributes (torch.jit.script) or from the op's
/// constant arguments in its forward graph (torch.jit.trace), by name; nullopt when neither holds it.
/// A functional op of a forward (torch.conv2d(x, self.w, ...)) has its constant arguments only.
class OpSettings {
 public:
  OpSettings(const Module& m, c10::Symbol op, std::vector<std::string> argument_names)
      : module_(&m), names_(std::move(argument_names)) {
    if (!m.find_method("forward")) return;
    for (const Node* node : m.get_method("forward").graph()->nodes()) {
      if (node->kind() == op) node_ = node;
    }
  }
  OpSettings(const Node* node, std::vector<std::string> argument_names)
      : names_(std::move(argument_names)), node_(node) {}
  std::optional<std::vector<int64_t>> ints(const std::string& name) const {
    if (module_ != nullptr && module_->hasattr(name)) return ints_of(module_->attr(name));
    const Value* argument = traced_argument(name);
    return argument != nullptr ? constant_ints(argument) : std::nullopt;
  }
  /// A bool or string setting from the attributes, or from the traced op's constant.
  std::optional<c10::IValue> value(const std::string& name) const {
    if (module_ != nullptr && module_->hasattr(name)) return module_->attr(name);
    const Value* argument = traced_argument(name);
    if (argument == nullptr) return std::nullopt;
    const auto constant = torch::jit::toIValue(argument);
    return constant ? std::optional<c10::IValue>(*constant) : std::nullopt;
  }

 private:
  /// The traced op's argument called `name`, or null.
  const Value* traced_argument(const std::string& name) const {
    const auto at = std::find(names_.begin(), names_.end(), name);
    if (node_ == nullptr || at == names_.end()) return nullptr;
    const size_t i = static_cast<size_t>(at - names_.begin());
    return i < node_->inputs().size() ? node_->input(i) : nullptr;
  }

  const Module* module_ = nullptr;
  std::vector<std::string> names_;
  const Node* node_ = nullptr;
};

class ChainReader {
 public:
  explicit ChainReader(std::string file) : file_(std::move(file)) {}

  /// Appends the steps of `m` applied to the chain's current value.
  void read_module(const Module& m, const std::string& path) {
    const std::string type = type_name(m);
    const std::string cls = torch_nn_class(type);
    if (cls == "Linear") {
      // A trace of Linear(bias=False) has no bias attribute at all; a script's is None.
      const c10::IValue bias = m.hasattr("bias") ? m.attr("bias") : c10::IValue();
      add_linear(path, display_type(type), m.attr("weight").toTensor(), bias.isTensor() ? bias.toTensor() : at::Tensor());
    } else if (cls == "Conv2d") {
      const c10::IValue bias = m.hasattr("bias") ? m.attr("bias") : c10::IValue();
      add_conv(OpSettings(m, c10::aten::_convolution, kConvArguments), path, display_type(type),
               m.attr("weight").toTensor(), bias.isTensor() ? bias.toTensor() : at::Tensor());
    } else if (cls == "MaxPool2d" || cls == "AvgPool2d") {
      const bool max = cls == "MaxPool2d";
      add_pool(OpSettings(m, max ? c10::aten::max_pool2d : c10::aten::avg_pool2d,
                          max ? kMaxPoolArguments : kAvgPoolArguments),
               path, display_type(type), max ? engine::PoolKind::Max : engine::PoolKind::Avg);
    } else if (cls == "AdaptiveAvgPool2d") {
      const OpSettings settings(m, c10::aten::adaptive_avg_pool2d, {"input", "output_size"});
      add_global_pool(path, display_type(type), settings.ints("output_size"));
    } else if (cls == "BatchNorm2d" || cls == "BatchNorm1d") {
      const auto tensor = [&](const char* name) {
        return m.hasattr(name) && m.attr(name).isTensor() ? m.attr(name).toTensor() : at::Tensor();
      };
      add_batch_norm(OpSettings(m, c10::aten::batch_norm, kBatchNormArguments), path, display_type(type),
                     tensor("weight"), tensor("bias"), tensor("running_mean"), tensor("running_var"));
    } else if (cls == "ReLU") {
      steps_.push_back({Step::Kind::Relu, path, display_type(type), {}, {}, {}});
    } else if (cls == "Flatten") {
      steps_.push_back({Step::Kind::Flatten, path, display_type(type), {}, {}, {}});
    } else if (cls == "Dropout" || cls == "Dropout1d" || cls == "Dropout2d" || cls == "Identity") {
      // Dropout is the identity at inference.
      steps_.push_back({Step::Kind::Identity, path, display_type(type), {}, {}, {}});
    } else if (!cls.empty() && cls != "Sequential") {
      unsupported(path, display_type(type), "");
    } else {
      read_method(m, path, display_type(type), "forward");
    }
  }

  /// Reads the model itself: as read_module, but every node of its forward is kept as a TopItem,
  /// and one that does not map is recorded instead of refused, for the trunk to take.
  void read_model(const Module& m) {
    top_ = true;
    read_method(m, "", display_type(type_name(m)), "forward");
  }

  const std::vector<Step>& steps() const { return steps_; }
  const std::vector<TopItem>& items() const { return items_; }

  [[noreturn]] void unsupported(const std::string& path, const std::string& type, const std::string& what) const {
    throw ImportError(ImportError::Kind::Unsupported,
                      "'" + file_ + "': module '" + path + "' (" + type + ")" + (what.empty() ? "" : " " + what) +
                          " cannot be mapped: den imports chains of Conv2d, BatchNorm2d, ReLU, MaxPool2d, AvgPool2d "
                          "or AdaptiveAvgPool2d(1), Flatten, Linear and BatchNorm1d layers (Dropout and Identity pass "
                          "through)");
  }

 private:
  void add_linear(const std::string& path, const std::string& type, const at::Tensor& weight, const at::Tensor& bias) {
    if (weight.dim() != 2) unsupported(path, type, "has a weight of " + std::to_string(weight.dim()) + " dimensions");
    at::Tensor w = weight.detach().to(at::kFloat).contiguous().clone();
    at::Tensor b = bias.defined() ? bias.detach().to(at::kFloat).reshape({-1}).contiguous().clone()
                                  : at::zeros({w.size(0)}, at::kFloat);
    if (b.size(0) != w.size(0)) unsupported(path, type, "has a bias of another width than its weight");
    if (!w.isfinite().all().item<bool>() || !b.isfinite().all().item<bool>()) {
      unsupported(path, type, "has NaN or infinite parameters");
    }
    steps_.push_back({Step::Kind::Linear, path, type, w, b, {}});
  }

  /// A Conv2d maps when it is a plain 2-D convolution: groups 1, dilation 1, zero padding, and the
  /// same stride and padding in both directions.
  void add_conv(const OpSettings& settings, const std::string& path, const std::string& type, const at::Tensor& weight,
                const at::Tensor& bias) {
    if (weight.dim() != 4) unsupported(path, type, "has a weight of " + std::to_string(weight.dim()) + " dimensions");
    const std::optional<std::vector<int64_t>> groups = settings.ints("groups"), dilation = settings.ints("dilation");
    if (!groups || groups->front() != 1) unsupported(path, type, "is a grouped (or depthwise) convolution");
    if (!dilation || std::any_of(dilation->begin(), dilation->end(), [](int64_t d) { return d != 1; })) {
      unsupported(path, type, "is dilated");
    }
    const std::optional<c10::IValue> mode = settings.value("padding_mode");
    if (mode && mode->isString() && mode->toStringRef() != "zeros") {
      unsupported(path, type, "pads with '" + mode->toStringRef() + "', not zeros");
    }
    const std::optional<int64_t> stride = square(settings.ints("stride")), padding = square(settings.ints("padding"));
    if (!stride || !padding) {
      unsupported(path, type, "has a stride or padding den cannot map (different in the two directions, or 'same'/'valid')");
    }
    add_linear(path, type, weight.flatten(1), bias);
    Step& step = steps_.back();
    step.kind = Step::Kind::Conv;
    step.weight = step.weight.view(weight.sizes());
    step.spec = engine::LayerSpec::conv(weight.size(0), weight.size(2), *stride, *padding);
    step.spec.kernel_w = weight.size(3);
  }

  /// A pooling maps when its stride is its window, square, without padding or ceil mode.
  void add_pool(const OpSettings& settings, const std::string& path, const std::string& type, engine::PoolKind kind) {
    const bool max = kind == engine::PoolKind::Max;
    const std::optional<int64_t> window = square(settings.ints("kernel_size"));
    std::optional<std::vector<int64_t>> stride = settings.ints("stride");
    if (!stride || stride->empty()) stride = settings.ints("kernel_size");  // None or [] means the window
    const std::optional<int64_t> padding = square(settings.ints("padding"));
    const std::optional<int64_t> dilation = max ? square(settings.ints("dilation")) : std::optional<int64_t>(1);
    const std::optional<c10::IValue> ceil = settings.value("ceil_mode");
    if (!window || square(stride) != window || padding != 0 || dilation != 1 ||
        (ceil && ceil->isBool() && ceil->toBool())) {
      unsupported(path, type, "is not a square pooling whose stride is its window, without padding, dilation or ceil mode");
    }
    Step step{Step::Kind::Pool, path, type, {}, {}, {}};
    step.spec.pool = kind;
    step.spec.pool_size = *window;
    steps_.push_back(step);
  }

  /// AdaptiveAvgPool2d maps when it pools to 1x1: den's global average pooling ("gap").
  void add_global_pool(const std::string& path, const std::string& type, const std::optional<std::vector<int64_t>>& size) {
    if (!size || size->empty() || std::any_of(size->begin(), size->end(), [](int64_t s) { return s != 1; })) {
      unsupported(path, type, "pools to another size than 1x1 (den's global average pooling)");
    }
    Step step{Step::Kind::Pool, path, type, {}, {}, {}};
    step.spec.pool = engine::PoolKind::GlobalAvg;
    steps_.push_back(step);
  }

  /// A BatchNorm at inference is a per-channel affine map of its running statistics:
  /// y = (x - mean) / sqrt(var + eps) * gamma + beta. It is folded into the Conv2d or Linear before it.
  void add_batch_norm(const OpSettings& settings, const std::string& path, const std::string& type,
                      const at::Tensor& weight, const at::Tensor& bias, const at::Tensor& running_mean,
                      const at::Tensor& running_var) {
    const auto as_double = [](const at::Tensor& t) { return t.defined() ? t.detach().to(at::kDouble) : at::Tensor(); };
    const at::Tensor mean = as_double(running_mean), var = as_double(running_var);
    if (!mean.defined() || !var.defined()) {
      unsupported(path, type, "has no running statistics (track_running_stats=False normalizes by each batch's own)");
    }
    const std::optional<c10::IValue> eps = settings.value("eps");
    if (!eps || !eps->isDouble()) unsupported(path, type, "has no eps den can read");
    at::Tensor gamma = as_double(weight), beta = as_double(bias);
    if (!gamma.defined()) gamma = at::ones_like(mean);  // affine=False
    if (!beta.defined()) beta = at::zeros_like(mean);
    if (mean.dim() != 1 || var.sizes() != mean.sizes() || gamma.sizes() != mean.sizes() || beta.sizes() != mean.sizes()) {
      unsupported(path, type, "has statistics and parameters of different sizes");
    }
    const at::Tensor scale = gamma / at::sqrt(var + eps->toDouble());
    Step step{Step::Kind::Norm, path, type, scale, beta - mean * scale, {}};
    if (!step.weight.isfinite().all().item<bool>() || !step.bias.isfinite().all().item<bool>()) {
      unsupported(path, type, "has NaN or infinite statistics or parameters");
    }
    steps_.push_back(step);
  }

  /// Reads `m`'s method `name`: every node that touches the data must be a known step applied to
  /// the current value, and the graph must return the last one. A call of another method of `m`
  /// itself (torchvision's forward calls self._forward_impl) is read in place.
  void read_method(const Module& m, const std::string& path, const std::string& type, const std::string& name) {
    const std::string where = path.empty() ? "<model>" : path;
    if (!m.find_method(name)) unsupported(where, type, "has no " + name + " method");
    const std::shared_ptr<torch::jit::Graph> graph = m.get_method(name).graph();
    // Only the model's own top-level nodes are items; a child's are steps of its item.
    const bool top = top_;
    top_ = false;
    if (graph->inputs().size() != 2) {
      unsupported(where, type, "takes " + std::to_string(graph->inputs().size() - 1) + " inputs in forward (den feeds one)");
    }
    std::unordered_map<const Value*, c10::IValue> attributes{{graph->inputs()[0], m._ivalue()}};
    std::unordered_map<const Value*, std::string> names{{graph->inputs()[0], path}};
    const Value* current = graph->inputs()[1];
    std::unordered_set<const Value*> earlier;  // values the chain has moved past

    for (Node* node : graph->nodes()) {
      bool uses_current = false, uses_earlier = false;
      for (const Value* input : node->inputs()) {
        uses_earlier = uses_earlier || earlier.count(input) > 0;
        uses_current = uses_current || input == current;
      }
      if (uses_earlier || (uses_current && node->outputs().size() != 1)) {
        const std::string why = uses_earlier ? "uses a value twice (" + kind_text(node) + "): not a chain"
                                             : "applies " + kind_text(node);
        if (!top) unsupported(where, type, why);
        // The model's own forward branches (a residual sum, say): only the trunk can run this node,
        // and the chain goes on from its output (NOTE: [frozen trunk]).
        TopItem item;
        item.module = where;
        item.type = kind_text(node);
        item.first_step = item.end_step = steps_.size();
        item.graph = graph.get();
        item.output = node->outputs()[0];
        item.error = "'" + file_ + "': module '" + where + "' (" + type + ") " + why + " cannot be mapped";
        items_.push_back(item);
        earlier.insert(current);
        for (const Value* output : node->outputs()) earlier.insert(output);
        earlier.erase(node->outputs()[0]);
        current = node->outputs()[0];
        continue;
      }
      if (!uses_current) {
        if (node->kind() == c10::prim::GetAttr) {
          const auto owner = attributes.find(node->input(0));
          if (owner != attributes.end() && owner->second.isObject()) {
            const std::string attr = node->s(c10::attr::name);
            attributes[node->output()] = owner->second.toObject()->getAttr(attr);
            names[node->output()] = names[node->input(0)].empty() ? attr : names[node->input(0)] + "." + attr;
          }
        } else if (node->kind() == c10::aten::t && node->outputs().size() == 1) {
          // A parameter transposed for a product (torch.addmm(b, x, torch.t(self.w))): folded here.
          const auto owner = attributes.find(node->input(0));
          if (owner != attributes.end() && owner->second.isTensor()) attributes[node->output()] = owner->second.toTensor().t();
        }
        continue;  // constants and attribute reads; nothing else can reach the output
      }
      const c10::Symbol kind = node->kind();
      const bool self_method = kind == c10::prim::CallMethod && node->input(0) == graph->inputs()[0] &&
                               node->inputs().size() == 2 && node->input(1) == current;
      if (self_method) {
        top_ = top;
        read_method(m, path, type, node->s(c10::attr::name));
        top_ = false;
        earlier.insert(current);
        current = node->output();
        continue;
      }
      TopItem item;
      item.first_step = steps_.size();
      item.graph = graph.get();
      item.output = node->output();
      try {
        read_node(node, where, type, current, attributes, names, item);
      } catch (const ImportError& e) {
        if (!top || e.kind() != ImportError::Kind::Unsupported) throw;
        item.error = e.what();
        steps_.erase(steps_.begin() + static_cast<std::ptrdiff_t>(item.first_step), steps_.end());
      } catch (const c10::Error& e) {  // an attribute a module of a known type lacks, say
        if (!top) throw;
        item.error = "'" + file_ + "': module '" + item.module + "' cannot be mapped: " + internal::torch_error_line(e);
        steps_.erase(steps_.begin() + static_cast<std::ptrdiff_t>(item.first_step), steps_.end());
      }
      if (top) {
        item.end_step = steps_.size();
        items_.push_back(item);
      }
      earlier.insert(current);
      current = node->output();
    }
    if (graph->outputs().size() != 1 || graph->outputs()[0] != current) {
      unsupported(where, type, "does not return the result of its chain of layers");
    }
  }

  /// A parameter argument of a functional op: the tensor an attribute read gave (or a transposed
  /// one), an undefined tensor for None, nullopt for anything else.
  static std::optional<at::Tensor> parameter(const Value* v, const std::unordered_map<const Value*, c10::IValue>& attributes) {
    const auto known = attributes.find(v);
    if (known != attributes.end()) return known->second.isTensor() ? std::optional<at::Tensor>(known->second.toTensor()) : std::nullopt;
    const std::optional<c10::IValue> constant = torch::jit::toIValue(v);
    if (constant && constant->isNone()) return at::Tensor();
    return std::nullopt;
  }

  /// Reads one node applied to the data `current` of `m`'s graph; `item` gets its module and type.
  void read_node(Node* node, const std::string& where, const std::string& type, const Value* current,
                 const std::unordered_map<const Value*, c10::IValue>& attributes,
                 const std::unordered_map<const Value*, std::string>& names, TopItem& item) {
    const c10::Symbol kind = node->kind();
    item.module = where;
    item.type = kind_text(node);
    {
      if (kind == c10::prim::CallMethod) {
        const auto target = attributes.find(node->input(0));
        const bool forward_of_child = node->s(c10::attr::name) == "forward" && node->inputs().size() == 2 &&
                                      node->input(1) == current && target != attributes.end() &&
                                      target->second.isObject() && target->second.type()->cast<c10::ClassType>() &&
                                      target->second.type()->cast<c10::ClassType>()->is_module();
        if (!forward_of_child) unsupported(where, type, "calls " + node->s(c10::attr::name) + " in a way that is no chain");
        const Module child(target->second.toObject());
        item.module = names.at(node->input(0));
        item.type = display_type(type_name(child));
        read_module(child, item.module);
      } else if (kind == c10::aten::addmm && node->inputs().size() == 5 && node->input(1) == current) {
        // x @ W^T + b, a Linear written out (ONNX's Gemm): beta and alpha must be 1.
        const std::optional<c10::IValue> beta = torch::jit::toIValue(node->input(3));
        const std::optional<c10::IValue> alpha = torch::jit::toIValue(node->input(4));
        const std::optional<at::Tensor> bias = parameter(node->input(0), attributes);
        const std::optional<at::Tensor> weight_t = parameter(node->input(2), attributes);
        if (!beta || !alpha || beta->toScalar().toDouble() != 1.0 || alpha->toScalar().toDouble() != 1.0 || !bias ||
            !weight_t || !weight_t->defined() || weight_t->dim() != 2) {
          unsupported(where, type, "applies aten::addmm other than x W^T + b with its own parameters");
        }
        add_linear(where, "aten::addmm", weight_t->t(), *bias);
      } else if (node->input(data_input(node)) != current) {
        unsupported(where, type, "applies " + kind_text(node) + " to the data in another place than its input");
      } else if (kind == c10::aten::conv2d && node->inputs().size() == 7) {
        const std::optional<at::Tensor> weight = parameter(node->input(1), attributes);
        const std::optional<at::Tensor> bias = parameter(node->input(2), attributes);
        if (!weight || !weight->defined() || !bias) unsupported(where, type, "applies aten::conv2d with weights that are not its parameters");
        add_conv(OpSettings(node, kConv2dArguments), where, "aten::conv2d", *weight, *bias);
      } else if (kind == c10::aten::batch_norm && node->inputs().size() == 9) {
        const OpSettings settings(node, kBatchNormArguments);
        const std::optional<c10::IValue> training = settings.value("training");
        std::optional<at::Tensor> p[4];
        for (int i = 0; i < 4; ++i) p[i] = parameter(node->input(static_cast<size_t>(i) + 1), attributes);
        if (!training || !training->isBool() || training->toBool() || !p[0] || !p[1] || !p[2] || !p[3]) {
          unsupported(where, type, "applies aten::batch_norm in training mode or with tensors that are not its parameters");
        }
        add_batch_norm(settings, where, "aten::batch_norm", *p[0], *p[1], *p[2], *p[3]);
      } else if ((kind == c10::aten::max_pool2d && node->inputs().size() == 6) ||
                 (kind == c10::aten::avg_pool2d && node->inputs().size() == 7)) {
        const bool max = kind == c10::aten::max_pool2d;
        if (!max) {  // count_include_pad and divisor_override matter only with padding, which is refused
          const std::optional<c10::IValue> divisor = torch::jit::toIValue(node->input(6));
          if (!divisor || !divisor->isNone()) unsupported(where, type, "applies aten::avg_pool2d with a divisor override");
        }
        add_pool(OpSettings(node, max ? kMaxPoolArguments : kAvgPoolArguments), where, kind_text(node),
                 max ? engine::PoolKind::Max : engine::PoolKind::Avg);
      } else if (kind == c10::aten::mean && node->inputs().size() == 4) {
        // The mean over H and W (ONNX's GlobalAveragePool), with or without the kept dimensions.
        std::optional<std::vector<int64_t>> dims = constant_ints(node->input(1));
        if (dims) {
          for (int64_t& d : *dims) d = d < 0 ? d + 4 : d;
          std::sort(dims->begin(), dims->end());
        }
        if (!dims || *dims != std::vector<int64_t>{2, 3}) unsupported(where, type, "applies aten::mean over other dimensions than H and W");
        add_global_pool(where, "aten::mean", std::vector<int64_t>{1, 1});
      } else if (kind == c10::aten::matmul && node->inputs().size() == 2) {
        // x @ W (ONNX's MatMul, as tf2onnx writes a Keras Dense layer): a Linear of W^T; its bias, if
        // any, is the aten::add that follows.
        const std::optional<at::Tensor> weight = parameter(node->input(1), attributes);
        if (!weight || !weight->defined() || weight->dim() != 2) unsupported(where, type, "applies aten::matmul with a weight that is not a parameter matrix");
        add_linear(where, "aten::matmul", weight->t(), at::Tensor());
      } else if ((kind == c10::aten::add || kind == c10::aten::sub) && node->inputs().size() == 3) {
        // x + b (a bias added apart, as ONNX's MatMul then Add): folded into the layer before it.
        const std::optional<at::Tensor> b = parameter(node->input(1), attributes);
        const std::optional<c10::IValue> alpha = torch::jit::toIValue(node->input(2));
        if (!b || !b->defined() || !alpha || alpha->toScalar().toDouble() != 1.0) {
          unsupported(where, type, "applies " + kind_text(node) + " to something else than a parameter");
        }
        const at::Tensor shift = (kind == c10::aten::sub ? -*b : *b).detach().to(at::kDouble).reshape({-1});
        steps_.push_back({Step::Kind::Norm, where, kind_text(node), at::ones_like(shift), shift, {}});
      } else if ((kind == c10::aten::reshape || kind == c10::aten::view) && node->inputs().size() == 2) {
        // To [N, D]: the flatten before a Linear (the Linear's width checks D).
        const std::optional<std::vector<int64_t>> shape = constant_ints(node->input(1));
        if (!shape || shape->size() != 2 || (*shape)[0] != -1) unsupported(where, type, "applies " + kind_text(node) + " other than a flatten to [-1, D]");
        steps_.push_back({Step::Kind::Flatten, where, kind_text(node), {}, {}, {}});
      } else if ((kind == c10::aten::softmax || kind == c10::aten::log_softmax) &&
                 node->owningGraph()->outputs().size() == 1 && node->owningGraph()->outputs()[0] == node->output()) {
        // The model's last op turns logits into probabilities; den's head gives the logits, whose
        // argmax is the same class.
        steps_.push_back({Step::Kind::Identity, where, kind_text(node) + " (dropped: den's head gives logits)", {}, {}, {}});
      } else if (kind == c10::aten::relu || kind == c10::aten::relu_ ||
                 function_name(node) == "torch.nn.functional.relu") {
        steps_.push_back({Step::Kind::Relu, where, kind_text(node), {}, {}, {}});
      } else if (kind == c10::aten::flatten) {
        steps_.push_back({Step::Kind::Flatten, where, kind_text(node), {}, {}, {}});
      } else if ((kind == c10::aten::adaptive_avg_pool2d ||
                  function_name(node) == "torch.nn.functional.adaptive_avg_pool2d") &&
                 node->inputs().size() == data_input(node) + 2) {
        add_global_pool(where, kind_text(node), constant_ints(node->input(data_input(node) + 1)));
      } else if (kind == c10::aten::dropout || kind == c10::aten::dropout_ ||
                 function_name(node) == "torch.nn.functional.dropout") {
        steps_.push_back({Step::Kind::Identity, where, kind_text(node), {}, {}, {}});
      } else if (kind == c10::aten::linear && node->inputs().size() == 3) {
        const std::optional<at::Tensor> weight = parameter(node->input(1), attributes);
        const std::optional<at::Tensor> bias = parameter(node->input(2), attributes);
        if (!weight || !weight->defined() || !bias) {
          unsupported(where, type, "applies aten::linear with weights that are not its parameters");
        }
        add_linear(where, "aten::linear", *weight, *bias);
      } else {
        unsupported(where, type, "applies " + kind_text(node));
      }
    }
  }

  /// Which input of `node` is the data: a prim::CallFunction's first is the function called.
  static size_t data_input(const Node* node) { return node->kind() == c10::prim::CallFunction ? 1 : 0; }

  /// The qualified name of the function a prim::CallFunction node calls ("torch.nn.functional.relu"
  /// for F.relu; a user's own function named relu is not it), else empty.
  static std::string function_name(const Node* node) {
    if (node->kind() != c10::prim::CallFunction) return "";
    const auto function = node->input(0)->type()->cast<c10::FunctionType>();
    if (!function) return "";
    const std::string name = function->function()->qualname().qualifiedName();
    const std::string prefix = "__torch__.";
    return name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : name;
  }

  static std::string kind_text(const Node* node) {
    const std::string called = function_name(node);
    return called.empty() ? node->kind().toQualString() : "function " + called;
  }

  std::string file_;
  std::vector<Step> steps_;
  std::vector<TopItem> items_;
  bool top_ = false;  ///< reading the model's own forward (or a method it calls on itself)
};

std::vector<int64_t> resolve_classes(const std::vector<int64_t>& classes, int64_t outputs) {
  if (classes.empty()) {
    std::vector<int64_t> all(static_cast<size_t>(outputs));
    for (int64_t o = 0; o < outputs; ++o) all[static_cast<size_t>(o)] = o;
    return all;
  }
  if (static_cast<int64_t>(classes.size()) != outputs) {
    throw std::invalid_argument("--classes names " + std::to_string(classes.size()) + " classes but the model's last "
                                "Linear has " + std::to_string(outputs) + " outputs");
  }
  std::set<int64_t> seen;
  for (int64_t c : classes) {
    if (c < 0) throw std::invalid_argument("--classes: class id " + std::to_string(c) + " is negative");
    if (!seen.insert(c).second) throw std::invalid_argument("--classes: class id " + std::to_string(c) + " is repeated");
  }
  return classes;
}

/// A Linear's or Conv2d's parameters as augmented rows (NOTE: [augmented rows]): a filter flattened.
at::Tensor augmented(const Step& layer) {
  return at::cat({layer.weight.flatten(1), layer.bias.unsqueeze(1)}, 1).contiguous();
}

/// The den layers a chain of steps is: the Conv2d and Linear steps with their BatchNorms folded
/// (the last is the head), the hidden layers' specs, and which module became what.
struct MappedChain {
  std::vector<Step> weighted;
  engine::Layers specs;
  std::vector<ImportedLayer> layers;
};

/// Maps `steps` (NOTE: [import mapping]); throws ImportError (Unsupported) naming the step that
/// breaks the chain. A chain may be the head alone (NOTE: [frozen trunk]).
MappedChain map_chain(const std::vector<Step>& steps, const ChainReader& reader, const std::string& path) {
  // The chain as den layers: conv layers (each a Conv2d, its ReLU and at most one pooling; max
  // pooling may come before the ReLU, with which it commutes), an optional Flatten, then Linears
  // each followed by a ReLU but the last, which becomes task 1's head.
  MappedChain chain;
  std::vector<Step>& weighted = chain.weighted;
  engine::Layers& specs = chain.specs;
  bool after_relu = false;  // a Conv2d or Linear is expected next: at the start and after each ReLU
  bool flattened = false;
  for (const Step& step : steps) {
    chain.layers.push_back({step.module.empty() ? "<model>" : step.module, step.type});
    Step* last = weighted.empty() ? nullptr : &weighted.back();
    const bool conv_below = last != nullptr && last->kind == Step::Kind::Conv;
    switch (step.kind) {
      case Step::Kind::Conv:
      case Step::Kind::Linear: {
        if (last != nullptr && !after_relu) {
          reader.unsupported(step.module, step.type, "follows '" + last->module + "' without a ReLU between "
                             "(den's hidden layers end in a ReLU)");
        }
        if (step.kind == Step::Kind::Conv && (flattened || (last != nullptr && last->kind == Step::Kind::Linear))) {
          reader.unsupported(step.module, step.type, "comes after the flatten; den's conv layers come first");
        }
        if (step.weight.size(0) == 0 || step.weight.size(1) == 0) {
          reader.unsupported(step.module, step.type, "has a weight of " + c10::str(step.weight.sizes()) +
                             ": a layer without units or inputs");
        }
        if (step.kind == Step::Kind::Conv && conv_below && step.weight.size(1) != last->weight.size(0)) {
          reader.unsupported(step.module, step.type, "takes " + std::to_string(step.weight.size(1)) + " channels but '" +
                             last->module + "' gives " + std::to_string(last->weight.size(0)));
        }
        if (step.kind == Step::Kind::Linear && last != nullptr && !conv_below && step.weight.size(1) != last->weight.size(0)) {
          reader.unsupported(step.module, step.type, "takes " + std::to_string(step.weight.size(1)) + " inputs but '" +
                             last->module + "' gives " + std::to_string(last->weight.size(0)));
        }
        weighted.push_back(step);
        specs.push_back(step.kind == Step::Kind::Conv ? step.spec : engine::LayerSpec(step.weight.size(0)));
        after_relu = false;
        break;
      }
      case Step::Kind::Norm: {
        if (last == nullptr || after_relu || specs.back().pool != engine::PoolKind::None) {
          reader.unsupported(step.module, step.type, "does not follow a Conv2d or Linear directly (den folds a "
                             "BatchNorm into the layer before it, as at inference)");
        }
        if (step.weight.size(0) != last->weight.size(0)) {
          reader.unsupported(step.module, step.type, "normalizes " + std::to_string(step.weight.size(0)) +
                             " channels but '" + last->module + "' gives " + std::to_string(last->weight.size(0)));
        }
        // In float64, then rounded once: W' = W * scale (per output), b' = b * scale + shift.
        const at::Tensor scale = step.weight.view({-1, 1});
        last->weight = (last->weight.to(at::kDouble).flatten(1) * scale).to(at::kFloat).view(last->weight.sizes());
        last->bias = (last->bias.to(at::kDouble) * step.weight + step.bias).to(at::kFloat);
        break;
      }
      case Step::Kind::Pool:
        if (!conv_below || specs.back().pool != engine::PoolKind::None ||
            (!after_relu && step.spec.pool != engine::PoolKind::Max) || flattened) {
          reader.unsupported(step.module, step.type, "does not follow a Conv2d and its ReLU (den pools a conv layer's "
                             "rectified output once; max pooling may also come before the ReLU)");
        }
        specs.back().pool = step.spec.pool;
        specs.back().pool_size = step.spec.pool_size;
        break;
      case Step::Kind::Relu:
        if (last == nullptr) reader.unsupported(step.module, step.type, "comes before any Conv2d or Linear");
        after_relu = true;  // relu(relu(x)) = relu(x): a repeated ReLU changes nothing
        break;
      case Step::Kind::Flatten:
        flattened = true;  // den flattens a conv layer's output channel by channel, as flatten(1) does
        break;
      case Step::Kind::Identity:
        break;
    }
  }
  if (weighted.empty() || weighted.back().kind != Step::Kind::Linear) {
    throw ImportError(ImportError::Kind::Unsupported,
                      "'" + path + "' has " + std::to_string(weighted.size()) + " Conv2d and Linear layer" +
                          (weighted.size() == 1 ? "" : "s") +
                          (weighted.empty() ? "" : " and ends in a Conv2d") + "; den needs a Linear task head");
  }
  if (after_relu) {
    throw ImportError(ImportError::Kind::Unsupported,
                      "'" + path + "' ends with a ReLU after its last Linear '" + weighted.back().module +
                          "'; den's task head is a Linear whose logits are not rectified");
  }
  specs.pop_back();  // the head
  return chain;
}

// NOTE: [frozen trunk] What of a model den cannot map runs as a frozen TorchScript module before
// the den layers: the trunk is a prefix of the model's top-level forward (its child modules and
// ops, ResNet's conv1 ... layer4 and avgpool, say), by default the shortest after which the rest
// maps, or the one `ImportOptions::trunk` names. It is the model itself with its forward cut after
// that node (what follows is dead code, removed), so whatever TorchScript runs, it runs: residual
// blocks, depthwise convolutions, SiLU, attention. Its weights never change; den learns on its
// output (the features), which the CLI computes once per sample. When the part that maps is the
// last Linear alone, den still needs a hidden layer for later tasks to grow: it gets one of 2D fc
// units that pass the D features through exactly, relu(x) - relu(-x) = x: units [I; -I] (zero
// bias) and head [W, -W]. Imported at stage 1, these units are never changed by later tasks under
// the den preset (they are restored after selective retraining), and later tasks read them as
// features beside the units they add.

/// The hidden layer and head of NOTE: [frozen trunk] for a head `head` on D = head's inputs.
void pass_through(const Step& head, engine::Layers& specs, std::vector<at::Tensor>& layers, at::Tensor& head_rows) {
  const int64_t d = head.weight.size(1);
  const at::Tensor eye = at::eye(d, at::kFloat);
  layers.push_back(at::cat({at::cat({eye, -eye}, 0), at::zeros({2 * d, 1}, at::kFloat)}, 1).contiguous());
  head_rows = at::cat({head.weight, -head.weight, head.bias.unsqueeze(1)}, 1).contiguous();
  specs.push_back(engine::LayerSpec(2 * d));
}

/// The number of top-level items that form the trunk: the one named, else the shortest prefix
/// after which everything reads (items that do not map are always in the trunk).
size_t first_cut(const std::vector<TopItem>& items, const std::string& trunk, const std::string& path) {
  if (trunk == "none") {
    for (const TopItem& item : items) {
      if (!item.error.empty()) throw ImportError(ImportError::Kind::Unsupported, item.error);
    }
    return 0;
  }
  if (!trunk.empty()) {
    std::string known;
    for (size_t i = 0; i < items.size(); ++i) {
      if (items[i].module == trunk) return i + 1;
      known += (known.empty() ? "" : ", ") + items[i].module;
    }
    throw std::invalid_argument("--trunk " + trunk + ": '" + path + "' has no top-level module of that name (its "
                                "forward calls: " + known + ")");
  }
  size_t cut = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i].error.empty()) cut = i + 1;
  }
  return cut;
}

/// The dims of one sample the model reads: the config's input shape, else (a model whose first
/// node maps and starts with a Linear) its input width.
std::vector<int64_t> model_input(const std::vector<TopItem>& items, const std::vector<Step>& steps,
                                 const engine::EngineConfig& config, const std::string& path) {
  if (!config.input_shape.empty()) return config.input_shape;
  const TopItem& first = items.front();
  if (first.error.empty() && first.first_step < first.end_step && steps[first.first_step].kind == Step::Kind::Linear) {
    return {steps[first.first_step].weight.size(1)};
  }
  throw std::invalid_argument("'" + path + "': give the shape of the samples it reads (--input-shape C,H,W) to run "
                              "its frozen trunk");
}

/// Cuts `model` after `last` (NOTE: [frozen trunk]) and returns it as a FrozenTrunk, with the shape
/// of its output measured on one sample of `input`.
FrozenTrunk cut_trunk(Module& model, const TopItem& last, const TopItem& final_item, const std::vector<int64_t>& input,
                      const std::string& path) {
  if (last.graph != final_item.graph) {
    throw ImportError(ImportError::Kind::Unsupported,
                      "'" + path + "': the trunk cannot end at '" + last.module + "', inside a method whose result "
                      "forward works on further");
  }
  last.graph->eraseOutput(0);
  last.graph->registerOutput(last.output);
  torch::jit::EliminateDeadCode(last.graph->block());
  FrozenTrunk trunk;
  trunk.input_shape = input;
  trunk.cut = last.module == "<model>" ? last.type : last.module;  // an op of the model's own forward: its name
  std::vector<int64_t> batch = input;
  batch.insert(batch.begin(), 1);
  try {
    const c10::InferenceMode inference;
    const at::Tensor out = model.forward({at::zeros(batch, at::kFloat)}).toTensor();
    trunk.feature_shape.assign(out.sizes().begin() + 1, out.sizes().end());
  } catch (const std::exception& e) {
    const std::string what = internal::torch_error_line(e);
    throw std::invalid_argument("'" + path + "': its trunk (up to '" + last.module + "') does not run on samples of " +
                                engine::to_text(input) + ": " + what);
  }
  std::ostringstream bytes;
  model.save(bytes);
  trunk.module = bytes.str();
  return trunk;
}

}  // namespace

ImportedModel import_module(torch::jit::Module model, const std::string& path, const ImportOptions& options) {
  model.eval();
  engine::EngineConfig config = options.config;
  if (config.loss != engine::LossKind::Softmax) {
    throw std::invalid_argument("an imported classifier's head is a softmax head; --loss sigmoid does not apply");
  }

  ChainReader reader(path);
  try {
    reader.read_model(model);
  } catch (const c10::Error& e) {  // ImportError and our own errors pass through
    const std::string what = internal::torch_error_line(e);
    throw ImportError(ImportError::Kind::Unsupported, "'" + path + "' cannot be mapped: " + what);
  }
  const std::vector<TopItem>& items = reader.items();
  const std::vector<Step>& steps = reader.steps();
  // The shortest trunk after which the rest maps (NOTE: [frozen trunk]).
  size_t cut = first_cut(items, options.trunk, path);
  std::optional<MappedChain> chain;
  std::string why;
  for (; cut < items.size(); ++cut) {
    try {
      chain = map_chain({steps.begin() + static_cast<std::ptrdiff_t>(items[cut].first_step), steps.end()}, reader, path);
      break;
    } catch (const ImportError& e) {
      if (!options.trunk.empty()) throw;  // the cut was named: say why it does not work
      why = e.what();
    }
  }
  if (!chain) {
    throw ImportError(ImportError::Kind::Unsupported,
                      "'" + path + "': no part of its end maps to den layers, so no frozen trunk can be cut (den "
                      "needs the model to end in a Linear, after a chain of layers it maps). " +
                          (why.empty() ? std::string() : "The last attempt: " + why));
  }
  std::vector<ImportedLayer> layers;
  for (size_t i = 0; i < cut; ++i) layers.push_back({items[i].module, items[i].type + " (frozen trunk)"});
  layers.insert(layers.end(), chain->layers.begin(), chain->layers.end());
  std::vector<Step>& weighted = chain->weighted;
  engine::Layers specs = chain->specs;

  // A trunk's output is den's input; without one, the config's input shape is.
  std::optional<FrozenTrunk> trunk;
  if (cut > 0) {
    trunk = cut_trunk(model, items[cut - 1], items.back(), model_input(items, steps, config, path), path);
    config.input_shape = trunk->feature_shape.size() == 3 ? trunk->feature_shape : std::vector<int64_t>{};
  }
  const bool conv = engine::has_conv(specs);
  if (conv && config.input_shape.empty()) {
    throw std::invalid_argument("'" + path + "' " + (trunk ? "has conv layers after its trunk, whose output is not C,H,W"
                                                            : "starts with a Conv2d") +
                                ": give the images' shape (--input-shape C,H,W; its first Conv2d takes " +
                                std::to_string(weighted.front().weight.size(1)) + " input channels)");
  }
  int64_t input_dim = weighted.front().weight.size(1);
  if (conv) {
    input_dim = config.input_shape[0] * config.input_shape[1] * config.input_shape[2];
  } else if (trunk) {
    input_dim = 1;
    for (int64_t d : trunk->feature_shape) input_dim *= d;
  }
  if (!conv) config.input_shape.clear();  // an MLP reads flat features
  if (conv && config.input_shape[0] != weighted.front().weight.size(1)) {
    throw std::invalid_argument((trunk ? "the trunk's output " : "--input-shape ") + engine::to_text(config.input_shape) +
                                " has " + std::to_string(config.input_shape[0]) + " channels, but '" +
                                weighted.front().module + "' takes " + std::to_string(weighted.front().weight.size(1)));
  }
  if (!conv && weighted.front().weight.size(1) != input_dim) {
    reader.unsupported(weighted.front().module, weighted.front().type,
                       "takes " + std::to_string(weighted.front().weight.size(1)) + " inputs but the trunk gives " +
                           std::to_string(input_dim) + " (" + engine::to_text(trunk->feature_shape) + ")");
  }
  const Step& head = weighted.back();
  std::vector<at::Tensor> hidden_rows;
  at::Tensor head_rows;
  if (specs.empty()) {
    pass_through(head, specs, hidden_rows, head_rows);
  } else {
    for (size_t l = 0; l + 1 < weighted.size(); ++l) hidden_rows.push_back(augmented(weighted[l]));
    head_rows = augmented(head);
  }
  config.set_layers(specs);
  config.validate();
  const std::vector<engine::LayerGeometry> geometry = engine::plan_geometry(specs, config.input_shape, input_dim);
  // The first Linear after the conv layers reads each channel's H*W map (the column map).
  for (size_t l = 1; l < weighted.size(); ++l) {
    const Step& step = weighted[l];
    const int64_t expected = weighted[l - 1].weight.size(0) * geometry[l].block;
    if (step.kind == Step::Kind::Linear && step.weight.size(1) != expected) {
      reader.unsupported(step.module, step.type, "takes " + std::to_string(step.weight.size(1)) + " inputs but the " +
                         "layers before it give " + std::to_string(expected) + " on " +
                         engine::to_text(config.input_shape) + " images");
    }
  }
  std::vector<int64_t> classes = resolve_classes(options.classes, head.weight.size(0));
  const std::vector<int64_t> sizes = engine::layer_units(specs);

  engine::EngineState state;
  state.config = config;
  state.input_dim = input_dim;
  state.graph = graph::UnitGraph(engine::input_units(specs, config.input_shape, input_dim), sizes,
                                 graph::Origin::Imported);
  state.graph.add_head(1, head.weight.size(0));
  state.layers = std::move(hidden_rows);
  state.heads.push_back(head_rows);
  int64_t params = 0, nonzero = 0;
  for (const std::vector<at::Tensor>* group : {&state.layers, &state.heads}) {
    for (const at::Tensor& t : *group) {
      params += t.numel();
      nonzero += t.count_nonzero().item<int64_t>();
    }
  }
  engine::TaskReport report;
  report.task = 1;
  report.name = "imported " + std::filesystem::path(path).filename().string();
  report.num_classes = head.weight.size(0);
  report.hidden_units = sizes;
  report.params = params;
  report.nonzero_params = nonzero;
  state.history = {report};
  state.base_params = params;
  state.rng_state = at::make_generator<at::CPUGeneratorImpl>(config.seed).get_state();
  return ImportedModel{engine::Engine::from_state(std::move(state)), std::move(classes), std::move(layers),
                       std::move(trunk)};
}

ImportedModel import_torchscript(const std::string& path, const ImportOptions& options) {
  if (!std::filesystem::is_regular_file(path)) {
    throw ImportError(ImportError::Kind::Unreadable, "model '" + path + "' does not exist or is not a file");
  }
  Module model;
  try {
    model = torch::jit::load(path, at::kCPU);
  } catch (const std::exception& e) {
    const std::string what = internal::torch_error_line(e);
    throw ImportError(ImportError::Kind::Unreadable,
                      "'" + path + "' is not a TorchScript model torch::jit::load can read (save it with "
                      "torch.jit.save of torch.jit.script or torch.jit.trace; an ONNX model is read when its name ends "
                      "in .onnx): " + what);
  }
  return import_module(std::move(model), path, options);
}

ImportedModel import_onnx(const std::string& path, const ImportOptions& options) {
  OnnxModule translated = translate_onnx(path);
  if (translated.channels_last) {
    // den's samples are C,H,W: the model's leading NHWC -> NCHW transpose goes, its input is NCHW.
    const std::shared_ptr<torch::jit::Graph> graph = translated.module.get_method("forward").graph();
    Value* input = graph->inputs()[1];
    for (Node* node : graph->nodes()) {
      if (node->kind() != c10::aten::permute || node->input(0) != input) continue;
      node->output()->replaceAllUsesWith(input);
      node->destroy();
      break;
    }
    torch::jit::EliminateDeadCode(graph);
  }
  return import_module(std::move(translated.module), path, options);
}

}  // namespace den::io
