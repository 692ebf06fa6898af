// `den` with conv layers (--layers, --input-shape): a run on IDX images, its checkpoint, predict,
// export and resume, and the architecture and shape errors, each a usage error that writes nothing.

#include "cli_test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>

namespace {

namespace fs = std::filesystem;

using den::testing::read_json;
using den::testing::Result;
using den::testing::run_den;
using den::testing::write_idx_pair;

class DenConvCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("den_conv_cli_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_ / "data");
    write_idx_pair(dir_ / "data", "train", 400, 1);  // 6x6 images
    write_idx_pair(dir_ / "data", "t10k", 120, 2);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string p(const std::string& name) const { return (dir_ / name).string(); }
  /// A short 2-task run; `den` adds DEN's own --k, which the baselines refuse.
  std::string run_flags(bool den = true) const {
    return "run --data " + p("data") + " --protocol split --classes-per-task 2 --tasks 2 --max-iter 60 --batch-size 32 " +
           "--eval-every 20 --quiet --threads 1" + (den ? " --k 2" : "");
  }
  fs::path dir_;
};

TEST_F(DenConvCli, AConvRunTakesTheShapeFromTheIdxFilesAndItsCheckpointPredictsAndExports) {
  const Result r = run_den(run_flags() + " --layers conv3x3p1:4,maxpool2,fc:8 --report " + p("r.json") +
                           " --checkpoint " + p("c.den"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("layers conv3x3p1:4,maxpool2,fc:8"), std::string::npos) << r.output;
  const nlohmann::json report = read_json(p("r.json"));
  EXPECT_EQ(report["config"]["layers"], "conv3x3p1:4,maxpool2,fc:8");
  EXPECT_EQ(report["config"]["input_shape"], (std::vector<int64_t>{1, 6, 6}));
  EXPECT_GT(report["final"]["avg_accuracy"].get<double>(), 0.5);

  const Result inspect = run_den("inspect " + p("c.den"));
  ASSERT_EQ(inspect.code, 0) << inspect.output;
  EXPECT_NE(inspect.output.find("conv3x3p1:4,maxpool2,fc:8"), std::string::npos) << inspect.output;
  const Result predict = run_den("predict " + p("c.den") + " --data " + p("data") + " -o " + p("preds.csv"));
  EXPECT_EQ(predict.code, 0) << predict.output;
  for (const char* format : {"torchscript", "onnx", "svg"}) {
    const Result exported = run_den("export " + p("c.den") + " --format " + format + " -o " + p(std::string("m.") + format));
    EXPECT_EQ(exported.code, 0) << format << "\n" << exported.output;
  }
  // A different architecture is refused on resume: the checkpoint's network cannot take it.
  const Result resumed = run_den(run_flags() + " --layers conv3x3:4,fc:8 --resume " + p("c.den"));
  EXPECT_EQ(resumed.code, 2) << resumed.output;
  EXPECT_NE(resumed.output.find("--layers"), std::string::npos) << resumed.output;
}

TEST_F(DenConvCli, ArchitectureAndShapeErrorsAreUsageErrorsNamingTheTokenOrTheShape) {
  struct Case {
    std::string flags, needle;
  };
  const std::vector<Case> cases = {
      {"--layers conv3:4,fc:8", "layer token 'conv3:4' does not parse"},
      {"--layers conv7x7:4,fc:8", "layer 1 'conv7x7:4': kernel 7x7 is larger than its input 6x6"},
      {"--layers conv3x3:4,maxpool8,fc:8", "pooling 8x8 leaves nothing of its input 4x4"},
      {"--layers conv3x3:4,fc:8 --input-shape 1,5,5", "input shape 1,5,5 holds 25 values, but the data has 36 features"},
      {"--layers fc:8,conv3x3:4", "layer 2 'conv3x3:4' follows an fc layer"},
      {"--layers conv3x3:4,fc:8 --input-shape 1,6", "--input-shape: 1,6 must be C,H,W"},
  };
  for (const Case& c : cases) {
    const Result r = run_den(run_flags() + " " + c.flags + " --report " + p("r.json") + " --checkpoint " + p("c.den"));
    EXPECT_EQ(r.code, 2) << c.flags << "\n" << r.output;
    EXPECT_NE(r.output.find(c.needle), std::string::npos) << c.flags << "\n" << r.output;
    EXPECT_FALSE(fs::exists(p("r.json")) || fs::exists(p("c.den"))) << c.flags << ": something was written";
  }
  // Flat data (CSV) with conv layers and no shape.
  fs::create_directories(dir_ / "csv");
  std::ofstream(dir_ / "csv" / "train.csv") << "label,a,b,c,d\n0,1,2,3,4\n1,4,3,2,1\n0,1,2,3,5\n1,5,3,2,1\n";
  std::ofstream(dir_ / "csv" / "test.csv") << "label,a,b,c,d\n0,1,2,3,4\n1,4,3,2,1\n";
  const Result flat = run_den("run --data " + p("csv") + " --tasks 1 --layers conv1x1:2,fc:4 --quiet");
  EXPECT_EQ(flat.code, 2) << flat.output;
  EXPECT_NE(flat.output.find("--input-shape C,H,W"), std::string::npos) << flat.output;
}

TEST_F(DenConvCli, EveryBaselineTakesTheSameLayers) {
  for (const char* method : {"stl", "mtl", "finetune", "l2", "ewc"}) {
    const Result r = run_den(run_flags(false) + " --method " + method + " --layers conv3x3:3,maxpool2,fc:6");
    EXPECT_EQ(r.code, 0) << method << "\n" << r.output;
  }
  const Result progressive = run_den(run_flags(false) + " --method progressive --layers conv3x3:3,fc:6");
  EXPECT_EQ(progressive.code, 2) << progressive.output;
  EXPECT_NE(progressive.output.find("conv layers"), std::string::npos) << progressive.output;
}

}  // namespace
