// End-to-end checks of the `den` executable: exit codes, messages and the JSON report.

#include <ATen/Context.h>
#include "cli_test_util.h"
#include "den/version.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>

namespace {

namespace fs = std::filesystem;

using den::testing::read_json;
using den::testing::Result;
using den::testing::run_den;
using den::testing::write_idx_pair;

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

/// Replaces every label `from` of an IDX labels file by `to`.
void relabel(const fs::path& labels, uint8_t from, uint8_t to) {
  std::fstream f(labels, std::ios::in | std::ios::out | std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), {});
  for (size_t i = 8; i < bytes.size(); ++i) {
    if (static_cast<uint8_t>(bytes[i]) == from) bytes[i] = static_cast<char>(to);
  }
  f.seekp(0);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// Names in `dir` that look like an atomic writer's temporary (".NAME.tmp-XXXXXX").
std::vector<std::string> temporaries(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.find(".tmp") != std::string::npos) out.push_back(name);
  }
  return out;
}

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

TEST_F(DenCli, VersionIsTheBuildsVersion) {
  const Result r = run_den("--version");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output, std::string("den ") + den::kVersion + "\n");
}

TEST_F(DenCli, UsageErrorsExitWithTwo) {
  EXPECT_EQ(run_den("run --no-such-flag").code, 2);
  EXPECT_EQ(run_den("").code, 2);
  const Result hidden = run_den("run --hidden 312,0");
  EXPECT_EQ(hidden.code, 2);
  // --hidden is the older name of --layers; the message names the flag and the layer.
  EXPECT_NE(hidden.output.find("--layers: 312,0: layer 2 'fc:0' has no units"), std::string::npos) << hidden.output;
  // Parse errors in den's own form, never CLI11's texts or a 309-digit range.
  for (const auto& [args, message] : std::vector<std::pair<std::string, std::string>>{
           {"run 1 --bogus", "den: usage error: unexpected argument(s) --bogus 1"},
           {"bogus", "den: usage error: unknown command 'bogus'; the commands are run, compare, add-task"},
           {"", "den: usage error: give a command: run, compare"},
           {"predict x.den --task 0", "den: usage error: --task: must be >= 1, got 0"},
           {"run --tasks 0", "den: usage error: --tasks: must be >= 1, got 0"},
           {"run --threads -1", "den: usage error: --threads: must be >= 0, got -1"},
           {"run --exemplars -1", "den: usage error: --exemplars: must be >= 0, got -1"},
           {"run --val-fraction 2", "den: usage error: --val-fraction: must be in (0, 0.9], got 2"},
           {"run --method nope", "den: usage error: --method: unknown value 'nope' (one of den, stl,"},
           {"run --protocol rotated", "den: usage error: --protocol: unknown value 'rotated' (one of permuted,"},
           {"export x.den", "den: usage error: missing --output: this command needs it"},
           {"run --device tpu", "den: usage error: --device: tpu must be cpu or cuda"},
           {"run --tasks 1 --tasks 2", "den: usage error: --tasks is given 2 times; give it once"}}) {
    const Result r = run_den(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.output;
    EXPECT_NE(r.output.find(message), std::string::npos) << args << "\n" << r.output;
    EXPECT_EQ(r.output.find("Run with --help"), std::string::npos) << args << "\n" << r.output;
  }
  // A network too large to train is sized and refused before anything is allocated.
  const Result huge = run_den("run --hidden 100000000 --quiet");
  EXPECT_EQ(huge.code, 2) << huge.output;
  EXPECT_NE(huge.output.find("hidden layers fc:100000000 would hold 7.85e+10 parameters"), std::string::npos)
      << huge.output;
  EXPECT_EQ(run_den("run --protocol rotated").code, 2);
  EXPECT_EQ(run_den("run --lr -1").code, 2);
  EXPECT_EQ(run_den("run --early-stop-patience -1").code, 2);
  const Result delta = run_den("run --early-stop-min-delta 1.5");
  EXPECT_EQ(delta.code, 2);
  EXPECT_NE(delta.output.find("--early-stop-min-delta: 1.5 must be in [0, 1)"), std::string::npos) << delta.output;
  const Result fixpoint = run_den("run --method stl --prune-fixpoint");
  EXPECT_EQ(fixpoint.code, 2);
  EXPECT_NE(fixpoint.output.find("--prune-fixpoint"), std::string::npos) << fixpoint.output;
  if (!at::hasCUDA()) {
    EXPECT_EQ(run_den("run --device cuda").code, 2);
  }
}

// A run that diverges stops with exit 9 naming the task, phase and step; the checkpoint file it
// would have replaced keeps the last good run.
TEST_F(DenCli, ADivergingRunExitsWithNineAndKeepsTheLastGoodCheckpoint) {
  write_idx_pair(dir_, "train", 200, 1);
  write_idx_pair(dir_, "t10k", 40, 2);
  const std::string base = "run --data " + dir_.string() + " --hidden 16 --max-iter 40 --eval-every 20 --tasks 1 "
                           "--quiet --checkpoint " + (dir_ / "run.den").string();
  ASSERT_EQ(run_den(base).code, 0);
  std::ifstream before_file(dir_ / "run.den", std::ios::binary);
  const std::string before((std::istreambuf_iterator<char>(before_file)), std::istreambuf_iterator<char>());
  const Result r = run_den(base + " --lr 1e30 --report " + (dir_ / "run.json").string());
  EXPECT_EQ(r.code, 9) << r.output;
  EXPECT_NE(r.output.find("den: training error: training diverged at task 1, phase train, step "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("lower the learning rate (--lr)"), std::string::npos) << r.output;
  std::ifstream after_file(dir_ / "run.den", std::ios::binary);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(after_file)), std::istreambuf_iterator<char>()), before);
  EXPECT_TRUE(fs::exists(dir_ / "run.json"));  // the partial report
}

