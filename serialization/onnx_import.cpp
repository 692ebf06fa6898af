// ONNX import: an ONNX graph translated into a TorchScript module (serialization/onnx_import.h says how).

#include "serialization/onnx_import.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <unordered_map>
#include <utility>

#ifdef DEN_HAVE_ONNX
#include <onnx/onnx_pb.h>
#endif

namespace den::io {

#ifdef DEN_HAVE_ONNX

namespace {

namespace fs = std::filesystem;

/// Dims of a value; -1 where a dimension is not known statically (a symbolic one, or one computed
/// from it).
using Shape = std::vector<int64_t>;

constexpr int64_t kMaxFileBytes = std::numeric_limits<int32_t>::max();  // protobuf parses at most 2 GiB
constexpr int kMaxNodes = 100000;
constexpr int kMaxInitializers = 100000;
constexpr size_t kMaxRank = 8;
/// The largest dimension, kernel, stride, dilation or pad: int64 arithmetic on a few of them cannot
/// overflow.
constexpr int64_t kMaxDim = std::numeric_limits<int32_t>::max();
/// The most elements of a tensor (per sample when a dimension is symbolic).
constexpr int64_t kMaxElements = int64_t{1} << 40;
constexpr int64_t kMinOpset = 9, kMaxOpset = 17;

const char* const kOperators =
    "Conv, BatchNormalization, Relu, Clip, LeakyRelu, Sigmoid, HardSigmoid, HardSwish, Tanh, Add, Sub, Mul, "
    "Div, Pad, MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, Flatten, Reshape, Squeeze, Unsqueeze, "
    "Transpose, Gemm, MatMul, Concat, Identity, Dropout, Constant, Softmax and LogSoftmax";

/// A name from the file as messages show it: at most 100 characters, printable ASCII.
std::string printable(const std::string& s) {
  std::string out = s.substr(0, 100);
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return s.size() > 100 ? out + "..." : out;
}

std::string list_text(const std::vector<int64_t>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
  return out + "]";
}

/// "[?, 3, 12, 12]": '?' for an unknown dimension.
std::string shape_text(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + (s[i] < 0 ? std::string("?") : std::to_string(s[i]));
  return out + "]";
}

/// A TorchScript int list literal (an empty one typed, which a bare [] would not be).
std::string ints_code(const std::vector<int64_t>& v) {
  return v.empty() ? "torch.jit.annotate(List[int], [])" : list_text(v);
}

/// A TorchScript float literal that reads back as the same double.
std::string float_code(double v) {
  if (std::isnan(v)) return "float(\"nan\")";
  if (std::isinf(v)) return v > 0 ? "float(\"inf\")" : "float(\"-inf\")";
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%.17g", v);
  std::string out = buffer;
  const size_t e = out.find('e');
  if (out.find('.') == std::string::npos) out.insert(e == std::string::npos ? out.size() : e, ".0");
  return out;
}

std::string bool_code(bool v) { return v ? "True" : "False"; }

/// a * b, saturating at kMaxElements + 1 (both >= 0).
int64_t capped_product(int64_t a, int64_t b) {
  int64_t out = 0;
  if (__builtin_mul_overflow(a, b, &out) || out > kMaxElements) return kMaxElements + 1;
  return out;
}

/// A value of the graph while it is translated.
struct Value {
  enum class Kind {
    Tensor,  ///< computed by the forward: `code` is its variable
    Floats,  ///< a float32 constant: a buffer once a node reads it as a tensor
    Ints,    ///< an integer constant (shapes, axes, pads): read now, written as literals
  };
  Kind kind = Kind::Tensor;
  Shape shape;
  std::string code;            ///< "v3", or "self.p1" for a constant with its buffer
  at::Tensor floats;           ///< Floats: float32, contiguous, of `shape`
  std::vector<int64_t> ints;   ///< Ints
  std::string source;          ///< Floats: the initializer or Constant, for OnnxModule::buffers
};

const char* data_type_name(int32_t type) {
  return onnx::TensorProto_DataType_IsValid(type)
             ? onnx::TensorProto_DataType_Name(static_cast<onnx::TensorProto_DataType>(type)).c_str()
             : "unknown";
}

class Translator {
 public:
  Translator(const onnx::ModelProto& model, std::string file) : model_(model), file_(std::move(file)) {}

  OnnxModule run() {
    read_opset();
    const onnx::GraphProto& g = model_.graph();
    if (g.node_size() > kMaxNodes) {
      fail(ImportError::Kind::Unsupported, "the graph has " + std::to_string(g.node_size()) + " nodes; den translates up to " +
                                               std::to_string(kMaxNodes));
    }
    if (g.initializer_size() > kMaxInitializers) {
      fail(ImportError::Kind::Unsupported, "the graph has " + std::to_string(g.initializer_size()) +
                                               " initializers; den translates up to " + std::to_string(kMaxInitializers));
    }
    if (g.sparse_initializer_size() > 0) fail(ImportError::Kind::Unsupported, "the graph has sparse initializers");
    for (const onnx::TensorProto& t : g.initializer()) {
      const std::string what = "initializer '" + printable(t.name()) + "'";
      if (t.name().empty()) fail(ImportError::Kind::Unreadable, "an initializer has no name");
      if (names_.count(t.name())) fail(ImportError::Kind::Unreadable, what + " is defined twice");
      Value v = read_tensor(t, what);
      v.source = t.name();
      define_value(t.name(), std::move(v));
    }
    read_input();
    if (g.output_size() != 1) {
      fail(ImportError::Kind::Unsupported, "the graph has " + std::to_string(g.output_size()) +
                                               " outputs; den translates graphs of one output");
    }
    code_ << "def forward(self, v0):\n";
    for (int i = 0; i < g.node_size(); ++i) translate_node(g.node(i), i);

    const std::string& output = g.output(0).name();
    const auto at = names_.find(output);
    if (at == names_.end()) {
      fail(ImportError::Kind::Unsupported, "the graph's output '" + printable(output) + "' is computed by no node");
    }
    const Value& out = values_[at->second];
    if (out.kind != Value::Kind::Tensor) {
      fail(ImportError::Kind::Unsupported, "the graph's output '" + printable(output) + "' is a constant, not computed from the input");
    }
    if (g.output(0).type().has_tensor_type() && g.output(0).type().tensor_type().elem_type() != onnx::TensorProto::FLOAT &&
        g.output(0).type().tensor_type().elem_type() != onnx::TensorProto::UNDEFINED) {
      fail(ImportError::Kind::Unsupported, "the graph's output is declared " +
                                               std::string(data_type_name(g.output(0).type().tensor_type().elem_type())) +
                                               "; den translates float32 graphs");
    }
    code_ << "    return " << out.code << "\n";
    result_.output_shape = out.shape;
    // Every name in the code is generated (v*, p*) and every line is one of the forms above, so the
    // source compiles; a failure here is a bug of the translator, not of the file.
    result_.module.define(code_.str());
    result_.module.eval();
    return std::move(result_);
  }

 private:
  using Handler = void (Translator::*)();

  // ---- errors -------------------------------------------------------------------------------------

  [[noreturn]] void fail(ImportError::Kind kind, const std::string& what) const {
    throw ImportError(kind, "'" + file_ + "': " + what);
  }

  /// "'conv_3' (op Conv)", or "#4 (op Conv)" for a node without a name.
  std::string label() const {
    const std::string name = node_->name().empty() ? "#" + std::to_string(node_index_) : "'" + printable(node_->name()) + "'";
    return name + " (op " + printable(node_->op_type()) + ")";
  }

  [[noreturn]] void node_fail(const std::string& why) const {
    fail(ImportError::Kind::Unsupported, "node " + label() + " cannot be translated: " + why);
  }

  // ---- the model ----------------------------------------------------------------------------------

