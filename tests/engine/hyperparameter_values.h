#pragma once

// A value other than the default for every entry of the hyperparameter table, found from the
// entry's type and rule alone, so that round-trip tests cover an entry added to the table without
// being edited.

#include "engine/hyperparameters.h"

#include <string>
#include <type_traits>
#include <vector>

namespace den::testing {

/// Input width that non_default_config()'s input shape needs.
constexpr int64_t kNonDefaultInputDim = 36;

/// Candidates of type T, small first (a training run with them stays short).
template <typename T>
std::vector<T> candidates() {
  if constexpr (std::is_same_v<T, bool>) {
    return {false, true};
  } else if constexpr (std::is_enum_v<T>) {
    return engine::enum_values<T>();
  } else if constexpr (std::is_floating_point_v<T>) {
    return {0.5, 0.25, 0.125, 0.75};
  } else if constexpr (std::is_arithmetic_v<T>) {
    return {1, 2, 3, 4};
  } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
    return {{3}, {4}, {3, 2}, {1, 6, 6}};  // {1, 6, 6}: an input shape, the CLI tests' 6x6 images
  } else if constexpr (std::is_same_v<T, engine::Layers>) {
    return {{3}, {4, 3}};
  } else {
    return {"cuda", "cuda:1"};  // strings: the device
  }
}

/// The first candidate that differs from the default and obeys the entry's rule.
template <typename T>
T non_default(const engine::Hyperparameter<T>& h) {
  const engine::EngineConfig defaults;
  for (const T& v : candidates<T>()) {
    if (!(v == h.value(defaults)) && h.valid(v)) return v;
  }
  throw std::logic_error(std::string("no non-default candidate for ") + h.name + ": extend candidates<T>()");
}

/// Every field set to its non_default value.
inline engine::EngineConfig non_default_config() {
  engine::EngineConfig c;
  engine::visit_hyperparameters([&](const auto& h) { c.*h.member = non_default(h); });
  return c;
}

}  // namespace den::testing
