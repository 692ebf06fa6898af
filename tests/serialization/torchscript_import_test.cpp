// TorchScript import (NOTE: [import mapping]): every supported layer type, from script and trace,
// gives task 1 outputs equal to the model's own; every refusal names the module and its type.
// The models are made by tests/serialization/make_import_fixtures.py (python3-torch).

#include "serialization/torchscript_import.h"

#include "serialization/checkpoint.h"
#include "serialization/export.h"
#include "serialization/onnx_import.h"
#include "serialization/trunk.h"
#include "tests/engine/synthetic.h"
#include "tests/serialization/helpers.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/serialization/import.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace {

namespace fs = std::filesystem;
using den::io::ImportError;

std::string fixture(const std::string& name) {
  return std::string(DEN_SERIALIZATION_TEST_DATA) + "/import/" + name + ".pt";
}

class ImportSupported : public ::testing::TestWithParam<const char*> {};

TEST_P(ImportSupported, Task1OutputsEqualTheModelsOwn) {
  const std::string name = GetParam();
  const den::io::ImportedModel imported = den::io::import_torchscript(fixture(name));
  // The inputs and the outputs PyTorch computed when it wrote the model.
  torch::jit::Module io = torch::jit::load(fixture(name + ".io"));
  const at::Tensor x = io.attr("x").toTensor();
  const at::Tensor expected = io.attr("y").toTensor();
  const at::Tensor got = imported.engine.predict(1, x);
  ASSERT_EQ(got.sizes(), expected.sizes());
  EXPECT_TRUE(at::allclose(got, expected, 1e-5, 1e-5)) << (got - expected).abs().max().item<double>();
  // The same through LibTorch's interpreter, on inputs the fixture never saw.
  torch::jit::Module model = torch::jit::load(fixture(name));
  const at::Tensor fresh = at::randn({9, x.size(1)});
  const at::Tensor direct = model.forward({fresh}).toTensor();
  EXPECT_TRUE(at::allclose(imported.engine.predict(1, fresh), direct, 1e-5, 1e-5));

  const den::graph::UnitGraph& g = imported.engine.graph();
  EXPECT_EQ(g.num_heads(), 1);
  for (int64_t l = 0; l < g.num_layers(); ++l) {
    for (const den::graph::Unit& u : g.units(l)) {
      EXPECT_EQ(u.origin, den::graph::Origin::Imported);
      EXPECT_EQ(u.birth_stage, 1);
    }
  }
  std::vector<int64_t> identity(static_cast<size_t>(expected.size(1)));
  for (size_t o = 0; o < identity.size(); ++o) identity[o] = static_cast<int64_t>(o);
  EXPECT_EQ(imported.output_classes, identity);
}

INSTANTIATE_TEST_SUITE_P(EveryLayerTypeScriptedAndTraced, ImportSupported,
                         ::testing::Values("sequential_script", "sequential_trace", "extras_script", "extras_trace",
                                           "chain_script", "chain_trace", "nested_script", "nested_trace"));

// Conv models (scripted and traced, nn.Sequential and a module that chains them by hand) import
// with their input shape; den reads the images flattened, as it reads its data.
class ImportConv : public ::testing::TestWithParam<const char*> {};

TEST_P(ImportConv, Task1OutputsEqualTheModelsOwn) {
  const std::string name = GetParam();
  den::io::ImportOptions options;
  options.config.set_input_shape({1, 10, 10});
  const den::io::ImportedModel imported = den::io::import_torchscript(fixture(name), options);
  torch::jit::Module io = torch::jit::load(fixture(name + ".io"));
  const at::Tensor x = io.attr("x").toTensor();
  const at::Tensor expected = io.attr("y").toTensor();
  const at::Tensor got = imported.engine.predict(1, x.flatten(1));
  ASSERT_EQ(got.sizes(), expected.sizes());
  EXPECT_TRUE(at::allclose(got, expected, 1e-5, 1e-5)) << (got - expected).abs().max().item<double>();
  EXPECT_TRUE(den::engine::has_conv(imported.engine.config().layers));
  for (const den::graph::Unit& u : imported.engine.graph().units(0)) EXPECT_EQ(u.origin, den::graph::Origin::Imported);
}

INSTANTIATE_TEST_SUITE_P(ScriptedAndTraced, ImportConv,
                         ::testing::Values("conv_sequential_script", "conv_sequential_trace", "conv_chain_script",
                                           "conv_chain_trace", "conv_batchnorm_script", "conv_batchnorm_trace",
                                           "conv_gap_chain_script", "conv_gap_chain_trace"));

