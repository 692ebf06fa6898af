// The frozen trunk written as ONNX nodes, so that the ONNX export of an imported model takes the
// model's own inputs as the TorchScript export does.
//
// NOTE: [trunk as ONNX] The trunk's TorchScript is frozen (freeze_module: weights become constants,
// submodule calls are inlined), its in-place ops made functional where that is safe, constants
// propagated; then each node of the forward becomes opset-13 nodes. Written: convolutions (groups,
// strides, pads, dilations), batch norm (inference), ReLU, ReLU6/hardtanh (Clip), leaky ReLU,
// clamp, sigmoid, tanh, SiLU, hardswish, hardsigmoid, GELU (erf form), softmax, log-softmax,
// add/sub/mul/div of tensors and numbers, ones_like, max and average pools, adaptive average
// pooling to 1x1 (GlobalAveragePool), mean and max over dims, flatten, reshape/view (a dim taken from the input's size stays that dim), linear, addmm,
// matmul, transpose, permute, cat, constant padding, (un)squeeze, and the identities (dropout in
// eval, contiguous, clone, detach). Reshapes need every value's dims: the forward runs once on
// batches of 1 and 2 with every value an output, and a dim that differs follows the batch. That covers what den's ONNX reader writes and the torchvision
// ResNets and MobileNets; anything else is refused naming the op, before a file is written. An
// in-place op that stays (its input aliased) is written as the value it produces, and later reads
// of its input read that value, as the mutation makes them. Integer bookkeeping (sizes, lengths)
// is not written: reshapes take their probed dims and other nodes need their numbers constant;
// TorchScript's checks of an input's rank (`if ...: raise`) are dropped. No Shape node is written:
// den's own ONNX reader, which checks these exports, needs constant shapes.

#include "serialization/internal/onnx_graph.h"
#include "serialization/internal/torch_error.h"

#include <c10/core/InferenceMode.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/freeze_module.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/passes/remove_mutation.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <unordered_map>

namespace den::io::internal {

namespace {

using torch::jit::Node;
using torch::jit::Value;

/// A tensor value's dims on a batch of one sample and of two: a dim that differs follows the batch.
struct Probed {
  std::vector<int64_t> one, two;
};
using Dims = std::unordered_map<const Value*, Probed>;

/// Writes one trunk graph: ONNX names of the TorchScript values, and the nodes.
class TrunkWriter {
 public:
  TrunkWriter(onnx::GraphProto& g, Dims dims) : g_(g), dims_(std::move(dims)) {}

  void bind(const Value* v, const std::string& name) { names_[v] = name; }

  std::string output(const Value* v) { return tensor(v); }

