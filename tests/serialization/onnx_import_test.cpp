// ONNX import (serialization/onnx_import.h): models from torch.onnx.export and one in tf2onnx's Keras layout
// translate into TorchScript modules whose outputs equal the reference to 1e-5; every refusal has the
// right kind and names the node and its op type; the fuzz corpus and its mutations raise nothing but
// ImportError. The fixtures are made by tests/serialization/make_onnx_fixtures.py (python3-torch,
// python3-onnx).

#include "serialization/onnx_import.h"

#include "serialization/trunk.h"
#include "tests/fuzz/mutate.h"
#include "tests/serialization/helpers.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/serialization/import.h>

#ifdef DEN_HAVE_ONNX
#include "serialization/internal/onnx_graph.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#endif

#include <filesystem>
#include <functional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#ifdef DEN_HAVE_ONNX

namespace {

namespace fs = std::filesystem;
using den::io::ImportError;
using den::io::OnnxModule;
using den::io::translate_onnx;
using den::io::translate_onnx_bytes;

std::string fixture(const std::string& name) { return std::string(DEN_SERIALIZATION_TEST_DATA) + "/onnx/" + name; }

at::Tensor forward(OnnxModule& m, const at::Tensor& x) { return m.module.forward({x}).toTensor(); }

class OnnxTranslation : public ::testing::TestWithParam<const char*> {};

TEST_P(OnnxTranslation, ForwardEqualsTheReference) {
  const std::string name = GetParam();
  OnnxModule m = translate_onnx(fixture(name + ".onnx"));
  torch::jit::Module io = torch::jit::load(fixture(name + ".io.pt"));
  const at::Tensor x = io.attr("x").toTensor();
  const at::Tensor expected = io.attr("y").toTensor();
  const at::Tensor got = forward(m, x);
  ASSERT_EQ(got.sizes(), expected.sizes());
  EXPECT_TRUE(at::allclose(got, expected, 1e-5, 1e-5)) << (got - expected).abs().max().item<double>();

  // The shape the translation computed agrees with the one the forward gives.
  ASSERT_EQ(m.output_shape.size(), static_cast<size_t>(got.dim()));
  for (size_t d = 0; d < m.output_shape.size(); ++d) {
    if (m.output_shape[d] >= 0) {
      EXPECT_EQ(m.output_shape[d], got.size(static_cast<int64_t>(d))) << d;
    }
  }
  ASSERT_EQ(m.input_shape.size(), static_cast<size_t>(x.dim()));
  EXPECT_EQ(m.input_shape[0], -1);  // every fixture's batch is symbolic
  for (size_t d = 1; d < m.input_shape.size(); ++d) EXPECT_EQ(m.input_shape[d], x.size(static_cast<int64_t>(d)));
  EXPECT_FALSE(m.nodes.empty());
  EXPECT_GT(m.max_elements, 0);

  // No name from the file in the module: buffers are p0, p1, ... and the map says what each holds.
  const std::regex generated("p[0-9]+");
  int64_t buffers = 0;
  for (const auto& b : m.module.named_buffers()) {
    EXPECT_TRUE(std::regex_match(b.name, generated)) << b.name;
    EXPECT_EQ(b.value.scalar_type(), at::kFloat);
    ASSERT_TRUE(m.buffers.count(b.name)) << b.name;
    EXPECT_FALSE(m.buffers.at(b.name).empty());
    ++buffers;
  }
  EXPECT_EQ(buffers, static_cast<int64_t>(m.buffers.size()));

  // Round trip: saved and loaded by LibTorch, the module computes the same.
  den::io::testing::TempDir dir;
  const std::string saved = (dir.path() / "model.pt").string();
  m.module.save(saved);
  torch::jit::Module loaded = torch::jit::load(saved);
  EXPECT_TRUE(at::equal(loaded.forward({x}).toTensor(), got));

  // Written back as ONNX nodes, as a frozen trunk is (NOTE: [trunk as ONNX]), and read again: the
  // same outputs, from an independent reading of what each ONNX op means. A trunk keeps samples
  // apart; opset11_mix merges the batch with a dim (Flatten at axis 2), so it is no trunk.
  if (got.size(0) != x.size(0)) return;
  den::io::FrozenTrunk trunk;
  std::ostringstream bytes;
  m.module.save(bytes);
  trunk.module = bytes.str();
  trunk.input_shape.assign(x.sizes().begin() + 1, x.sizes().end());
  trunk.feature_shape.assign(got.sizes().begin() + 1, got.sizes().end());
  onnx::ModelProto model;
  model.set_ir_version(7);
  model.add_opset_import()->set_version(13);
  onnx::GraphProto& g = *model.mutable_graph();
  g.set_name("trunk");
  den::io::internal::tensor_value(*g.add_input(), "input", trunk.input_dim());
  const std::string out = den::io::internal::write_trunk(g, trunk, "input");
  den::io::internal::tensor_value(*g.add_output(), out, trunk.feature_dim());
  onnx::checker::check_model(model);
  OnnxModule again = translate_onnx_bytes(model.SerializeAsString(), name + " written back");
  const at::Tensor flat = forward(again, x.reshape({x.size(0), -1}));
  EXPECT_TRUE(at::allclose(flat, expected.reshape({x.size(0), -1}), 1e-5, 1e-5))
      << (flat - expected.reshape({x.size(0), -1})).abs().max().item<double>();
}

INSTANTIATE_TEST_SUITE_P(ExportedAndHandBuilt, OnnxTranslation,
                         ::testing::Values("plain_conv", "residual_bn", "pools_depthwise", "pools_depthwise_opset10",
                                           "pools_depthwise_opset14", "softmax", "keras_layout", "ops_mix", "opset11_mix"));

TEST(OnnxImport, TheKerasLayoutIsChannelsLast) {
  const OnnxModule m = translate_onnx(fixture("keras_layout.onnx"));
  EXPECT_TRUE(m.channels_last);
  EXPECT_EQ(m.input_shape, (std::vector<int64_t>{-1, 12, 12, 3}));
  EXPECT_EQ(m.output_shape, (std::vector<int64_t>{-1, 4}));
  ASSERT_EQ(m.nodes.size(), 10u);
  EXPECT_EQ(m.nodes.front(), "sequential/conv2d/Conv2D__6 (Transpose)");
  EXPECT_EQ(m.nodes.back(), "sequential/dense/Softmax (Softmax)");
}

TEST(OnnxImport, ATorchExportIsChannelsFirst) {
  const OnnxModule m = translate_onnx(fixture("plain_conv.onnx"));
  EXPECT_FALSE(m.channels_last);
  EXPECT_EQ(m.input_shape, (std::vector<int64_t>{-1, 1, 12, 12}));
  EXPECT_EQ(m.output_shape, (std::vector<int64_t>{-1, 10}));
  EXPECT_EQ(m.nodes, (std::vector<std::string>{"/0/Conv (Conv)", "/1/Relu (Relu)", "/2/MaxPool (MaxPool)", "/3/Conv (Conv)",
                                               "/4/Relu (Relu)", "/5/Flatten (Flatten)", "/6/Gemm (Gemm)"}));
  // 2 conv weights and biases, the Linear's weight and bias.
  EXPECT_EQ(m.buffers.size(), 6u);
}

/// Runs `f`, expecting ImportError of `kind` whose message holds every one of `parts`.
void expect_refused(const std::function<void()>& f, ImportError::Kind kind, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "not refused";
  } catch (const ImportError& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    for (const std::string& part : parts) EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

void expect_file_refused(const std::string& name, ImportError::Kind kind, const std::vector<std::string>& parts) {
  expect_refused([&] { translate_onnx(fixture(name)); }, kind, parts);
}

TEST(OnnxImport, RefusesAnUnsupportedOperatorNamingTheNode) {
  expect_file_refused("refused_unsupported_op.onnx", ImportError::Kind::Unsupported,
                      {"node 'conv_3' (op DepthToSpace) cannot be translated", "den translates Conv"});
}

TEST(OnnxImport, RefusesExternalData) {
  expect_file_refused("refused_external_data.onnx", ImportError::Kind::Unreadable, {"initializer 'w'", "external data"});
}

TEST(OnnxImport, RefusesAGraphOfTwoInputs) {
  expect_file_refused("refused_two_inputs.onnx", ImportError::Kind::Unsupported, {"2 inputs", "one input"});
}

// 2^40 floats claimed with 4 bytes held: refused from the dims and the byte count, before any tensor
// is made (an allocation of 4 TiB would fail or be killed instead).
TEST(OnnxImport, RefusesAHugeInitializerBeforeAllocating) {
  expect_file_refused("refused_huge_initializer.onnx", ImportError::Kind::Unreadable,
                      {"initializer 'huge'", "[1048576, 1048576]", "holds 4 bytes"});
}

TEST(OnnxImport, RefusesBytesThatAreNoModel) {
  expect_file_refused("truncated.onnx", ImportError::Kind::Unreadable, {"truncated.onnx", "not an ONNX model"});
  expect_file_refused("random.onnx", ImportError::Kind::Unreadable, {"not an ONNX model"});
  expect_file_refused("no_such_model.onnx", ImportError::Kind::Unreadable, {"does not exist"});
  expect_refused([] { translate_onnx_bytes("", "empty"); }, ImportError::Kind::Unreadable, {"'empty'", "no graph"});
}

// ---- models built here, one defect each ------------------------------------------------------------

/// A model of opset `opset` with input x [N, 4, 6, 6] and output y, whose nodes `build` adds.
std::string model_bytes(const std::function<void(onnx::GraphProto&)>& build, int64_t opset = 13) {
  onnx::ModelProto model;
  model.set_ir_version(7);
  onnx::OperatorSetIdProto* o = model.add_opset_import();
  o->set_domain("");
  o->set_version(opset);
  onnx::GraphProto& g = *model.mutable_graph();
  onnx::ValueInfoProto* x = g.add_input();
  x->set_name("x");
  auto* type = x->mutable_type()->mutable_tensor_type();
  type->set_elem_type(onnx::TensorProto::FLOAT);
  type->mutable_shape()->add_dim()->set_dim_param("N");
  for (int64_t d : {4, 6, 6}) type->mutable_shape()->add_dim()->set_dim_value(d);
  g.add_output()->set_name("y");
  build(g);
  return model.SerializeAsString();
}

onnx::NodeProto& add_node(onnx::GraphProto& g, const std::string& op, const std::vector<std::string>& inputs,
                          const std::string& output, const std::string& name) {
  onnx::NodeProto* n = g.add_node();
  n->set_op_type(op);
  n->set_name(name);
  for (const std::string& in : inputs) n->add_input(in);
  n->add_output(output);
  return *n;
}

void set_ints(onnx::NodeProto& n, const std::string& name, const std::vector<int64_t>& values) {
  onnx::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
}

void set_int(onnx::NodeProto& n, const std::string& name, int64_t value) {
  onnx::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}

void set_string(onnx::NodeProto& n, const std::string& name, const std::string& value) {
  onnx::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(value);
}

onnx::TensorProto& add_tensor(onnx::GraphProto& g, const std::string& name, int32_t type, const std::vector<int64_t>& dims) {
  onnx::TensorProto* t = g.add_initializer();
  t->set_name(name);
  t->set_data_type(type);
  int64_t n = 1;
  for (int64_t d : dims) {
    t->add_dims(d);
    n *= std::max<int64_t>(d, 0);
  }
  for (int64_t i = 0; i < n; ++i) {
    if (type == onnx::TensorProto::FLOAT) t->add_float_data(0.5f);
    if (type == onnx::TensorProto::INT64) t->add_int64_data(1);
  }
  return *t;
}

void expect_bytes_refused(const std::string& bytes, ImportError::Kind kind, const std::vector<std::string>& parts) {
  expect_refused([&] { translate_onnx_bytes(bytes, "built.onnx"); }, kind, parts);
}

TEST(OnnxImport, AModelBuiltHereTranslates) {
  // The builder itself makes a model that translates, so that each refusal below is its own defect's.
  OnnxModule m = translate_onnx_bytes(model_bytes([](onnx::GraphProto& g) {
                                        add_tensor(g, "w", onnx::TensorProto::FLOAT, {2, 4, 3, 3});
                                        onnx::NodeProto& conv = add_node(g, "Conv", {"x", "w"}, "c", "conv_0");
                                        set_string(conv, "auto_pad", "SAME_UPPER");
                                        set_ints(conv, "strides", {2, 2});
                                        add_node(g, "Relu", {"c"}, "y", "relu_0");
                                      }),
                                      "built.onnx");
  EXPECT_EQ(m.output_shape, (std::vector<int64_t>{-1, 2, 3, 3}));
  const at::Tensor x = at::randn({3, 4, 6, 6});
  const at::Tensor expected = at::relu(at::conv2d(at::constant_pad_nd(x, {0, 1, 0, 1}), at::full({2, 4, 3, 3}, 0.5), {}, 2));
  EXPECT_TRUE(at::allclose(forward(m, x), expected, 1e-5, 1e-5));
}

TEST(OnnxImport, RefusesAttributesItDoesNotTranslateNamingTheNode) {
  expect_bytes_refused(model_bytes([](onnx::GraphProto& g) {
                         add_tensor(g, "w", onnx::TensorProto::FLOAT, {2, 4, 3, 3});
                         set_string(add_node(g, "Conv", {"x", "w"}, "y", "conv_7"), "auto_pad", "SAME_MIDDLE");
                       }),
                       ImportError::Kind::Unsupported, {"node 'conv_7' (op Conv)", "auto_pad 'SAME_MIDDLE'"});
  expect_bytes_refused(model_bytes([](onnx::GraphProto& g) {
                         add_tensor(g, "pads", onnx::TensorProto::INT64, {8});
                         set_string(add_node(g, "Pad", {"x", "pads"}, "y", "pad_1"), "mode", "reflect");
                       }),
                       ImportError::Kind::Unsupported, {"node 'pad_1' (op Pad)", "mode 'reflect'"});
  expect_bytes_refused(model_bytes([](onnx::GraphProto& g) { set_int(add_node(g, "Relu", {"x"}, "y", "relu_2"), "slope", 2); }),
                       ImportError::Kind::Unsupported, {"node 'relu_2' (op Relu)", "attribute 'slope'"});
  expect_bytes_refused(model_bytes([](onnx::GraphProto& g) {
                         for (const char* p : {"s", "b", "m", "v"}) add_tensor(g, p, onnx::TensorProto::FLOAT, {4});
                         set_int(add_node(g, "BatchNormalization", {"x", "s", "b", "m", "v"}, "y", "bn"), "training_mode", 1);
                       }),
                       ImportError::Kind::Unsupported, {"node 'bn' (op BatchNormalization)", "training_mode"});
  expect_bytes_refused(model_bytes([](onnx::GraphProto& g) {
                         onnx::NodeProto& pool = add_node(g, "MaxPool", {"x"}, "y", "pool");
                         set_ints(pool, "kernel_shape", {2, 2});
                         pool.add_output("indices");
                       }),
                       ImportError::Kind::Unsupported, {"node 'pool' (op MaxPool)", "output 1 ('indices')"});
}

TEST(OnnxImport, RefusesOperatorsAndGraphsItDoesNotTranslate) {
  expect_bytes_refused(model_bytes([](onnx::GraphProto& g) { add_node(g, "LSTM", {"x"}, "y", "lstm"); }),
                       ImportError::Kind::Unsupported, {"node 'lstm' (op LSTM) cannot be translated"});
  expect_bytes_refused(model_bytes([](onnx::GraphProto& g) { add_node(g, "Relu", {"x"}, "y", "").set_domain("com.microsoft"); }),
                       ImportError::Kind::Unsupported, {"node #0 (op Relu)", "domain 'com.microsoft'"});
  // Out of topological order: the second node's input comes later.
  expect_bytes_refused(model_bytes([](onnx::GraphProto& g) {
                         add_node(g, "Relu", {"h"}, "y", "relu_late");
                         add_node(g, "Sigmoid", {"x"}, "h", "sigmoid");
                       }),
                       ImportError::Kind::Unsupported, {"node 'relu_late' (op Relu)", "reads 'h'", "topological order"});
  // A Reshape whose shape is computed: den needs it at translation time.
  expect_bytes_refused(model_bytes([](onnx::GraphProto& g) { add_node(g, "Reshape", {"x", "x"}, "y", "reshape"); }),
                       ImportError::Kind::Unsupported, {"node 'reshape' (op Reshape)", "int64 constant"});
  // Squeezing the symbolic batch: it cannot be known to be 1.
  expect_bytes_refused(model_bytes([](onnx::GraphProto& g) {
                         add_tensor(g, "axes", onnx::TensorProto::INT64, {1}).set_int64_data(0, 0);
                         add_node(g, "Squeeze", {"x", "axes"}, "y", "squeeze");
                       }),
                       ImportError::Kind::Unsupported, {"node 'squeeze' (op Squeeze)", "not known"});
  expect_bytes_refused(model_bytes([](onnx::GraphProto& g) { add_node(g, "Relu", {"x"}, "y", "r"); }, 8),
                       ImportError::Kind::Unsupported, {"opset 8", "9 to 17"});
  expect_bytes_refused(model_bytes([](onnx::GraphProto& g) {
                         g.mutable_input(0)->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::INT64);
                         add_node(g, "Relu", {"x"}, "y", "r");
                       }),
                       ImportError::Kind::Unsupported, {"input 'x'", "INT64"});
  expect_bytes_refused(model_bytes([](onnx::GraphProto& g) {
                         g.add_output()->set_name("x");
                         add_node(g, "Relu", {"x"}, "y", "r");
                       }),
                       ImportError::Kind::Unsupported, {"2 outputs"});
}

// What the fuzz campaign found: padding the symbolic batch (its size cannot be budgeted), and a padded
// input far larger than the conv's output, which the memory figure must count.
TEST(OnnxImport, RefusesPaddingItCannotSize) {
  expect_bytes_refused(model_bytes([](onnx::GraphProto& g) {
                         onnx::TensorProto& pads = add_tensor(g, "pads", onnx::TensorProto::INT64, {8});
                         for (int i = 0; i < 8; ++i) pads.set_int64_data(i, i == 0 ? 2555904 : 0);
                         add_node(g, "Pad", {"x", "pads"}, "y", "pad_batch");
                       }),
                       ImportError::Kind::Unsupported, {"node 'pad_batch' (op Pad)", "dimension 0", "not known"});
  expect_bytes_refused(model_bytes([](onnx::GraphProto& g) {
                         add_tensor(g, "w", onnx::TensorProto::FLOAT, {2, 4, 1, 1});
                         onnx::NodeProto& conv = add_node(g, "Conv", {"x", "w"}, "y", "conv_far");
                         set_ints(conv, "pads", {0, 0, int64_t{1} << 30, int64_t{1} << 30});
                         set_ints(conv, "strides", {int64_t{1} << 30, int64_t{1} << 30});
                       }),
                       ImportError::Kind::Unsupported, {"node 'conv_far' (op Conv)'s padded input", "2^40"});
}

TEST(OnnxImport, AClipWithoutBoundsIsTheIdentity) {
  OnnxModule m = translate_onnx_bytes(model_bytes([](onnx::GraphProto& g) { add_node(g, "Clip", {"x"}, "y", "clip"); }),
                                      "built.onnx");
  const at::Tensor x = at::randn({2, 4, 6, 6});
  EXPECT_TRUE(at::equal(forward(m, x), x));
}

TEST(OnnxImport, RefusesTensorsThatDoNotHoldWhatTheyClaim) {
  expect_bytes_refused(model_bytes([](onnx::GraphProto& g) {
                         add_tensor(g, "mask", onnx::TensorProto::BOOL, {4});
                         add_node(g, "Relu", {"x"}, "y", "r");
                       }),
                       ImportError::Kind::Unsupported, {"initializer 'mask'", "data type BOOL"});
  expect_bytes_refused(model_bytes([](onnx::GraphProto& g) {
                         add_tensor(g, "w", onnx::TensorProto::FLOAT, {2, -3});
                         add_node(g, "Relu", {"x"}, "y", "r");
                       }),
                       ImportError::Kind::Unreadable, {"initializer 'w'", "negative dimension -3"});
  expect_bytes_refused(model_bytes([](onnx::GraphProto& g) {
                         add_tensor(g, "w", onnx::TensorProto::FLOAT, {3}).add_float_data(1.0f);
                         add_node(g, "Relu", {"x"}, "y", "r");
                       }),
                       ImportError::Kind::Unreadable, {"initializer 'w'", "holds 4 elements"});
  // Dims whose product overflows int64.
  expect_bytes_refused(model_bytes([](onnx::GraphProto& g) {
                         onnx::TensorProto& t = add_tensor(g, "w", onnx::TensorProto::FLOAT, {});
                         for (int i = 0; i < 4; ++i) t.add_dims(int64_t{1} << 20);
                         t.set_raw_data(std::string(4, '\0'));
                         add_node(g, "Relu", {"x"}, "y", "r");
                       }),
                       ImportError::Kind::Unreadable, {"initializer 'w'", "more than 2^40 elements"});
}

/// Replays the fuzz corpus (tests/fuzz/corpus-onnx) and seeded mutations of it: each input translates
/// or raises ImportError, nothing else.
TEST(OnnxImport, TheTranslatorSurvivesTheFuzzCorpusAndMutations) {
  std::vector<std::string> inputs;
  for (const auto& entry : fs::directory_iterator(DEN_ONNX_CORPUS)) {
    inputs.push_back(den::io::testing::read_bytes(entry.path().string()));
  }
  ASSERT_FALSE(inputs.empty()) << "no corpus in " << DEN_ONNX_CORPUS;
  inputs = den::testing::with_mutations(std::move(inputs), 1500, 11);
  int64_t translated = 0;
  for (const std::string& input : inputs) {
    try {
      translate_onnx_bytes(input, "fuzz");
      ++translated;
    } catch (const ImportError&) {
    } catch (const std::exception& e) {
      ADD_FAILURE() << "unexpected exception: " << e.what();
    }
  }
  EXPECT_GT(translated, 0);  // the seeds themselves translate
}

}  // namespace

#endif  // DEN_HAVE_ONNX
