#pragma once

// Internal to serialization/: LibTorch's errors as one line of a user's message.

#include <c10/util/Exception.h>

#include <exception>
#include <string>

namespace den::io::internal {

/// The line of a LibTorch or TorchScript error that says what went wrong: a c10::Error's message
/// without its backtrace, first line. The TorchScript interpreter reports an op that fails inside a
/// scripted forward as a plain std::runtime_error ("The following operation failed in the
/// TorchScript interpreter", then both tracebacks); the error itself is its last line.
inline std::string torch_error_line(const std::exception& e) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
  const std::string what = c10_error != nullptr ? c10_error->what_without_backtrace() : e.what();
  if (what.rfind("The following operation failed in the TorchScript interpreter", 0) == 0) {
    const size_t end = what.find_last_not_of("\n ");
    if (end == std::string::npos) return what;
    const size_t newline = what.rfind('\n', end);
    return what.substr(newline == std::string::npos ? 0 : newline + 1, end - (newline == std::string::npos ? 0 : newline + 1) + 1);
  }
  return what.substr(0, what.find('\n'));
}

}  // namespace den::io::internal