  void write(const Node* n) {
    const std::string kind = n->kind().toQualString();
    // Constants, lists and integer bookkeeping (sizes) are read by the nodes that use them, which
    // need them constant; a check of the input's shape that only raises has nothing to write.
    if (kind == "prim::Constant" || is_shape_guard(n)) return;
    if (n->outputs().size() == 1 && n->output()->type()->kind() != c10::TypeKind::TensorType) return;
    if (!n->blocks().empty()) refuse(n, "control flow");
    const std::string op = kind.back() == '_' ? kind.substr(0, kind.size() - 1) : kind;  // in place: as the value it makes
    const std::string out = fresh();
    const int64_t rank = n->inputs().empty() ? -1 : rank_of(n->input(0));
    if (op == "aten::_convolution" || op == "aten::conv1d" || op == "aten::conv2d" || op == "aten::conv3d") {
      conv(n, out);
    } else if (op == "aten::batch_norm") {
      batch_norm(n, out);
    } else if (const char* unary = unary_op(op)) {
      node(g_, unary, {tensor(n->input(0))}, out);
    } else if (op == "aten::hardtanh" || op == "aten::relu6") {
      const double lo = op == "aten::relu6" ? 0.0 : number(n, 1), hi = op == "aten::relu6" ? 6.0 : number(n, 2);
      node(g_, "Clip", {tensor(n->input(0)), scalar(lo), scalar(hi)}, out);
    } else if (op == "aten::clamp") {
      const auto bound = [&](size_t i) {
        return i < n->inputs().size() && !constant_is_none(n->input(i)) ? tensor(n->input(i)) : std::string();
      };
      node(g_, "Clip", {tensor(n->input(0)), bound(1), bound(2)}, out);
    } else if (op == "aten::softmax" || op == "aten::log_softmax") {
      if (n->inputs().size() > 2 && !constant_is_none(n->input(2))) refuse(n, "a dtype");
      int_attribute(node(g_, op == "aten::softmax" ? "Softmax" : "LogSoftmax", {tensor(n->input(0))}, out), "axis",
                    constant(n, 1).toInt());
    } else if (op == "aten::ones_like") {
      // x * 0 + 1: ones of x's shape, batch included, without Shape nodes (den's reader needs
      // constant shapes). Exact for finite x; where x is not, what reads the ones is not finite either.
      node(g_, "Mul", {tensor(n->input(0)), scalar(0.0)}, out + "_zeros");
      node(g_, "Add", {out + "_zeros", scalar(1.0)}, out);
    } else if (op == "aten::leaky_relu") {
      float_attribute(node(g_, "LeakyRelu", {tensor(n->input(0))}, out), "alpha", number(n, 1));
    } else if (op == "aten::silu") {
      const std::string x = tensor(n->input(0));
      node(g_, "Sigmoid", {x}, out + "_sigmoid");
      node(g_, "Mul", {x, out + "_sigmoid"}, out);
    } else if (op == "aten::hardsigmoid" || op == "aten::hardswish") {
      const std::string x = tensor(n->input(0));
      const std::string gate = op == "aten::hardswish" ? out + "_gate" : out;
      onnx::NodeProto& h = node(g_, "HardSigmoid", {x}, gate);
      float_attribute(h, "alpha", 1.0 / 6.0);
      float_attribute(h, "beta", 0.5);
      if (op == "aten::hardswish") node(g_, "Mul", {x, gate}, out);
    } else if (op == "aten::gelu") {
      gelu(n, out);
    } else if (op == "aten::add" || op == "aten::sub" || op == "aten::mul" || op == "aten::div") {
      binary(n, op, out);
    } else if (op == "aten::max_pool1d" || op == "aten::max_pool2d" || op == "aten::max_pool3d" ||
               op == "aten::avg_pool1d" || op == "aten::avg_pool2d" || op == "aten::avg_pool3d") {
      pool(n, op.find("max") != std::string::npos, out);
    } else if (op == "aten::adaptive_avg_pool1d" || op == "aten::adaptive_avg_pool2d" ||
               op == "aten::adaptive_avg_pool3d") {
      for (int64_t s : ints(n, 1)) {
        if (s != 1) refuse(n, "an adaptive pool to a size other than 1");
      }
      node(g_, "GlobalAveragePool", {tensor(n->input(0))}, out);
    } else if (op == "aten::mean" || op == "aten::amax") {
      if (op == "aten::mean" && n->inputs().size() > 3 && !constant_is_none(n->input(3))) refuse(n, "a dtype");
      reduce(n, op == "aten::mean", out, rank);
    } else if (op == "aten::flatten" || op == "aten::reshape" || op == "aten::view") {
      reshape(n, out);
    } else if (op == "aten::linear") {
      linear(n, out, rank);
    } else if (op == "aten::addmm") {
      onnx::NodeProto& gemm = node(g_, "Gemm", {tensor(n->input(1)), tensor(n->input(2)), tensor(n->input(0))}, out);
      float_attribute(gemm, "beta", number(n, 3));
      float_attribute(gemm, "alpha", number(n, 4));
    } else if (op == "aten::matmul" || op == "aten::mm") {
      node(g_, "MatMul", {tensor(n->input(0)), tensor(n->input(1))}, out);
    } else if (op == "aten::t" || op == "aten::transpose" || op == "aten::permute") {
      transpose(n, op, out, rank);
    } else if (op == "aten::cat") {
      cat(n, out);
    } else if (op == "aten::constant_pad_nd") {
      pad(n, out, rank);
    } else if (op == "aten::unsqueeze" || op == "aten::squeeze") {
      const bool un = op == "aten::unsqueeze";
      if (n->inputs().size() < 2) refuse(n, "squeeze without a dim");
      const int64_t dim = constant(n, 1).toInt();
      int64_initializer(g_, out + "_axes", {dim});
      node(g_, un ? "Unsqueeze" : "Squeeze", {tensor(n->input(0)), out + "_axes"}, out);
    } else if (op == "aten::dropout" || op == "aten::feature_dropout" || op == "aten::alpha_dropout" ||
               op == "aten::contiguous" || op == "aten::clone" || op == "aten::detach") {
      node(g_, "Identity", {tensor(n->input(0))}, out);
    } else {
      refuse(n, "");
    }
    if (n->outputs().size() != 1) refuse(n, "more than one output");
    bind(n->output(), out);
    // The mutated input is the new value from here on.
    if (kind != op) bind(n->input(0), out);
  }

