#include "cli/hyperparameter_flags.h"

#include "cli/report.h"

#include <cctype>
#include <type_traits>

namespace den::cli {

namespace {

template <typename T>
std::string type_name() {
  if constexpr (std::is_enum_v<T>) {
    std::vector<std::string> names;
    for (T v : engine::enum_values<T>()) names.push_back(engine::to_text(v));
    return "TEXT:{" + join(names, ",") + "}";
  } else if constexpr (std::is_floating_point_v<T>) {
    return "FLOAT";
  } else if constexpr (std::is_unsigned_v<T>) {
    return "UINT";
  } else if constexpr (std::is_integral_v<T>) {
    return "INT";
  } else {
    return "TEXT";
  }
}

/// Checks a flag's text: it must read as the field's type and obey the entry's rule.
template <typename T>
CLI::Validator rule_validator(const engine::Hyperparameter<T>& h) {
  return CLI::Validator(
      [h](std::string& text) -> std::string {
        T value{};
        try {
          engine::from_text(text, value);
        } catch (const std::invalid_argument& e) {
          return e.what();
        }
        if constexpr (std::is_same_v<T, engine::Layers>) {
          const std::string problem = engine::layers_problem(value);  // names the layer
          return problem.empty() ? std::string() : text + ": " + problem;
        }
        return h.valid(value) ? std::string() : text + " " + h.rule.text;
      },
      "");  // no description: the help's type column stays as it was
}

template <typename T>
void add_flag(CLI::App* command, T& value, const engine::Hyperparameter<T>& h) {
  const std::string help = flag_help(h.help, h.scope);
  const std::string names = std::string(h.flag) + (*h.alias != '\0' ? std::string(",") + h.alias : std::string());
  CLI::Option* option = nullptr;
  if constexpr (std::is_same_v<T, bool>) {
    option = command->add_flag(names, value, help);
  } else if constexpr (std::is_arithmetic_v<T> || std::is_same_v<T, std::string>) {
    option = command->add_option(names, value, help)->type_name(type_name<T>());
  } else {
    // Lists and enums: read through the table's text form (the validator has checked it).
    option = command
                 ->add_option_function<std::string>(
                     names, [&value](const std::string& text) { engine::from_text(text, value); }, help)
                 ->type_name(type_name<T>());
  }
  // The default is the field's value as the table's text writes it, now and when --print-config
  // asks again (capture_default_str).
  option->default_function([&value] { return engine::to_text(value); });
  if constexpr (!std::is_same_v<T, bool>) {
    option->check(rule_validator(h));
    option->capture_default_str();  // flags show no default, as before
  }
}

}  // namespace

std::string flag_help(const char* help, engine::Scope scope) {
  std::string text = help;
  if (scope == engine::Scope::Den) return "den: " + text;
  if (!text.empty()) text[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(text[0])));
  return text;
}

void add_hyperparameter_flags(CLI::App* command, engine::EngineConfig& config) {
  for (const engine::Scope scope : {engine::Scope::EveryMethod, engine::Scope::Den}) {
    engine::visit_hyperparameters([&](const auto& h) {
      if (*h.flag != '\0' && h.scope == scope) add_flag(command, config.*h.member, h);
    });
  }
}

std::vector<std::string> den_only_flags() {
  std::vector<std::string> flags;
  engine::visit_hyperparameters([&](const auto& h) {
    if (*h.flag != '\0' && h.scope == engine::Scope::Den) flags.emplace_back(h.flag);
  });
  return flags;
}

}  // namespace den::cli
