#pragma once

// `den export`: a checkpoint's network as TorchScript, ONNX, DOT or SVG.

#include <CLI/CLI.hpp>

#include <string>

namespace den::cli {

/// Options of `den export`.
struct ExportOptions {
  std::string checkpoint;
  std::string task = "all";
  std::string format = "torchscript";
  std::string output;
  bool per_unit = false;  ///< --per-unit: the DOT/SVG picture with one node per unit
};
CLI::App* add_export_command(CLI::App& app, ExportOptions& options);
int export_command(const ExportOptions& options);

}  // namespace den::cli