  void read_opset() {
    std::optional<int64_t> version;
    for (const onnx::OperatorSetIdProto& o : model_.opset_import()) {
      if (o.domain().empty() || o.domain() == "ai.onnx") version = o.version();
    }
    if (!version) fail(ImportError::Kind::Unsupported, "the model imports no ai.onnx opset");
    if (*version < kMinOpset || *version > kMaxOpset) {
      fail(ImportError::Kind::Unsupported, "the model uses opset " + std::to_string(*version) + "; den translates opsets " +
                                               std::to_string(kMinOpset) + " to " + std::to_string(kMaxOpset) +
                                               " (convert it with onnx.version_converter)");
    }
    opset_ = *version;
  }

  /// The constant `t` holds, its dims checked against the bytes it holds before anything is allocated.
  Value read_tensor(const onnx::TensorProto& t, const std::string& what) {
    if (t.data_location() == onnx::TensorProto::EXTERNAL || t.external_data_size() > 0) {
      fail(ImportError::Kind::Unreadable, what + " keeps its data in another file (external data); den reads "
                                                 "self-contained models (onnx.save(model, path, save_as_external_data=False))");
    }
    if (t.has_segment()) fail(ImportError::Kind::Unsupported, what + " is a segment of a tensor");
    const int32_t type = t.data_type();
    if (type != onnx::TensorProto::FLOAT && type != onnx::TensorProto::INT64 && type != onnx::TensorProto::INT32) {
      fail(ImportError::Kind::Unsupported, what + " has data type " + data_type_name(type) +
                                               "; den translates float32 tensors, and int64 or int32 ones for shapes");
    }
    if (static_cast<size_t>(t.dims_size()) > kMaxRank) {
      fail(ImportError::Kind::Unsupported, what + " has " + std::to_string(t.dims_size()) + " dimensions; den translates up to " +
                                               std::to_string(kMaxRank));
    }
    Value v;
    int64_t count = 1;
    for (const int64_t d : t.dims()) {
      if (d < 0) fail(ImportError::Kind::Unreadable, what + " has a negative dimension " + std::to_string(d));
      if (d > kMaxDim || __builtin_mul_overflow(count, d, &count) || count > kMaxElements) {
        fail(ImportError::Kind::Unreadable, what + " claims dims " + list_text({t.dims().begin(), t.dims().end()}) +
                                                " (a dimension over 2^31 - 1, or more than 2^40 elements)");
      }
      v.shape.push_back(d);
    }
    const size_t element = type == onnx::TensorProto::INT32 ? 4 : type == onnx::TensorProto::FLOAT ? 4 : 8;
    const size_t typed = type == onnx::TensorProto::FLOAT   ? static_cast<size_t>(t.float_data_size())
                         : type == onnx::TensorProto::INT64 ? static_cast<size_t>(t.int64_data_size())
                                                            : static_cast<size_t>(t.int32_data_size());
    const size_t n = static_cast<size_t>(count);
    const bool raw = t.has_raw_data();
    if (raw && typed > 0) fail(ImportError::Kind::Unreadable, what + " holds both raw_data and typed data");
    if (raw ? t.raw_data().size() != n * element : typed != n) {
      fail(ImportError::Kind::Unreadable,
           what + " claims dims " + list_text(v.shape) + " (" + std::to_string(n) + " elements of " + std::to_string(element) +
               " bytes) but holds " +
               (raw ? std::to_string(t.raw_data().size()) + " bytes" : std::to_string(typed) + " elements"));
    }
    // Checked: from here on the allocation is what the file holds. raw_data is little-endian, as
    // are the hosts den builds on.
    static_assert(sizeof(float) == 4);
    if (type == onnx::TensorProto::FLOAT) {
      v.kind = Value::Kind::Floats;
      v.floats = at::empty(v.shape, at::kFloat);
      if (n > 0) std::memcpy(v.floats.data_ptr<float>(), raw ? t.raw_data().data() : static_cast<const void*>(t.float_data().data()), n * 4);
    } else {
      v.kind = Value::Kind::Ints;
      v.ints.resize(n);
      for (size_t i = 0; i < n; ++i) {
        if (type == onnx::TensorProto::INT64) {
          int64_t x = 0;
          if (raw) std::memcpy(&x, t.raw_data().data() + i * 8, 8);
          v.ints[i] = raw ? x : t.int64_data(static_cast<int>(i));
        } else {
          int32_t x = 0;
          if (raw) std::memcpy(&x, t.raw_data().data() + i * 4, 4);
          v.ints[i] = raw ? x : t.int32_data(static_cast<int>(i));
        }
      }
    }
    note_elements(v.shape);
    return v;
  }

  void read_input() {
    const onnx::GraphProto& g = model_.graph();
    std::vector<const onnx::ValueInfoProto*> inputs;
    for (const onnx::ValueInfoProto& i : g.input()) {
      // Before IR version 4 the initializers were listed among the inputs too.
      const auto at = names_.find(i.name());
      if (at == names_.end() || values_[at->second].kind == Value::Kind::Tensor) inputs.push_back(&i);
    }
    if (inputs.size() != 1) {
      fail(ImportError::Kind::Unsupported, "the graph has " + std::to_string(inputs.size()) +
                                               " inputs besides its initializers; den translates graphs of one input");
    }
    const onnx::ValueInfoProto& in = *inputs.front();
    const std::string what = "the graph's input '" + printable(in.name()) + "'";
    if (in.name().empty()) fail(ImportError::Kind::Unsupported, "the graph's input has no name");
    if (!in.type().has_tensor_type()) fail(ImportError::Kind::Unsupported, what + " is not a tensor");
    const onnx::TypeProto::Tensor& type = in.type().tensor_type();
    if (type.elem_type() != onnx::TensorProto::FLOAT) {
      fail(ImportError::Kind::Unsupported, what + " is " + data_type_name(type.elem_type()) + "; den translates float32 inputs");
    }
    if (!type.has_shape()) fail(ImportError::Kind::Unsupported, what + " declares no shape; den needs its rank and sizes");
    if (type.shape().dim_size() < 1 || static_cast<size_t>(type.shape().dim_size()) > kMaxRank) {
      fail(ImportError::Kind::Unsupported, what + " has " + std::to_string(type.shape().dim_size()) +
                                               " dimensions; den translates 1 to " + std::to_string(kMaxRank));
    }
    Value v;
    for (const onnx::TensorShapeProto::Dimension& d : type.shape().dim()) {
      if (!d.has_dim_value()) {
        v.shape.push_back(-1);  // symbolic (dim_param) or unknown
      } else if (d.dim_value() < 1 || d.dim_value() > kMaxDim) {
        fail(ImportError::Kind::Unsupported, what + " has a dimension of " + std::to_string(d.dim_value()));
      } else {
        v.shape.push_back(d.dim_value());
      }
    }
    check_elements(v.shape, what);
    v.code = "v0";
    ++variables_;
    input_name_ = in.name();
    result_.input_shape = v.shape;
    define_value(in.name(), std::move(v));
  }

  size_t define_value(const std::string& name, Value v) {
    values_.push_back(std::move(v));
    names_[name] = values_.size() - 1;
    return values_.size() - 1;
  }

  /// Refuses a shape of more than kMaxElements elements (unknown dimensions counted as 1), and
  /// counts it into OnnxModule::max_elements.
  void check_elements(const Shape& s, const std::string& what) {
    int64_t n = 1;
    for (const int64_t d : s) n = capped_product(n, std::max<int64_t>(d, 1));
    if (n > kMaxElements) fail(ImportError::Kind::Unsupported, what + " would hold more than 2^40 elements " + shape_text(s));
    result_.max_elements = std::max(result_.max_elements, n);
  }

  void note_elements(const Shape& s) {
    int64_t n = 1;
    for (const int64_t d : s) n = capped_product(n, d);
    result_.max_elements = std::max(result_.max_elements, n);
  }

  // ---- nodes --------------------------------------------------------------------------------------

