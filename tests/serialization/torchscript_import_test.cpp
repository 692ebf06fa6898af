// TorchScript import (NOTE: [import mapping]): every supported layer type, from script and trace,
// gives task 1 outputs equal to the model's own; every refusal names the module and its type.
// The models are made by tests/serialization/make_import_fixtures.py (python3-torch).

#include "serialization/torchscript_import.h"

#include "serialization/checkpoint.h"
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

TEST_P(ImportRefused, NamesTheModuleAndItsType) {
  const Refusal r = GetParam();
  try {
    den::io::import_torchscript(fixture(std::string("refused_") + r.fixture));
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
                      Refusal{"one_linear", "has 1 Conv2d and Linear layer;"},
                      Refusal{"relu_first", "module '0' (torch.nn.ReLU) comes before any Conv2d or Linear"},
                      Refusal{"depthwise", "module '0' (torch.nn.Conv2d) is a grouped (or depthwise) convolution"},
                      Refusal{"dilated", "module '0' (torch.nn.Conv2d) is dilated"},
                      Refusal{"overlapping_pool", "module '2' (torch.nn.MaxPool2d) is not a square pooling"},
                      Refusal{"conv_after_linear", "module '2' (torch.nn.Unflatten)"},
                      Refusal{"pool_to_2x2", "module '2' (torch.nn.AdaptiveAvgPool2d) pools to another size than 1x1"},
                      Refusal{"batchnorm_batch_statistics", "module '1' (torch.nn.BatchNorm2d) has no running statistics"}));

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

}  // namespace