 private:
  [[noreturn]] static void refuse(const Node* n, const std::string& why) {
    throw std::invalid_argument("the frozen trunk uses " + std::string(n->kind().toQualString()) +
                                (why.empty() ? std::string() : " with " + why) +
                                ", which den does not write to ONNX; export --format torchscript");
  }

  /// `if <condition>: raise ...` with nothing computed: TorchScript's checks of an input's rank.
  static bool is_shape_guard(const Node* n) {
    if (n->kind().toQualString() != std::string("prim::If") || !n->outputs().empty()) return false;
    for (const torch::jit::Block* b : n->blocks()) {
      for (const Node* inner : b->nodes()) {
        const std::string k = inner->kind().toQualString();
        if (k != "prim::RaiseException" && k != "prim::Constant") return false;
      }
    }
    return true;
  }

  static const char* unary_op(const std::string& op) {
    if (op == "aten::relu") return "Relu";
    if (op == "aten::sigmoid") return "Sigmoid";
    if (op == "aten::tanh") return "Tanh";
    return nullptr;
  }

  std::string fresh() { return "trunk_v" + std::to_string(next_++); }

  int64_t rank_of(const Value* v) const {
    const auto it = dims_.find(v);
    if (it != dims_.end()) return static_cast<int64_t>(it->second.one.size());
    if (const auto c = torch::jit::toIValue(v); c && c->isTensor()) return c->toTensor().dim();
    return 0;
  }

  /// The constant input `i` of `n`; refused when it is computed.
  c10::IValue constant(const Node* n, size_t i) const {
    if (i >= n->inputs().size()) refuse(n, "too few inputs");
    const c10::optional<c10::IValue> c = torch::jit::toIValue(n->input(i));
    if (!c) refuse(n, "input " + std::to_string(i) + " computed, not constant");
    return *c;
  }

  double number(const Node* n, size_t i) const {
    const c10::IValue c = constant(n, i);
    if (c.isDouble()) return c.toDouble();
    if (c.isInt()) return static_cast<double>(c.toInt());
    if (c.isBool()) return c.toBool() ? 1.0 : 0.0;
    refuse(n, "input " + std::to_string(i) + " not a number");
  }

  std::vector<int64_t> ints(const Node* n, size_t i) const {
    const c10::IValue c = constant(n, i);
    if (c.isIntList()) return c.toIntVector();
    if (c.isInt()) return {c.toInt()};
    refuse(n, "input " + std::to_string(i) + " not a list of integers");
  }