  void translate_node(const onnx::NodeProto& node, int index) {
    node_ = &node;
    node_index_ = index;
    result_.nodes.push_back((node.name().empty() ? "#" + std::to_string(index) : printable(node.name())) + " (" +
                            printable(node.op_type()) + ")");
    if (!node.domain().empty() && node.domain() != "ai.onnx") {
      node_fail("its domain '" + printable(node.domain()) + "' is not ai.onnx; den translates " + std::string(kOperators));
    }
    static const std::vector<std::pair<std::string, Handler>> handlers = {
        {"Conv", &Translator::conv},
        {"BatchNormalization", &Translator::batch_norm},
        {"Relu", &Translator::unary},
        {"Sigmoid", &Translator::unary},
        {"Tanh", &Translator::unary},
        {"HardSwish", &Translator::unary},
        {"LeakyRelu", &Translator::unary},
        {"HardSigmoid", &Translator::unary},
        {"Clip", &Translator::clip},
        {"Add", &Translator::binary},
        {"Sub", &Translator::binary},
        {"Mul", &Translator::binary},
        {"Div", &Translator::binary},
        {"Pad", &Translator::pad},
        {"MaxPool", &Translator::pool},
        {"AveragePool", &Translator::pool},
        {"GlobalAveragePool", &Translator::global_pool},
        {"GlobalMaxPool", &Translator::global_pool},
        {"Flatten", &Translator::flatten},
        {"Reshape", &Translator::reshape},
        {"Squeeze", &Translator::squeeze},
        {"Unsqueeze", &Translator::unsqueeze},
        {"Transpose", &Translator::transpose},
        {"Gemm", &Translator::gemm},
        {"MatMul", &Translator::matmul},
        {"Concat", &Translator::concat},
        {"Identity", &Translator::identity},
        {"Dropout", &Translator::identity},
        {"Constant", &Translator::constant},
        {"Softmax", &Translator::softmax},
        {"LogSoftmax", &Translator::softmax},
    };
    const auto handler = std::find_if(handlers.begin(), handlers.end(),
                                      [&](const auto& h) { return h.first == node.op_type(); });
    if (handler == handlers.end()) node_fail("den translates " + std::string(kOperators));
    // ONNX requires topological order: every input is the graph's, an initializer, or an earlier output.
    for (const std::string& in : node.input()) {
      if (!in.empty() && !names_.count(in)) {
        node_fail("it reads '" + printable(in) + "', which neither the graph nor an earlier node defines (nodes must be in "
                  "topological order)");
      }
    }
    if (node.output_size() < 1 || node.output(0).empty()) node_fail("it has no output");
    only_first_output();
    for (const std::string& out : node.output()) {
      if (!out.empty() && names_.count(out)) node_fail("its output '" + printable(out) + "' is defined before");
    }
    attributes_.clear();
    for (const onnx::AttributeProto& a : node.attribute()) {
      if (!a.ref_attr_name().empty()) node_fail("attribute '" + printable(a.name()) + "' refers to a function's attribute");
      if (!attributes_.emplace(a.name(), &a).second) node_fail("attribute '" + printable(a.name()) + "' is given twice");
    }
    (this->*handler->second)();
  }

  const std::string& op() const { return node_->op_type(); }

  /// Refuses any attribute but `allowed`.
  void allow_attributes(std::initializer_list<const char*> allowed) const {
    for (const auto& entry : attributes_) {
      const std::string& name = entry.first;
      if (std::none_of(allowed.begin(), allowed.end(), [&](const char* n) { return name == n; })) {
        std::string list;
        for (const char* n : allowed) list += (list.empty() ? "" : ", ") + std::string(n);
        node_fail("attribute '" + printable(name) + "' is not translated (" + op() + " takes " +
                  (list.empty() ? std::string("none") : list) + " at opset " + std::to_string(opset_) + ")");
      }
    }
  }

  const onnx::AttributeProto* attribute(const char* name, onnx::AttributeProto::AttributeType type) const {
    const auto at = attributes_.find(name);
    if (at == attributes_.end()) return nullptr;
    if (at->second->type() != type) {
      node_fail("attribute '" + std::string(name) + "' is of type " +
                (onnx::AttributeProto_AttributeType_IsValid(at->second->type())
                     ? onnx::AttributeProto_AttributeType_Name(at->second->type())
                     : std::to_string(at->second->type())) +
                ", not " + onnx::AttributeProto_AttributeType_Name(type));
    }
    return at->second;
  }

  int64_t int_attribute(const char* name, int64_t fallback, int64_t low, int64_t high) const {
    const onnx::AttributeProto* a = attribute(name, onnx::AttributeProto::INT);
    if (a == nullptr) return fallback;
    if (a->i() < low || a->i() > high) {
      node_fail("attribute " + std::string(name) + " = " + std::to_string(a->i()) + " is outside " + std::to_string(low) +
                ".." + std::to_string(high));
    }
    return a->i();
  }

  int64_t required_int(const char* name) const {
    if (attribute(name, onnx::AttributeProto::INT) == nullptr) node_fail("it lacks its attribute " + std::string(name));
    return int_attribute(name, 0, -kMaxDim, kMaxDim);
  }

  double float_attribute(const char* name, double fallback) const {
    const onnx::AttributeProto* a = attribute(name, onnx::AttributeProto::FLOAT);
    return a == nullptr ? fallback : static_cast<double>(a->f());
  }

  std::string string_attribute(const char* name, const std::string& fallback) const {
    const onnx::AttributeProto* a = attribute(name, onnx::AttributeProto::STRING);
    return a == nullptr ? fallback : a->s();
  }

  /// The ints of attribute `name`, each within low..high; nullopt when absent.
  std::optional<std::vector<int64_t>> ints_attribute(const char* name, int64_t low, int64_t high) const {
    const onnx::AttributeProto* a = attribute(name, onnx::AttributeProto::INTS);
    if (a == nullptr) return std::nullopt;
    if (static_cast<size_t>(a->ints_size()) > 2 * kMaxRank) {
      node_fail("attribute " + std::string(name) + " has " + std::to_string(a->ints_size()) + " values");
    }
    std::vector<int64_t> out(a->ints().begin(), a->ints().end());
    for (const int64_t v : out) {
      if (v < low || v > high) {
        node_fail("attribute " + std::string(name) + " " + list_text(out) + " has a value outside " + std::to_string(low) +
                  ".." + std::to_string(high));
      }
    }
    return out;
  }

  /// A spatial setting of `k` values (strides, dilations), each 1..kMaxDim, default 1.
  std::vector<int64_t> spatial_attribute(const char* name, size_t k) const {
    const std::vector<int64_t> out = ints_attribute(name, 1, kMaxDim).value_or(std::vector<int64_t>(k, 1));
    if (out.size() != k) {
      node_fail("attribute " + std::string(name) + " " + list_text(out) + " has " + std::to_string(out.size()) +
                " values for " + std::to_string(k) + " spatial dimensions");
    }
    return out;
  }

  void expect_inputs(int low, int high) const {
    if (node_->input_size() < low || node_->input_size() > high) {
      node_fail("it has " + std::to_string(node_->input_size()) + " inputs; " + op() + " takes " +
                (low == high ? std::to_string(low) : std::to_string(low) + " to " + std::to_string(high)) + " here");
    }
  }

  /// Refuses outputs after the first (training outputs: BatchNormalization's statistics, Dropout's
  /// mask, MaxPool's indices).
  void only_first_output() const {
    for (int i = 1; i < node_->output_size(); ++i) {
      if (!node_->output(i).empty()) {
        node_fail("its output " + std::to_string(i) + " ('" + printable(node_->output(i)) + "') is not translated; den " +
                  "translates the inference form, one output per node");
      }
    }
  }

