// The HTML page of `den report` in a real browser: headless Chromium loads the page of a short
// run, takes a screenshot with no console message, and its DOM holds every chart, drawn.

#include "../cli/cli_test_util.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

using den::testing::Result;
using den::testing::run_den;
using den::testing::write_idx_pair;

constexpr const char* kChromium = "/usr/bin/chromium";  // Debian's chromium (scripts/install_deps.sh)
constexpr int kTasks = 3;

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

/// What one headless Chromium process printed.
struct BrowserRun {
  int code = -1;
  std::string dom;  ///< stdout: the DOM with --dump-dom
  std::string log;  ///< stderr: Chromium's log, console messages included (--enable-logging=stderr)
};

class ReportPage : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("den_report_page_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_ / "data");
    write_idx_pair(dir_ / "data", "train", 400, 1);
    write_idx_pair(dir_ / "data", "t10k", 120, 2);
    const std::string report = (dir_ / "run.json").string();
    run_ = run_den("run --data " + (dir_ / "data").string() + " --tasks " + std::to_string(kTasks) +
                   " --hidden 16,8 --max-iter 60 --batch-size 32 --eval-every 20 --k 3 --quiet --threads 1 --report " +
                   report);
    if (run_.code == 0) run_ = run_den("report " + report + " -o " + (dir_ / "run.html").string());
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  void SetUp() override {
    if (!fs::exists(kChromium)) GTEST_SKIP() << kChromium << " is not installed (scripts/install_deps.sh)";
    ASSERT_EQ(run_.code, 0) << run_.output;
  }

  /// Runs headless Chromium with `args` on `page`, with a profile of its own (tests may run at once).
  static BrowserRun browse(const std::string& args, const fs::path& page) {
    static int profiles = 0;
    const fs::path profile = dir_ / ("profile-" + std::to_string(++profiles));
    const fs::path log = dir_ / ("chromium-" + std::to_string(profiles) + ".log");
    const std::string command = std::string("timeout 60 ") + kChromium +
                                " --headless --no-sandbox --disable-gpu --user-data-dir=" + profile.string() +
                                " --enable-logging=stderr --v=0 " + args + " file://" + page.string() + " 2> " +
                                log.string();
    BrowserRun result;
    FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr) return result;
    std::array<char, 4096> buffer{};
    while (fgets(buffer.data(), buffer.size(), pipe) != nullptr) result.dom += buffer.data();
    const int status = pclose(pipe);
    result.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    result.log = read_text(log);
    return result;
  }

  /// Chromium's log lines of console messages (errors, warnings, logs of the page).
  static std::vector<std::string> console_lines(const std::string& log) {
    std::vector<std::string> out;
    std::istringstream in(log);
    for (std::string line; std::getline(in, line);) {
      if (line.find(":CONSOLE") != std::string::npos) out.push_back(line);
    }
    return out;
  }

  static fs::path dir_;
  static Result run_;
};

fs::path ReportPage::dir_;
Result ReportPage::run_;

TEST_F(ReportPage, LoadsAndTakesAScreenshotWithoutConsoleMessages) {
  const fs::path png = dir_ / "run.png";
  const BrowserRun r = browse("--hide-scrollbars --window-size=1400,3000 --screenshot=" + png.string(), dir_ / "run.html");
  ASSERT_EQ(r.code, 0) << r.log;
  EXPECT_EQ(console_lines(r.log), std::vector<std::string>{}) << r.log;
  const std::string image = read_text(png);
  ASSERT_GT(image.size(), 10000u);  // a blank page compresses to far less
  EXPECT_EQ(image.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
}

TEST_F(ReportPage, TheDomHoldsEveryChartDrawn) {
  const BrowserRun r = browse("--dump-dom", dir_ / "run.html");
  ASSERT_EQ(r.code, 0) << r.log;
  EXPECT_EQ(console_lines(r.log), std::vector<std::string>{}) << r.log;
  std::vector<std::string> ids = {"accuracy-matrix", "auroc-matrix", "capacity-layer-0", "capacity-layer-1",
                                  "selected-fraction"};
  for (int t = 1; t <= kTasks; ++t) ids.push_back("loss-task-" + std::to_string(t));
  for (const std::string& id : ids) {
    const size_t start = r.dom.find("<svg id=\"" + id + "\"");
    ASSERT_NE(start, std::string::npos) << id << " missing from the DOM";
    const size_t end = r.dom.find("</svg>", start);
    ASSERT_NE(end, std::string::npos) << id;
    const std::string svg = r.dom.substr(start, end - start);
    // Drawn: shapes, not only the title (an empty chart has text alone).
    const bool drawn = svg.find("<rect") != std::string::npos || svg.find("<polyline") != std::string::npos;
    EXPECT_TRUE(drawn) << id << ": " << svg.substr(0, 300);
  }
  EXPECT_NE(r.dom.find("<table id=\"summary-table\">"), std::string::npos);
}

TEST_F(ReportPage, TheConsoleCheckSeesAPagesError) {
  // The control of the checks above: a console message is seen when there is one.
  const fs::path page = dir_ / "error.html";
  std::ofstream(page) << "<!DOCTYPE html><html><body><script>console.error('den-report-check')</script></body></html>";
  const BrowserRun r = browse("--window-size=400,300 --screenshot=" + (dir_ / "error.png").string(), page);
  ASSERT_EQ(r.code, 0) << r.log;
  const std::vector<std::string> lines = console_lines(r.log);
  ASSERT_EQ(lines.size(), 1u) << r.log;
  EXPECT_NE(lines[0].find("den-report-check"), std::string::npos) << lines[0];
}

}  // namespace
