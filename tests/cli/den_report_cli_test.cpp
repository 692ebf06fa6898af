// `den report`, `den compare --html`, `--log` and the progress lines, end to end; the run and
// compare reports validated against the JSON Schemas in docs/.

#include "cli_test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;

using den::testing::read_json;
using den::testing::Result;
using den::testing::run_den;
using den::testing::write_idx_pair;

constexpr int kEvalEvery = 20;
constexpr int kMaxIter = 60;

std::vector<nlohmann::json> read_lines(const fs::path& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

/// One short run (with --log, without --quiet) and one short comparison, shared by the tests.
class DenReportCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("den_report_cli_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_ / "data");
    write_idx_pair(dir_ / "data", "train", 400, 1);
    write_idx_pair(dir_ / "data", "t10k", 120, 2);
    run_ = run_den("run " + flags() + " --tasks 3 --report " + p("run.json") + " --log " + p("run.jsonl") +
                   " --checkpoint " + p("run.den"));
    compare_ = run_den("compare --methods den,stl --quiet " + flags() + " --tasks 2 --report " + p("compare.json") +
                       " --html " + p("compare.html") + " --log " + p("compare.jsonl"));
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static std::string flags() {
    return "--data " + p("data") + " --hidden 16,8 --max-iter " + std::to_string(kMaxIter) +
           " --batch-size 32 --eval-every " + std::to_string(kEvalEvery) + " --k 3 --threads 1";
  }
  static std::string p(const std::string& name) { return (dir_ / name).string(); }

  static fs::path dir_;
  static Result run_;
  static Result compare_;
};

fs::path DenReportCli::dir_;
Result DenReportCli::run_;
Result DenReportCli::compare_;

TEST_F(DenReportCli, TheLogHasOneLinePerValidationStep) {
  ASSERT_EQ(run_.code, 0) << run_.output;
  const std::vector<nlohmann::json> lines = read_lines(p("run.jsonl"));
  ASSERT_FALSE(lines.empty());
  // One line per point of the report's curves (each phase has fewer than kMaxCurvePoints).
  size_t points = 0;
  const nlohmann::json report = read_json(p("run.json"));
  for (const auto& task : report["tasks"]) {
    for (const auto& phase : task["phases"]) points += phase["curve"]["iteration"].size();
  }
  EXPECT_EQ(lines.size(), points);
  double elapsed = 0.0;
  std::set<int64_t> tasks;
  for (const auto& line : lines) {
    for (const char* key : {"method", "task", "phase", "iteration", "max_iter", "train_loss", "val_loss",
                            "elapsed_seconds", "task_elapsed_seconds"}) {
      ASSERT_TRUE(line.contains(key)) << key << " in " << line.dump();
    }
    EXPECT_EQ(line["method"], "den");
    const int64_t it = line["iteration"];
    EXPECT_TRUE(it % kEvalEvery == 0 || it == line["max_iter"].get<int64_t>()) << line.dump();
    EXPECT_GE(line["elapsed_seconds"].get<double>(), elapsed);  // the clock runs forward
    EXPECT_LE(line["task_elapsed_seconds"].get<double>(), line["elapsed_seconds"].get<double>());
    elapsed = line["elapsed_seconds"];
    tasks.insert(line["task"].get<int64_t>());
  }
  EXPECT_EQ(tasks, (std::set<int64_t>{1, 2, 3}));
}

TEST_F(DenReportCli, ProgressLinesShowElapsedTimeAndEta) {
  ASSERT_EQ(run_.code, 0) << run_.output;
  // Not a terminal: one line at the end of each phase, with the task's and the run's clocks.
  std::istringstream out(run_.output);
  size_t lines = 0;
  for (std::string line; std::getline(out, line);) {
    if (line.rfind("[task ", 0) != 0) continue;
    ++lines;
    EXPECT_NE(line.find(" task 0:"), std::string::npos) << line;
    EXPECT_NE(line.find(" run 0:"), std::string::npos) << line;
    EXPECT_EQ(line.find("eta ?"), std::string::npos) << line;  // every line comes after an event
  }
  EXPECT_GE(lines, 3u) << run_.output;
}

TEST_F(DenReportCli, TheReportKeepsEachPhasesLossCurve) {
  ASSERT_EQ(run_.code, 0) << run_.output;
  const nlohmann::json report = read_json(p("run.json"));
  for (const auto& task : report["tasks"]) {
    for (const auto& phase : task["phases"]) {
      const auto& curve = phase["curve"];
      const size_t n = curve["iteration"].size();
      EXPECT_EQ(curve["train_loss"].size(), n);
      EXPECT_EQ(curve["val_loss"].size(), n);
      if (phase["iterations"].get<int64_t>() >= kEvalEvery) {
        ASSERT_GT(n, 0u) << phase.dump();
        EXPECT_EQ(curve["iteration"].back(), phase["iterations"]);  // the phase's last step is evaluated
        EXPECT_NEAR(curve["val_loss"].back().get<double>(), phase["val_loss"].get<double>(), 1e-9);
      }
    }
  }
}

TEST_F(DenReportCli, ALongPhaseKeepsAtMostTwoHundredPoints) {
  const fs::path dir = dir_ / "long";
  fs::create_directories(dir);
  const std::string report = (dir / "r.json").string();
  const Result r = run_den("run --data " + p("data") + " --tasks 1 --hidden 8 --max-iter 450 --eval-every 1 "
                           "--batch-size 32 --threads 1 --quiet --report " + report);
  ASSERT_EQ(r.code, 0) << r.output;
  const nlohmann::json curve = read_json(report)["tasks"][0]["phases"][0]["curve"];
  ASSERT_EQ(curve["iteration"].size(), 200u);
  EXPECT_EQ(curve["iteration"].front(), 1);
  EXPECT_EQ(curve["iteration"].back(), 450);
}

TEST_F(DenReportCli, ReportWritesTheRunsPage) {
  ASSERT_EQ(run_.code, 0) << run_.output;
  const Result r = run_den("report " + p("run.json") + " -o " + p("run.html"));
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string html = read_text(p("run.html"));
  for (const char* id : {"accuracy-matrix", "auroc-matrix", "capacity-layer-0", "capacity-layer-1",
                         "selected-fraction", "loss-task-1", "loss-task-3"}) {
    EXPECT_NE(html.find("<svg id=\"" + std::string(id) + "\""), std::string::npos) << id;
  }
  EXPECT_NE(html.find("<title>run.json</title>"), std::string::npos);  // the default title
}

TEST_F(DenReportCli, CompareHtmlDrawsEveryMethodAndTheLogNamesThem) {
  ASSERT_EQ(compare_.code, 0) << compare_.output;
  const std::string html = read_text(p("compare.html"));
  for (const char* id : {"compare-metrics", "den-accuracy-matrix", "stl-accuracy-matrix", "den-loss-task-2"}) {
    EXPECT_NE(html.find("<svg id=\"" + std::string(id) + "\""), std::string::npos) << id;
  }
  // `den report` of the JSON report draws the same page as --html did.
  ASSERT_EQ(run_den("report " + p("compare.json") + " -o " + p("again.html") + " --title 'den compare: den, stl'").code, 0);
  EXPECT_EQ(read_text(p("again.html")), html);
  std::set<std::string> methods;
  for (const auto& line : read_lines(p("compare.jsonl"))) methods.insert(line["method"].get<std::string>());
  EXPECT_EQ(methods, (std::set<std::string>{"den", "stl"}));
}

TEST_F(DenReportCli, BadInputIsADataErrorAndAnUnwritablePageAnOutputError) {
  ASSERT_EQ(run_.code, 0) << run_.output;
  const fs::path page = dir_ / "kept.html";
  std::ofstream(page) << "old page";
  std::ofstream(dir_ / "not.json") << "this is not JSON";
  std::ofstream(dir_ / "other.json") << R"({"tasks": 3})";

  const Result missing = run_den("report " + p("nowhere.json") + " -o " + page.string());
  EXPECT_EQ(missing.code, 3) << missing.output;
  EXPECT_NE(missing.output.find("nowhere.json"), std::string::npos) << missing.output;
  const Result not_json = run_den("report " + p("not.json") + " -o " + page.string());
  EXPECT_EQ(not_json.code, 3) << not_json.output;
  EXPECT_NE(not_json.output.find("is not JSON"), std::string::npos) << not_json.output;
  const Result schema = run_den("report " + p("other.json") + " -o " + page.string());
  EXPECT_EQ(schema.code, 3) << schema.output;
  EXPECT_NE(schema.output.find("not a den run report"), std::string::npos) << schema.output;
  fs::create_directories(dir_ / "folder.json");
  const Result folder = run_den("report " + p("folder.json") + " -o " + page.string());
  EXPECT_EQ(folder.code, 3) << folder.output;
  EXPECT_NE(folder.output.find("folder.json' is a directory"), std::string::npos) << folder.output;
  EXPECT_EQ(read_text(page), "old page");  // nothing overwritten

  const Result unwritable = run_den("report " + p("run.json") + " -o " + p("no/dir/r.html"));
  EXPECT_EQ(unwritable.code, 4) << unwritable.output;
  const Result log = run_den("run " + flags() + " --tasks 1 --quiet --log " + p("no/dir/r.jsonl"));
  EXPECT_EQ(log.code, 4) << log.output;
  EXPECT_NE(log.output.find("no/dir"), std::string::npos) << log.output;
}

// An output that is also an input (or another output) is refused before any work, with exit 2, by
// resolved path (a symlink or a `..` detour included); the input is untouched.
TEST_F(DenReportCli, AnOutputThatIsAnInputIsRefusedBeforeAnyWork) {
  ASSERT_EQ(run_.code, 0) << run_.output;
  const auto bytes = [](const fs::path& f) { return read_text(f.string()); };
  const std::string checkpoint = bytes(dir_ / "run.den"), report = bytes(dir_ / "run.json");
  fs::create_symlink(dir_ / "run.den", dir_ / "link.den");
  fs::create_directories(dir_ / "sub");
  const std::string detour = p("sub") + "/../run.den";
  for (const auto& [args, needle] : std::vector<std::pair<std::string, std::string>>{
           {"predict " + p("run.den") + " --data " + p("data") + " -o " + p("link.den"), "-o '"},
           {"export " + p("run.den") + " -o " + detour, "is the same file as the input checkpoint"},
           {"import " + p("run.den") + " -o " + p("run.den"), "the input model"},
           {"report " + p("run.json") + " -o " + p("run.json"), "the input report"},
           {"run " + flags() + " --tasks 1 --checkpoint " + p("x.den") + " --report " + p("x.den"), "--report"},
           {"run " + flags() + " --tasks 4 --resume " + p("run.den") + " --report " + p("link.den"), "--resume"},
           {"run " + flags() + " --tasks 1 --log " + p("y.json") + " --report " + p("y.json"), "--log"},
           {"compare " + flags() + " --methods den --tasks 1 --csv " + p("c.csv") + " --html " + p("c.csv"), "--html"}}) {
    const Result r = run_den(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.output;
    EXPECT_NE(r.output.find("writing it would destroy that"), std::string::npos) << args << "\n" << r.output;
    EXPECT_NE(r.output.find(needle), std::string::npos) << args << "\n" << r.output;
  }
  EXPECT_EQ(bytes(dir_ / "run.den"), checkpoint);
  EXPECT_EQ(bytes(dir_ / "run.json"), report);
  EXPECT_FALSE(fs::exists(dir_ / "x.den"));
  EXPECT_FALSE(fs::exists(dir_ / "c.csv"));
  fs::remove(dir_ / "link.den");
}

// Outputs that are not plain files: a symlink is written through to its target (atomically
// there), a FIFO or a device is written to and never replaced, `-o -` is standard output for
// predict and the text exports.
TEST_F(DenReportCli, AnOutputThatFailsMidRunOrLoopsIsAnOutputError) {
  // A log that cannot take the next line (the device is full): exit 4 during training.
  const Result full = run_den("run " + flags() + " --tasks 1 --quiet --log /dev/full");
  EXPECT_EQ(full.code, 4) << full.output;
  EXPECT_NE(full.output.find("/dev/full"), std::string::npos) << full.output;
  // A symlink that points at itself: refused before training.
  fs::create_symlink("loop.json", dir_ / "loop.json");
  const Result loop = run_den("run " + flags() + " --tasks 1 --quiet --report " + p("loop.json"));
  EXPECT_EQ(loop.code, 4) << loop.output;
  EXPECT_TRUE(fs::is_symlink(dir_ / "loop.json"));
  // A socket is never replaced by a file.
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string socket_path = p("report.sock");
  ASSERT_LT(socket_path.size(), sizeof(address.sun_path));
  std::strncpy(address.sun_path, socket_path.c_str(), sizeof(address.sun_path) - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  const Result sock = run_den("run " + flags() + " --tasks 1 --quiet --report " + socket_path);
  EXPECT_EQ(sock.code, 4) << sock.output;
  EXPECT_NE(sock.output.find("it is a socket"), std::string::npos) << sock.output;
  EXPECT_TRUE(fs::is_socket(socket_path));
  ::close(fd);
}

TEST_F(DenReportCli, LinksPipesAndDevicesAsOutputsAreWrittenThroughNeverReplaced) {
  ASSERT_EQ(run_.code, 0) << run_.output;
  fs::create_directories(dir_ / "real");
  fs::create_symlink("real/page.html", dir_ / "page-link.html");  // relative, dangling until written
  Result r = run_den("report " + p("run.json") + " -o " + p("page-link.html"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::is_symlink(dir_ / "page-link.html"));
  EXPECT_NE(read_text(p("real/page.html")).find("<html"), std::string::npos);

  ASSERT_EQ(::mkfifo(p("pipe").c_str(), 0600), 0);
  std::string piped;
  std::thread reader([&] { piped = read_text(p("pipe")); });
  r = run_den("export " + p("run.den") + " --format dot -o " + p("pipe"));
  reader.join();
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(piped.rfind("digraph", 0), 0u) << piped.substr(0, 80);
  struct stat st {};
  ASSERT_EQ(::stat(p("pipe").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));

  r = run_den("export " + p("run.den") + " --format dot -o /dev/null");
  EXPECT_EQ(r.code, 0) << r.output;
  if (fs::exists("/dev/full")) {
    r = run_den("export " + p("run.den") + " --format dot -o /dev/full");
    EXPECT_EQ(r.code, 4) << r.output;
    EXPECT_NE(r.output.find("No space left on device"), std::string::npos) << r.output;
    ASSERT_EQ(::stat("/dev/full", &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode));
  }

  r = run_den("export " + p("run.den") + " --format dot -o -");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("digraph network {"), std::string::npos) << r.output.substr(0, 80);
  EXPECT_NE(r.output.find("to standard output"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir_ / "-"));
  r = run_den("export " + p("run.den") + " -o -");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("is binary"), std::string::npos) << r.output;
  r = run_den("predict " + p("run.den") + " --data " + p("data") + " -o -");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("sample,class,score"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir_ / "-"));
}

TEST_F(DenReportCli, ExportDrawsGroupsByDefaultAndUnitsOnRequest) {
  ASSERT_EQ(run_.code, 0) << run_.output;
  ASSERT_EQ(run_den("export " + p("run.den") + " --format dot -o " + p("groups.dot")).code, 0);
  const std::string groups = read_text(p("groups.dot"));
  EXPECT_NE(groups.find("units\\nborn at task 3"), std::string::npos) << groups;
  EXPECT_EQ(groups.find("\\nstage 1"), std::string::npos);  // no node per unit
  ASSERT_EQ(run_den("export " + p("run.den") + " --format dot --per-unit -o " + p("units.dot")).code, 0);
  EXPECT_NE(read_text(p("units.dot")).find("\\nstage 1"), std::string::npos);
  const Result wrong = run_den("export " + p("run.den") + " --format torchscript --per-unit -o " + p("m.pt"));
  EXPECT_EQ(wrong.code, 2) << wrong.output;
  EXPECT_NE(wrong.output.find("--per-unit"), std::string::npos) << wrong.output;
}

/// Exit status of tests/cli/validate_json.py on `doc` against docs/`schema` (0: valid, 1: not).
/// Debian's python3-jsonschema is for the system interpreter (scripts/install_deps.sh).
int validate(const std::string& schema, const fs::path& doc) {
  const std::string command = "/usr/bin/python3 " + std::string(DEN_SOURCE_DIR) + "/tests/cli/validate_json.py " +
                              std::string(DEN_SOURCE_DIR) + "/docs/" + schema + " " + doc.string() + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return -1;
  char buffer[4096];
  while (fgets(buffer, sizeof buffer, pipe) != nullptr) std::fputs(buffer, stderr);
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(DenReportCli, RealReportsValidateAgainstTheSchemas) {
  if (std::system("/usr/bin/python3 -c 'import jsonschema' > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "python3-jsonschema is not installed (scripts/install_deps.sh)";
  }
  ASSERT_EQ(run_.code, 0) << run_.output;
  ASSERT_EQ(compare_.code, 0) << compare_.output;
  EXPECT_EQ(validate("report.schema.json", p("run.json")), 0);
  EXPECT_EQ(validate("compare-report.schema.json", p("compare.json")), 0);
  // The schemas are strict enough to refuse a broken report.
  nlohmann::json broken = read_json(p("run.json"));
  broken["tasks"][0]["phases"][0].erase("iterations");
  std::ofstream(dir_ / "broken.json") << broken.dump();
  EXPECT_EQ(validate("report.schema.json", dir_ / "broken.json"), 1);
  EXPECT_EQ(validate("compare-report.schema.json", p("run.json")), 1);
}

}  // namespace