  /// The ONNX name of tensor `v`: a value written before, or a constant written now as an initializer.
  std::string tensor(const Value* v) {
    const auto it = names_.find(v);
    if (it != names_.end()) return it->second;
    const c10::optional<c10::IValue> c = torch::jit::toIValue(v);
    if (!c || !(c->isTensor() || c->isDouble() || c->isInt())) {
      throw std::invalid_argument("the frozen trunk reads a value that den does not write to ONNX (" +
                                  std::string(v->node()->kind().toQualString()) + "); export --format torchscript");
    }
    const std::string name = "trunk_c" + std::to_string(next_++);
    float_initializer(g_, name, c->isTensor() ? c->toTensor() : at::scalar_tensor(c->toScalar(), at::kFloat));
    bind(v, name);
    return name;
  }

  std::string scalar(double value) {
    const std::string name = "trunk_c" + std::to_string(next_++);
    float_initializer(g_, name, at::scalar_tensor(value, at::kFloat));
    return name;
  }

  void conv(const Node* n, const std::string& out) {
    const bool full = n->kind().toQualString() == std::string("aten::_convolution");
    if (full && constant(n, 6).toBool()) refuse(n, "a transposed convolution");
    const c10::IValue padding = constant(n, 4);
    if (padding.isString()) refuse(n, "padding '" + padding.toStringRef() + "'");
    std::vector<int64_t> pads = padding.toIntVector();
    const std::vector<int64_t> half = pads;
    pads.insert(pads.end(), half.begin(), half.end());
    std::vector<std::string> inputs = {tensor(n->input(0)), tensor(n->input(1))};
    if (!constant_is_none(n->input(2))) inputs.push_back(tensor(n->input(2)));
    onnx::NodeProto& c = node(g_, "Conv", inputs, out);
    ints_attribute(c, "strides", ints(n, 3));
    ints_attribute(c, "pads", pads);
    ints_attribute(c, "dilations", ints(n, 5));
    int_attribute(c, "group", constant(n, full ? 8 : 6).toInt());
  }

  static bool constant_is_none(const Value* v) {
    const c10::optional<c10::IValue> c = torch::jit::toIValue(v);
    return c && c->isNone();
  }

  void batch_norm(const Node* n, const std::string& out) {
    if (constant(n, 5).toBool()) refuse(n, "training statistics");
    const at::Tensor mean = constant(n, 3).toTensor();
    const int64_t channels = mean.numel();
    const auto affine = [&](size_t i, double fill) {
      return constant_is_none(n->input(i)) ? scalar_tensor_of(channels, fill) : tensor(n->input(i));
    };
    const std::string scale = affine(1, 1.0), bias = affine(2, 0.0);
    onnx::NodeProto& b =
        node(g_, "BatchNormalization", {tensor(n->input(0)), scale, bias, tensor(n->input(3)), tensor(n->input(4))}, out);
    float_attribute(b, "epsilon", number(n, 7));
  }

  std::string scalar_tensor_of(int64_t size, double fill) {
    const std::string name = "trunk_c" + std::to_string(next_++);
    float_initializer(g_, name, at::full({size}, fill, at::kFloat));
    return name;
  }

  void gelu(const Node* n, const std::string& out) {
    if (n->inputs().size() > 1 && constant(n, 1).toStringRef() != "none") refuse(n, "the tanh approximation");
    const std::string x = tensor(n->input(0));
    node(g_, "Div", {x, scalar(std::sqrt(2.0))}, out + "_scaled");
    node(g_, "Erf", {out + "_scaled"}, out + "_erf");
    node(g_, "Add", {out + "_erf", scalar(1.0)}, out + "_1p");
    node(g_, "Mul", {x, out + "_1p"}, out + "_x1p");
    node(g_, "Mul", {out + "_x1p", scalar(0.5)}, out);
  }