TEST(Import, ConvLayersTakeTheirGeometryAndNeedTheInputShape) {
  den::io::ImportOptions options;
  options.config.set_input_shape({1, 10, 10});
  const den::io::ImportedModel m = den::io::import_torchscript(fixture("conv_sequential_script"), options);
  EXPECT_EQ(den::engine::layers_to_text(m.engine.config().layers), "conv3x3p1:4,maxpool2,conv2x2:6,avgpool2,fc:8");
  const den::io::ImportedModel chain = den::io::import_torchscript(fixture("conv_chain_trace"), options);
  EXPECT_EQ(den::engine::layers_to_text(chain.engine.config().layers), "conv3x3s2p1:3,maxpool2,fc:4");
  // BatchNorms are folded away (no layer of their own) and AdaptiveAvgPool2d(1) is den's gap.
  for (const char* name : {"conv_batchnorm_script", "conv_batchnorm_trace"}) {
    const den::io::ImportedModel normalized = den::io::import_torchscript(fixture(name), options);
    EXPECT_EQ(den::engine::layers_to_text(normalized.engine.config().layers), "conv3x3p1:4,maxpool2,conv3x3:6,gap,fc:8")
        << name;
  }
  const den::io::ImportedModel gap = den::io::import_torchscript(fixture("conv_gap_chain_trace"), options);
  EXPECT_EQ(den::engine::layers_to_text(gap.engine.config().layers), "conv3x3p1:5,gap,fc:4");
  try {
    den::io::import_torchscript(fixture("conv_chain_script"));
    FAIL() << "imported without an input shape";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--input-shape"), std::string::npos) << e.what();
  }
  options.config.set_input_shape({1, 14, 14});  // 3x3 per channel: the first Linear would need 54 inputs
  EXPECT_THROW(den::io::import_torchscript(fixture("conv_sequential_script"), options), ImportError);
  options.config.set_input_shape({3, 10, 10});  // the first Conv2d takes one channel
  EXPECT_THROW(den::io::import_torchscript(fixture("conv_sequential_script"), options), std::invalid_argument);
}

TEST(Import, LayersAreMappedByModuleAndTypeInForwardOrder) {
  const den::io::ImportedModel m = den::io::import_torchscript(fixture("extras_script"));
  std::vector<std::string> seen;
  for (const den::io::ImportedLayer& layer : m.layers) seen.push_back(layer.module + " " + layer.type);
  const std::vector<std::string> expected = {"0 torch.nn.Flatten", "1 torch.nn.Linear", "2 torch.nn.ReLU",
                                             "3 torch.nn.Dropout", "4 torch.nn.Identity", "5 torch.nn.Linear"};
  EXPECT_EQ(seen, expected);
  EXPECT_EQ(m.engine.graph().layer_sizes(), std::vector<int64_t>{5});
  // A Linear without bias has a zero bias column.
  EXPECT_EQ(m.engine.network().layer(0).select(1, 6).abs().sum().item<double>(), 0.0);

  const den::io::ImportedModel nested = den::io::import_torchscript(fixture("nested_trace"));
  EXPECT_EQ(nested.layers.front().module, "body.0");
  EXPECT_EQ(nested.engine.graph().layer_sizes(), (std::vector<int64_t>{7, 5}));
}

struct Refusal {
  const char* fixture;
  const char* names;  ///< what the message must say: the module and its type, or the structure
};

class ImportRefused : public ::testing::TestWithParam<Refusal> {};

