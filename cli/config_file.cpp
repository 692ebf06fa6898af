#include "cli/config_file.h"

#include "cli/report.h"
#include "cli/run_options.h"
#include "engine/hyperparameters.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <stdexcept>

namespace den::cli {

namespace {

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// The 1-based lines of `lines` that set `key` (CLI11's items carry no line numbers).
std::vector<size_t> lines_of(const std::vector<std::string>& lines, const std::string& key) {
  std::vector<size_t> found;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string line = CLI::detail::trim_copy(lines[i]);
    if (line.size() >= 2 && (line.front() == '"' || line.front() == '\'') && line.compare(1, key.size(), key) == 0) {
      line = line.substr(1, key.size()) + line.substr(key.size() + 2);
    }
    if (line.compare(0, key.size(), key) != 0) continue;
    const std::string rest = CLI::detail::trim_copy(line.substr(key.size()));
    if (rest.empty() || rest.front() == '=' || rest.front() == '#' || rest.front() == ';') found.push_back(i + 1);
  }
  return found;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw std::invalid_argument("--config " + path + ": is a directory, not a TOML or INI file");
  }
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("--config " + path + ": cannot read the file");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

void add_config_flags(CLI::App* command, std::string& path, bool& print) {
  command
      ->add_option("--config", path,
                   "Read flag values from this TOML file (INI if it ends in .ini); flags given on the command line "
                   "override it (docs/configuration.md)")
      ->configurable(false);
  command->add_flag("--print-config", print, "Write the resolved configuration as a --config file to stdout and exit")
      ->configurable(false);
}

void apply_config_file(CLI::App* command, const std::string& path) {
  if (path.empty()) return;
  const std::vector<std::string> lines = read_lines(path);
  std::unique_ptr<CLI::ConfigBase> format =
      ends_with(path, ".ini") ? std::make_unique<CLI::ConfigINI>() : std::make_unique<CLI::ConfigTOML>();
  std::ifstream in(path);
  const std::vector<CLI::ConfigItem> items = format->from_config(in);
  std::set<std::string> seen;
  for (const CLI::ConfigItem& item : items) {
    if (item.name == "++" || item.name == "--") continue;  // CLI11's marks of a [section]'s start and end
    const std::string key = item.fullname();
    const std::vector<size_t> at = lines_of(lines, item.name);
    const std::string where = "--config " + path + " line " + std::to_string(at.empty() ? 0 : at.front());
    CLI::Option* option = item.parents.empty() ? command->get_option_no_throw("--" + item.name) : nullptr;
    if (option == nullptr || !option->get_configurable()) {
      throw std::invalid_argument(where + ": unknown key '" + key + "' (keys are the long flags of den " +
                                  command->get_name() + " without their dashes, outside any [section])");
    }
    // CLI11 merges a key given on adjacent lines into one list item: the lines tell.
    if (!seen.insert(item.name).second || at.size() > 1) {
      throw std::invalid_argument("--config " + path + ": '" + key + "' is set twice" +
                                  (at.size() >= 2 ? ", on lines " + std::to_string(at[0]) + " and " + std::to_string(at[1])
                                                  : std::string()) +
                                  "; keep one");
    }
    if (option->count() > 0) continue;  // the command line wins
    try {
      if (option->get_expected_min() == 0) {
        option->add_result(option->get_flag_value(item.name, format->to_flag(item)));
      } else if (item.inputs.size() > 1 && option->get_expected_max() == 1) {
        option->add_result(join(item.inputs, ","));  // a TOML array for a list flag: hidden = [312, 128]
      } else {
        option->add_result(item.inputs);
      }
      option->run_callback();
    } catch (const CLI::ParseError& e) {
      throw std::invalid_argument(where + ": " + e.what());
    }
  }
}

std::string config_text(CLI::App* command, const std::vector<std::string>& methods) {
  std::set<std::string> hyperparameters;
  engine::visit_hyperparameters([&](const auto& h) {
    if (*h.flag != '\0') hyperparameters.insert(h.flag);
  });
  // Options without a default (--base-classes, --report) mean "off" only while they are not given.
  std::vector<CLI::Option*> hidden;
  for (CLI::Option* option : command->get_options()) {
    if (!option->get_configurable()) continue;
    const std::string flag = "--" + option->get_single_name();
    const bool printed = option->count() > 0 || !option->get_default_str().empty() || hyperparameters.count(flag) > 0;
    if (!printed || !flag_applies(command, flag, methods)) {
      option->configurable(false);
      hidden.push_back(option);
    }
    option->capture_default_str();  // the value now, for options the command line left out
  }
  std::string text = "# den " + command->get_name() + " --config FILE reads this file; flags given on the command line "
                     "override it.\n" + command->config_to_str(true, true);
  for (CLI::Option* option : hidden) option->configurable(true);
  return text;
}

}  // namespace den::cli
