// TorchScript import: a model trained by PyTorch becomes task 1 of a DEN engine (NOTE: [import mapping]).

#include "serialization/torchscript_import.h"

#include "engine/engine_state.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/serialization/import.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <set>
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
  enum class Kind { Linear, Relu, Identity } kind;
  std::string module;  ///< path in the model
  std::string type;    ///< display type of the module, or the functional op
  at::Tensor weight, bias;  ///< Linear only
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
    } else if (cls == "ReLU") {
      steps_.push_back({Step::Kind::Relu, path, display_type(type), {}, {}});
    } else if (cls == "Dropout" || cls == "Identity" || cls == "Flatten") {
      // Dropout is the identity at inference; Flatten of the [N, D] inputs den feeds is too.
      steps_.push_back({Step::Kind::Identity, path, display_type(type), {}, {}});
    } else if (!cls.empty() && cls != "Sequential") {
      unsupported(path, display_type(type), "");
    } else {
      read_forward(m, path, display_type(type));
    }
  }

  const std::vector<Step>& steps() const { return steps_; }

  [[noreturn]] void unsupported(const std::string& path, const std::string& type, const std::string& what) const {
    throw ImportError(ImportError::Kind::Unsupported,
                      "'" + file_ + "': module '" + path + "' (" + type + ")" + (what.empty() ? "" : " " + what) +
                          " cannot be mapped: den imports chains of Linear and ReLU layers (Dropout, Identity and "
                          "Flatten pass through)");
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
    steps_.push_back({Step::Kind::Linear, path, type, w, b});
  }

  /// Reads `m`'s forward graph: every node that touches the data must be a known step applied to
  /// the current value, and the graph must return the last one.
  void read_forward(const Module& m, const std::string& path, const std::string& type) {
    const std::string where = path.empty() ? "<model>" : path;
    if (!m.find_method("forward")) unsupported(where, type, "has no forward method");
    const std::shared_ptr<torch::jit::Graph> graph = m.get_method("forward").graph();
    if (graph->inputs().size() != 2) {
      unsupported(where, type, "takes " + std::to_string(graph->inputs().size() - 1) + " inputs in forward (den feeds one)");
    }
    std::unordered_map<const Value*, c10::IValue> attributes{{graph->inputs()[0], m._ivalue()}};
    std::unordered_map<const Value*, std::string> names{{graph->inputs()[0], path}};
    const Value* current = graph->inputs()[1];
    std::unordered_set<const Value*> earlier;  // values the chain has moved past

    for (Node* node : graph->nodes()) {
      bool uses_current = false;
      for (const Value* input : node->inputs()) {
        if (earlier.count(input)) unsupported(where, type, "uses a value twice (" + kind_text(node) + "): not a chain");
        uses_current = uses_current || input == current;
      }
      if (!uses_current) {
        if (node->kind() == c10::prim::GetAttr) {
          const auto owner = attributes.find(node->input(0));
          if (owner != attributes.end() && owner->second.isObject()) {
            const std::string attr = node->s(c10::attr::name);
            attributes[node->output()] = owner->second.toObject()->getAttr(attr);
            names[node->output()] = names[node->input(0)].empty() ? attr : names[node->input(0)] + "." + attr;
          }
        }
        continue;  // constants and attribute reads; nothing else can reach the output
      }
      if (node->outputs().size() != 1) unsupported(where, type, "applies " + kind_text(node));
      const c10::Symbol kind = node->kind();
      if (kind == c10::prim::CallMethod) {
        const auto target = attributes.find(node->input(0));
        const bool forward_of_child = node->s(c10::attr::name) == "forward" && node->inputs().size() == 2 &&
                                      node->input(1) == current && target != attributes.end() &&
                                      target->second.isObject() && target->second.type()->cast<c10::ClassType>() &&
                                      target->second.type()->cast<c10::ClassType>()->is_module();
        if (!forward_of_child) unsupported(where, type, "calls " + node->s(c10::attr::name) + " in a way that is no chain");
        read_module(Module(target->second.toObject()), names[node->input(0)]);
      } else if (node->input(data_input(node)) != current) {
        unsupported(where, type, "applies " + kind_text(node) + " to the data in another place than its input");
      } else if (kind == c10::aten::relu || kind == c10::aten::relu_ ||
                 function_name(node) == "torch.nn.functional.relu") {
        steps_.push_back({Step::Kind::Relu, where, kind_text(node), {}, {}});
      } else if (kind == c10::aten::dropout || kind == c10::aten::dropout_ || kind == c10::aten::flatten ||
                 function_name(node) == "torch.nn.functional.dropout") {
        steps_.push_back({Step::Kind::Identity, where, kind_text(node), {}, {}});
      } else if (kind == c10::aten::linear && node->inputs().size() == 3) {
        const auto weight = attributes.find(node->input(1));
        const auto bias = attributes.find(node->input(2));
        const std::optional<c10::IValue> bias_constant = torch::jit::toIValue(node->input(2));
        const bool no_bias = bias_constant && bias_constant->isNone();
        if (weight == attributes.end() || !weight->second.isTensor() ||
            (!no_bias && (bias == attributes.end() || !bias->second.isTensor()))) {
          unsupported(where, type, "applies aten::linear with weights that are not its parameters");
        }
        add_linear(where, "aten::linear", weight->second.toTensor(), no_bias ? at::Tensor() : bias->second.toTensor());
      } else {
        unsupported(where, type, "applies " + kind_text(node));
      }
      earlier.insert(current);
      current = node->output();
    }
    if (graph->outputs().size() != 1 || graph->outputs()[0] != current) {
      unsupported(where, type, "does not return the result of its chain of layers");
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

at::Tensor augmented(const Step& linear) { return at::cat({linear.weight, linear.bias.unsqueeze(1)}, 1).contiguous(); }

}  // namespace

ImportedModel import_torchscript(const std::string& path, const ImportOptions& options) {
  if (!std::filesystem::is_regular_file(path)) {
    throw ImportError(ImportError::Kind::Unreadable, "model '" + path + "' does not exist or is not a file");
  }
  Module model;
  try {
    model = torch::jit::load(path, at::kCPU);
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    throw ImportError(ImportError::Kind::Unreadable,
                      "'" + path + "' is not a TorchScript model torch::jit::load can read (save it with "
                      "torch.jit.save of torch.jit.script or torch.jit.trace): " + what.substr(0, what.find('\n')));
  }
  model.eval();

  ChainReader reader(path);
  try {
    reader.read_module(model, "");
  } catch (const c10::Error& e) {  // an attribute a module of a known type lacks, say
    const std::string what = e.what_without_backtrace();
    throw ImportError(ImportError::Kind::Unsupported, "'" + path + "' cannot be mapped: " + what.substr(0, what.find('\n')));
  }
  std::vector<Step> linears;
  std::vector<ImportedLayer> layers;
  bool after_relu = false;  // a Linear is expected next: at the start and after each ReLU
  for (const Step& step : reader.steps()) {
    layers.push_back({step.module.empty() ? "<model>" : step.module, step.type});
    if (step.kind == Step::Kind::Linear) {
      if (!linears.empty() && !after_relu) {
        reader.unsupported(step.module, step.type, "follows Linear '" + linears.back().module + "' without a ReLU between "
                           "(den's hidden layers end in a ReLU)");
      }
      if (!linears.empty() && step.weight.size(1) != linears.back().weight.size(0)) {
        reader.unsupported(step.module, step.type, "takes " + std::to_string(step.weight.size(1)) + " inputs but '" +
                           linears.back().module + "' gives " + std::to_string(linears.back().weight.size(0)));
      }
      linears.push_back(step);
      after_relu = false;
    } else if (step.kind == Step::Kind::Relu) {
      if (linears.empty()) reader.unsupported(step.module, step.type, "comes before any Linear");
      after_relu = true;  // relu(relu(x)) = relu(x): a repeated ReLU changes nothing
    }
  }
  if (linears.size() < 2) {
    throw ImportError(ImportError::Kind::Unsupported,
                      "'" + path + "' has " + std::to_string(linears.size()) + " Linear layer" +
                          (linears.size() == 1 ? "" : "s") +
                          "; den needs at least two (a hidden layer and the task head)");
  }
  if (after_relu) {
    throw ImportError(ImportError::Kind::Unsupported,
                      "'" + path + "' ends with a ReLU after its last Linear '" + linears.back().module +
                          "'; den's task head is a Linear whose logits are not rectified");
  }

  const Step& head = linears.back();
  const int64_t input_dim = linears.front().weight.size(1);
  std::vector<int64_t> sizes;
  for (size_t l = 0; l + 1 < linears.size(); ++l) sizes.push_back(linears[l].weight.size(0));

  engine::EngineConfig config = options.config;
  if (config.loss != engine::LossKind::Softmax) {
    throw std::invalid_argument("an imported classifier's head is a softmax head; --loss sigmoid does not apply");
  }
  config.set_hidden(sizes);
  config.validate();
  std::vector<int64_t> classes = resolve_classes(options.classes, head.weight.size(0));

  engine::EngineState state;
  state.config = config;
  state.input_dim = input_dim;
  state.graph = graph::UnitGraph(input_dim, sizes, graph::Origin::Imported);
  state.graph.add_head(1, head.weight.size(0));
  for (size_t l = 0; l + 1 < linears.size(); ++l) state.layers.push_back(augmented(linears[l]));
  state.heads.push_back(augmented(head));
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
  return ImportedModel{engine::Engine::from_state(std::move(state)), std::move(classes), std::move(layers)};
}

}  // namespace den::io