  void binary(const Node* n, const std::string& op, const std::string& out) {
    if ((op == "aten::add" || op == "aten::sub") && n->inputs().size() > 2 && number(n, 2) != 1.0) {
      refuse(n, "alpha other than 1");
    }
    if (op == "aten::div" && n->inputs().size() > 2) refuse(n, "a rounding mode");
    const char* onnx_op = op == "aten::add" ? "Add" : op == "aten::sub" ? "Sub" : op == "aten::mul" ? "Mul" : "Div";
    node(g_, onnx_op, {tensor(n->input(0)), tensor(n->input(1))}, out);
  }

  void pool(const Node* n, bool max, const std::string& out) {
    const std::vector<int64_t> kernel = ints(n, 1);
    std::vector<int64_t> stride = ints(n, 2);
    if (stride.empty()) stride = kernel;
    std::vector<int64_t> pads = ints(n, 3);
    const std::vector<int64_t> half = pads;
    pads.insert(pads.end(), half.begin(), half.end());
    onnx::NodeProto& p = node(g_, max ? "MaxPool" : "AveragePool", {tensor(n->input(0))}, out);
    ints_attribute(p, "kernel_shape", kernel);
    ints_attribute(p, "strides", stride);
    ints_attribute(p, "pads", pads);
    if (max) {
      ints_attribute(p, "dilations", ints(n, 4));
      int_attribute(p, "ceil_mode", constant(n, 5).toBool() ? 1 : 0);
    } else {
      int_attribute(p, "ceil_mode", constant(n, 4).toBool() ? 1 : 0);
      int_attribute(p, "count_include_pad", constant(n, 5).toBool() ? 1 : 0);
      if (n->inputs().size() > 6 && !constant_is_none(n->input(6))) refuse(n, "a divisor override");
    }
  }

  /// mean or amax over dims: over every dim from 2 on (global pooling) as GlobalAveragePool or
  /// GlobalMaxPool, those dims then dropped by a Reshape unless kept; else ReduceMean or ReduceMax.
  void reduce(const Node* n, bool mean, const std::string& out, int64_t rank) {
    std::vector<int64_t> axes = ints(n, 1);
    const bool keep = constant(n, 2).toBool();
    for (int64_t& a : axes) a = a < 0 ? a + rank : a;
    std::sort(axes.begin(), axes.end());
    bool global = rank >= 3 && static_cast<int64_t>(axes.size()) == rank - 2;
    for (size_t i = 0; global && i < axes.size(); ++i) global = axes[i] == static_cast<int64_t>(i) + 2;
    if (!global) {
      onnx::NodeProto& m = node(g_, mean ? "ReduceMean" : "ReduceMax", {tensor(n->input(0))}, out);
      ints_attribute(m, "axes", axes);
      int_attribute(m, "keepdims", keep ? 1 : 0);
      return;
    }
    const char* pool = mean ? "GlobalAveragePool" : "GlobalMaxPool";
    if (keep) {
      node(g_, pool, {tensor(n->input(0))}, out);
      return;
    }
    node(g_, pool, {tensor(n->input(0))}, out + "_pooled");
    int64_initializer(g_, out + "_shape", {0, 0});
    node(g_, "Reshape", {out + "_pooled", out + "_shape"}, out);
  }

  /// flatten, reshape and view as a Reshape to the output's probed dims: a dim that follows the
  /// batch is ONNX's 0 (copy the input's) where the input has the same dim at the same place in
  /// both probes, else the one -1.
  void reshape(const Node* n, const std::string& out) {
    const auto in = dims_.find(n->input(0)), to = dims_.find(n->output());
    if (in == dims_.end() || to == dims_.end()) refuse(n, "an input of unknown shape");
    const Probed& x = in->second;
    const Probed& y = to->second;
    std::vector<int64_t> shape = y.one;
    int64_t free = 0;
    for (size_t i = 0; i < shape.size(); ++i) {
      if (y.one[i] == y.two[i]) continue;
      if (i < x.one.size() && x.one[i] == y.one[i] && x.two[i] == y.two[i]) {
        shape[i] = 0;
      } else if (++free > 1) {
        refuse(n, "more than one dim that follows the batch in a new place");
      } else {
        shape[i] = -1;
      }
    }
    int64_initializer(g_, out + "_shape", shape);
    node(g_, "Reshape", {tensor(n->input(0)), out + "_shape"}, out);
  }

