#pragma once

// Checks of flag values whose messages read as den's own ("--tasks: must be >= 1, got 0"), in place
// of CLI11's range validators, which print the largest double in full, and of its set validator.

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

namespace den::cli {

namespace detail {

inline std::string number_text(double v) {
  std::ostringstream text;
  text << v;
  return text.str();
}

}  // namespace detail

/// A value of at least `min` (integers or reals).
inline CLI::Validator at_least(double min) {
  return CLI::Validator(
      [min](std::string& value) -> std::string {
        double v = 0.0;
        if (!CLI::detail::lexical_cast(value, v)) return "'" + value + "' is not a number";
        if (v < min) return "must be >= " + detail::number_text(min) + ", got " + value;
        return {};
      },
      ">= " + detail::number_text(min));
}

/// A value in [lo, hi].
inline CLI::Validator between(double lo, double hi) {
  return CLI::Validator(
      [lo, hi](std::string& value) -> std::string {
        double v = 0.0;
        if (!CLI::detail::lexical_cast(value, v)) return "'" + value + "' is not a number";
        if (!(v >= lo && v <= hi)) {
          return "must be in [" + detail::number_text(lo) + ", " + detail::number_text(hi) + "], got " + value;
        }
        return {};
      },
      "in [" + detail::number_text(lo) + ", " + detail::number_text(hi) + "]");
}

/// A value in (lo, hi]: above `lo`, at most `hi`.
inline CLI::Validator above_up_to(double lo, double hi) {
  return CLI::Validator(
      [lo, hi](std::string& value) -> std::string {
        double v = 0.0;
        if (!CLI::detail::lexical_cast(value, v)) return "'" + value + "' is not a number";
        if (!(v > lo && v <= hi)) {
          return "must be in (" + detail::number_text(lo) + ", " + detail::number_text(hi) + "], got " + value;
        }
        return {};
      },
      "in (" + detail::number_text(lo) + ", " + detail::number_text(hi) + "]");
}

/// One of `values`; otherwise "unknown value 'x' (one of a, b, c)", in place of CLI11's set text.
inline CLI::Validator one_of(std::vector<std::string> values) {
  std::string list;
  for (const std::string& v : values) list += (list.empty() ? "" : ", ") + v;
  return CLI::Validator(
      [values, list](std::string& value) -> std::string {
        if (std::find(values.begin(), values.end(), value) != values.end()) return {};
        return "unknown value '" + value + "' (one of " + list + ")";
      },
      "one of " + list);
}

}  // namespace den::cli
