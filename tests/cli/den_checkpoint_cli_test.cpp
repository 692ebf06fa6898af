// End-to-end checks of checkpoints from the command line: den run --checkpoint/--resume (also after
// SIGKILL), den add-task, den inspect, den export, and their exit codes.

#include "serialization/checkpoint.h"

#include "cli_test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cmath>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <sys/wait.h>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;
namespace io = den::io;

using den::testing::read_json;
using den::testing::Result;
using den::testing::run_den;
using den::testing::spawn_den;
using den::testing::wait_exit;
using den::testing::wait_for;
using den::testing::without_seconds_and_curves;
using den::testing::write_idx_pair;

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}



/// Parameters and graph of two checkpoints are identical.
void expect_same_network(const fs::path& a, const fs::path& b) {
  const den::io::LoadedCheckpoint x = den::io::load_checkpoint(a.string());
  const den::io::LoadedCheckpoint y = den::io::load_checkpoint(b.string());
  ASSERT_EQ(x.engine.num_tasks(), y.engine.num_tasks());
  ASSERT_EQ(x.engine.graph().layer_sizes(), y.engine.graph().layer_sizes());
  for (int64_t l = 0; l < x.engine.network().num_layers(); ++l) {
    EXPECT_TRUE(at::equal(x.engine.network().layer(l), y.engine.network().layer(l))) << "layer " << l;
  }
  for (int64_t t = 1; t <= x.engine.num_tasks(); ++t) {
    EXPECT_TRUE(at::equal(x.engine.network().head(t), y.engine.network().head(t))) << "head " << t;
  }
  EXPECT_TRUE(at::equal(x.engine.state().rng_state, y.engine.state().rng_state));
  EXPECT_EQ(x.engine.graph().next_id(), y.engine.graph().next_id());
}

class DenCheckpointCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("den_ckpt_cli_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_ / "data");
    write_idx_pair(dir_ / "data", "train", 400, 1);
    write_idx_pair(dir_ / "data", "t10k", 120, 2);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string p(const std::string& name) const { return (dir_ / name).string(); }
  /// A small run of the permuted protocol that grows and splits.
  std::string flags(int max_iter = 60) const {
    return "--data " + p("data") + " --hidden 16,8 --max-iter " + std::to_string(max_iter) + " --batch-size 32 --eval-every 20 --k 3 --sigma 0.02 "
           "--quiet --threads 1";
  }
  fs::path dir_;
};

// Each `den` process pays for loading LibTorch (seconds on a busy machine), so the tests share runs.

/// A one-task checkpoint written in-process: no `den run` record, no task-agnostic state.
void write_bare_checkpoint(const std::string& path) {
  den::engine::Engine engine(den::engine::EngineConfig().set_hidden({4, 3}).set_max_iter(10), 3);
  den::engine::Task task;
  task.name = "t";
  task.num_classes = 2;
  task.train_x = at::rand({16, 3});
  task.train_y = at::randint(2, {16});
  task.val_x = at::rand({8, 3});
  task.val_y = at::randint(2, {8});
  engine.add_task(task);
  io::save_checkpoint(engine, path);
}