  /// Input `i`, or null when it is absent or given as "".
  Value* input(int i) {
    if (i >= node_->input_size() || node_->input(i).empty()) return nullptr;
    return &values_[names_.at(node_->input(i))];
  }

  Value& required(int i) {
    Value* v = input(i);
    if (v == nullptr) node_fail("its input " + std::to_string(i) + " is missing");
    return *v;
  }

  /// The code for input `i` as a float tensor: its variable, or the buffer of a float constant
  /// (registered on first use).
  std::string tensor(int i) {
    Value& v = required(i);
    if (v.kind == Value::Kind::Ints) {
      node_fail("it reads the integer constant '" + printable(node_->input(i)) + "' as data; den translates float32 data");
    }
    if (v.kind == Value::Kind::Floats && v.code.empty()) {
      if (v.floats.numel() == 0) node_fail("its input '" + printable(node_->input(i)) + "' is empty");
      const std::string name = "p" + std::to_string(buffers_++);
      result_.module.register_buffer(name, v.floats);
      result_.buffers[name] = v.source.empty() ? node_->input(i) : v.source;
      v.code = "self." + name;
    }
    return v.code;
  }

  const Shape& shape(int i) { return required(i).shape; }

  /// The integers of constant input `i` (a Reshape's shape, Squeeze's axes, Pad's pads).
  const std::vector<int64_t>& ints_input(int i, const char* what) {
    const Value& v = required(i);
    if (v.kind != Value::Kind::Ints) {
      node_fail("its " + std::string(what) + " (input " + std::to_string(i) + ") is not an int64 constant; den needs it at " +
                "translation time (static shapes)");
    }
    if (v.shape.size() > 1) node_fail("its " + std::string(what) + " has " + std::to_string(v.shape.size()) + " dimensions");
    if (v.ints.size() > 2 * kMaxRank) node_fail("its " + std::string(what) + " has " + std::to_string(v.ints.size()) + " values");
    return v.ints;
  }

  /// The value of the one-element float constant input `i` (Clip's bounds, Pad's value).
  double scalar_input(int i, const char* what) {
    const Value& v = required(i);
    if (v.kind != Value::Kind::Floats || v.floats.numel() != 1) {
      node_fail("its " + std::string(what) + " (input " + std::to_string(i) + ") is not a float32 constant of one element");
    }
    return static_cast<double>(v.floats.data_ptr<float>()[0]);
  }

  /// The rank of input `i`, refused outside low..high.
  size_t rank(int i, size_t low, size_t high) {
    const size_t r = shape(i).size();
    if (r < low || r > high) {
      node_fail("its input " + std::to_string(i) + " has shape " + shape_text(shape(i)) + "; " + op() + " takes rank " +
                (low == high ? std::to_string(low) : std::to_string(low) + " to " + std::to_string(high)) + " here");
    }
    return r;
  }

  /// `axis` in -rank..rank-1 (or ..rank when `inclusive`) as 0..rank-1 (..rank).
  int64_t normalize_axis(int64_t axis, size_t rank, bool inclusive = false) const {
    const int64_t r = static_cast<int64_t>(rank);
    const int64_t high = inclusive ? r : r - 1;
    if (axis < -r || axis > high) {
      node_fail("axis " + std::to_string(axis) + " is outside " + std::to_string(-r) + ".." + std::to_string(high) +
                " for rank " + std::to_string(r));
    }
    return axis < 0 ? axis + r : axis;
  }

  /// Writes `v<n> = expr` for the node's first output, of shape `s`.
  void emit(const std::string& expr, Shape s) {
    if (s.size() > kMaxRank) node_fail("its output would have " + std::to_string(s.size()) + " dimensions");
    for (const int64_t d : s) {
      if (d == 0 || d > kMaxDim) node_fail("its output would have shape " + shape_text(s));
    }
    check_elements(s, "node " + label() + "'s output");
    Value v;
    v.shape = std::move(s);
    v.code = "v" + std::to_string(variables_++);
    code_ << "    " << v.code << " = " << expr << "\n";
    define_value(node_->output(0), std::move(v));
  }

  // ---- shapes -------------------------------------------------------------------------------------

  /// Numpy broadcasting of `a` and `b` (Add, Sub, Mul, Div, MatMul's batch dims).
  Shape broadcast(const Shape& a, const Shape& b) const {
    Shape out(std::max(a.size(), b.size()));
    for (size_t i = 0; i < out.size(); ++i) {
      const int64_t x = i < out.size() - a.size() ? 1 : a[i - (out.size() - a.size())];
      const int64_t y = i < out.size() - b.size() ? 1 : b[i - (out.size() - b.size())];
      if (x == 1) {
        out[i] = y;
      } else if (y == 1) {
        out[i] = x;
      } else if (x < 0 || y < 0) {
        out[i] = std::max(x, y);  // the known one (> 1, so the unknown one is 1 or equal), else unknown
      } else if (x != y) {
        node_fail("shapes " + shape_text(a) + " and " + shape_text(b) + " do not broadcast");
      } else {
        out[i] = x;
      }
    }
    return out;
  }

  /// Begin and end padding of each spatial dim (Conv, MaxPool, AveragePool): auto_pad, or pads.
  std::pair<std::vector<int64_t>, std::vector<int64_t>> padding(const Shape& x, const std::vector<int64_t>& kernel,
                                                                const std::vector<int64_t>& strides,
                                                                const std::vector<int64_t>& dilations) const {
    const size_t k = kernel.size();
    std::vector<int64_t> begin(k, 0), end(k, 0);
    const std::string mode = string_attribute("auto_pad", "NOTSET");
    if (mode == "NOTSET") {
      const std::vector<int64_t> pads = ints_attribute("pads", 0, kMaxDim).value_or(std::vector<int64_t>(2 * k, 0));
      if (pads.size() != 2 * k) {
        node_fail("attribute pads " + list_text(pads) + " has " + std::to_string(pads.size()) + " values for " +
                  std::to_string(k) + " spatial dimensions");
      }
      for (size_t i = 0; i < k; ++i) {
        begin[i] = pads[i];
        end[i] = pads[k + i];
      }
    } else if (mode == "SAME_UPPER" || mode == "SAME_LOWER") {
      for (size_t i = 0; i < k; ++i) {
        const int64_t in = x[2 + i];
        if (in < 0) node_fail("auto_pad " + mode + " needs the input's spatial size, which is not known: " + shape_text(x));
        const int64_t out = (in + strides[i] - 1) / strides[i];
        const int64_t effective = (kernel[i] - 1) * dilations[i] + 1;
        const int64_t total = std::max<int64_t>(0, (out - 1) * strides[i] + effective - in);
        const int64_t small = total / 2, large = total - small;
        begin[i] = mode == "SAME_UPPER" ? small : large;  // SAME_UPPER puts the extra padding at the end
        end[i] = mode == "SAME_UPPER" ? large : small;
      }
    } else if (mode != "VALID") {
      node_fail("auto_pad '" + printable(mode) + "' is not NOTSET, VALID, SAME_UPPER or SAME_LOWER");
    }
    return {begin, end};
  }

  /// `x` with its spatial dims (from dim 2 on) padded by `begin` and `end`.
  static Shape padded(Shape x, const std::vector<int64_t>& begin, const std::vector<int64_t>& end) {
    for (size_t i = 0; i < begin.size(); ++i) {
      if (x[2 + i] >= 0) x[2 + i] += begin[i] + end[i];
    }
    return x;
  }

  /// torch.constant_pad_nd's list for the last `begin.size()` dims: last dim first, begin then end.
  static std::vector<int64_t> torch_pads(const std::vector<int64_t>& begin, const std::vector<int64_t>& end) {
    std::vector<int64_t> out;
    for (size_t i = begin.size(); i-- > 0;) {
      out.push_back(begin[i]);
      out.push_back(end[i]);
    }
    return out;
  }

  // ---- operators ----------------------------------------------------------------------------------

