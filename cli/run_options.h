#pragma once

// The CLI's shared vocabulary below the commands: the options of a stream run (den run, and per
// method den compare), the flags they share, presets, data loading and the output error.

#include "cli/image_data.h"
#include "data/idx_reader.h"
#include "data/normalize.h"
#include "data/task_stream.h"
#include "engine/baselines/baselines.h"
#include "engine/config.h"
#include "engine/evaluation/run.h"

#include <CLI/CLI.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace den::cli {

/// Everything `den run` (and, per method, `den compare`) is told on the command line.
struct RunOptions {
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  std::string protocol = "permuted";
  std::string normalization = "none";
  data::StreamOptions stream;
  /// --preset: the hyperparameters that flags not given take (NOTE: [presets] in engine/config.h).
  std::string preset = "den";
  engine::EngineConfig engine = engine::preset("den");  ///< so that --help shows the default preset's values
  /// --holdout F: tasks are evaluated on a seeded fraction F of the training file, held out from
  /// training and validation, instead of the test file, which is then not read: for choosing
  /// hyperparameters without looking at test data. 0 = off.
  double holdout = 0.0;
  engine::BaselineOptions baseline;  ///< --memory and the baselines' own flags (--l2-lambda, --ewc-lambda, ...)
  int64_t exemplars = 20;            ///< --exemplars: per class, for task-agnostic prediction (0 = off)
  bool memory_negatives = false;     ///< --memory-negatives (engine::RunSettings::negatives_from_memory)
  std::string method = "den";
  std::string report_path;
  std::string log_path;  ///< --log: JSON lines of the progress (cli/progress.h)
  int threads = 0;  ///< 0: all hardware threads
  bool quiet = false;
  bool allow_label_gaps = false;  ///< --allow-label-gaps (data::DirectoryOptions)
  ImageFlags images;  ///< --image-size, --mean, --std: how image folders become samples
  /// How images were prepared by the checkpoint a run continues (--resume, add-task): it replaces
  /// the flags, so that the same images give the same samples.
  std::optional<data::ImagePreprocess> stored_images;
  std::string checkpoint_path;  ///< --checkpoint: save after every task (cli/run_checkpoints.h)
  std::string resume_path;      ///< --resume: continue the run stored there
  std::string config_path;  ///< --config: a TOML or INI file of flag values (cli/config_file.h)
  bool print_config = false;  ///< --print-config: write the resolved configuration and exit
  CLI::App* command = nullptr;  ///< the parsed subcommand, to tell flags given from defaults
};

/// Registers the flags `den run` and `den compare` share on `command`: data, task stream,
/// training, the methods' own settings, task-agnostic evaluation, threads and progress. Sets
/// `options.command`.
void add_run_flags(CLI::App* command, RunOptions& options);

/// Registers --allow-label-gaps on `command` (den run, compare and add-task), bound to `allow`.
void add_label_gaps_flag(CLI::App* command, bool& allow);

/// Whether `flag` was given on the command line of `command` (false for a flag it does not have).
bool flag_given(const CLI::App* command, const std::string& flag);

/// Whether `flag` of `command` is read by one of `methods`: true unless it belongs to other
/// methods only (--k to den, --ewc-lambda to ewc, ...).
bool flag_applies(const CLI::App* command, const std::string& flag, const std::vector<std::string>& methods);

/// Throws std::invalid_argument when a flag that belongs to some methods only (--k belongs to den,
/// --ewc-lambda to ewc, ...) was given although none of `methods` uses it.
void check_method_flags(const CLI::App* command, const std::vector<std::string>& methods);

/// Turns the flags' text values into the engine and stream settings and validates what can be
/// validated before any data is read (std::invalid_argument).
void resolve_options(RunOptions& options);

/// Registers `--preset NAME` (den or released; NOTE: [presets] in engine/config.h) on `command`.
void add_preset_option(CLI::App* command, std::string& preset);
/// Sets every field of `config` whose flag `command` was not given (on the command line or in
/// --config) to its value in preset `name`.
void apply_preset(const std::string& name, const CLI::App* command, engine::EngineConfig& config);

/// The part of a single image folder that a run tests on when no --holdout is given.
constexpr double kImageTestFraction = 0.2;

/// The image folders a run reads from --data DIR: DIR/train/<class>/ with DIR/test/<class>/ (or
/// DIR/val/), or DIR/<class>/ alone, whose test samples are then a seeded part (`test` empty).
struct ImageLayout {
  std::string train, test;
};

/// The image layout of `dir`, or none for IDX and CSV directories (and anything else, which
/// data::load_directory then refuses).
std::optional<ImageLayout> image_layout(const std::string& dir);

/// A run's data as read: the samples, the normalization's statistics, and for image folders how
/// images became samples and the names their class folders gave.
struct RunData {
  data::TrainTest files;
  data::FeatureScaling scaling;
  std::optional<data::ImagePreprocess> images;  ///< image folders only
  std::map<int64_t, std::string> class_names;   ///< folders whose name is no class id
};

/// Reads and normalizes the data of `options`; with --base-classes and no --tasks, the stream
/// gets all the tasks the data allows (1 + classes - base classes).
RunData load_data_set(RunOptions& options);
/// The C,H,W of `samples` read as images: 1,rows,columns for IDX images, empty for flat rows (CSV).
std::vector<int64_t> image_shape(const data::Dataset& samples);
/// Sets `config.input_shape` from the training data's sample shape (IDX images: 1,rows,columns)
/// when conv layers need one and none was given; std::invalid_argument for flat data (CSV).
void set_input_shape(engine::EngineConfig& config, const data::Dataset& train);
/// The data directory of `options`, read and normalized (a progress line unless quiet). Image
/// folders (image_layout) are read with stored_images, else as the image flags and --input-shape
/// say, else at the first image's shape; a folder without a test folder is tested on a seeded part
/// of it (--holdout F, else kImageTestFraction), which is then not trained on. data::DataError for
/// a test class folder the training folder lacks, and (unless allowed) label gaps.
RunData load_files(const RunOptions& options);

/// The protocol for headers: "split", or "split (base classes 7, then one new class per task)".
std::string stream_description(const RunOptions& options);

/// Settings of the stream run beyond the method's own: task-agnostic evaluation.
engine::RunSettings run_settings(const RunOptions& options);

/// --memory N against the stream: std::invalid_argument (a usage error naming --memory) when N is
/// below the stream's head outputs, which would leave an output without a sample. (The methods with
/// a head per task keep N calibration exemplars in all, AgnosticOptions::memory, in place of
/// --exemplars per output.)
void check_memory(const RunOptions& options, const data::TaskStream& stream);

/// An output file cannot be written.
class OutputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace den::cli
