#pragma once

// NOTE: [config files] `den run --config FILE` and `den compare --config FILE` read flag values from
// a TOML file (an INI file when FILE ends in .ini), parsed by CLI11's own config reader. A key is a
// long flag without its dashes (`max-iter = 100`, `prox-scale-lr = true`, `hidden = "312,128"` or
// `hidden = [312, 128]`). A flag on the command line overrides the file; a value from the file
// counts as given, as the flag would (so `--resume` and the method checks treat both alike). CLI11
// 2.1 (Debian 12) reads config files for the top-level app only, so the subcommand's file is
// applied here, after parsing. `--print-config` writes the resolved configuration in the same
// format; docs/configuration.md.

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace den::cli {

/// Registers --config FILE (bound to `path`) and --print-config (bound to `print`) on `command`.
void add_config_flags(CLI::App* command, std::string& path, bool& print);

/// Gives every option of `command` that the command line left out the value the file at `path`
/// holds for it (nothing when `path` is empty). Throws std::invalid_argument naming the file and
/// line for a key `command` has no flag for, a key given twice, or a value its flag refuses.
void apply_config_file(CLI::App* command, const std::string& path);

/// The configuration of the parsed `command` as a TOML file that --config reads back: every
/// hyperparameter, every option with a default and every option given, with their values now,
/// each after its help as a comment. Flags that none of `methods` reads are left out.
std::string config_text(CLI::App* command, const std::vector<std::string>& methods);

}  // namespace den::cli
