// `den run --checkpoint/--resume`.

#include "cli/run_checkpoints.h"

#include "cli/exit_codes.h"
#include "cli/report.h"
#include "data/normalize.h"
#include "engine/hyperparameters.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <sstream>
#include <thread>

namespace den::cli {

namespace {

std::string number(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

/// A `den run` setting that must stay the same when a run is resumed: its flag and its value.
struct Setting {
  const char* flag;
  std::function<std::string(const RunOptions&)> value;
};

std::vector<Setting> make_run_settings() {
  std::vector<Setting> settings = {
      {"--protocol", [](const RunOptions& o) { return o.protocol; }},
      {"--classes-per-task", [](const RunOptions& o) { return std::to_string(o.stream.classes_per_task); }},
      {"--base-classes", [](const RunOptions& o) { return std::to_string(o.stream.base_classes); }},
      {"--exemplars", [](const RunOptions& o) { return std::to_string(o.exemplars); }},
      {"--memory", [](const RunOptions& o) { return std::to_string(o.baseline.memory); }},
      {"--memory-negatives", [](const RunOptions& o) { return std::string(o.memory_negatives ? "true" : "false"); }},
      {"--train-limit", [](const RunOptions& o) { return std::to_string(o.stream.train_limit); }},
      {"--val-fraction", [](const RunOptions& o) { return number(o.stream.val_fraction); }},
      {"--normalize", [](const RunOptions& o) { return o.normalization; }},
      {"--method", [](const RunOptions& o) { return o.method; }},
  };
  // Every EngineConfig field with a flag, from the table. Checkpoints do not store the device and
  // load on the CPU, so a resumed run trains there.
  engine::visit_hyperparameters([&settings](const auto& h) {
    if (*h.flag != '\0') settings.push_back({h.flag, [h](const RunOptions& o) { return engine::to_text(h.value(o.engine)); }});
  });
  return settings;
}

const std::vector<Setting>& run_settings() {
  static const std::vector<Setting> settings = make_run_settings();
  return settings;
}

/// A checkpoint's run record, or a usage error saying the checkpoint has none.
const io::RunInfo& run_record(const io::LoadedCheckpoint& c, const std::string& path, const std::string& flag) {
  if (!c.extras.run) {
    throw std::invalid_argument(flag + " " + path + ": the checkpoint holds no `den run` record (stream, data); "
                                "use den add-task --data DIR to learn tasks from given data");
  }
  return *c.extras.run;
}

/// NOTE: [kill soak] DEN_TEST_SAVE_DELAY_MS=N sleeps N ms after every record of a checkpoint
/// written by `den run`, and each record holds at most 4 KiB then, so that scripts/kill_soak.sh
/// can land its SIGKILLs inside checkpoint writes. A test hook, not a user setting.
io::SaveOptions save_options() {
  io::SaveOptions options;
  const char* delay = std::getenv("DEN_TEST_SAVE_DELAY_MS");
  if (delay != nullptr && std::atoi(delay) > 0) {
    const int ms = std::atoi(delay);
    options.max_record_bytes = 4096;
    options.on_record_written = [ms](int64_t) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); };
  }
  return options;
}


}  // namespace

RunOptions stored_options(const RunOptions& o, const engine::EngineConfig& config, const io::RunInfo& run) {
  RunOptions s = o;
  s.engine = config;
  s.method = run.method;
  s.data_dir = run.data_dir;
  s.protocol = run.protocol;
  s.normalization = run.normalize;
  s.stream.protocol = data::parse_protocol(run.protocol);
  s.stream.num_tasks = run.num_tasks;
  s.stream.classes_per_task = run.classes_per_task;
  s.stream.base_classes = run.base_classes;
  if (run.exemplars_per_class) s.exemplars = *run.exemplars_per_class;
  s.memory_negatives = run.negatives_from_memory;
  s.baseline.memory = run.memory;
  s.stream.train_limit = run.train_limit;
  s.stream.val_fraction = run.val_fraction;
  s.stream.seed = run.seed;
  return s;
}