// With --trunk none, what does not map is refused, naming the module and its type.
TEST_P(ImportRefused, NamesTheModuleAndItsType) {
  const Refusal r = GetParam();
  den::io::ImportOptions options;
  options.trunk = "none";
  try {
    den::io::import_torchscript(fixture(std::string("refused_") + r.fixture), options);
    FAIL() << r.fixture << " was imported";
  } catch (const ImportError& e) {
    EXPECT_EQ(e.kind(), ImportError::Kind::Unsupported);
    EXPECT_NE(std::string(e.what()).find(r.names), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(
    EveryUnsupportedStructure, ImportRefused,
    ::testing::Values(Refusal{"sigmoid", "module '1' (torch.nn.Sigmoid)"}, Refusal{"tanh", "module '1' (torch.nn.Tanh)"},
                      Refusal{"batchnorm_after_relu", "module '2' (torch.nn.BatchNorm1d) does not follow a Conv2d or Linear"},
                      Refusal{"conv", "module '0' (torch.nn.Conv1d)"},
                      Refusal{"residual", "uses a value twice"},
                      Refusal{"no_relu_between", "without a ReLU between"},
                      Refusal{"ends_with_relu", "ends with a ReLU"},
                      Refusal{"relu_first", "module '0' (torch.nn.ReLU) comes before any Conv2d or Linear"},
                      Refusal{"depthwise", "module '0' (torch.nn.Conv2d) is a grouped (or depthwise) convolution"},
                      Refusal{"dilated", "module '0' (torch.nn.Conv2d) is dilated"},
                      Refusal{"overlapping_pool", "module '2' (torch.nn.MaxPool2d) is not a square pooling"},
                      Refusal{"conv_after_linear", "module '2' (torch.nn.Unflatten)"},
                      Refusal{"pool_to_2x2", "module '2' (torch.nn.AdaptiveAvgPool2d) pools to another size than 1x1"},
                      Refusal{"batchnorm_batch_statistics", "module '1' (torch.nn.BatchNorm2d) has no running statistics"}));

// NOTE: [frozen trunk] By default, what does not map becomes a frozen trunk: the shortest prefix of
// the model's forward after which the rest maps. Task 1's outputs on the trunk's features are the
// model's own.
struct TrunkCase {
  const char* fixture;
  std::vector<int64_t> input;  ///< one sample's dims
  const char* cut;             ///< the last module of the trunk ("" for none)
  const char* layers;          ///< den's layers after it
};

class ImportTrunk : public ::testing::TestWithParam<TrunkCase> {};

TEST_P(ImportTrunk, OutputsOnTheTrunksFeaturesAreTheModelsOwn) {
  const TrunkCase& c = GetParam();
  den::io::ImportOptions options;
  // A flat model that starts with a Linear gives its width itself; the others are told.
  if (c.input.size() != 1 || std::string(c.fixture) == "relu_first") options.config.input_shape = c.input;
  const std::string file = fixture(std::string("refused_") + c.fixture);
  const den::io::ImportedModel m = den::io::import_torchscript(file, options);
  ASSERT_EQ(m.trunk.has_value(), std::string(c.cut) != "") << c.fixture;
  EXPECT_EQ(den::engine::layers_to_text(m.engine.config().layers), c.layers);
  std::vector<int64_t> batch = c.input;
  batch.insert(batch.begin(), 12);
  const at::Tensor x = at::randn(batch);
  const at::Tensor expected = torch::jit::load(file).forward({x}).toTensor();
  at::Tensor features = x.reshape({12, -1});
  if (m.trunk) {
    EXPECT_EQ(m.trunk->cut, c.cut);
    EXPECT_EQ(m.trunk->input_shape, c.input);
    features = den::io::trunk_features(*m.trunk, features);
  }
  const at::Tensor got = m.engine.predict(1, features);
  EXPECT_TRUE(at::allclose(got, expected, 1e-5, 1e-5)) << c.fixture << ": " << (got - expected).abs().max().item<double>();
  for (int64_t l = 0; l < m.engine.graph().num_layers(); ++l) {
    for (const den::graph::Unit& u : m.engine.graph().units(l)) EXPECT_EQ(u.origin, den::graph::Origin::Imported);
  }
}

INSTANTIATE_TEST_SUITE_P(
    WhatDoesNotMap, ImportTrunk,
    ::testing::Values(TrunkCase{"sigmoid", {6}, "1", "fc:8"},  // Linear, Sigmoid | Linear: a pass-through layer
                      TrunkCase{"tanh", {6}, "1", "fc:8"},
                      TrunkCase{"batchnorm_after_relu", {6}, "2", "fc:8"},
                      TrunkCase{"no_relu_between", {6}, "0", "fc:8"},
                      TrunkCase{"relu_first", {6}, "0", "fc:4"},  // ReLU | Linear, ReLU, Linear
                      TrunkCase{"one_linear", {6}, "", "fc:12"},  // a linear classifier, no trunk
                      TrunkCase{"conv", {1, 6}, "1", "fc:16"},   // Conv1d, ReLU | Flatten, Linear
                      TrunkCase{"depthwise", {2, 10, 10}, "1", "fc:256"},
                      TrunkCase{"dilated", {1, 10, 10}, "1", "fc:144"},
                      TrunkCase{"overlapping_pool", {1, 10, 10}, "2", "fc:36"},
                      TrunkCase{"pool_to_2x2", {1, 10, 10}, "2", "fc:16"},
                      TrunkCase{"conv_after_linear", {6}, "2", "conv1x1:2"},
                      TrunkCase{"residual", {6}, "aten::add", "fc:12"}));  // out(relu(fc1(x)) + x)  // ... Unflatten | Conv2d

TEST(ImportTrunkChoice, TheTrunkCanBeNamedOrRefused) {
  den::io::ImportOptions options;
  options.config.input_shape = {6};
  options.trunk = "2";  // relu_first: ReLU, Linear, ReLU | Linear
  const den::io::ImportedModel m = den::io::import_torchscript(fixture("refused_relu_first"), options);
  EXPECT_EQ(m.trunk->cut, "2");
  EXPECT_EQ(den::engine::layers_to_text(m.engine.config().layers), "fc:8");
  options.trunk = "7";
  EXPECT_THROW(den::io::import_torchscript(fixture("refused_relu_first"), options), std::invalid_argument);
  options.trunk = "0";  // ReLU | Linear, ReLU, Linear maps
  EXPECT_EQ(den::engine::layers_to_text(den::io::import_torchscript(fixture("refused_relu_first"), options)
                                            .engine.config().layers),
            "fc:4");
  // Nothing at the end maps: refused with what the last attempt found.
  try {
    den::io::import_torchscript(fixture("refused_ends_with_relu"));
    FAIL();
  } catch (const ImportError& e) {
    EXPECT_EQ(e.kind(), ImportError::Kind::Unsupported);
    EXPECT_NE(std::string(e.what()).find("no part of its end maps"), std::string::npos) << e.what();
  }
}

TEST(Import, MissingAndNonTorchScriptFilesAreUnreadable) {
  const den::io::testing::TempDir dir;
  const std::string missing = (dir.path() / "missing.pt").string();
  const std::string text = (dir.path() / "text.pt").string();
  std::ofstream(text) << "not a zip archive";
  for (const std::string& path : {missing, text}) {
    try {
      den::io::import_torchscript(path);
      FAIL() << path;
    } catch (const ImportError& e) {
      EXPECT_EQ(e.kind(), ImportError::Kind::Unreadable);
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
}

TEST(Import, ClassesMustMatchTheHeadAndBeDistinct) {
  den::io::ImportOptions options;
  options.classes = {7, 3, 9};
  EXPECT_EQ(den::io::import_torchscript(fixture("chain_script"), options).output_classes, options.classes);
  for (const std::vector<int64_t>& bad : {std::vector<int64_t>{1, 2}, {1, 1, 2}, {-1, 0, 1}}) {
    options.classes = bad;
    EXPECT_THROW(den::io::import_torchscript(fixture("chain_script"), options), std::invalid_argument);
  }
}

TEST(Import, ACheckpointOfTheImportKeepsOriginAndOutputs) {
  const den::io::testing::TempDir dir;
  const den::io::ImportedModel m = den::io::import_torchscript(fixture("nested_script"));
  const std::string path = (dir.path() / "imported.den").string();
  den::io::save_checkpoint(m.engine, path);
  const den::io::LoadedCheckpoint c = den::io::load_checkpoint(path);
  EXPECT_EQ(c.engine.graph().unit(0, 0).origin, den::graph::Origin::Imported);
  const at::Tensor x = at::randn({5, 6});
  EXPECT_TRUE(at::equal(c.engine.predict(1, x), m.engine.predict(1, x)));
}

// torchvision's ResNet-18 (residual blocks) and MobileNetV2 (depthwise convolutions, ReLU6), as
// users hold them: everything up to the global pooling runs as the frozen trunk, the last Linear
// is task 1's head, and den's outputs are PyTorch's to 1e-4 on 224x224 RGB images.
#ifdef DEN_HAVE_ONNX
/// Task `task`'s logits on raw samples `x` [N, trunk input_dim] by the ONNX export of `engine` with
/// `trunk` (NOTE: [trunk as ONNX]), run through den's own ONNX reader.
at::Tensor onnx_logits(const den::engine::Engine& engine, int64_t task, const den::io::FrozenTrunk& trunk,
                       const at::Tensor& x) {
  den::io::ExportInfo info;
  info.trunk = trunk;
  den::io::OnnxModule m = den::io::translate_onnx_bytes(den::io::onnx_model(engine, task, info), "export");
  return m.module.forward({x}).toTensor();
}
#endif

TEST(ImportTorchvision, ResNet18AndMobileNetV2ImportThroughTheTrunk) {
  const den::io::testing::TempDir dir;
  const std::string command = "/usr/bin/python3 " + std::string(DEN_SERIALIZATION_TEST_DATA) +
                              "/../make_torchvision_models.py " + dir.path().string() + " 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << "needs python3-torch and python3-torchvision (scripts/install_deps.sh)";
  for (const std::string name : {"resnet18", "mobilenet_v2"}) {
    torch::jit::Module io = torch::jit::load((dir.path() / (name + ".io.pt")).string());
    const at::Tensor x = io.attr("x").toTensor(), expected = io.attr("y").toTensor();
    for (const std::string how : {"_script", "_trace"}) {
      den::io::ImportOptions options;
      options.config.input_shape = {3, 224, 224};
      const den::io::ImportedModel m = den::io::import_torchscript((dir.path() / (name + how + ".pt")).string(), options);
      ASSERT_TRUE(m.trunk.has_value()) << name << how;
      EXPECT_EQ(m.trunk->feature_dim(), name == "resnet18" ? 512 : 1280);
      const at::Tensor got = m.engine.predict(1, den::io::trunk_features(*m.trunk, x.reshape({3, -1})));
      EXPECT_TRUE(at::allclose(got, expected, 1e-4, 1e-4)) << name << how << ": " << (got - expected).abs().max().item<double>();
#ifdef DEN_HAVE_ONNX
      // The ONNX export writes the trunk's nodes too: the model's raw inputs in, its outputs out.
      const at::Tensor onnx = onnx_logits(m.engine, 1, *m.trunk, x.reshape({3, -1}));
      EXPECT_TRUE(at::allclose(onnx, expected, 1e-4, 1e-4)) << name << how << ": " << (onnx - expected).abs().max().item<double>();
#endif
    }
  }
}

#ifdef DEN_HAVE_ONNX
// ONNX models (tests/serialization/make_onnx_fixtures.py: torch.onnx.export, and a model in the
// layout tf2onnx writes for Keras) import through the translator: what maps becomes den layers,
// the rest the trunk, a final Softmax is dropped; den's outputs are the reference's.
struct OnnxCase {
  const char* fixture;
  std::vector<int64_t> input;  ///< C,H,W
  const char* layers;          ///< den's layers
  bool softmax;                ///< the model ends in a Softmax (den gives the logits)
  bool nhwc;                   ///< the reference's inputs are NHWC
};

class ImportOnnx : public ::testing::TestWithParam<OnnxCase> {};

TEST_P(ImportOnnx, OutputsAreTheReferences) {
  const OnnxCase& c = GetParam();
  const std::string dir = std::string(DEN_SERIALIZATION_TEST_DATA) + "/onnx/";
  den::io::ImportOptions options;
  options.config.input_shape = c.input;
  const den::io::ImportedModel m = den::io::import_onnx(dir + c.fixture + ".onnx", options);
  EXPECT_EQ(den::engine::layers_to_text(m.engine.config().layers), c.layers) << c.fixture;
  torch::jit::Module io = torch::jit::load(dir + c.fixture + ".io.pt");
  at::Tensor x = io.attr("x").toTensor();
  if (c.nhwc) x = x.permute({0, 3, 1, 2}).contiguous();
  at::Tensor features = x.reshape({x.size(0), -1});
  if (m.trunk) features = den::io::trunk_features(*m.trunk, features);
  at::Tensor got = m.engine.predict(1, features);
  if (c.softmax) got = at::softmax(got, 1);
  const at::Tensor expected = io.attr("y").toTensor();
  EXPECT_TRUE(at::allclose(got, expected, 1e-5, 1e-5)) << c.fixture << ": " << (got - expected).abs().max().item<double>();
  if (m.trunk) {
    // Exported back to ONNX, trunk included: the model's own inputs in, the reference out.
    at::Tensor onnx = onnx_logits(m.engine, 1, *m.trunk, x.reshape({x.size(0), -1}));
    if (c.softmax) onnx = at::softmax(onnx, 1);
    EXPECT_TRUE(at::allclose(onnx, expected, 1e-5, 1e-5)) << c.fixture << ": " << (onnx - expected).abs().max().item<double>();
  }
}

INSTANTIATE_TEST_SUITE_P(
    TranslatedModels, ImportOnnx,
    ::testing::Values(OnnxCase{"plain_conv", {1, 12, 12}, "conv3x3p1:4,maxpool2,conv3x3:6", false, false},
                      OnnxCase{"residual_bn", {3, 10, 10}, "fc:16", false, false},
                      OnnxCase{"keras_layout", {3, 12, 12}, "conv1x1:6,gap", true, true},
                      OnnxCase{"softmax", {1, 11, 11}, "fc:8", true, false}));

TEST(ImportOnnxRefusals, AnOperatorTheTranslatorDoesNotTakeIsNamed) {
  const std::string dir = std::string(DEN_SERIALIZATION_TEST_DATA) + "/onnx/";
  try {
    den::io::import_onnx(dir + "refused_unsupported_op.onnx");
    FAIL();
  } catch (const ImportError& e) {
    EXPECT_EQ(e.kind(), ImportError::Kind::Unsupported);
    EXPECT_NE(std::string(e.what()).find("(op "), std::string::npos) << e.what();
  }
  EXPECT_THROW(den::io::import_onnx(dir + "truncated.onnx"), ImportError);
}
#endif

// The trunk travels in the checkpoint (checksummed with the rest) and in the TorchScript export,
// which then takes the model's own inputs; den learns on after it, task 1 staying the model's.
TEST(ImportTrunkCheckpoint, TheTrunkRoundTripsAndTheExportRunsIt) {
  const den::io::testing::TempDir dir;
  den::io::ImportOptions options;
  options.config = den::engine::preset("den").set_max_iter(60).set_eval_every(20);
  options.config.input_shape = {2, 10, 10};
  const std::string file = fixture("refused_depthwise");
  den::io::ImportedModel m = den::io::import_torchscript(file, options);
  ASSERT_TRUE(m.trunk.has_value());
  den::io::CheckpointExtras extras;
  extras.trunk = m.trunk;
  const std::string path = (dir.path() / "trunk.den").string();
  den::io::save_checkpoint(m.engine, path, extras);
  den::io::LoadedCheckpoint c = den::io::load_checkpoint(path);
  ASSERT_TRUE(c.extras.trunk.has_value());
  EXPECT_EQ(c.extras.trunk->module, m.trunk->module);
  EXPECT_EQ(c.extras.trunk->feature_shape, m.trunk->feature_shape);
  EXPECT_EQ(c.extras.trunk->cut, "1");

  const at::Tensor x = at::randn({7, 2, 10, 10});
  const at::Tensor expected = torch::jit::load(file).forward({x}).toTensor();
  const at::Tensor features = den::io::trunk_features(*c.extras.trunk, x.reshape({7, -1}));
  EXPECT_TRUE(at::allclose(c.engine.predict(1, features), expected, 1e-5, 1e-5));
  // A task learned on the features keeps task 1 exact, and the export runs trunk and network.
  den::testing::SyntheticSpec spec;
  spec.dim = spec.informative = c.engine.input_dim();
  c.engine.add_task(den::testing::synthetic_task(3, spec));
  EXPECT_TRUE(at::allclose(c.engine.predict(1, features), expected, 1e-5, 1e-5));
  den::io::ExportInfo info;
  info.trunk = c.extras.trunk;
  den::io::export_torchscript(c.engine, den::io::kAllTasks, (dir.path() / "all.pt").string(), info);
  torch::jit::Module exported = torch::jit::load((dir.path() / "all.pt").string());
  EXPECT_TRUE(at::allclose(exported.forward({x.reshape({7, -1}), int64_t{1}}).toTensor(), expected, 1e-5, 1e-5));
  EXPECT_TRUE(at::allclose(exported.forward({x.reshape({7, -1}), int64_t{2}}).toTensor(), c.engine.predict(2, features),
                           1e-5, 1e-5));
#ifdef DEN_HAVE_ONNX
  EXPECT_TRUE(at::allclose(onnx_logits(c.engine, 1, *c.extras.trunk, x.reshape({7, -1})), expected, 1e-5, 1e-5));
  EXPECT_TRUE(at::allclose(onnx_logits(c.engine, 2, *c.extras.trunk, x.reshape({7, -1})), c.engine.predict(2, features),
                           1e-5, 1e-5));
#endif

  // A trunk whose features are not the network's inputs is refused as corrupt.
  extras.trunk->feature_shape = {3};
  den::io::save_checkpoint(m.engine, path, extras);
  try {
    den::io::load_checkpoint(path);
    FAIL();
  } catch (const den::io::CheckpointError& e) {
    EXPECT_EQ(e.kind(), den::io::CheckpointError::Kind::Corrupt);
    EXPECT_NE(std::string(e.what()).find("frozen trunk"), std::string::npos) << e.what();
  }
}

}  // namespace