// Common mistakes are named for what they are, with the code of their kind.
TEST_F(DenCli, CommonMistakesAreNamedForWhatTheyAre) {
  write_file(dir_ / "afile", "x");
  const std::string file = (dir_ / "afile").string();
  const auto expect = [](const Result& r, int code, const std::string& text) {
    EXPECT_EQ(r.code, code) << r.output;
    EXPECT_NE(r.output.find(text), std::string::npos) << text << " in\n" << r.output;
  };
  expect(run_den("run --quiet --report " + file + "/r.json"), 4, "'" + file + "' is a file, not a directory");
  expect(run_den("run --quiet --data " + file), 3, "is a file, not a directory (--data takes the folder");
  if (fs::is_directory("/proc")) {  // writable to root by access(), yet no file can be made there
    expect(run_den("run --quiet --tasks 1 --report /proc/den.json"), 4, "cannot create a file in '/proc'");
  }
  ASSERT_EQ(::mkfifo((dir_ / "pipe.den").c_str(), 0600), 0);
  expect(run_den("inspect " + (dir_ / "pipe.den").string()), 5, "is not a regular file (a pipe or a device)");
  fs::create_directories(dir_ / "ckpt.den");
  expect(run_den("add-task " + (dir_ / "ckpt.den").string() + " --data " + dir_.string()), 5, "is a directory");
  fs::create_directories(dir_ / "csv");
  write_file(dir_ / "csv" / "train.csv", "99999999999,1\n0,2\n");
  write_file(dir_ / "csv" / "test.csv", "0,1\n");
  expect(run_den("run --quiet --data " + (dir_ / "csv").string()), 3,
         "label '99999999999' is above the largest class id den reads from CSV");
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

TEST_F(DenCli, DataTheEngineRejectsExitsWithThree) {
  // The readers accept these files, but split task 2 (classes 2, 3) has no test sample: the
  // engine's check (engine::TaskDataError) is a data error, not a usage error.
  std::string train = "label,a,b\n", test = "label,a,b\n";
  for (int i = 0; i < 80; ++i) train += std::to_string(i % 4) + "," + std::to_string(i % 4) + ",1\n";
  for (int i = 0; i < 20; ++i) test += std::to_string(i % 2) + "," + std::to_string(i % 2) + ",1\n";
  write_file(dir_ / "train.csv", train);
  write_file(dir_ / "test.csv", test);
  const Result r = run_den("run --data " + dir_.string() + " --protocol split --classes-per-task 2 --tasks 2 " +
                           quick_flags());
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_NE(r.output.find("data error"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("test set: no samples"), std::string::npos) << r.output;
}

TEST_F(DenCli, LabelGapsAreADataErrorUnlessAllowed) {
  write_idx_pair(dir_, "train", 80, 1);
  write_idx_pair(dir_, "t10k", 40, 2);
  relabel(dir_ / "train-labels-idx1-ubyte", 3, 9);  // labels {0, 1, 2, 9}: classes 3..8 are empty
  relabel(dir_ / "t10k-labels-idx1-ubyte", 3, 9);
  const std::string flags = "run --data " + dir_.string() + " --tasks 1 " + quick_flags();
  const Result refused = run_den(flags);
  EXPECT_EQ(refused.code, 3) << refused.output;
  EXPECT_NE(refused.output.find("labels 3..8"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("--allow-label-gaps"), std::string::npos) << refused.output;
  const Result allowed = run_den(flags + " --allow-label-gaps");
  EXPECT_EQ(allowed.code, 0) << allowed.output;
}

TEST_F(DenCli, ANonUtf8PathIsReportedAndTheReportKeepsTheUmask) {
  // File names are bytes: a data directory whose name is not UTF-8 must not make the report's
  // JSON dump throw at the end of the run.
  const fs::path data = dir_ / "data\xff";
  fs::create_directories(data);
  write_idx_pair(data, "train", 80, 1);
  write_idx_pair(data, "t10k", 40, 2);
  const fs::path report = dir_ / "r.json";
  const Result r = run_den("run --data '" + data.string() + "' --tasks 1 " + quick_flags() + " --report " +
                               report.string(),
                           "umask 027; ");
  ASSERT_EQ(r.code, 0) << r.output;
  const nlohmann::json doc = read_json(report);
  EXPECT_EQ(doc["data"].get<std::string>(), (dir_ / "data\xef\xbf\xbd").string());  // U+FFFD
  struct stat st {};
  ASSERT_EQ(::stat(report.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_TRUE(temporaries(dir_).empty());
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
  EXPECT_EQ(doc["config"]["layers"], "fc:16,fc:8");
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