  void linear(const Node* n, const std::string& out, int64_t rank) {
    const std::string x = tensor(n->input(0)), w = tensor(n->input(1));
    const bool bias = !constant_is_none(n->input(2));
    if (rank == 2) {
      std::vector<std::string> inputs = {x, w};
      if (bias) inputs.push_back(tensor(n->input(2)));
      int_attribute(node(g_, "Gemm", inputs, out), "transB", 1);
      return;
    }
    onnx::NodeProto& t = node(g_, "Transpose", {w}, out + "_wt");
    ints_attribute(t, "perm", {1, 0});
    node(g_, "MatMul", {x, out + "_wt"}, bias ? out + "_mm" : out);
    if (bias) node(g_, "Add", {out + "_mm", tensor(n->input(2))}, out);
  }

  void transpose(const Node* n, const std::string& op, const std::string& out, int64_t rank) {
    std::vector<int64_t> perm;
    if (op == "aten::permute") {
      perm = ints(n, 1);
      for (int64_t& p : perm) p = p < 0 ? p + rank : p;
    } else {
      if (rank < 1) refuse(n, "an input of unknown rank");
      for (int64_t i = 0; i < rank; ++i) perm.push_back(i);
      int64_t a = op == "aten::t" ? 0 : constant(n, 1).toInt(), b = op == "aten::t" ? 1 : constant(n, 2).toInt();
      a = a < 0 ? a + rank : a;
      b = b < 0 ? b + rank : b;
      if (rank >= 2 || op != "aten::t") std::swap(perm.at(static_cast<size_t>(a)), perm.at(static_cast<size_t>(b)));
    }
    ints_attribute(node(g_, "Transpose", {tensor(n->input(0))}, out), "perm", perm);
  }

  void cat(const Node* n, const std::string& out) {
    const Node* list = n->input(0)->node();
    if (list->kind().toQualString() != std::string("prim::ListConstruct")) refuse(n, "a computed list");
    std::vector<std::string> inputs;
    for (const Value* v : list->inputs()) inputs.push_back(tensor(v));
    if (inputs.empty()) refuse(n, "no input");
    int_attribute(node(g_, "Concat", inputs, out), "axis", constant(n, 1).toInt());
  }

  /// constant_pad_nd(x, [last_lo, last_hi, prev_lo, prev_hi, ...], value) as Pad, whose pads are all
  /// the begins, then all the ends, first dim first.
  void pad(const Node* n, const std::string& out, int64_t rank) {
    const std::vector<int64_t> torch_pads = ints(n, 1);
    if (rank < 1 || static_cast<int64_t>(torch_pads.size()) > 2 * rank || torch_pads.size() % 2 != 0) {
      refuse(n, "pads that do not fit its input");
    }
    std::vector<int64_t> pads(static_cast<size_t>(2 * rank), 0);
    for (size_t k = 0; k < torch_pads.size() / 2; ++k) {
      const size_t dim = static_cast<size_t>(rank) - 1 - k;
      pads[dim] = torch_pads[2 * k];
      pads[dim + static_cast<size_t>(rank)] = torch_pads[2 * k + 1];
    }
    int64_initializer(g_, out + "_pads", pads);
    node(g_, "Pad", {tensor(n->input(0)), out + "_pads", scalar(n->inputs().size() > 2 ? number(n, 2) : 0.0)}, out);
  }

