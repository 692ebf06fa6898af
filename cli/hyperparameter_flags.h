#pragma once

// The `den` flags of the EngineConfig fields, registered from the hyperparameter table
// (NOTE: [hyperparameter table] in engine/hyperparameters.h).

#include "engine/config.h"
#include "engine/hyperparameters.h"

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace den::cli {

/// Registers a flag for every table entry that has one, bound to its field of `config`: the
/// methods' common settings first, then DEN's own (help text "den: ..."). Each flag checks the
/// entry's rule, so a bad value is a usage error naming the flag ("--mu: -1 must be >= 0"), and
/// its default is the field's value when the flag is registered.
void add_hyperparameter_flags(CLI::App* command, engine::EngineConfig& config);

/// The flags of the table entries that only DEN reads.
std::vector<std::string> den_only_flags();

/// The help text of an entry as `den --help` shows it: capitalized, or "den: ..." for DEN's own.
std::string flag_help(const char* help, engine::Scope scope);

}  // namespace den::cli