  void conv() {
    allow_attributes({"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"});
    expect_inputs(2, 3);
    const size_t r = rank(0, 3, 5);
    const size_t k = r - 2;
    const Shape x = shape(0), w = shape(1);
    if (w.size() != r || std::any_of(w.begin(), w.end(), [](int64_t d) { return d < 1; })) {
      node_fail("its weight has shape " + shape_text(w) + "; for input " + shape_text(x) + " it needs " +
                std::to_string(r) + " known dimensions");
    }
    const int64_t group = int_attribute("group", 1, 1, kMaxDim);
    if (w[0] % group != 0 || (x[1] >= 0 && x[1] != w[1] * group)) {
      node_fail("weight " + shape_text(w) + " with group " + std::to_string(group) + " does not fit input " + shape_text(x));
    }
    const std::vector<int64_t> kernel(w.begin() + 2, w.end());
    const auto declared = ints_attribute("kernel_shape", 1, kMaxDim);
    if (declared && *declared != kernel) {
      node_fail("kernel_shape " + list_text(*declared) + " differs from its weight's " + shape_text(w));
    }
    if (input(2) != nullptr && shape(2) != Shape{w[0]}) {
      node_fail("its bias has shape " + shape_text(shape(2)) + ", not [" + std::to_string(w[0]) + "]");
    }
    const std::vector<int64_t> strides = spatial_attribute("strides", k), dilations = spatial_attribute("dilations", k);
    const auto [begin, end] = padding(x, kernel, strides, dilations);
    Shape out = {x[0], w[0]};
    for (size_t i = 0; i < k; ++i) {
      const int64_t in = x[2 + i], effective = (kernel[i] - 1) * dilations[i] + 1;
      if (in >= 0 && in + begin[i] + end[i] < effective) {
        node_fail("its kernel " + shape_text(w) + " (dilation " + list_text(dilations) + ") is larger than the padded input " +
                  shape_text(x));
      }
      out.push_back(in < 0 ? -1 : (in + begin[i] + end[i] - effective) / strides[i] + 1);
    }
    std::string data = tensor(0);
    std::vector<int64_t> pads = begin;
    if (begin != end) {  // torch's conv pads both sides alike
      check_elements(padded(x, begin, end), "node " + label() + "'s padded input");
      data = "torch.constant_pad_nd(" + data + ", " + ints_code(torch_pads(begin, end)) + ", 0.0)";
      pads.assign(k, 0);
    }
    // Buffers are numbered in the order of the node's inputs.
    const std::string weight = tensor(1), bias = input(2) != nullptr ? tensor(2) : "None";
    emit("torch.conv" + std::to_string(k) + "d(" + data + ", " + weight + ", " + bias + ", " + ints_code(strides) + ", " +
             ints_code(pads) + ", " + ints_code(dilations) + ", " + std::to_string(group) + ")",
         out);
  }

  void batch_norm() {
    allow_attributes({"epsilon", "momentum", "spatial", "training_mode"});
    expect_inputs(5, 5);
    int_attribute("spatial", 1, 1, 1);
    int_attribute("training_mode", 0, 0, 0);
    rank(0, 2, kMaxRank);
    const Shape x = shape(0);
    int64_t channels = x[1];
    for (int i = 1; i < 5; ++i) {
      const Shape& p = shape(i);
      if (p.size() != 1 || p[0] < 1 || (channels >= 0 && p[0] != channels)) {
        node_fail("its input " + std::to_string(i) + " has shape " + shape_text(p) + " for input " + shape_text(x));
      }
      channels = p[0];
    }
    const double epsilon = float_attribute("epsilon", 1e-5);
    std::string args;
    for (int i = 0; i < 5; ++i) args += (i ? ", " : "") + tensor(i);
    emit("torch.batch_norm(" + args + ", False, 0.0, " + float_code(epsilon) + ", False)", x);
  }

  void unary() {
    const std::string& o = op();
    std::string expr;
    if (o == "LeakyRelu") {
      allow_attributes({"alpha"});
      expect_inputs(1, 1);
      expr = "torch.leaky_relu(" + tensor(0) + ", " + float_code(float_attribute("alpha", 0.01)) + ")";
    } else if (o == "HardSigmoid") {
      allow_attributes({"alpha", "beta"});
      expect_inputs(1, 1);
      expr = "torch.clamp(torch.add(torch.mul(" + tensor(0) + ", " + float_code(float_attribute("alpha", 0.2)) + "), " +
             float_code(float_attribute("beta", 0.5)) + "), 0.0, 1.0)";
    } else {
      allow_attributes({});
      expect_inputs(1, 1);
      const char* fn = o == "Relu" ? "relu" : o == "Sigmoid" ? "sigmoid" : o == "Tanh" ? "tanh" : "hardswish";
      expr = "torch." + std::string(fn) + "(" + tensor(0) + ")";
    }
    emit(expr, shape(0));
  }

  void clip() {
    std::optional<double> low, high;
    if (opset_ < 11) {
      allow_attributes({"min", "max"});
      expect_inputs(1, 1);
      if (attribute("min", onnx::AttributeProto::FLOAT)) low = float_attribute("min", 0);
      if (attribute("max", onnx::AttributeProto::FLOAT)) high = float_attribute("max", 0);
    } else {
      allow_attributes({});
      expect_inputs(1, 3);
      if (input(1) != nullptr) low = scalar_input(1, "min");
      if (input(2) != nullptr) high = scalar_input(2, "max");
    }
    if (!low && !high) {  // torch.clamp wants a bound; ONNX's Clip without one is the identity
      emit(tensor(0), shape(0));
      return;
    }
    emit("torch.clamp(" + tensor(0) + ", " + (low ? float_code(*low) : "None") + ", " + (high ? float_code(*high) : "None") +
             ")",
         shape(0));
  }

  void binary() {
    allow_attributes({});
    expect_inputs(2, 2);
    const Shape out = broadcast(shape(0), shape(1));
    const std::string& o = op();
    const char* fn = o == "Add" ? "add" : o == "Sub" ? "sub" : o == "Mul" ? "mul" : "div";
    const std::string a = tensor(0), b = tensor(1);
    emit("torch." + std::string(fn) + "(" + a + ", " + b + ")", out);
  }

  void pad() {
    std::vector<int64_t> pads;
    double value = 0;
    if (opset_ < 11) {
      allow_attributes({"mode", "pads", "value"});
      expect_inputs(1, 1);
      const auto attr = ints_attribute("pads", -kMaxDim, kMaxDim);
      if (!attr) node_fail("it lacks its attribute pads");
      pads = *attr;
      value = float_attribute("value", 0.0);
    } else {
      allow_attributes({"mode"});
      expect_inputs(2, 3);  // opset 18's axes (input 3) is refused here
      pads = ints_input(1, "pads");
      if (input(2) != nullptr) value = scalar_input(2, "constant_value");
    }
    const std::string mode = string_attribute("mode", "constant");
    if (mode != "constant") node_fail("mode '" + printable(mode) + "' is not translated; den pads with a constant");
    const Shape x = shape(0);
    if (pads.size() != 2 * x.size()) {
      node_fail("pads " + list_text(pads) + " has " + std::to_string(pads.size()) + " values for input " + shape_text(x));
    }
    std::vector<int64_t> begin(pads.begin(), pads.begin() + static_cast<int64_t>(x.size()));
    std::vector<int64_t> end(pads.begin() + static_cast<int64_t>(x.size()), pads.end());
    Shape out = x;
    for (size_t i = 0; i < x.size(); ++i) {
      if (begin[i] < -kMaxDim || begin[i] > kMaxDim || end[i] < -kMaxDim || end[i] > kMaxDim) node_fail("pads " + list_text(pads) + " are too large");
      if (x[i] < 0 && (begin[i] != 0 || end[i] != 0)) {
        node_fail("it pads dimension " + std::to_string(i) + " of " + shape_text(x) + ", whose size is not known");
      }
      if (x[i] >= 0) {
        out[i] = x[i] + begin[i] + end[i];
        if (out[i] < 1) node_fail("pads " + list_text(pads) + " leave nothing of input " + shape_text(x));
      }
    }
    emit("torch.constant_pad_nd(" + tensor(0) + ", " + ints_code(torch_pads(begin, end)) + ", " + float_code(value) + ")", out);
  }