TEST_F(DenCheckpointCli, ResumeAddTaskAndAKilledRunAllEqualTheUninterruptedRun) {
  const Result full = run_den("run --tasks 3 " + flags() + " --checkpoint " + p("full.den") + " --report " + p("full.json"));
  ASSERT_EQ(full.code, 0) << full.output;
  EXPECT_EQ(read_json(p("full.json"))["tasks"].size(), 3u);
  const Result part = run_den("run --tasks 2 " + flags() + " --checkpoint " + p("part.den"));
  ASSERT_EQ(part.code, 0) << part.output;

  // add-task with no stream flags continues the checkpoint's stream by one task.
  const Result add = run_den("add-task " + p("part.den") + " -o " + p("three.den") + " --quiet --threads 1");
  ASSERT_EQ(add.code, 0) << add.output;
  EXPECT_NE(add.output.find("permuted-3"), std::string::npos) << add.output;
  expect_same_network(p("three.den"), p("full.den"));

  // The stream and settings come from the checkpoint; --tasks extends it.
  const Result resumed = run_den("run --resume " + p("part.den") + " --tasks 3 --quiet --threads 1 --checkpoint " +
                                 p("resumed.den") + " --report " + p("resumed.json"));
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_EQ(without_seconds_and_curves(read_json(p("resumed.json"))), without_seconds_and_curves(read_json(p("full.json"))));
  expect_same_network(p("resumed.den"), p("full.den"));
  // NOTE: [presets] The run was started with the den preset: resuming it under another is refused.
  const Result other_preset = run_den("run --resume " + p("part.den") + " --preset released --tasks 3 --quiet");
  EXPECT_EQ(other_preset.code, 2) << other_preset.output;
  EXPECT_NE(other_preset.output.find("--preset released says"), std::string::npos) << other_preset.output;

  // Kill a run with SIGKILL once its first checkpoint exists (wherever it is then), and resume it.
  const pid_t pid = spawn_den("run --tasks 3 " + flags() + " --checkpoint " + p("killed.den"));
  ASSERT_GE(pid, 0);
  wait_for([&] { return fs::exists(p("killed.den")); }, pid);
  ::kill(pid, SIGKILL);
  wait_exit(pid);
  ASSERT_TRUE(fs::exists(p("killed.den")));
  // What is there is a complete checkpoint, never a partial one: the resume loads it.
  const Result again = run_den("run --resume " + p("killed.den") + " --quiet --threads 1");
  ASSERT_EQ(again.code, 0) << again.output;
  expect_same_network(p("killed.den"), p("full.den"));
}

TEST_F(DenCheckpointCli, AResumeFromAOneTaskCheckpointEqualsTheUninterruptedRunTaskAgnosticValuesIncluded) {
  // A run resumed after task 1 used to rebuild the task-agnostic classifier uncalibrated, so its
  // task-agnostic accuracies after task 2 differed; the checkpoint now holds that state.
  const std::string run = "run --tasks 3 " + flags() + " --normalize standardize";
  const Result full = run_den(run + " --checkpoint " + p("full.den") + " --report " + p("full.json"));
  ASSERT_EQ(full.code, 0) << full.output;
  const Result one = run_den("run --tasks 1 " + flags() + " --normalize standardize --checkpoint " + p("one.den"));
  ASSERT_EQ(one.code, 0) << one.output;
  const Result resumed = run_den("run --resume " + p("one.den") + " --tasks 3 --quiet --threads 1 --checkpoint " +
                                 p("resumed.den") + " --report " + p("resumed.json"));
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_EQ(resumed.output.find("warning"), std::string::npos) << resumed.output;
  const nlohmann::json report = read_json(p("full.json"));
  ASSERT_FALSE(report["agnostic_matrix"].empty()) << report.dump();
  EXPECT_EQ(without_seconds_and_curves(read_json(p("resumed.json"))), without_seconds_and_curves(report));
  expect_same_network(p("resumed.den"), p("full.den"));

  const io::LoadedCheckpoint a = io::load_checkpoint(p("resumed.den"));
  const io::LoadedCheckpoint b = io::load_checkpoint(p("full.den"));
  ASSERT_TRUE(a.extras.agnostic && b.extras.agnostic);
  EXPECT_EQ(a.extras.agnostic->scale, b.extras.agnostic->scale);
  EXPECT_EQ(a.extras.agnostic->shift, b.extras.agnostic->shift);
  EXPECT_EQ(a.extras.agnostic->memory_classes, b.extras.agnostic->memory_classes);
  EXPECT_EQ(a.extras.agnostic->output_classes.size(), 3u);
  ASSERT_TRUE(a.extras.normalization && b.extras.normalization);
  EXPECT_EQ(a.extras.normalization->mode, "standardize");
  EXPECT_EQ(a.extras.normalization->shift.size(0), a.engine.input_dim());
  EXPECT_TRUE(at::equal(a.extras.normalization->scale, b.extras.normalization->scale));
}

