#pragma once

// `den inspect`: what a checkpoint holds.

#include <CLI/CLI.hpp>

#include <string>

namespace den::cli {

/// Options of `den inspect`.
struct InspectOptions {
  std::string checkpoint;
  bool json = false;
};
CLI::App* add_inspect_command(CLI::App& app, InspectOptions& options);
int inspect_command(const InspectOptions& options);

}  // namespace den::cli