  // Pools: torch's pools take symmetric padding of at most half the kernel. Other
  // padding (asymmetric, as tf2onnx writes Keras' "same") is applied before the pool with
  // constant_pad_nd: -inf for max pooling, zeros for averages that count the padding. An average
  // that excludes it is the ratio of two padded averages, of the data and of ones: the sum of the
  // real elements over their count. Output sizes follow torch's formula (with ceil_mode, a window
  // that would start in the end padding is dropped), which is what torch.onnx.export meant.
  void pool() {
    const bool max = op() == "MaxPool";
    if (max) {
      allow_attributes({"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"});
    } else {
      allow_attributes({"auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads", "strides"});
    }
    expect_inputs(1, 1);
    const size_t r = rank(0, 3, 5);
    const size_t k = r - 2;
    const Shape x = shape(0);
    const auto kernel = ints_attribute("kernel_shape", 1, kMaxDim);
    if (!kernel || kernel->size() != k) node_fail("it needs kernel_shape with " + std::to_string(k) + " values");
    const std::vector<int64_t> strides = spatial_attribute("strides", k);
    const std::vector<int64_t> dilations = max ? spatial_attribute("dilations", k) : std::vector<int64_t>(k, 1);
    const bool ceil = int_attribute("ceil_mode", 0, 0, 1) == 1;
    const bool count_pad = int_attribute("count_include_pad", 0, 0, 1) == 1;
    int_attribute("storage_order", 0, 0, 1);  // the layout of the indices output, which is refused
    const auto [begin, end] = padding(x, *kernel, strides, dilations);
    bool native = begin == end;
    Shape out = {x[0], x[1]};
    for (size_t i = 0; i < k; ++i) {
      const int64_t effective = ((*kernel)[i] - 1) * dilations[i] + 1;
      if (begin[i] >= effective || end[i] >= effective) {
        node_fail("its pads " + list_text(begin) + ", " + list_text(end) + " reach the size of its kernel " +
                  list_text(*kernel));
      }
      native = native && begin[i] <= (*kernel)[i] / 2;
    }
    for (size_t i = 0; i < k; ++i) {
      const int64_t in = x[2 + i];
      if (in < 0) {
        out.push_back(-1);
        continue;
      }
      const int64_t size = native ? in : in + begin[i] + end[i];
      const int64_t p = native ? begin[i] : 0;
      const int64_t effective = ((*kernel)[i] - 1) * dilations[i] + 1;
      const int64_t span = size + 2 * p - effective;
      if (span < 0) node_fail("its kernel " + list_text(*kernel) + " is larger than the padded input " + shape_text(x));
      int64_t o = (span + (ceil ? strides[i] - 1 : 0)) / strides[i] + 1;
      if (ceil && (o - 1) * strides[i] >= size + p) --o;
      out.push_back(o);
    }
    const std::string fn = std::string(max ? "torch.max_pool" : "torch.avg_pool") + std::to_string(k) + "d(";
    const std::string tail = max ? ", " + ints_code(dilations) + ", " + bool_code(ceil) + ")"
                                 : ", " + bool_code(ceil) + ", " + bool_code(native ? count_pad : true) + ")";
    const std::string x_code = tensor(0);
    const std::string settings = ", " + ints_code(*kernel) + ", " + ints_code(strides) + ", ";
    if (native) {
      emit(fn + x_code + settings + ints_code(begin) + tail, out);
      return;
    }
    check_elements(padded(x, begin, end), "node " + label() + "'s padded input");
    const std::string zeros = ints_code(std::vector<int64_t>(k, 0));
    const std::string pads = ints_code(torch_pads(begin, end));
    if (max) {
      emit(fn + "torch.constant_pad_nd(" + x_code + ", " + pads + ", float(\"-inf\"))" + settings + zeros + tail, out);
    } else if (count_pad) {
      emit(fn + "torch.constant_pad_nd(" + x_code + ", " + pads + ", 0.0)" + settings + zeros + tail, out);
    } else {
      emit("torch.div(" + fn + "torch.constant_pad_nd(" + x_code + ", " + pads + ", 0.0)" + settings + zeros + tail + ", " +
               fn + "torch.constant_pad_nd(torch.ones_like(" + x_code + "), " + pads + ", 0.0)" + settings + zeros + tail + ")",
           out);
    }
  }

  void global_pool() {
    allow_attributes({});
    expect_inputs(1, 1);
    const size_t r = rank(0, 3, kMaxRank);
    std::vector<int64_t> dims;
    Shape out = shape(0);
    for (size_t i = 2; i < r; ++i) {
      dims.push_back(static_cast<int64_t>(i));
      out[i] = 1;
    }
    emit(std::string(op() == "GlobalAveragePool" ? "torch.mean(" : "torch.amax(") + tensor(0) + ", " + ints_code(dims) +
             ", True)",
         out);
  }

  void flatten() {
    allow_attributes({"axis"});
    expect_inputs(1, 1);
    const size_t r = rank(0, 1, kMaxRank);
    const int64_t axis = normalize_axis(int_attribute("axis", 1, -kMaxDim, kMaxDim), r, true);
    const Shape& x = shape(0);
    int64_t outer = 1, inner = 1;
    for (size_t i = 0; i < r; ++i) {
      int64_t& part = static_cast<int64_t>(i) < axis ? outer : inner;
      part = (part < 0 || x[i] < 0) ? -1 : capped_product(part, x[i]);
    }
    const std::string v = tensor(0);
    std::string expr;
    if (axis == 0) {
      expr = "torch.unsqueeze(torch.flatten(" + v + "), 0)";
    } else if (axis == static_cast<int64_t>(r)) {
      expr = "torch.unsqueeze(torch.flatten(" + v + "), 1)";
    } else if (axis == 1) {
      expr = "torch.flatten(" + v + ", 1)";
    } else {
      expr = "torch.flatten(torch.flatten(" + v + ", " + std::to_string(axis) + "), 0, " + std::to_string(axis - 1) + ")";
    }
    emit(expr, {outer, inner});
  }

  void reshape() {
    allow_attributes({"allowzero"});
    expect_inputs(2, 2);
    const bool allow_zero = int_attribute("allowzero", 0, 0, 1) == 1;
    const Shape x = shape(0);
    const std::vector<int64_t> target = ints_input(1, "shape");
    if (target.size() > kMaxRank) node_fail("its shape " + list_text(target) + " has too many dimensions");
    Shape out(target.size());
    std::vector<std::string> code(target.size());
    std::vector<bool> copied(x.size(), false);
    std::optional<size_t> inferred;
    for (size_t i = 0; i < target.size(); ++i) {
      const int64_t t = target[i];
      if (t == 0 && !allow_zero) {
        if (i >= x.size()) node_fail("its shape " + list_text(target) + " copies dimension " + std::to_string(i) + " of " + shape_text(x));
        out[i] = x[i];
        copied[i] = true;
        code[i] = x[i] >= 0 ? std::to_string(x[i]) : tensor(0) + ".size(" + std::to_string(i) + ")";
      } else if (t == -1) {
        if (inferred) node_fail("its shape " + list_text(target) + " has more than one -1");
        inferred = i;
        code[i] = "-1";
      } else if (t < 1 || t > kMaxDim) {
        node_fail("its shape " + list_text(target) + " has the dimension " + std::to_string(t));
      } else {
        out[i] = t;
        code[i] = std::to_string(t);
      }
    }
    // The elements of x not accounted for by the copied dims, and of out's known dims.
    int64_t known_in = 1, known_out = 1;
    bool unknown_left = false;  // an unknown dim of x that no 0 copies
    for (size_t i = 0; i < x.size(); ++i) {
      if (x[i] < 0) {
        unknown_left = unknown_left || !copied[i];
      } else {
        known_in = capped_product(known_in, x[i]);
      }
    }
    for (size_t i = 0; i < target.size(); ++i) {
      if (static_cast<int64_t>(i) != (inferred ? static_cast<int64_t>(*inferred) : -1) && out[i] >= 0) {
        known_out = capped_product(known_out, out[i]);
      }
    }
    if (inferred) {
      if (unknown_left) {
        out[*inferred] = -1;
      } else if (known_in % known_out != 0) {
        node_fail("shape " + list_text(target) + " does not divide input " + shape_text(x));
      } else {
        out[*inferred] = known_in / known_out;
      }
    } else if (!unknown_left && known_in != known_out) {
      node_fail("shape " + list_text(target) + " does not hold the elements of input " + shape_text(x));
    }
    std::string list = "[";
    for (size_t i = 0; i < code.size(); ++i) list += (i ? ", " : "") + code[i];
    list += "]";
    emit("torch.reshape(" + tensor(0) + ", " + (code.empty() ? ints_code({}) : list) + ")", out);
  }

