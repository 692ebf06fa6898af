// End-to-end checks of the `den` executable: exit codes, messages and the JSON report.

#include <ATen/Context.h>
#include "cli_test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <sys/wait.h>

namespace {

namespace fs = std::filesystem;

using den::testing::Result;
using den::testing::run_den;
using den::testing::write_idx_pair;

class DenCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("den_cli_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string quick_flags() const {
    return "--hidden 16,8 --max-iter 60 --batch-size 32 --eval-every 20 --k 3 --quiet --threads 1";
  }
  fs::path dir_;
};

TEST_F(DenCli, HelpDocumentsTheFlags) {
  const Result r = run_den("run --help");
  EXPECT_EQ(r.code, 0);
  for (const char* flag : {"--data", "--protocol", "--tasks", "--classes-per-task", "--hidden", "--max-iter",
                           "--batch-size", "--lr", "--seed", "--train-limit", "--threads", "--report", "--quiet",
                           "--mu", "--l2", "--gamma", "--lambda", "--k", "--tau", "--sigma", "--split-policy"}) {
    EXPECT_NE(r.output.find(flag), std::string::npos) << flag;
  }
  EXPECT_EQ(run_den("--help").code, 0);
}

TEST_F(DenCli, UsageErrorsExitWithTwo) {
  EXPECT_EQ(run_den("run --no-such-flag").code, 2);
  EXPECT_EQ(run_den("").code, 2);
  const Result hidden = run_den("run --hidden 312,0");
  EXPECT_EQ(hidden.code, 2);
  EXPECT_NE(hidden.output.find("--hidden"), std::string::npos) << hidden.output;
  EXPECT_EQ(run_den("run --protocol rotated").code, 2);
  EXPECT_EQ(run_den("run --lr -1").code, 2);
  EXPECT_EQ(run_den("run --early-stop-patience -1").code, 2);
  const Result delta = run_den("run --early-stop-min-delta 1.5");
  EXPECT_EQ(delta.code, 2);
  EXPECT_NE(delta.output.find("early_stop_min_delta"), std::string::npos) << delta.output;
  const Result fixpoint = run_den("run --method stl --prune-fixpoint");
  EXPECT_EQ(fixpoint.code, 2);
  EXPECT_NE(fixpoint.output.find("--prune-fixpoint"), std::string::npos) << fixpoint.output;
  if (!at::hasCUDA()) {
    EXPECT_EQ(run_den("run --device cuda").code, 2);
  }
}

TEST_F(DenCli, DataErrorsExitWithThree) {
  const Result missing = run_den("run --data " + (dir_ / "nowhere").string());
  EXPECT_EQ(missing.code, 3);
  EXPECT_NE(missing.output.find("nowhere"), std::string::npos) << missing.output;

  write_idx_pair(dir_, "train", 40, 1);
  write_idx_pair(dir_, "t10k", 20, 2);
  {  // corrupt the magic number of the training images
    std::fstream f(dir_ / "train-images-idx3-ubyte", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0);
    f.put(0x12);
  }
  const Result magic = run_den("run --data " + dir_.string() + " " + quick_flags());
  EXPECT_EQ(magic.code, 3);
  EXPECT_NE(magic.output.find("magic"), std::string::npos) << magic.output;
}

TEST_F(DenCli, TooManyTasksIsAUsageError) {
  write_idx_pair(dir_, "train", 80, 1);
  write_idx_pair(dir_, "t10k", 40, 2);
  const Result r = run_den("run --data " + dir_.string() + " --protocol one-vs-rest --tasks 5 " + quick_flags());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("5"), std::string::npos) << r.output;
}

TEST_F(DenCli, UnwritableReportFailsBeforeTraining) {
  write_idx_pair(dir_, "train", 80, 1);
  write_idx_pair(dir_, "t10k", 40, 2);
  const Result r = run_den("run --data " + dir_.string() + " --report " + (dir_ / "no/dir/r.json").string() + " " +
                           quick_flags());
  EXPECT_EQ(r.code, 4);
}

TEST_F(DenCli, RunWritesTheReport) {
  write_idx_pair(dir_, "train", 400, 1);
  write_idx_pair(dir_, "t10k", 120, 2);
  const fs::path report = dir_ / "report.json";
  const Result r = run_den("run --data " + dir_.string() + " --protocol split --classes-per-task 2 --tasks 2 " +
                           quick_flags() + " --report " + report.string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("average test accuracy"), std::string::npos) << r.output;

  std::ifstream in(report);
  const nlohmann::json doc = nlohmann::json::parse(in);
  EXPECT_EQ(doc["method"], "den");
  EXPECT_EQ(doc["protocol"], "split");
  EXPECT_EQ(doc["config"]["hidden"], (std::vector<int64_t>{16, 8}));
  ASSERT_EQ(doc["tasks"].size(), 2u);
  for (const char* key : {"task", "test_accuracy", "test_auroc", "hidden_units", "params", "seconds",
                          "selected_units", "added", "pruned", "split"}) {
    EXPECT_TRUE(doc["tasks"][1].contains(key)) << key;
  }
  const auto& final = doc["final"];
  for (const char* key : {"avg_accuracy", "avg_auroc", "accuracy_matrix", "auroc_matrix", "bwt", "params",
                          "base_params", "seconds"}) {
    EXPECT_TRUE(final.contains(key)) << key;
  }
  EXPECT_TRUE(final["accuracy_matrix"][0][1].is_null());  // task 2 not yet seen after task 1
  EXPECT_GT(final["avg_accuracy"].get<double>(), 0.5);   // separable rows: far above chance
  EXPECT_GE(final["params"].get<int64_t>(), final["base_params"].get<int64_t>());
}

}  // namespace
