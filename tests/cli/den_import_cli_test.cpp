// den import, den add-task --data (a task's own samples), den predict and den export --task agnostic
// end to end, and their exit codes. The model is a TorchScript fixture of
// tests/serialization/make_import_fixtures.py (6 inputs, 3 outputs).

#include "serialization/checkpoint.h"

#include "cli_test_util.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/serialization/import.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace io = den::io;
using den::testing::Result;
using den::testing::read_rows;
using den::testing::run_den;

constexpr int kFeatures = 6;

std::string fixture(const std::string& name) { return std::string(DEN_IMPORT_FIXTURES) + "/" + name + ".pt"; }

/// Samples of `classes` in 6 features: class c is a blob around c along feature c % 6.
void write_csv(const fs::path& path, const std::vector<int>& classes, int per_class, uint32_t seed, bool labelled = true) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0.0f, 0.3f);
  std::ofstream out(path);
  for (int i = 0; i < per_class; ++i) {
    for (int c : classes) {
      if (labelled) out << c;
      for (int f = 0; f < kFeatures; ++f) {
        out << (labelled || f > 0 ? "," : "") << (f == c % kFeatures ? 2.0f : 0.0f) + noise(rng);
      }
      out << "\n";
    }
  }
}

/// Features of an unlabelled CSV as a tensor.
at::Tensor read_features(const fs::path& path) {
  std::vector<float> values;
  int64_t rows = 0;
  for (const auto& row : read_rows(path)) {
    for (const std::string& f : row) values.push_back(std::stof(f));
    ++rows;
  }
  return at::tensor(values).view({rows, kFeatures});
}

class DenImportCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("den_import_cli_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    for (const char* sub : {"old", "c3", "c45", "empty"}) fs::create_directories(dir_ / sub);
    write_csv(dir_ / "old" / "train.csv", {0, 1, 2}, 30, 1);
    write_csv(dir_ / "c3" / "train.csv", {3}, 60, 2);
    write_csv(dir_ / "c45" / "train.csv", {4, 5}, 40, 3);
    write_csv(dir_ / "c45" / "test.csv", {4, 5}, 10, 4);
    write_csv(dir_ / "x.csv", {0, 1, 2, 3, 4, 5}, 5, 5, /*labelled=*/false);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string p(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

constexpr const char* kFast = " --max-iter 60 --eval-every 20 --batch-size 32";

TEST_F(DenImportCli, ImportAddTasksPredictAndExportAgree) {
  const Result imported = run_den("import " + fixture("sequential_script") + " -o " + p("run.den") + " --data " +
                                  p("old") + kFast);
  ASSERT_EQ(imported.code, 0) << imported.output;
  EXPECT_NE(imported.output.find("torch.nn.Linear"), std::string::npos) << imported.output;
  {
    const io::LoadedCheckpoint c = io::load_checkpoint(p("run.den"));
    EXPECT_EQ(c.engine.num_tasks(), 1);
    EXPECT_EQ(c.engine.graph().unit(0, 0).origin, den::graph::Origin::Imported);
    ASSERT_TRUE(c.extras.agnostic.has_value());
    EXPECT_EQ(c.extras.agnostic->memory_classes.size(), 60u);  // 20 exemplars of each of the 3 classes
  }
  // Task 1 predicts what the PyTorch model predicts, on raw CSV rows.
  ASSERT_EQ(run_den("predict " + p("run.den") + " --csv " + p("x.csv") + " --task 1 -o " + p("t1.csv")).code, 0);
  {
    torch::jit::Module model = torch::jit::load(fixture("sequential_script"));
    const at::Tensor expected = model.forward({read_features(p("x.csv"))}).toTensor().argmax(1);
    const auto rows = read_rows(p("t1.csv"));
    ASSERT_EQ(static_cast<int64_t>(rows.size()), expected.size(0) + 1);
    EXPECT_EQ(rows[0], (std::vector<std::string>{"sample", "class", "score"}));
    for (int64_t i = 0; i < expected.size(0); ++i) EXPECT_EQ(std::stoll(rows[i + 1][1]), expected[i].item<int64_t>());
  }

  // One class: negatives from the exemplars; two classes given by --classes, with test samples, and a
  // "rest" output learned from the exemplars of the others.
  const Result one = run_den("add-task " + p("run.den") + " --data " + p("c3") + " --quiet --threads 1");
  ASSERT_EQ(one.code, 0) << one.output;
  const Result two = run_den("add-task " + p("run.den") + " --data " + p("c45") + " --classes 4,5 --quiet --threads 1");
  ASSERT_EQ(two.code, 0) << two.output;
  const io::LoadedCheckpoint c = io::load_checkpoint(p("run.den"));
  ASSERT_EQ(c.engine.num_tasks(), 3);
  EXPECT_EQ(c.extras.agnostic->output_classes[1], (std::vector<int64_t>{-1, 3}));
  EXPECT_EQ(c.extras.agnostic->output_classes[2], (std::vector<int64_t>{-1, 4, 5}));  // and a rest output
  EXPECT_FALSE(std::isnan(c.extras.evaluations.back().accuracy.back()));  // c45 has test samples

  // Task-agnostic predictions among the 6 classes equal the classifier's in-process ones.
  ASSERT_EQ(run_den("predict " + p("run.den") + " --csv " + p("x.csv") + " --scores -o " + p("all.csv")).code, 0);
  const auto rows = read_rows(p("all.csv"));
  EXPECT_EQ(rows[0], (std::vector<std::string>{"sample", "class", "score", "score_0", "score_1", "score_2", "score_3",
                                               "score_4", "score_5"}));
  const at::Tensor x = read_features(p("x.csv"));
  const at::Tensor expected = io::agnostic_classifier(c, "run.den").predict(c.engine, x);
  ASSERT_EQ(static_cast<int64_t>(rows.size()), x.size(0) + 1);
  for (int64_t i = 0; i < x.size(0); ++i) EXPECT_EQ(std::stoll(rows[i + 1][1]), expected[i].item<int64_t>());

  // The exported module gives the same classes.
  ASSERT_EQ(run_den("export " + p("run.den") + " --task agnostic -o " + p("agnostic.pt")).code, 0);
  torch::jit::Module exported = torch::jit::load(p("agnostic.pt"));
  EXPECT_TRUE(at::equal(exported.get_method("predict")({x}).toTensor(), expected));
  EXPECT_EQ(run_den("export " + p("run.den") + " --task agnostic --format onnx -o " + p("a.onnx")).code, 2);

  // A labelled data directory: its test half, with the accuracy printed.
  const Result labelled = run_den("predict " + p("run.den") + " --data " + p("c45"));
  EXPECT_EQ(labelled.code, 0) << labelled.output;
  EXPECT_NE(labelled.output.find("20 samples predicted among 6 classes (task-agnostic); accuracy"), std::string::npos)
      << labelled.output;
}

// NOTE: [presets] Later tasks of an imported model learn with the den preset, as den run's do, so
// the imported classes keep their exact outputs; flags override it and --preset released restores
// the released code's settings.
TEST_F(DenImportCli, LaterTasksLearnWithTheDenPresetUnlessToldOtherwise) {
  ASSERT_EQ(run_den("import " + fixture("sequential_script") + " -o " + p("run.den") + " --data " + p("old") + kFast)
                .code,
            0);
  const at::Tensor x = read_features(p("x.csv"));
  const den::engine::EngineConfig den_preset = den::engine::preset("den");
  at::Tensor task1_before;
  {
    const io::LoadedCheckpoint c = io::load_checkpoint(p("run.den"));
    const den::engine::EngineConfig& config = c.engine.config();
    EXPECT_EQ(config.restore_drifted, den_preset.restore_drifted);
    EXPECT_EQ(config.selection_budget, den_preset.selection_budget);
    EXPECT_EQ(config.selective_iter_fraction, den_preset.selective_iter_fraction);
    EXPECT_EQ(config.k, den_preset.k);
    EXPECT_EQ(config.max_iter, 60);  // the flag given wins
    task1_before = c.engine.predict(1, x);
  }
  const Result added = run_den("add-task " + p("run.den") + " --data " + p("c3") + " --quiet --threads 1");
  ASSERT_EQ(added.code, 0) << added.output;
  EXPECT_TRUE(at::equal(io::load_checkpoint(p("run.den")).engine.predict(1, x), task1_before));

  ASSERT_EQ(run_den("import " + fixture("sequential_script") + " -o " + p("released.den") + " --preset released --k 3" +
                    kFast)
                .code,
            0);
  const den::engine::EngineConfig released = io::load_checkpoint(p("released.den")).engine.config();
  EXPECT_FALSE(released.restore_drifted);
  EXPECT_EQ(released.selection_budget, 0.0);
  EXPECT_EQ(released.k, 3);

  const Result unknown = run_den("import " + fixture("sequential_script") + " -o " + p("x.den") + " --preset fast");
  EXPECT_EQ(unknown.code, 2) << unknown.output;
  EXPECT_NE(unknown.output.find("--preset"), std::string::npos) << unknown.output;
  EXPECT_FALSE(fs::exists(p("x.den")));
}

TEST_F(DenImportCli, ImportRefusalsExitWithSevenAndWriteNothing) {
  std::ofstream(p("text.pt")) << "not TorchScript";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {p("missing.pt"), "does not exist"},
      {p("text.pt"), "is not a TorchScript model"},
      {fixture("refused_sigmoid") + " --trunk none", "module '1' (torch.nn.Sigmoid)"},  // no trunk wanted
      {fixture("refused_residual") + " --trunk none", "not a chain"},
      {fixture("refused_ends_with_relu"), "no part of its end maps"},
      {fixture("refused_relu_first") + " --trunk 9", "no top-level module"},
  };
  for (const auto& [model, message] : cases) {
    const Result r = run_den("import " + model + " -o " + p("x.den"));
    if (model.find("--trunk 9") != std::string::npos) {
      EXPECT_EQ(r.code, 2) << r.output;  // a usage error: the named module is not there
      EXPECT_FALSE(fs::exists(p("x.den")));
      continue;
    }
    EXPECT_EQ(r.code, 7) << model << ": " << r.output;
    EXPECT_NE(r.output.find(message), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(p("x.den")));
  }
  EXPECT_EQ(run_den("import " + fixture("chain_script") + " -o " + p("x.den") + " --classes 1,2").code, 2);
  // --classes that are no list of distinct class ids.
  for (const char* classes : {"1,1,2", "-1,2,3", "a,b,c"}) {
    const Result bad = run_den("import " + fixture("chain_script") + " -o " + p("x.den") + " --classes " + classes);
    EXPECT_EQ(bad.code, 2) << classes << ": " << bad.output;
    EXPECT_NE(bad.output.find("--classes"), std::string::npos) << bad.output;
  }
  // A trunk whose forward fails inside the TorchScript interpreter on samples of this shape (a 5x5
  // kernel on 2x2 inputs): a usage error naming LibTorch's reason, not an internal error.
  const Result tiny = run_den("import " + fixture("refused_dilated") + " -o " + p("x.den") + " --input-shape 1,2,2");
  EXPECT_EQ(tiny.code, 2) << tiny.output;
  EXPECT_NE(tiny.output.find("does not run on samples of 1,2,2: RuntimeError: Calculated padded input size"),
            std::string::npos) << tiny.output;
  EXPECT_EQ(tiny.output.find("Traceback"), std::string::npos) << tiny.output;
  EXPECT_FALSE(fs::exists(p("x.den")));
  // --data whose labels are not the model's classes, or of another width.
  EXPECT_EQ(run_den("import " + fixture("chain_script") + " -o " + p("x.den") + " --data " + p("c3")).code, 3);
  EXPECT_FALSE(fs::exists(p("x.den")));
}

// A layer without units is a model den cannot import (exit 7), not a usage error. The model is made
// here with python3-torch, as the fixtures are.
TEST_F(DenImportCli, AZeroWidthLayerIsAnImportError) {
  const std::string model = p("zero.pt");
  const std::string make = "/usr/bin/python3 -W ignore -c \"import torch; torch.jit.script(torch.nn.Sequential("
                           "torch.nn.Linear(6, 0), torch.nn.ReLU(), torch.nn.Linear(0, 3))).save('" + model + "')\"";
  ASSERT_EQ(std::system(make.c_str()), 0) << "needs python3-torch (scripts/install_deps.sh)";
  const Result r = run_den("import " + model + " -o " + p("zero.den"));
  EXPECT_EQ(r.code, 7) << r.output;
  EXPECT_NE(r.output.find("a layer without units or inputs"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(p("zero.den")));
}

// NOTE: [frozen trunk] What does not map runs frozen before den's layers: the checkpoint carries it,
// add-task and predict feed raw samples through it.
TEST_F(DenImportCli, AModelThatDoesNotMapImportsWithAFrozenTrunk) {
  const Result r = run_den("import " + fixture("refused_sigmoid") + " -o " + p("trunk.den") + kFast);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("torch.nn.Sigmoid (frozen trunk)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("frozen trunk: up to '1'"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("no sample of the imported classes is kept"), std::string::npos) << r.output;
  const io::LoadedCheckpoint c = io::load_checkpoint(p("trunk.den"));
  ASSERT_TRUE(c.extras.trunk.has_value());
  EXPECT_EQ(c.extras.trunk->input_shape, std::vector<int64_t>{kFeatures});
  // Raw 6-feature samples go through the trunk for a new task and for predictions.
  const Result added = run_den("add-task " + p("trunk.den") + " --data " + p("c45") + " --quiet");
  ASSERT_EQ(added.code, 0) << added.output;
  const Result predicted = run_den("predict " + p("trunk.den") + " --data " + p("c45") + " --split train --task 2");
  ASSERT_EQ(predicted.code, 0) << predicted.output;
  EXPECT_NE(predicted.output.find("accuracy"), std::string::npos) << predicted.output;
  EXPECT_EQ(run_den("export " + p("trunk.den") + " --format onnx -o " + p("t.onnx")).code, 0);
  EXPECT_EQ(run_den("export " + p("trunk.den") + " -o " + p("t.pt")).code, 0);
  // A trunk op that ONNX export does not write (an adaptive pool to 2x2): exit 2 naming it, no file.
  ASSERT_EQ(run_den("import " + fixture("refused_pool_to_2x2") + " -o " + p("pool.den") + " --input-shape 1,10,10" +
                    kFast).code, 0);
  const Result refused = run_den("export " + p("pool.den") + " --format onnx -o " + p("pool.onnx"));
  EXPECT_EQ(refused.code, 2) << refused.output;
  EXPECT_NE(refused.output.find("aten::adaptive_avg_pool2d with an adaptive pool to a size other than 1"),
            std::string::npos) << refused.output;
  EXPECT_FALSE(fs::exists(p("pool.onnx")));
}

// `den import model.onnx`: the translator's model imports like TorchScript (the Keras layout
// included), and an operator it does not take is exit 7 naming the node.
TEST_F(DenImportCli, OnnxModelsImportAndTheirRefusalsExitWithSeven) {
  const std::string onnx = std::string(DEN_IMPORT_FIXTURES) + "/../onnx/";
  Result r = run_den("import " + onnx + "keras_layout.onnx -o " + p("keras.den") + " --input-shape 3,12,12");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("aten::softmax (dropped"), std::string::npos) << r.output;
  EXPECT_TRUE(io::load_checkpoint(p("keras.den")).extras.trunk.has_value());
  r = run_den("import " + onnx + "refused_unsupported_op.onnx -o " + p("x.den") + " --input-shape 1,4,4");
  EXPECT_EQ(r.code, 7) << r.output;
  EXPECT_NE(r.output.find("(op "), std::string::npos) << r.output;
  r = run_den("import " + onnx + "random.onnx -o " + p("x.den"));
  EXPECT_EQ(r.code, 7) << r.output;
  EXPECT_FALSE(fs::exists(p("x.den")));
}

TEST_F(DenImportCli, AddTaskAndPredictRefusalsHaveTheirExitCodes) {
  // Imported without --data: no exemplars, so a single-class task has no negatives.
  ASSERT_EQ(run_den("import " + fixture("chain_script") + " -o " + p("run.den") + kFast).code, 0);
  const Result single = run_den("add-task " + p("run.den") + " --data " + p("c3") + " --quiet");
  EXPECT_EQ(single.code, 3) << single.output;
  EXPECT_NE(single.output.find("needs negatives"), std::string::npos) << single.output;
  EXPECT_EQ(run_den("add-task " + p("run.den") + " --data " + p("empty") + " --quiet").code, 3);
  EXPECT_EQ(run_den("add-task " + p("run.den") + " --data " + p("missing") + " --quiet").code, 3);
  EXPECT_EQ(run_den("add-task " + p("run.den") + " --data " + p("c45") + " --classes 4 --quiet").code, 3);
  fs::create_directories(dir_ / "wide");
  {
    std::ofstream(p("wide/train.csv")) << "4,1,2,3,4,5,6,7\n5,1,2,3,4,5,6,7\n";
  }
  EXPECT_EQ(run_den("add-task " + p("run.den") + " --data " + p("wide") + " --quiet").code, 3);
  EXPECT_EQ(io::load_checkpoint(p("run.den")).engine.num_tasks(), 1);  // nothing learned, nothing written

  // predict: a width mismatch, NaN, an empty file, an unknown task, no task-agnostic state.
  std::ofstream(p("narrow.csv")) << "1,2,3\n";
  std::ofstream(p("nan.csv")) << "1,2,3,4,5,nan\n";
  std::ofstream(p("blank.csv")) << "\n";
  for (const char* bad : {"narrow.csv", "nan.csv", "blank.csv", "missing.csv"}) {
    const Result r = run_den("predict " + p("run.den") + " --csv " + p(bad));
    EXPECT_EQ(r.code, 3) << bad << ": " << r.output;
  }
  EXPECT_EQ(run_den("predict " + p("run.den") + " --csv " + p("x.csv") + " --task 2").code, 2);
  EXPECT_EQ(run_den("predict " + p("run.den") + " --csv " + p("x.csv") + " --data " + p("c45")).code, 2);
  EXPECT_EQ(run_den("predict " + p("missing.den") + " --csv " + p("x.csv")).code, 5);
  {
    const io::LoadedCheckpoint c = io::load_checkpoint(p("run.den"));
    io::save_checkpoint(c.engine, p("bare.den"));  // without task-agnostic state
  }
  const Result bare = run_den("predict " + p("bare.den") + " --csv " + p("x.csv"));
  EXPECT_EQ(bare.code, 8) << bare.output;
  EXPECT_NE(bare.output.find("cannot predict task-agnostically"), std::string::npos) << bare.output;
  EXPECT_EQ(run_den("predict " + p("bare.den") + " --csv " + p("x.csv") + " --task 1").code, 0);
  EXPECT_EQ(run_den("export " + p("bare.den") + " --task agnostic -o " + p("a.pt")).code, 8);
  EXPECT_FALSE(fs::exists(p("a.pt")));
}

TEST_F(DenImportCli, PredictAndExportApplyTheCheckpointsNormalizationToRawInputs) {
  ASSERT_EQ(run_den("import " + fixture("chain_script") + " -o " + p("run.den") + " --data " + p("old")).code, 0);
  io::LoadedCheckpoint c = io::load_checkpoint(p("run.den"));
  io::CheckpointExtras extras = c.extras;
  extras.normalization = io::FeatureNormalization{"standardize", at::full({kFeatures}, 0.5f), at::full({kFeatures}, 3.0f)};
  io::save_checkpoint(c.engine, p("norm.den"), extras);
  const at::Tensor raw = read_features(p("x.csv"));
  const at::Tensor normalized = (raw - 0.5) * 3.0;

  ASSERT_EQ(run_den("predict " + p("norm.den") + " --csv " + p("x.csv") + " --task 1 -o " + p("t1.csv")).code, 0);
  const at::Tensor expected = c.engine.predict(1, normalized).argmax(1);
  const auto rows = read_rows(p("t1.csv"));
  ASSERT_EQ(static_cast<int64_t>(rows.size()), raw.size(0) + 1);
  for (int64_t i = 0; i < raw.size(0); ++i) EXPECT_EQ(std::stoll(rows[i + 1][1]), expected[i].item<int64_t>());

  for (const char* task : {"1", "agnostic"}) {
    ASSERT_EQ(run_den("export " + p("norm.den") + " --task " + task + " -o " + p("e.pt")).code, 0);
    torch::jit::Module m = torch::jit::load(p("e.pt"));
    if (std::string(task) == "1") {
      EXPECT_TRUE(at::allclose(m.forward({raw}).toTensor(), c.engine.predict(1, normalized), 1e-5, 1e-5));
    } else {
      const at::Tensor classes = io::agnostic_classifier(c, "norm.den").predict(c.engine, normalized);
      EXPECT_TRUE(at::equal(m.get_method("predict")({raw}).toTensor(), classes));
    }
  }
}

}  // namespace