  /// Squeeze's or Unsqueeze's axes: an attribute before opset 13, the constant input 1 from it.
  std::optional<std::vector<int64_t>> axes() {
    if (opset_ < 13) {
      allow_attributes({"axes"});
      expect_inputs(1, 1);
      return ints_attribute("axes", -kMaxDim, kMaxDim);
    }
    allow_attributes({});
    expect_inputs(1, 2);
    if (input(1) == nullptr) return std::nullopt;
    return ints_input(1, "axes");
  }

  void squeeze() {
    const std::optional<std::vector<int64_t>> given = axes();
    const Shape x = shape(0);
    std::vector<int64_t> dims;
    if (given) {
      for (const int64_t a : *given) dims.push_back(normalize_axis(a, x.size()));
    } else {
      for (size_t i = 0; i < x.size(); ++i) {
        if (x[i] < 0) node_fail("it squeezes every dimension of size 1, and dimension " + std::to_string(i) + " of " + shape_text(x) + " is not known");
        if (x[i] == 1) dims.push_back(static_cast<int64_t>(i));
      }
    }
    std::sort(dims.begin(), dims.end());
    if (std::adjacent_find(dims.begin(), dims.end()) != dims.end()) node_fail("its axes repeat a dimension");
    std::string expr = tensor(0);
    Shape out = x;
    for (size_t j = dims.size(); j-- > 0;) {
      const int64_t d = dims[j];
      if (x[static_cast<size_t>(d)] != 1) {
        node_fail("it squeezes dimension " + std::to_string(d) + " of " + shape_text(x) + ", which is not known to be 1");
      }
      expr = "torch.squeeze(" + expr + ", " + std::to_string(d) + ")";
      out.erase(out.begin() + d);
    }
    emit(expr, out);
  }

  void unsqueeze() {
    const std::optional<std::vector<int64_t>> given = axes();
    if (!given) node_fail("it lacks its axes");
    const Shape x = shape(0);
    const size_t r = x.size() + given->size();
    if (r > kMaxRank) node_fail("its output would have " + std::to_string(r) + " dimensions");
    std::vector<int64_t> dims;
    for (const int64_t a : *given) dims.push_back(normalize_axis(a, r));
    std::sort(dims.begin(), dims.end());
    if (std::adjacent_find(dims.begin(), dims.end()) != dims.end()) node_fail("its axes repeat a dimension");
    std::string expr = tensor(0);
    Shape out = x;
    for (const int64_t d : dims) {
      expr = "torch.unsqueeze(" + expr + ", " + std::to_string(d) + ")";
      out.insert(out.begin() + d, 1);
    }
    emit(expr, out);
  }

  void transpose() {
    allow_attributes({"perm"});
    expect_inputs(1, 1);
    const Shape x = shape(0);
    std::vector<int64_t> perm(x.size());
    for (size_t i = 0; i < x.size(); ++i) perm[i] = static_cast<int64_t>(x.size() - 1 - i);
    if (const auto given = ints_attribute("perm", 0, kMaxDim)) perm = *given;
    std::vector<int64_t> sorted = perm;
    std::sort(sorted.begin(), sorted.end());
    for (size_t i = 0; i < sorted.size() || sorted.size() != x.size(); ++i) {
      if (sorted.size() != x.size() || sorted[i] != static_cast<int64_t>(i)) {
        node_fail("perm " + list_text(perm) + " is not a permutation of the dims of " + shape_text(x));
      }
    }
    Shape out(x.size());
    for (size_t i = 0; i < x.size(); ++i) out[i] = x[static_cast<size_t>(perm[i])];
    if (node_index_ == 0 && node_->input(0) == input_name_ && perm == std::vector<int64_t>{0, 3, 1, 2}) {
      result_.channels_last = true;
    }
    emit("torch.permute(" + tensor(0) + ", " + ints_code(perm) + ")", out);
  }

  void gemm() {
    allow_attributes({"alpha", "beta", "transA", "transB"});
    expect_inputs(2, 3);
    rank(0, 2, 2);
    rank(1, 2, 2);
    const bool trans_a = int_attribute("transA", 0, 0, 1) == 1, trans_b = int_attribute("transB", 0, 0, 1) == 1;
    const double alpha = float_attribute("alpha", 1.0), beta = float_attribute("beta", 1.0);
    const Shape a = shape(0), b = shape(1);
    const int64_t m = a[trans_a ? 1 : 0], ka = a[trans_a ? 0 : 1], kb = b[trans_b ? 1 : 0], n = b[trans_b ? 0 : 1];
    if (ka >= 0 && kb >= 0 && ka != kb) node_fail("A " + shape_text(a) + " and B " + shape_text(b) + " do not multiply");
    const std::string a_code = trans_a ? "torch.t(" + tensor(0) + ")" : tensor(0);
    const std::string b_code = trans_b ? "torch.t(" + tensor(1) + ")" : tensor(1);
    if (input(2) == nullptr) {
      const std::string product = "torch.mm(" + a_code + ", " + b_code + ")";
      emit(alpha == 1.0 ? product : "torch.mul(" + product + ", " + float_code(alpha) + ")", {m, n});
      return;
    }
    // C broadcasts to [M, N] one way (numpy's rule from the right).
    const Shape& c = shape(2);
    const Shape mn = {m, n};
    if (c.size() > 2) node_fail("C " + shape_text(c) + " does not broadcast to [M, N] " + shape_text(mn));
    for (size_t i = 0; i < c.size(); ++i) {
      const int64_t want = mn[2 - c.size() + i];
      if (c[i] != 1 && c[i] >= 0 && want >= 0 && c[i] != want) {
        node_fail("C " + shape_text(c) + " does not broadcast to [M, N] " + shape_text(mn));
      }
    }
    std::string scale;
    if (beta != 1.0) scale += ", beta=" + float_code(beta);
    if (alpha != 1.0) scale += ", alpha=" + float_code(alpha);
    emit("torch.addmm(" + tensor(2) + ", " + a_code + ", " + b_code + scale + ")", {m, n});
  }

  void matmul() {
    allow_attributes({});
    expect_inputs(2, 2);
    const size_t ra = rank(0, 1, kMaxRank), rb = rank(1, 1, kMaxRank);
    Shape a = shape(0), b = shape(1);
    if (ra == 1) a.insert(a.begin(), 1);
    if (rb == 1) b.push_back(1);
    const int64_t ka = a.back(), kb = b[b.size() - 2];
    if (ka >= 0 && kb >= 0 && ka != kb) node_fail("shapes " + shape_text(shape(0)) + " and " + shape_text(shape(1)) + " do not multiply");
    Shape out = broadcast(Shape(a.begin(), a.end() - 2), Shape(b.begin(), b.end() - 2));
    if (ra > 1) out.push_back(a[a.size() - 2]);
    if (rb > 1) out.push_back(b.back());
    const std::string a_code = tensor(0), b_code = tensor(1);
    emit("torch.matmul(" + a_code + ", " + b_code + ")", out);
  }

