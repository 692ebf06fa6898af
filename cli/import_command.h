#pragma once

#include "engine/config.h"

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

namespace den::cli {

/// Options of `den import MODEL.pt -o run.den`.
struct ImportOptions {
  std::string model;
  std::string output;
  std::string classes;   ///< --classes: class id of each output of the model's last Linear; empty: 0..c-1
  std::string data_dir;  ///< --data: samples of the model's classes, for exemplars and a check of its accuracy
  int64_t exemplars = 20;
  engine::EngineConfig engine;  ///< settings of the tasks learned after the import
};

/// Registers the `import` subcommand on `app`.
CLI::App* add_import_command(CLI::App& app, ImportOptions& options);
/// Runs `den import`. Throws io::ImportError (exit 7), data::DataError, std::invalid_argument,
/// OutputError and io::WriteError; writes nothing unless the whole import succeeds.
int import_command(const ImportOptions& options);

}  // namespace den::cli
