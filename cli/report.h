#pragma once

#include "cli/run_options.h"
#include "engine/config.h"
#include "engine/evaluation/run.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>
#include <vector>

namespace den::cli {

/// `values` as text with `sep` between them ("312-128", "den,stl").
std::string join(const std::vector<int64_t>& values, const char* sep);
std::string join(const std::vector<std::string>& values, const char* sep);
/// Sum of `values`.
int64_t sum(const std::vector<int64_t>& values);
/// `v` as JSON, or null when it is not finite (a metric that is off or has no samples).
nlohmann::json number_or_null(double v);

/// The engine settings as JSON (every DEN hyperparameter, resolved defaults included).
nlohmann::json config_json(const engine::EngineConfig& config);

/// One task's entry of the `--report` JSON: the task's own report and its test metrics right after
/// it: task-aware accuracy and AUROC of the task, task-agnostic accuracy of every task seen (null
/// when off), and from task 2 on "old_classes" / "new_classes": the earlier tasks' metrics (mean
/// task-aware accuracy; task-agnostic accuracy pooled over their samples) and the task's own.
/// `curves` (RunProgress::take_curves, one per phase) becomes each phase's "curve"; without it
/// (a task restored from a checkpoint) the phases have none.
nlohmann::json task_json(const engine::TaskReport& report, const engine::TaskEvaluation& evaluation,
                         const nlohmann::json& curves = nlohmann::json());

/// The "final" object of the `--report` JSON.
nlohmann::json final_json(const engine::RunResult& result);

/// The settings part of a `den run --report` document: method, protocol, data, config, stream,
/// exemplars and the method's own options. `den compare --resume` compares it.
nlohmann::json run_settings_json(const RunOptions& options);

/// The whole `den run --report` document of one method's run: settings, `tasks` (task_json
/// entries), final_json and `"partial": false`. `den compare` writes one per method.
nlohmann::json run_report_json(const RunOptions& options, const nlohmann::json& tasks, const engine::RunResult& result);

/// The report of a run stopped by a signal (NOTE: [interrupts]): settings, the tasks finished,
/// `"final": null` and `"partial": true`.
nlohmann::json partial_run_report_json(const RunOptions& options, const nlohmann::json& tasks);

/// `doc` as indented JSON text; bytes that are not UTF-8 (in a path, a task name) become U+FFFD
/// rather than making the dump throw.
std::string json_text(const nlohmann::json& doc);

/// Writes `doc` to `path` atomically (io::AtomicFile: unique temporary, fsync, rename), so
/// a failed or killed write never leaves a half-written report in place. Throws OutputError or
/// io::WriteError.
void write_json_file(const std::string& path, const nlohmann::json& doc);
/// As write_json_file, for text (a CSV table).
void write_text_file(const std::string& path, const std::string& text);

/// Checks up front that `path` can be created (its directory exists and is writable), so a long
/// run does not fail only at the end. Throws OutputError.
void check_writable(const std::string& path);

/// A file a command reads or writes, and the flag or argument that names it ("-o", "--report").
struct NamedFile {
  std::string flag, path;
};

/// Throws std::invalid_argument (a usage error, before any work) when an output of `outputs` is the
/// same file as another output or as one of `inputs`: writing it would destroy the other. Paths
/// are compared resolved (symlinks followed, `a/../b`), and existing files by identity (hard
/// links). Empty paths are skipped.
void check_distinct_files(const std::vector<NamedFile>& outputs, const std::vector<NamedFile>& inputs = {});

/// Prints the header of the per-task results table.
void print_table_header(std::FILE* out);
/// Prints one row of the per-task results table.
void print_table_row(std::FILE* out, const engine::TaskReport& report, const engine::TaskEvaluation& evaluation);
/// Prints the final summary: averages (task-aware and, when on, task-agnostic), BWT, final sizes,
/// parameters relative to the base network.
void print_summary(std::FILE* out, const engine::RunResult& result);

}  // namespace den::cli