  void concat() {
    allow_attributes({"axis"});
    if (node_->input_size() < 1) node_fail("it has no inputs");
    const size_t r = rank(0, 1, kMaxRank);
    const int64_t axis = normalize_axis(required_int("axis"), r);
    Shape out = shape(0);
    std::string list = tensor(0);
    for (int i = 1; i < node_->input_size(); ++i) {
      const Shape& s = shape(i);
      if (s.size() != r) node_fail("it joins " + shape_text(out) + " and " + shape_text(s) + ", of other ranks");
      for (size_t d = 0; d < r; ++d) {
        if (static_cast<int64_t>(d) == axis) {
          out[d] = (out[d] < 0 || s[d] < 0) ? -1 : out[d] + s[d];
        } else if (out[d] >= 0 && s[d] >= 0 && out[d] != s[d]) {
          node_fail("it joins " + shape_text(shape(0)) + " and " + shape_text(s) + " along " + std::to_string(axis));
        } else if (out[d] < 0) {
          out[d] = s[d];
        }
      }
      list += ", " + tensor(i);
    }
    emit("torch.cat([" + list + "], " + std::to_string(axis) + ")", out);
  }

  /// Identity, and Dropout (the identity at inference): the output is another name of the input.
  void identity() {
    if (op() == "Dropout") {
      if (opset_ < 12) {
        allow_attributes({"ratio", "seed"});
        expect_inputs(1, 1);
      } else {
        allow_attributes({"seed"});
        expect_inputs(1, 3);
        if (input(2) != nullptr) node_fail("its training_mode input is not translated; den translates inference graphs");
      }
    } else {
      allow_attributes({});
      expect_inputs(1, 1);
    }
    names_[node_->output(0)] = names_.at(node_->input(0));
  }

  void constant() {
    allow_attributes({"value", "value_float", "value_floats", "value_int", "value_ints", "sparse_value", "value_string",
                      "value_strings"});
    expect_inputs(0, 0);
    if (attributes_.size() != 1) node_fail("it has " + std::to_string(attributes_.size()) + " attributes, not one value");
    const std::string& name = attributes_.begin()->first;
    Value v;
    if (name == "value") {
      const onnx::AttributeProto* a = attribute("value", onnx::AttributeProto::TENSOR);
      v = read_tensor(a->t(), "node " + label() + "'s value");
    } else if (name == "value_float") {
      v.kind = Value::Kind::Floats;
      v.floats = at::scalar_tensor(float_attribute("value_float", 0), at::kFloat);
    } else if (name == "value_floats") {
      const onnx::AttributeProto* a = attribute("value_floats", onnx::AttributeProto::FLOATS);
      v.kind = Value::Kind::Floats;
      v.shape = {a->floats_size()};
      v.floats = at::empty(v.shape, at::kFloat);
      if (a->floats_size() > 0) std::memcpy(v.floats.data_ptr<float>(), a->floats().data(), a->floats_size() * sizeof(float));
    } else if (name == "value_int") {
      v.kind = Value::Kind::Ints;
      v.ints = {required_int("value_int")};
    } else if (name == "value_ints") {
      const onnx::AttributeProto* a = attribute("value_ints", onnx::AttributeProto::INTS);
      v.kind = Value::Kind::Ints;
      v.shape = {a->ints_size()};
      v.ints.assign(a->ints().begin(), a->ints().end());
    } else {
      node_fail("its " + name + " is not translated; den translates float32 and integer constants");
    }
    v.source = node_->output(0);
    note_elements(v.shape);
    define_value(node_->output(0), std::move(v));
  }

  void softmax() {
    allow_attributes({"axis"});
    expect_inputs(1, 1);
    const size_t r = rank(0, 1, kMaxRank);
    const int64_t axis = normalize_axis(int_attribute("axis", opset_ < 13 ? 1 : -1, -kMaxDim, kMaxDim), r);
    const std::string fn = op() == "Softmax" ? "torch.softmax(" : "torch.log_softmax(";
    const std::string v = tensor(0);
    if (opset_ >= 13 || axis == static_cast<int64_t>(r) - 1) {
      emit(fn + v + ", " + std::to_string(axis) + ")", shape(0));
    } else {
      // Before opset 13, over the input coerced to 2-D at axis: every dim from axis on at once.
      emit("torch.reshape(" + fn + "torch.flatten(" + v + ", " + std::to_string(axis) + "), " + std::to_string(axis) + "), " +
               v + ".size())",
           shape(0));
    }
  }

  const onnx::ModelProto& model_;
  std::string file_;
  int64_t opset_ = 0;
  std::vector<Value> values_;
  std::unordered_map<std::string, size_t> names_;  ///< ONNX name -> values_ index (Identity shares one)
  std::string input_name_;
  std::ostringstream code_;
  int64_t variables_ = 0, buffers_ = 0;
  OnnxModule result_{torch::jit::Module("DenOnnxModel"), {}, {}, false, {}, {}, 0};
  const onnx::NodeProto* node_ = nullptr;
  int node_index_ = 0;
  std::map<std::string, const onnx::AttributeProto*> attributes_;
};

}  // namespace

OnnxModule translate_onnx_bytes(const std::string& bytes, const std::string& name) {
  if (bytes.size() > static_cast<size_t>(kMaxFileBytes)) {
    throw ImportError(ImportError::Kind::Unreadable, "'" + name + "' is " + std::to_string(bytes.size()) +
                                                         " bytes; den reads ONNX models up to 2 GiB (protobuf's limit)");
  }
  onnx::ModelProto model;
  if (!model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    throw ImportError(ImportError::Kind::Unreadable, "'" + name + "' is not an ONNX model (its bytes do not parse as an "
                                                         "onnx.ModelProto)");
  }
  // Bytes parse as a ModelProto more often than one would think (an empty string does); without a
  // graph they are no model.
  if (!model.has_graph()) {
    throw ImportError(ImportError::Kind::Unreadable, "'" + name + "' is not an ONNX model (it has no graph)");
  }
  return Translator(model, name).run();
}

OnnxModule translate_onnx(const std::string& path) {
  std::error_code error;
  if (!fs::is_regular_file(path, error)) {
    throw ImportError(ImportError::Kind::Unreadable, "model '" + path + "' does not exist or is not a file");
  }
  const uintmax_t size = fs::file_size(path, error);
  if (error || size > static_cast<uintmax_t>(kMaxFileBytes)) {
    throw ImportError(ImportError::Kind::Unreadable,
                      "'" + path + "' is " + (error ? "unreadable" : std::to_string(size) + " bytes") +
                          "; den reads ONNX models up to 2 GiB (protobuf's limit)");
  }
  std::ifstream in(path, std::ios::binary);
  std::string bytes(static_cast<size_t>(size), '\0');
  if (!in.read(bytes.data(), static_cast<std::streamsize>(size))) {
    throw ImportError(ImportError::Kind::Unreadable, "'" + path + "' could not be read");
  }
  return translate_onnx_bytes(bytes, path);
}

#else  // DEN_HAVE_ONNX

OnnxModule translate_onnx_bytes(const std::string&, const std::string& name) {
  throw ImportError(ImportError::Kind::Unreadable, "'" + name + "': this den was built without ONNX support (install "
                                                   "libonnx-dev and reconfigure)");
}

OnnxModule translate_onnx(const std::string& path) { return translate_onnx_bytes("", path); }

#endif  // DEN_HAVE_ONNX

}  // namespace den::io
