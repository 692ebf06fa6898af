#pragma once

#include "cli/image_data.h"
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
  ImageFlags images;     ///< how an image folder's images become the model's input
  std::string trunk;     ///< --trunk: the frozen trunk's last module; "none": no trunk; empty: the shortest
  int64_t exemplars = 20;
  /// --preset: the settings of later tasks that no flag gives (NOTE: [presets] in engine/config.h).
  std::string preset = "den";
  engine::EngineConfig engine = engine::preset("den");  ///< settings of the tasks learned after the import
  const CLI::App* command = nullptr;                    ///< the parsed subcommand, to tell which flags were given
};

/// Registers the `import` subcommand on `app`.
CLI::App* add_import_command(CLI::App& app, ImportOptions& options);
/// Runs `den import`. Throws io::ImportError (exit 7), data::DataError, std::invalid_argument,
/// OutputError and io::WriteError; writes nothing unless the whole import succeeds.
int import_command(const ImportOptions& options);

}  // namespace den::cli
