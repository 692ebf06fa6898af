// The hyperparameter table (engine/hyperparameters.h) drives the flags, config files, the JSON
// report and the checkpoint: every entry round-trips through all of them, and the docs list it.

#include "cli_test_util.h"
#include "engine/engine.h"
#include "engine/hyperparameters.h"
#include "serialization/checkpoint.h"
#include "tests/engine/hyperparameter_values.h"

#include <CLI/CLI.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <type_traits>

namespace {

namespace fs = std::filesystem;
using den::engine::EngineConfig;
using den::testing::Result;
using den::testing::run_den;

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

/// The flags that set every table entry with a flag to its value in `c`.
std::string flags_for(const EngineConfig& c) {
  std::string args;
  den::engine::visit_hyperparameters([&](const auto& h) {
    if (*h.flag == '\0') return;
    using T = typename std::decay_t<decltype(h)>::Value;
    if constexpr (std::is_same_v<T, bool>) {
      args += std::string(" ") + h.flag + "=" + den::engine::to_text(h.value(c));
    } else {
      args += std::string(" ") + h.flag + " '" + den::engine::to_text(h.value(c)) + "'";
    }
  });
  return args;
}

/// The keys and values of a --print-config output, read by CLI11's own TOML reader.
std::map<std::string, std::string> read_config(const std::string& text) {
  std::istringstream in(text);
  std::map<std::string, std::string> values;
  for (const CLI::ConfigItem& item : CLI::ConfigTOML().from_config(in)) {
    std::string joined;
    for (size_t i = 0; i < item.inputs.size(); ++i) joined += (i ? "," : "") + item.inputs[i];
    values[item.name] = joined;
  }
  return values;
}

/// The report's JSON for a value (enums by name, as den writes them).
template <typename T>
nlohmann::json json_of(const T& v) {
  if constexpr (std::is_enum_v<T> || std::is_same_v<T, den::engine::Layers>) {
    return den::engine::to_text(v);
  } else {
    return v;
  }
}

class DenConfigCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("den_config_cli_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_ / "data");
    den::testing::write_idx_pair(dir_ / "data", "train", 120, 1);
    den::testing::write_idx_pair(dir_ / "data", "t10k", 40, 2);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string p(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

// NOTE: [hyperparameter table] The round-trip test. Every entry gets a value other than its
// default (tests/engine/hyperparameter_values.h), and must come back from `den run --print-config`
// (the flags), from a `den run` (the EngineConfig the flags built, in its JSON report and its
// checkpoint) and, for entries without a flag, from `den inspect --json` of a checkpoint saved here.
TEST_F(DenConfigCli, EveryHyperparameterRoundTripsThroughTheFlagsTheReportAndTheCheckpoint) {
  const EngineConfig defaults;
  const EngineConfig values = den::testing::non_default_config();

  // The flags, as --print-config writes them back.
  const Result printed = run_den("run" + flags_for(values) + " --print-config");
  ASSERT_EQ(printed.code, 0) << printed.output;
  const std::map<std::string, std::string> config = read_config(printed.output);
  den::engine::visit_hyperparameters([&](const auto& h) {
    if (*h.flag == '\0') return;
    const std::string key = std::string(h.flag).substr(2);
    ASSERT_EQ(config.count(key), 1u) << key << " missing from\n" << printed.output;
    typename std::decay_t<decltype(h)>::Value back{};
    den::engine::from_text(config.at(key), back);
    EXPECT_TRUE(back == h.value(values)) << key << " = " << config.at(key);
  });

  // A run with them: the flags reach the EngineConfig, whose report and checkpoint hold them. A
  // device this machine lacks is covered by the flags above only.
  EngineConfig run = values;
  try {
    run.resolved_device();
  } catch (const std::invalid_argument&) {
    run.device = defaults.device;
  }
  const Result trained = run_den("run" + flags_for(run) + " --data " + p("data") + " --tasks 1 --quiet --threads 1" +
                                 " --report " + p("r.json") + " --checkpoint " + p("c.den"));
  ASSERT_EQ(trained.code, 0) << trained.output;
  const nlohmann::json report = den::testing::read_json(p("r.json"))["config"];
  const EngineConfig stored = den::io::load_checkpoint(p("c.den")).engine.config();
  den::engine::visit_hyperparameters([&](const auto& h) {
    const EngineConfig& expected = *h.flag != '\0' ? run : defaults;
    EXPECT_EQ(report.at(h.name), json_of(h.effective_value(expected))) << h.name;
    if (h.checkpointed) {
      EXPECT_TRUE(h.value(stored) == h.value(expected)) << h.name << " = " << den::engine::to_text(h.value(stored));
    }
  });

  // Every checkpointed entry, flag or not, through a checkpoint and the report's config section.
  EngineConfig saved = values;
  saved.device = defaults.device;
  den::io::save_checkpoint(den::engine::Engine(saved, 36), p("all.den"));
  const Result inspected = run_den("inspect --json " + p("all.den"));
  ASSERT_EQ(inspected.code, 0) << inspected.output;
  const nlohmann::json inspect_config = nlohmann::json::parse(inspected.output)["config"];
  den::engine::visit_hyperparameters([&](const auto& h) {
    if (h.checkpointed) {
      EXPECT_EQ(inspect_config.at(h.name), json_of(h.effective_value(saved))) << h.name;
    }
  });
}

// The config-file test: printed, read back and printed again gives the same file; a value
// in the file is used, and a flag overrides it.
TEST_F(DenConfigCli, AConfigFileRoundTripsThroughPrintConfigAndFlagsOverrideIt) {
  const Result first = run_den("run --k 3 --hidden 16,8 --prox-scale-lr --lr 0.25 --print-config");
  ASSERT_EQ(first.code, 0) << first.output;
  write_file(p("first.toml"), first.output);
  const Result second = run_den("run --config " + p("first.toml") + " --print-config");
  ASSERT_EQ(second.code, 0) << second.output;
  EXPECT_EQ(second.output, first.output);

  write_file(p("mine.toml"), "# a run\nk = 7\nhidden = [12, 6]\nfreeze-existing = true\nsplit-policy = \"after-expansion\"\n");
  const Result file = run_den("run --config " + p("mine.toml") + " --print-config");
  ASSERT_EQ(file.code, 0) << file.output;
  auto values = read_config(file.output);
  EXPECT_EQ(values["k"], "7");
  EXPECT_EQ(values["layers"], "12,6");  // the older key sets --layers, printed as it was given
  EXPECT_EQ(values["freeze-existing"], "true");
  EXPECT_EQ(values["split-policy"], "after-expansion");
  const Result flag = run_den("run --config " + p("mine.toml") + " --k 5 --print-config");
  ASSERT_EQ(flag.code, 0) << flag.output;
  EXPECT_EQ(read_config(flag.output)["k"], "5");

  // The file reaches the engine: a short run's report.
  write_file(p("run.toml"), "max-iter = 20\nbatch-size = 32\neval-every = 10\nk = 2\nhidden = \"8,4\"\ntasks = 1\n"
                            "quiet = true\nthreads = 1\ndata = \"" + p("data") + "\"\n");
  const Result trained = run_den("run --config " + p("run.toml") + " --mu 0.25 --report " + p("r.json"));
  ASSERT_EQ(trained.code, 0) << trained.output;
  const nlohmann::json report = den::testing::read_json(p("r.json"));
  EXPECT_EQ(report["config"]["k"], 2);
  EXPECT_EQ(report["config"]["layers"], "fc:8,fc:4");
  EXPECT_EQ(report["config"]["mu"], 0.25);
  EXPECT_EQ(report["config"]["max_iter"], 20);

  // INI too, by the file's extension (';' comments).
  write_file(p("mine.ini"), "; a run\nk=9\n");
  const Result ini = run_den("run --config " + p("mine.ini") + " --print-config");
  ASSERT_EQ(ini.code, 0) << ini.output;
  EXPECT_EQ(read_config(ini.output)["k"], "9");

  // den compare takes the same file; its printed configuration leaves out flags of methods it does
  // not compare.
  const Result compare = run_den("compare --config " + p("mine.toml") + " --methods den,ewc --print-config");
  ASSERT_EQ(compare.code, 0) << compare.output;
  const auto compared = read_config(compare.output);
  EXPECT_EQ(compared.at("k"), "7");
  EXPECT_EQ(compared.count("ewc-lambda"), 1u);
  EXPECT_EQ(compared.count("l2-lambda"), 0u);
  const Result ewc = run_den("run --method ewc --print-config");
  ASSERT_EQ(ewc.code, 0) << ewc.output;
  EXPECT_EQ(read_config(ewc.output).count("k"), 0u) << ewc.output;
}

TEST_F(DenConfigCli, BadConfigFilesAreUsageErrorsNamingTheKeyAndLine) {
  const auto expect_usage_error = [&](const std::string& text, const std::vector<std::string>& needles) {
    write_file(p("bad.toml"), text);
    const Result r = run_den("run --config " + p("bad.toml") + " --print-config");
    EXPECT_EQ(r.code, 2) << text << "\n" << r.output;
    for (const std::string& n : needles) EXPECT_NE(r.output.find(n), std::string::npos) << n << " in\n" << r.output;
  };
  expect_usage_error("k = 3\nkk = 4\n", {"line 2", "unknown key 'kk'"});
  expect_usage_error("max-iter = lots\n", {"line 1", "max-iter", "'lots' is not an integer"});
  expect_usage_error("# comment\nmu = -1\n", {"line 2", "--mu", "must be >= 0"});
  expect_usage_error("k = 3\nlr = 0.1\nk = 4\n", {"'k' is set twice, on lines 1 and 3"});
  // A list flag twice is no longer two layers, and an integer twice no list.
  expect_usage_error("hidden = 100\nmax-iter = 20\nhidden = 50\n", {"'hidden' is set twice, on lines 1 and 3"});
  expect_usage_error("max-iter = 20\nmax-iter = 30\n", {"'max-iter' is set twice, on lines 1 and 2"});
  expect_usage_error("[run]\nk = 3\n", {"unknown key 'run.k'"});
  expect_usage_error("max-iter 100\n", {"line 1", "unknown key 'max-iter 100'"});
  expect_usage_error("print-config = true\n", {"unknown key 'print-config'"});
  const Result missing = run_den("run --config " + p("none.toml"));
  EXPECT_EQ(missing.code, 2) << missing.output;
  EXPECT_NE(missing.output.find("none.toml"), std::string::npos) << missing.output;
  // A directory is refused, not read as an empty file (run and compare alike).
  fs::create_directories(p("confdir"));
  for (const std::string command : {"run", "compare"}) {
    const Result dir = run_den(command + " --config " + p("confdir") + " --print-config");
    EXPECT_EQ(dir.code, 2) << dir.output;
    EXPECT_NE(dir.output.find("confdir: is a directory"), std::string::npos) << dir.output;
  }
}

// A flag's value is checked against the table's rule, and the message names the flag.
TEST_F(DenConfigCli, AFlagOutsideItsRuleIsAUsageErrorNamingTheFlag) {
  for (const auto& [args, needle] : std::vector<std::pair<std::string, std::string>>{
           {"--mu -1", "--mu: -1 must be >= 0"},
           {"--lr-decay 2", "--lr-decay: 2 must be in (0, 1]"},
           {"--hidden 16,x", "--layers: layer token 'x' does not parse"},
           {"--layers fc:8,conv3x3:4", "--layers: fc:8,conv3x3:4: layer 2 'conv3x3:4' follows an fc layer"},
           {"--input-shape 1,28", "--input-shape: 1,28 must be C,H,W"},
           {"--loss hinge", "unknown loss 'hinge'"},
           {"--early-stop-patience -2", "--early-stop-patience: -2 must be >= 0"}}) {
    const Result r = run_den("run " + args + " --print-config");
    EXPECT_EQ(r.code, 2) << args << "\n" << r.output;
    EXPECT_NE(r.output.find(needle), std::string::npos) << args << "\n" << r.output;
  }
}

TEST_F(DenConfigCli, StreamAndImageFlagsThatCannotWorkAreRefusedBeforeTraining) {
  const std::string data = " --data " + p("data") + " --hidden 8 --max-iter 10 --quiet --threads 1";
  for (const auto& [args, needle] : std::vector<std::pair<std::string, std::string>>{
           {"--val-fraction 0", "--val-fraction: must be in (0, 0.9], got 0"},  // every task validates
           {"--protocol split --classes-per-task 1", "--classes-per-task 1: a split task needs at least 2 classes"},
           {"--mean 0.5 --std 0.2", "--mean prepares image folders"},  // IDX data is used as it is
           {"--image-size 32", "--image-size prepares image folders"}}) {
    const Result r = run_den("run" + data + " " + args + " --report " + p("r.json"));
    EXPECT_EQ(r.code, 2) << args << "\n" << r.output;
    EXPECT_NE(r.output.find(needle), std::string::npos) << args << "\n" << r.output;
    EXPECT_FALSE(fs::exists(p("r.json"))) << args;
  }
}

// NOTE: [presets] Flags not given take the preset's values; --preset released is the field defaults.
TEST_F(DenConfigCli, PresetsFillTheFlagsNotGivenAndUnknownOnesAreUsageErrors) {
  const Result den = run_den("run --print-config");
  ASSERT_EQ(den.code, 0) << den.output;
  const auto den_values = read_config(den.output);
  EXPECT_EQ(den_values.at("preset"), "den");
  EXPECT_EQ(den_values.at("restore-drifted"), "true");
  EXPECT_EQ(den_values.at("selection-budget"), den::engine::to_text(den::engine::preset("den").selection_budget));

  const Result released = run_den("run --preset released --k 7 --print-config");
  ASSERT_EQ(released.code, 0) << released.output;
  const auto released_values = read_config(released.output);
  const EngineConfig defaults;
  EXPECT_EQ(released_values.at("k"), "7");  // a flag given wins over the preset
  EXPECT_EQ(released_values.at("restore-drifted"), "false");
  EXPECT_EQ(released_values.at("selection-budget"), den::engine::to_text(defaults.selection_budget));
  EXPECT_EQ(released_values.at("early-stop-patience"), den::engine::to_text(defaults.early_stop_patience));

  for (const auto& [args, needle] : std::vector<std::pair<std::string, std::string>>{
           {"--preset fast", "--preset: unknown preset 'fast' (expected den or released)"},
           {"--holdout 0.1 --checkpoint " + p("c.den"), "--holdout is for choosing hyperparameters"},
           {"--holdout 0.7", "--holdout"}}) {
    const Result r = run_den("run " + args + " --print-config");
    EXPECT_EQ(r.code, 2) << args << "\n" << r.output;
    EXPECT_NE(r.output.find(needle), std::string::npos) << args << "\n" << r.output;
  }
}

// docs/configuration.md lists every entry with its flag, default, rule and help, and
// examples/default.toml is what `den run --print-config` writes: neither can drift from the table.
TEST_F(DenConfigCli, TheDocsAndTheExampleFileMatchTheTable) {
  const std::string doc = read_file(fs::path(DEN_SOURCE_DIR) / "docs" / "configuration.md");
  const EngineConfig den_preset = den::engine::preset("den"), released_preset = den::engine::preset("released");
  std::string missing;
  int rows = 0;
  den::engine::visit_hyperparameters([&](const auto& h) {
    using T = typename std::decay_t<decltype(h)>::Value;
    std::string valid = h.rule.text;
    if constexpr (std::is_enum_v<T>) {
      for (T v : den::engine::enum_values<T>()) valid += (valid.empty() ? "" : ", ") + den::engine::to_text(v);
    } else if constexpr (std::is_same_v<T, bool>) {
      valid = "a flag";
    }
    const std::string flag = *h.flag != '\0' ? "`" + std::string(h.flag) + "`" : "(none)";
    const std::string row = "| " + flag + " | `" + h.name + "` | `" + den::engine::to_text(h.value(den_preset)) + "` | `" +
                            den::engine::to_text(h.value(released_preset)) + "` | " +
                            (valid.empty() ? "any" : valid) + " | " +
                            (h.scope == den::engine::Scope::Den ? "den" : "all") + " | " + h.help + " |";
    ++rows;
    if (doc.find(row + "\n") == std::string::npos) missing += row + "\n";
  });
  EXPECT_TRUE(missing.empty()) << "docs/configuration.md lacks these rows (or has them otherwise):\n" << missing;
  // No row of an entry that is gone: the doc's table has one row per entry.
  const std::string start = "<!-- hyperparameters -->\n", end = "<!-- /hyperparameters -->";
  const size_t a = doc.find(start), b = doc.find(end);
  ASSERT_TRUE(a != std::string::npos && b != std::string::npos) << "the table's markers are missing";
  const std::string table = doc.substr(a + start.size(), b - a - start.size());
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), rows + 2) << "header, separator and one row per entry";

  const Result printed = run_den("run --print-config");
  ASSERT_EQ(printed.code, 0) << printed.output;
  EXPECT_EQ(read_file(fs::path(DEN_SOURCE_DIR) / "examples" / "default.toml"), printed.output)
      << "regenerate with: den run --print-config > examples/default.toml";
}

}  // namespace