TEST_F(DenCheckpointCli, AResumedRunWithAMemoryAndNegativesFromItEqualsTheUninterruptedOne) {
  // The memory shrinks its earlier tasks' share as tasks come, and the rest outputs of
  // --memory-negatives come from it: both travel in the checkpoint.
  const std::string split = " --protocol split --classes-per-task 2 --memory 8 --memory-negatives";
  ASSERT_EQ(run_den("run --tasks 2 " + flags() + split + " --checkpoint " + p("full.den") + " --report " + p("full.json")).code, 0);
  ASSERT_EQ(run_den("run --tasks 1 " + flags() + split + " --checkpoint " + p("one.den")).code, 0);
  const Result resumed = run_den("run --resume " + p("one.den") + " --tasks 2 --quiet --threads 1 --checkpoint " +
                                 p("resumed.den") + " --report " + p("resumed.json"));
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_EQ(without_seconds_and_curves(read_json(p("resumed.json"))), without_seconds_and_curves(read_json(p("full.json"))));
  expect_same_network(p("resumed.den"), p("full.den"));
  const io::LoadedCheckpoint one = io::load_checkpoint(p("one.den"));
  const io::LoadedCheckpoint full = io::load_checkpoint(p("full.den"));
  ASSERT_TRUE(full.extras.run && full.extras.agnostic && one.extras.agnostic);
  EXPECT_TRUE(full.extras.run->negatives_from_memory);
  EXPECT_EQ(full.extras.run->memory, 8);
  EXPECT_EQ(one.extras.agnostic->memory_classes.size(), 8u);   // 8 / 2 outputs: 4 of each
  EXPECT_EQ(full.extras.agnostic->memory_classes.size(), 8u);  // 8 / 4 outputs: 2 of each
  EXPECT_EQ(full.extras.agnostic->memory_tasks, (std::vector<int64_t>{1, 1, 1, 1, 2, 2, 2, 2}));
  EXPECT_EQ(full.extras.agnostic->output_classes[1], (std::vector<int64_t>{-1, 2, 3}));  // task 2's rest output
  // Fewer tasks than the checkpoint has learned.
  const Result fewer = run_den("run --resume " + p("full.den") + " --tasks 1 --quiet");
  EXPECT_EQ(fewer.code, 2) << fewer.output;
  EXPECT_NE(fewer.output.find("--tasks 1 is fewer than the 2 tasks the checkpoint has learned"), std::string::npos)
      << fewer.output;
  // Another memory on resume is refused, nothing written.
  const Result other = run_den("run --resume " + p("one.den") + " --tasks 2 --memory 12 --quiet");
  EXPECT_EQ(other.code, 2) << other.output;
  EXPECT_NE(other.output.find("--memory 8"), std::string::npos) << other.output;
}

