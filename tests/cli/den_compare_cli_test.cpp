// End-to-end checks of `den compare`, of the method flags of `den run`, of task-agnostic metrics in
// the report and of the new-classes stream (--base-classes).

#include "cli_test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <map>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <csignal>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;

using den::testing::read_json;
using den::testing::Result;
using den::testing::run_den;
using den::testing::spawn_den;
using den::testing::wait_exit;
using den::testing::wait_for;
using den::testing::without_seconds;
using den::testing::without_seconds_and_curves;
using den::testing::write_idx_pair;



class DenCompareCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("den_compare_cli_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_ / "data");
    write_idx_pair(dir_ / "data", "train", 400, 1);  // 4 classes
    write_idx_pair(dir_ / "data", "t10k", 120, 2);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string p(const std::string& name) const { return (dir_ / name).string(); }
  std::string flags(int max_iter = 60) const {
    return "--data " + p("data") + " --hidden 16,8 --max-iter " + std::to_string(max_iter) + " --batch-size 32 --eval-every 20 --quiet --threads 1";
  }
  fs::path dir_;
};

/// Exit code 2 and a message that names `part`.
void expect_usage_error(const std::string& args, const std::string& part) {
  const Result r = run_den(args);
  EXPECT_EQ(r.code, 2) << args << "\n" << r.output;
  EXPECT_NE(r.output.find(part), std::string::npos) << args << "\n" << r.output;
}

TEST_F(DenCompareCli, AnInterruptedComparisonKeepsFinishedMethodsAndResumes) {
  // Fine-tuning is quick; l2 with long phases is still running when the signal comes.
  const std::string args = "compare --methods finetune,l2 --tasks 2 --data " + p("data") +
                           " --hidden 16,8 --batch-size 32 --eval-every 20 --quiet --threads 1 --report " + p("r.json");
  const pid_t pid = spawn_den(args + " --max-iter 4000");
  ASSERT_TRUE(wait_for([&] { return fs::exists(p("r.json")); }, pid));
  ::kill(pid, SIGINT);
  ASSERT_EQ(wait_exit(pid), 130);
  const nlohmann::json partial = read_json(p("r.json"));
  EXPECT_EQ(partial["partial"], true);
  ASSERT_EQ(partial["table"].size(), 1u);
  EXPECT_EQ(partial["table"][0]["method"], "finetune");
  EXPECT_TRUE(partial["methods"].contains("finetune"));

  // Other settings than the report's are refused, naming the one that differs (not both whole
  // configurations); the same ones skip finetune.
  const Result other = run_den(args + " --resume --max-iter 60");
  EXPECT_EQ(other.code, 2) << other.output;
  EXPECT_NE(other.output.find("--resume: method finetune"), std::string::npos) << other.output;
  EXPECT_NE(other.output.find("max_iter 4000 -> 60"), std::string::npos) << other.output;
  EXPECT_LT(other.output.size(), 400u) << other.output;
  // A report that is no compare report is a data error, as `den report` says of it.
  std::ofstream(p("garbage.json")) << "garbage";
  const std::string garbage_args = "compare --methods finetune --tasks 1 --data " + p("data") +
                                   " --hidden 16,8 --quiet --threads 1 --resume --report " + p("garbage.json");
  const Result garbage = run_den(garbage_args);
  EXPECT_EQ(garbage.code, 3) << garbage.output;
  EXPECT_NE(garbage.output.find("is not a den compare report"), std::string::npos) << garbage.output;
  const Result done = run_den(args + " --resume --max-iter 4000");
  ASSERT_EQ(done.code, 0) << done.output;
  EXPECT_NE(done.output.find("finetune (1/2): done"), std::string::npos) << done.output;
  EXPECT_NE(done.output.find("== method l2 (2/2)\n"), std::string::npos) << done.output;
  EXPECT_EQ(read_json(p("r.json"))["partial"], false);
  EXPECT_EQ(read_json(p("r.json"))["table"].size(), 2u);
  EXPECT_EQ(without_seconds(read_json(p("r.json"))["methods"]["finetune"]),
            without_seconds(partial["methods"]["finetune"]));
}