  onnx::GraphProto& g_;
  std::unordered_map<const Value*, std::string> names_;
  const Dims dims_;
  int64_t next_ = 0;
};

/// Every tensor value's dims in `graph` (frozen's forward), from runs on zeros of batch 1 and 2
/// with each value made an output.
Dims probe_dims(const torch::jit::Module& frozen, const std::shared_ptr<torch::jit::Graph>& graph,
                const std::vector<int64_t>& input_shape) {
  const std::shared_ptr<torch::jit::Graph> copy = graph->copy();  // same nodes in the same order
  std::vector<const Value*> originals = {graph->inputs()[1]};
  std::vector<Value*> copies = {copy->inputs()[1]};
  auto c = copy->nodes().begin();
  for (auto o = graph->nodes().begin(); o != graph->nodes().end(); ++o, ++c) {
    for (size_t i = 0; i < o->outputs().size(); ++i) {
      if (o->kind() != c10::prim::Constant && o->outputs()[i]->type()->kind() == c10::TypeKind::TensorType) {
        originals.push_back(o->outputs()[i]);
        copies.push_back(c->outputs()[i]);
      }
    }
  }
  // One output (GraphFunction's rule): a tuple of them all.
  Node* all = copy->createTuple(copies);
  copy->appendNode(all);
  copy->eraseOutput(0);
  copy->registerOutput(all->output());
  torch::jit::GraphFunction probe("den_trunk_probe", copy, nullptr);
  std::vector<std::vector<int64_t>> runs[2];
  const c10::InferenceMode inference;
  for (int64_t batch : {1, 2}) {
    std::vector<int64_t> shape = input_shape;
    shape.insert(shape.begin(), batch);
    torch::jit::Stack stack = {frozen._ivalue(), at::zeros(shape, at::kFloat)};
    try {
      probe.run(stack);
    } catch (const std::exception& e) {
      const std::string what = internal::torch_error_line(e);
      throw std::runtime_error("the frozen trunk fails on samples of " + std::to_string(input_shape.size()) +
                               " dims: " + what);
    }
    for (const c10::IValue& v : stack.back().toTupleRef().elements()) {
      runs[batch - 1].push_back(v.isTensor() ? v.toTensor().sizes().vec() : std::vector<int64_t>{});
    }
  }
  Dims dims;
  for (size_t i = 0; i < originals.size(); ++i) {
    // A rank that follows the batch stays unknown.
    if (runs[0][i].size() == runs[1][i].size()) dims[originals[i]] = {runs[0][i], runs[1][i]};
  }
  return dims;
}

}  // namespace

std::string write_trunk(onnx::GraphProto& g, const FrozenTrunk& trunk, const std::string& input) {
  const torch::jit::Module frozen = torch::jit::freeze_module(load_trunk_module(trunk));
  std::shared_ptr<torch::jit::Graph> graph = frozen.get_method("forward").graph()->copy();
  torch::jit::Inline(*graph);
  torch::jit::RemoveTensorMutation(graph);
  torch::jit::ConstantPropagation(graph);
  torch::jit::EliminateDeadCode(graph);
  if (graph->inputs().size() != 2 || graph->outputs().size() != 1) {
    throw std::invalid_argument("the frozen trunk's forward does not take one tensor to one tensor; export --format "
                                "torchscript");
  }

  std::vector<int64_t> shape = trunk.input_shape;
  shape.insert(shape.begin(), -1);
  int64_initializer(g, "trunk_input_shape", shape);
  node(g, "Reshape", {input, "trunk_input_shape"}, "trunk_input");
  TrunkWriter writer(g, probe_dims(frozen, graph, trunk.input_shape));
  writer.bind(graph->inputs()[1], "trunk_input");
  for (const Node* n : graph->nodes()) writer.write(n);
  int64_initializer(g, "trunk_features_shape", {0, -1});
  node(g, "Reshape", {writer.output(graph->outputs()[0]), "trunk_features_shape"}, "trunk_features");
  return "trunk_features";
}

}  // namespace den::io::internal