void warn_if_rebuilt(const engine::RunPrior& prior, const engine::RunSettings& settings, const std::string& path) {
  if (prior.agnostic || prior.evaluations.empty() || settings.agnostic.exemplars_per_class == 0) return;
  std::fprintf(stderr,
               "warning: checkpoint '%s' holds no task-agnostic state (written before format version %u); it is "
               "rebuilt uncalibrated, so task-agnostic accuracies may differ from an uninterrupted run's\n",
               path.c_str(), static_cast<unsigned>(io::kAgnosticStateVersion));
}

uint32_t data_fingerprint(const data::TrainTest& files) {
  return io::tensors_crc32({files.train.features, files.train.labels, files.test.features, files.test.labels});
}

// ---------------------------------------------------------------------------------------------
// den run --checkpoint / --resume
// ---------------------------------------------------------------------------------------------

RunCheckpoints::RunCheckpoints(RunOptions& o) : options_(o) {
  save_path_ = !o.checkpoint_path.empty() ? o.checkpoint_path : o.resume_path;
  if (!o.resume_path.empty()) {
    const auto start = std::chrono::steady_clock::now();
    resumed_ = io::load_checkpoint(o.resume_path);
    if (!o.quiet) {
      std::fprintf(stderr, "resuming %s: %lld tasks learned, %.2f MiB loaded in %.3f s\n", o.resume_path.c_str(),
                   static_cast<long long>(resumed_->engine.num_tasks()),
                   static_cast<double>(resumed_->file_bytes) / (1 << 20),
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    const io::RunInfo& run = run_record(*resumed_, o.resume_path, "--resume");
    const RunOptions stored = stored_options(o, resumed_->engine.config(), run);
    for (const Setting& s : run_settings()) {
      if (flag_given(o.command, s.flag) && s.value(o) != s.value(stored)) {
        throw std::invalid_argument("--resume " + o.resume_path + ": the run was started with " + s.flag + " " +
                                    s.value(stored) + ", this command says " + s.value(o) +
                                    " (a resumed run continues the same run; leave the flag out)");
      }
    }
    // A checkpoint resumes with the settings it was written with, whichever preset (or none,
    // before presets) chose them; --preset may only name the same ones.
    if (flag_given(o.command, "--preset")) {
      const engine::EngineConfig preset = engine::preset(o.preset);
      engine::visit_hyperparameters([&](const auto& h) {
        if (!h.checkpointed || (*h.flag != '\0' && flag_given(o.command, h.flag))) return;
        if (engine::to_text(h.value(preset)) == engine::to_text(h.value(stored.engine))) return;
        throw std::invalid_argument("--resume " + o.resume_path + ": the run was started with " + h.name + " " +
                                    engine::to_text(h.value(stored.engine)) + ", --preset " + o.preset + " says " +
                                    engine::to_text(h.value(preset)) + " (a resumed run keeps its settings; leave --preset out)");
      });
    }
    RunOptions next = stored;
    if (flag_given(o.command, "--data")) next.data_dir = o.data_dir;
    if (flag_given(o.command, "--tasks")) next.stream.num_tasks = o.stream.num_tasks;
    if (next.stream.num_tasks < resumed_->engine.num_tasks()) {
      throw std::invalid_argument("--tasks " + std::to_string(next.stream.num_tasks) + " is fewer than the " +
                                  std::to_string(resumed_->engine.num_tasks()) + " tasks the checkpoint has learned");
    }
    if (static_cast<int64_t>(resumed_->extras.evaluations.size()) != resumed_->engine.num_tasks()) {
      throw io::CheckpointError(io::CheckpointError::Kind::Inconsistent,
                                "checkpoint '" + o.resume_path + "' lacks the test metrics of some tasks");
    }
    o = next;
    if (resumed_->extras.images) {
      for (const char* flag : {"--image-size", "--mean", "--std"}) {
        if (flag_given(o.command, flag)) {
          throw std::invalid_argument(std::string("--resume ") + o.resume_path + ": a resumed run prepares its images "
                                      "as the checkpoint says; leave " + flag + " out");
        }
      }
      o.stored_images = to_preprocess(*resumed_->extras.images);
    }
    evaluations_ = resumed_->extras.evaluations;
    prior_reports_ = resumed_->engine.history();
    prior_seconds_ = run.seconds;
    agnostic_ = resumed_->extras.agnostic;
  }
  if (!save_path_.empty()) check_writable(save_path_);
}

std::optional<io::FeatureNormalization> feature_normalization(const std::string& mode,
                                                              const data::FeatureScaling& scaling) {
  if (mode == "none" || !scaling.shift.defined()) return std::nullopt;
  return io::FeatureNormalization{mode, scaling.shift, scaling.scale};
}

void RunCheckpoints::check_data(const RunData& data) {
  if (save_path_.empty() && !resumed_) return;
  normalization_ = feature_normalization(options_.normalization, data.scaling);
  if (data.images) images_ = to_image_input(*data.images);
  class_names_ = data.class_names;
  fingerprint_ = data_fingerprint(data.files);
  if (resumed_) {
    const io::RunInfo& run = *resumed_->extras.run;
    if (run.data_crc32 && *run.data_crc32 != *fingerprint_) {
      throw data::DataError("--resume: the data in '" + options_.data_dir +
                            "' differs from the data the checkpoint was trained on ('" + run.data_dir + "')");
    }
  }
}

engine::Engine RunCheckpoints::make_engine(int64_t input_dim) {
  if (!resumed_) return engine::Engine(options_.engine, input_dim);
  if (resumed_->engine.input_dim() != input_dim) {
    throw data::DataError("--resume: the data has " + std::to_string(input_dim) + " features but the checkpoint's "
                          "network takes " + std::to_string(resumed_->engine.input_dim()));
  }
  return std::move(resumed_->engine);
}

void RunCheckpoints::for_each_prior(
    const std::function<void(const engine::TaskReport&, const engine::TaskEvaluation&)>& row) const {
  for (size_t i = 0; i < prior_reports_.size() && i < evaluations_.size(); ++i) row(prior_reports_[i], evaluations_[i]);
}

io::RunInfo RunCheckpoints::run_info(int64_t num_tasks) const {
  const RunOptions& o = options_;
  io::RunInfo run;
  run.method = o.method;
  run.data_dir = o.data_dir;
  run.protocol = data::to_string(o.stream.protocol);
  run.num_tasks = num_tasks;
  run.classes_per_task = o.stream.classes_per_task;
  run.base_classes = o.stream.base_classes;
  run.exemplars_per_class = o.exemplars;
  run.negatives_from_memory = o.memory_negatives;
  run.memory = o.baseline.memory;
  run.train_limit = o.stream.train_limit;
  run.val_fraction = o.stream.val_fraction;
  run.normalize = o.normalization;
  run.seed = o.stream.seed;
  run.data_crc32 = fingerprint_;
  run.seconds = prior_seconds_ +
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  return run;
}

engine::RunResult RunCheckpoints::run(engine::Engine& engine, int64_t num_tasks,
                                      const std::function<engine::Task(int64_t)>& make_task,
                                      engine::RunCallbacks callbacks, const engine::RunSettings& settings) {
  if (!save_path_.empty()) {
    callbacks.agnostic_fitted = [this](const engine::AgnosticState& state) { agnostic_ = state; };
    auto done = callbacks.task_done;
    callbacks.task_done = [this, &engine, num_tasks, done](const engine::TaskReport& report,
                                                           const engine::TaskEvaluation& evaluation) {
      evaluations_.push_back(evaluation);
      const auto start = std::chrono::steady_clock::now();
      io::save_checkpoint(engine, save_path_,
                          {evaluations_, run_info(num_tasks), agnostic_, normalization_, images_, class_names_},
                          save_options());
      if (!options_.quiet) {
        std::error_code ec;
        std::fprintf(stderr, "checkpoint %s after task %lld: %.2f MiB in %.3f s\n", save_path_.c_str(),
                     static_cast<long long>(report.task),
                     static_cast<double>(std::filesystem::file_size(save_path_, ec)) / (1 << 20),
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      }
      if (done) done(report, evaluation);
    };
  }
  if (!resumed_) return engine::run_stream(engine, num_tasks, make_task, callbacks, settings);
  const engine::RunPrior prior{resumed_->extras.evaluations, prior_seconds_, resumed_->extras.agnostic};
  warn_if_rebuilt(prior, settings, options_.resume_path);
  return engine::resume_stream(engine, num_tasks, make_task, prior, callbacks, settings);
}


}  // namespace den::cli