TEST_F(DenCompareCli, HelpDocumentsTheNewFlags) {
  const Result run = run_den("run --help");
  EXPECT_EQ(run.code, 0);
  for (const char* flag : {"--method", "--l2-lambda", "--ewc-lambda", "--ewc-samples", "--exemplars", "--base-classes",
                           "progressive"}) {
    EXPECT_NE(run.output.find(flag), std::string::npos) << flag;
  }
  const Result compare = run_den("compare --help");
  EXPECT_EQ(compare.code, 0);
  for (const char* flag : {"--methods", "--csv", "--report", "--data", "--protocol", "--tasks", "--max-iter", "--k",
                           "--ewc-lambda", "--exemplars", "--base-classes"}) {
    EXPECT_NE(compare.output.find(flag), std::string::npos) << flag;
  }
}

TEST_F(DenCompareCli, BadMethodsAndMethodFlagsAreUsageErrors) {
  // den run: unknown method, and flags of another method than the one run.
  EXPECT_EQ(run_den("run --method nope " + flags()).code, 2);
  expect_usage_error("run --method stl --k 3 " + flags(), "--k");
  expect_usage_error("run --method l2 --ewc-lambda 3 " + flags(), "--ewc-lambda");
  expect_usage_error("run --method ewc --l2-lambda 3 " + flags(), "--l2-lambda");
  expect_usage_error("run --ewc-samples 10 " + flags(), "--ewc-samples");  // --method den by default
  expect_usage_error("run --method finetune --checkpoint " + p("c.den") + " " + flags(), "--checkpoint");
  expect_usage_error("run --method ewc --ewc-lambda -1 " + flags(), "EWC lambda");
  EXPECT_EQ(run_den("run --exemplars -1 " + flags()).code, 2);

  // den compare: the method list, and flags of methods not in it.
  expect_usage_error("compare --methods '' " + flags(), "names no method");
  expect_usage_error("compare --methods , " + flags(), "names no method");
  expect_usage_error("compare --methods den,bogus " + flags(), "progressive");  // lists the known ones
  expect_usage_error("compare --methods den,finetune,den " + flags(), "twice");
  expect_usage_error("compare --methods den,finetune --ewc-lambda 5 " + flags(), "--ewc-lambda");
  expect_usage_error("compare --methods stl,mtl --sigma 0.1 " + flags(), "--sigma");
  // Output files are checked before any training.
  EXPECT_EQ(run_den("compare --methods den --report " + p("no/dir/r.json") + " " + flags()).code, 4);
  EXPECT_EQ(run_den("compare --methods den --csv " + p("no/dir/t.csv") + " " + flags()).code, 4);
}

TEST_F(DenCompareCli, TheClassIncrementalMethodsShareOneMemoryBudget) {
  const std::string split = flags() + " --protocol split --tasks 2 --classes-per-task 2";
  expect_usage_error("run --method icarl " + split, "--memory");  // a memory of old samples is its method
  expect_usage_error("run --method der++ --memory 0 " + split, "--memory");
  expect_usage_error("run --memory -1 " + split, "--memory");
  expect_usage_error("run --method den --memory 3 " + split, "--memory 3 is below the stream's 4 head outputs");
  expect_usage_error("run --method icarl --memory 20 --derpp-alpha 1 " + split, "--derpp-alpha");
  expect_usage_error("compare --methods den,lwf --ranpac-dim 64 " + split, "--ranpac-dim");
  expect_usage_error("run --method lwf --distill-temperature 0 " + split, "temperature");

  const Result r = run_den("compare --methods den,lwf,icarl,der++,ncm,ranpac --memory 20 --ranpac-dim 64 --csv " +
                           p("t.csv") + " --report " + p("r.json") + " " + split);
  ASSERT_EQ(r.code, 0) << r.output;
  std::ifstream csv(p("t.csv"));
  std::string line;
  std::getline(csv, line);
  std::map<std::string, std::vector<std::string>> rows;
  while (std::getline(csv, line)) {
    std::vector<std::string> cells;
    std::stringstream in(line);
    for (std::string cell; std::getline(in, cell, ',');) cells.push_back(cell);
    ASSERT_EQ(cells.size(), 11u) << line;
    rows[cells[0]] = cells;
  }
  ASSERT_EQ(rows.size(), 6u);
  const auto memory = [&](const std::string& method) { return std::stoll(rows.at(method)[9]); };
  EXPECT_EQ(memory("icarl"), 20);  // 20 / 4 outputs = 5 of each
  EXPECT_EQ(memory("der++"), 20);  // the reservoir is full
  EXPECT_GT(memory("den"), 0);     // its calibration exemplars: at most 5 of each output
  EXPECT_LE(memory("den"), 20);
  for (const char* none : {"lwf", "ncm", "ranpac"}) EXPECT_EQ(memory(none), 0) << none;
  EXPECT_EQ(std::stoll(rows.at("icarl")[10]), 20 * 36 * 4);  // float32 samples of 6x6 features
  for (const auto& [method, cells] : rows) {
    const double agnostic = std::stod(cells[3]);
    EXPECT_TRUE(agnostic >= 0 && agnostic <= 1) << method;
  }
  const nlohmann::json report = read_json(p("r.json"));
  EXPECT_EQ(report.at("methods").at("icarl").at("memory"), 20);
  EXPECT_EQ(report.at("methods").at("icarl").at("final").at("memory_samples"), 20);
}