TEST_F(DenCheckpointCli, SigintKeepsTheCheckpointAndAPartialReportAndExits130) {
  // Long enough phases that the signal arrives inside task 2, after task 1's checkpoint.
  const std::string args = "run --tasks 3 " + flags(3000) + " --checkpoint " + p("c.den") +
                           " --report " + p("r.json");
  const pid_t pid = spawn_den(args);
  ASSERT_TRUE(wait_for([&] { return fs::exists(p("c.den")); }, pid));
  ::kill(pid, SIGINT);
  EXPECT_EQ(wait_exit(pid), 130);
  const nlohmann::json report = read_json(p("r.json"));
  EXPECT_EQ(report["partial"], true);
  EXPECT_TRUE(report["final"].is_null());
  ASSERT_GE(report["tasks"].size(), 1u);
  const io::LoadedCheckpoint c = io::load_checkpoint(p("c.den"));
  EXPECT_EQ(c.engine.num_tasks(), static_cast<int64_t>(report["tasks"].size()));
  for (const auto& e : fs::directory_iterator(dir_)) {
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
  }
  // The run goes on from the checkpoint.
  const Result resumed = run_den("run --resume " + p("c.den") + " --quiet --threads 1 --report " + p("r.json"));
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_EQ(read_json(p("r.json"))["partial"], false);
  EXPECT_EQ(io::load_checkpoint(p("c.den")).engine.num_tasks(), 3);

  // A second signal quits at once; the files stay as they were, complete. The stream is far longer than
  // the test, and the signals come once task 4's checkpoint shows the run is under way (and its
  // handler installed), however fast the machine is.
  const std::string before = read_bytes(p("c.den"));
  const pid_t again = spawn_den("run --tasks 200 " + flags(3000) + " --resume " + p("c.den") + " --checkpoint " + p("d.den"));
  ASSERT_TRUE(wait_for([&] { return fs::exists(p("d.den")); }, again));
  ::kill(again, SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ::kill(again, SIGTERM);
  EXPECT_EQ(wait_exit(again), 130);
  EXPECT_EQ(read_bytes(p("c.den")), before);
  // Complete: task 4's, or a later one's. (A temporary that the exit cut short is removed by the next save.)
  EXPECT_GE(io::load_checkpoint(p("d.den")).engine.num_tasks(), 4);

  // add-task stops on SIGINT too, even started with SIGINT ignored (as a script's background job
  // is), and writes nothing. Signals come, once the shell has become den, until it ends: before its
  // handler is installed they are ignored, after it the first stops it at a validation step, or a
  // second at once.
  const pid_t added = spawn_den("add-task " + p("c.den") + " -o " + p("e.den") + " --quiet", "trap '' INT; ");
  const std::string comm = "/proc/" + std::to_string(added) + "/comm";
  wait_for([&] {
    std::string name;
    std::ifstream(comm) >> name;
    if (name == "den") ::kill(added, SIGINT);
    return false;
  }, added, 300);
  EXPECT_EQ(wait_exit(added), 130);
  EXPECT_FALSE(fs::exists(p("e.den")));
  EXPECT_EQ(read_bytes(p("c.den")), before);
}

TEST_F(DenCheckpointCli, ResumeRefusalsInspectExportAndAddTaskFromAnotherStream) {
  ASSERT_EQ(run_den("run --tasks 2 " + flags() + " --checkpoint " + p("c.den")).code, 0);

  const Result k = run_den("run --resume " + p("c.den") + " --k 5 --quiet");
  EXPECT_EQ(k.code, 2);
  EXPECT_NE(k.output.find("--k"), std::string::npos) << k.output;
  fs::create_directories(dir_ / "other");
  write_idx_pair(dir_ / "other", "train", 400, 5);
  write_idx_pair(dir_ / "other", "t10k", 120, 6);
  const Result data = run_den("run --resume " + p("c.den") + " --data " + p("other") + " --quiet");
  EXPECT_EQ(data.code, 3);
  EXPECT_NE(data.output.find("differs"), std::string::npos) << data.output;

  const Result text = run_den("inspect " + p("c.den"));
  ASSERT_EQ(text.code, 0) << text.output;
  for (const char* part : {"format version 4", "tasks", "live units per birth stage", "parameters", "growth history",
                           "layer.0", "head.2", "permuted-2"}) {
    EXPECT_NE(text.output.find(part), std::string::npos) << part;
  }
  const Result json = run_den("inspect --json " + p("c.den"));
  ASSERT_EQ(json.code, 0);
  const nlohmann::json doc = nlohmann::json::parse(json.output);
  EXPECT_EQ(doc["num_tasks"], 2);
  EXPECT_EQ(doc["tasks"].size(), 2u);
  EXPECT_EQ(doc["units_per_stage"].size(), 2u);
  EXPECT_EQ(doc["run"]["protocol"], "permuted");
  EXPECT_EQ(doc["config"]["layers"], "fc:16,fc:8");

  // Every task choice and format is covered by tests/serialization; here each format once.
  for (const auto& [format, task] : std::vector<std::pair<std::string, std::string>>{
           {"torchscript", "1"}, {"onnx", "all"}, {"dot", "2"}}) {
    const std::string out = p("m_" + task + "." + format);
    const Result r = run_den("export " + p("c.den") + " --task " + task + " --format " + format + " -o " + out);
    EXPECT_EQ(r.code, 0) << r.output;
    EXPECT_GT(fs::file_size(out), 0u) << out;
  }
  if (std::system("command -v dot > /dev/null 2>&1") == 0) {
    const Result svg = run_den("export " + p("c.den") + " --task all --format svg -o " + p("g.svg"));
    EXPECT_EQ(svg.code, 0) << svg.output;
    EXPECT_NE(read_bytes(p("g.svg")).find("<svg"), std::string::npos);
  }
  {
    // A `dot` that a signal kills is named as such; its files go to $TMPDIR and are removed.
    fs::create_directories(dir_ / "bin");
    fs::create_directories(dir_ / "tmp");
    std::ofstream(dir_ / "bin" / "dot") << "#!/bin/sh\nls -d \"$(dirname \"$4\")\" > " << p("dot_dir.txt")
                                        << "\nkill -9 $$\n";
    fs::permissions(dir_ / "bin" / "dot", fs::perms::owner_all);
    const Result killed = run_den("export " + p("c.den") + " --task all --format svg -o " + p("k.svg"),
                                  "PATH=" + p("bin") + ":$PATH TMPDIR=" + p("tmp") + " ");
    EXPECT_EQ(killed.code, 4) << killed.output;
    EXPECT_NE(killed.output.find("killed by signal 9"), std::string::npos) << killed.output;
    EXPECT_EQ(read_bytes(p("dot_dir.txt")).rfind(p("tmp") + "/den-export-", 0), 0u) << read_bytes(p("dot_dir.txt"));
    EXPECT_TRUE(fs::is_empty(dir_ / "tmp"));
    EXPECT_FALSE(fs::exists(p("k.svg")));
  }

  // A task from another protocol: learned, the run record is dropped (it is no longer one stream).
  const Result other = run_den("add-task " + p("c.den") + " --protocol split --classes-per-task 2 --task-index 2 "
                               "--quiet --threads 1");
  ASSERT_EQ(other.code, 0) << other.output;
  const io::LoadedCheckpoint c = io::load_checkpoint(p("c.den"));
  EXPECT_EQ(c.engine.num_tasks(), 3);
  EXPECT_FALSE(c.extras.run.has_value());
  EXPECT_EQ(c.engine.graph().head(3).num_outputs, 2);
  EXPECT_TRUE(std::isnan(c.extras.evaluations.back().accuracy.front()));
  EXPECT_EQ(run_den("add-task " + p("c.den") + " --quiet").code, 2);  // no run record: --data needed
}

TEST_F(DenCheckpointCli, ArgumentsACheckpointCannotTakeAndAMissingDotAreRefused) {
  write_bare_checkpoint(p("c.den"));  // no run record
  const auto before = fs::last_write_time(p("c.den"));
  for (const auto& [args, needle] : std::vector<std::pair<std::string, std::string>>{
           {"export " + p("c.den") + " --task abc --format dot -o " + p("x.dot"), "--task"},
           {"run --resume " + p("c.den"), "holds no `den run` record"},
           {"add-task " + p("c.den") + " --classes 1,2", "give the task's samples with --data DIR"}}) {
    const Result r = run_den(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.output;
    EXPECT_NE(r.output.find(needle), std::string::npos) << args << "\n" << r.output;
  }
  EXPECT_FALSE(fs::exists(p("x.dot")));
  EXPECT_EQ(fs::last_write_time(p("c.den")), before);

  // --format svg without Graphviz on the PATH, or with a dot that fails: an output error, no file.
  const std::string svg = "export " + p("c.den") + " --task 1 --format svg -o " + p("x.svg");
  const Result no_dot = run_den(svg, "PATH=" + p("empty") + " ");
  EXPECT_EQ(no_dot.code, 4) << no_dot.output;
  EXPECT_NE(no_dot.output.find("needs Graphviz's 'dot' on the PATH"), std::string::npos) << no_dot.output;
  fs::create_directories(p("bin"));
  std::ofstream(p("bin/dot")) << "#!/bin/sh\nexit 3\n";
  fs::permissions(p("bin/dot"), fs::perms::owner_all);
  const Result failing = run_den(svg, "PATH=" + p("bin") + ":/usr/bin:/bin ");
  EXPECT_EQ(failing.code, 4) << failing.output;
  EXPECT_NE(failing.output.find("dot -Tsvg' failed (exit status 3)"), std::string::npos) << failing.output;
  EXPECT_FALSE(fs::exists(p("x.svg")));
}

TEST_F(DenCheckpointCli, BadCheckpointsAndArgumentsHaveTheirOwnExitCodes) {
  write_bare_checkpoint(p("c.den"));  // written in-process (no run record), to spare a `den run`
  const std::string good = read_bytes(p("c.den"));

  const Result missing = run_den("inspect " + p("absent.den"));
  EXPECT_EQ(missing.code, 5);
  EXPECT_NE(missing.output.find("absent.den"), std::string::npos) << missing.output;
  std::ofstream(p("cut.den"), std::ios::binary) << good.substr(0, good.size() / 2);
  const Result cut = run_den("export " + p("cut.den") + " --task 1 --format dot -o " + p("cut.dot"));
  EXPECT_EQ(cut.code, 5);
  EXPECT_NE(cut.output.find("truncated"), std::string::npos) << cut.output;
  EXPECT_FALSE(fs::exists(p("cut.dot")));
  std::string newer = good;
  newer[8] = 9;  // a newer format version; the preamble checksum is fixed below
  {
    uint32_t crc = 0xFFFFFFFFu;  // CRC-32 (zlib's) of the first 12 bytes
    for (int i = 0; i < 12; ++i) {
      crc ^= static_cast<unsigned char>(newer[i]);
      for (int b = 0; b < 8; ++b) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    crc ^= 0xFFFFFFFFu;
    for (int i = 0; i < 4; ++i) newer[12 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
  }
  std::ofstream(p("newer.den"), std::ios::binary) << newer;
  const Result version = run_den("inspect " + p("newer.den"));
  EXPECT_EQ(version.code, 6) << version.output;

  EXPECT_EQ(run_den("export " + p("c.den") + " --task 7 --format dot -o " + p("x.dot")).code, 2);
  // An output that cannot be written: exit 4, nothing written.
  EXPECT_EQ(run_den("run --tasks 1 " + flags() + " --checkpoint " + p("no/dir/x.den")).code, 4);
  fs::create_directories(p("ro"));
  std::ofstream(p("ro/keep.pt")) << "old";
  fs::permissions(p("ro"), fs::perms::owner_read | fs::perms::owner_exec);
  if (::access(p("ro").c_str(), W_OK) != 0) {  // root ignores permissions
    EXPECT_EQ(run_den("export " + p("c.den") + " --task 1 -o " + p("ro/keep.pt")).code, 4);
  }
  EXPECT_EQ(read_bytes(p("ro/keep.pt")), "old");
  fs::permissions(p("ro"), fs::perms::owner_all);
  EXPECT_EQ(read_bytes(p("c.den")), good);
}

}  // namespace