TEST_F(DenCompareCli, BadBaseClassesAreUsageErrors) {
  expect_usage_error("run --protocol permuted --base-classes 2 " + flags(), "--base-classes 2");
  expect_usage_error("run --protocol one-vs-rest --base-classes 2 " + flags(), "split");
  expect_usage_error("run --protocol split --base-classes 0 " + flags(), "--base-classes 0");
  expect_usage_error("run --protocol split --base-classes 4 " + flags(), "1..3");  // the data has 4 classes
  expect_usage_error("compare --methods den --protocol split --base-classes 5 " + flags(), "1..3");
  expect_usage_error("run --protocol split --base-classes 2 --tasks 4 " + flags(), "--tasks 4");
}

TEST_F(DenCompareCli, BaseClassesRunReportsOldAndNewClasses) {
  const Result r = run_den("run --protocol split --base-classes 2 --k 3 " + flags() + " --report " + p("r.json"));
  ASSERT_EQ(r.code, 0) << r.output;
  // Checkpoints record the new-classes stream and the exemplars: a resumed run equals this one.
  const Result part = run_den("run --protocol split --base-classes 2 --tasks 2 --k 3 " + flags() + " --checkpoint " +
                              p("part.den"));
  ASSERT_EQ(part.code, 0) << part.output;
  const Result resumed =
      run_den("run --resume " + p("part.den") + " --tasks 3 --quiet --threads 1 --report " + p("resumed.json"));
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_EQ(without_seconds_and_curves(read_json(p("resumed.json"))), without_seconds_and_curves(read_json(p("r.json"))));
  EXPECT_NE(r.output.find("task-agnostic accuracy"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("agn_acc"), std::string::npos) << r.output;
  const nlohmann::json doc = read_json(p("r.json"));
  EXPECT_EQ(doc["stream"]["base_classes"], 2);
  const nlohmann::json& tasks = doc["tasks"];
  ASSERT_EQ(tasks.size(), 3u);  // base classes 0-1, then classes 2 and 3: the whole data without --tasks
  EXPECT_EQ(tasks[0]["name"], "base[0-1]");
  EXPECT_EQ(tasks[0]["num_classes"], 2);
  EXPECT_EQ(tasks[1]["name"], "new-class-2");
  EXPECT_EQ(tasks[2]["name"], "new-class-3");
  EXPECT_FALSE(tasks[0].contains("old_classes"));
  for (size_t t = 1; t < 3; ++t) {
    const nlohmann::json& task = tasks[t];
    ASSERT_TRUE(task.contains("old_classes")) << t;
    ASSERT_TRUE(task.contains("new_classes")) << t;
    for (const char* side : {"old_classes", "new_classes"}) {
      for (const char* key : {"accuracy", "task_agnostic_accuracy"}) {
        ASSERT_TRUE(task[side][key].is_number()) << side << " " << key << " " << t;
        EXPECT_GE(task[side][key].get<double>(), 0.0);
        EXPECT_LE(task[side][key].get<double>(), 1.0);
      }
    }
    EXPECT_EQ(task["new_classes"]["accuracy"], task["test_accuracy"]);
    ASSERT_EQ(task["task_agnostic_accuracy"].size(), t + 1);
    EXPECT_EQ(task["new_classes"]["task_agnostic_accuracy"], task["task_agnostic_accuracy"][t]);
  }
  // Task 2's "old" side is task 1 alone.
  EXPECT_EQ(tasks[1]["old_classes"]["task_agnostic_accuracy"], tasks[1]["task_agnostic_accuracy"][0]);
  const nlohmann::json& final = doc["final"];
  ASSERT_TRUE(final["task_agnostic_accuracy"].is_number());
  EXPECT_GT(final["task_agnostic_accuracy"].get<double>(), 0.25);  // 4 separable classes: above chance
  ASSERT_EQ(final["agnostic_matrix"].size(), 3u);
  EXPECT_TRUE(final["agnostic_matrix"][0][1].is_null());

  // --exemplars 0: task-agnostic prediction off, null in the report.
  const Result off = run_den("run --protocol split --tasks 2 --exemplars 0 " + flags() + " --report " + p("off.json"));
  ASSERT_EQ(off.code, 0) << off.output;
  const nlohmann::json no_agnostic = read_json(p("off.json"));
  EXPECT_TRUE(no_agnostic["final"]["task_agnostic_accuracy"].is_null());
  EXPECT_TRUE(no_agnostic["final"]["agnostic_matrix"].is_null());
  EXPECT_TRUE(no_agnostic["tasks"][1]["task_agnostic_accuracy"].is_null());
  EXPECT_TRUE(no_agnostic["tasks"][1]["new_classes"]["task_agnostic_accuracy"].is_null());
  EXPECT_TRUE(no_agnostic["tasks"][1]["old_classes"]["accuracy"].is_number());
}

TEST_F(DenCompareCli, CompareRunsEachMethodOnTheSameStream) {
  const std::string stream = "--protocol split --classes-per-task 2 --tasks 2 --seed 3 " + flags();
  const Result r = run_den("compare --methods den,finetune " + stream + " --report " + p("c.json") + " --csv " +
                           p("c.csv"));
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* part : {"== method den (1/2)", "== method finetune (2/2)", "agnostic_acc", "x_stl", "x_mtl"}) {
    EXPECT_NE(r.output.find(part), std::string::npos) << part << "\n" << r.output;
  }

  const nlohmann::json doc = read_json(p("c.json"));
  ASSERT_EQ(doc["methods"].size(), 2u);
  EXPECT_EQ(doc["methods"]["den"]["method"], "den");
  EXPECT_EQ(doc["methods"]["finetune"]["method"], "finetune");
  EXPECT_EQ(doc["methods"]["finetune"]["tasks"].size(), 2u);
  ASSERT_EQ(doc["table"].size(), 2u);
  EXPECT_EQ(doc["table"][0]["method"], "den");
  EXPECT_EQ(doc["table"][1]["method"], "finetune");
  // Two tasks of 2 classes on 6x6 inputs, hidden 16,8: STL = 2 * (36*16+16 + 16*8+8 + 2*9).
  EXPECT_EQ(doc["stl_params"], 2 * (36 * 16 + 16 + 16 * 8 + 8 + 2 * 9));
  EXPECT_EQ(doc["mtl_params"], 36 * 16 + 16 + 16 * 8 + 8 + 2 * 2 * 9);
  for (const auto& row : doc["table"]) {
    const std::string m = row["method"];
    const nlohmann::json& final = doc["methods"][m]["final"];
    EXPECT_EQ(row["avg_accuracy"], final["avg_accuracy"]) << m;
    EXPECT_EQ(row["avg_auroc"], final["avg_auroc"]) << m;
    EXPECT_EQ(row["task_agnostic_accuracy"], final["task_agnostic_accuracy"]) << m;
    EXPECT_EQ(row["bwt"], final["bwt"]) << m;
    EXPECT_EQ(row["params"], final["params"]) << m;
    EXPECT_DOUBLE_EQ(row["params_vs_stl"].get<double>(),
                     final["params"].get<double>() / doc["stl_params"].get<double>());
    EXPECT_DOUBLE_EQ(row["params_vs_mtl"].get<double>(),
                     final["params"].get<double>() / doc["mtl_params"].get<double>());
  }
  // Fine-tuning keeps one shared network with a head per task: exactly MTL's size.
  EXPECT_EQ(doc["table"][1]["params"], doc["mtl_params"]);

  std::ifstream csv(p("c.csv"));
  std::vector<std::string> lines;
  for (std::string line; std::getline(csv, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "method,avg_auroc,avg_accuracy,task_agnostic_accuracy,bwt,params,params_vs_stl,params_vs_mtl,"
                      "seconds,memory,memory_bytes");
  EXPECT_EQ(lines[1].rfind("den,", 0), 0u) << lines[1];
  EXPECT_EQ(lines[2].rfind("finetune,", 0), 0u) << lines[2];

  // The same stream and seed as `den run`: DEN's part of the comparison is that run's report.
  const Result run = run_den("run --method den " + stream + " --report " + p("den.json"));
  ASSERT_EQ(run.code, 0) << run.output;
  EXPECT_EQ(without_seconds(doc["methods"]["den"]), without_seconds(read_json(p("den.json"))));
}

}  // namespace
