// `den run --checkpoint/--resume` and `den add-task`.

#include "cli/checkpoint_commands.h"

#include "cli/exit_codes.h"
#include "cli/report.h"
#include "cli/task_data.h"
#include "data/normalize.h"
#include "engine/evaluation/metrics.h"
#include "engine/hyperparameters.h"
#include "engine/training/threads.h"

#include <zlib.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <filesystem>
#include <limits>
#include <sstream>

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

bool given(const CLI::App* command, const char* flag) { return flag_given(command, flag); }

/// `o` as the run stored in the checkpoint was started (engine settings and stream).
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
  s.stream.train_limit = run.train_limit;
  s.stream.val_fraction = run.val_fraction;
  s.stream.seed = run.seed;
  return s;
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

/// A resume from a checkpoint without task-agnostic state (before format 2) rebuilds it, and its
/// task-agnostic values may then differ from the uninterrupted run's: say so, even with --quiet.
void warn_if_rebuilt(const engine::RunPrior& prior, const engine::RunSettings& settings, const std::string& path) {
  if (prior.agnostic || prior.evaluations.empty() || settings.agnostic.exemplars_per_class == 0) return;
  std::fprintf(stderr,
               "warning: checkpoint '%s' holds no task-agnostic state (written before format version %u); it is "
               "rebuilt uncalibrated, so task-agnostic accuracies may differ from an uninterrupted run's\n",
               path.c_str(), static_cast<unsigned>(io::kAgnosticStateVersion));
}

/// Learns `task`, which is no step of the checkpoint's stream, on `c`'s engine: the task-agnostic
/// state grows by the task (keeping `exemplars` per class) and is refitted, the earlier metrics are
/// kept (NaN rows for tasks learned without them), and the new task is measured on its test split
/// when it has one. Returns the checkpoint's new extras, without a run record.
io::CheckpointExtras learn_outside_stream(io::LoadedCheckpoint& c, const engine::Task& task, int64_t exemplars,
                                          const engine::ProgressCallback& progress) {
  engine::Engine& den = c.engine;
  const int64_t t = den.num_tasks() + 1;
  const engine::TaskReport report = den.add_task(task, progress);
  io::CheckpointExtras extras;
  // The task-agnostic state grows by this task, so the checkpoint keeps one entry per task.
  if (c.extras.agnostic) {
    engine::AgnosticOptions agnostic;
    agnostic.exemplars_per_class = exemplars;
    agnostic.seed = den.config().seed;
    engine::TaskAgnosticClassifier classifier = engine::TaskAgnosticClassifier::restore(agnostic, *c.extras.agnostic);
    classifier.add_task(t, task);
    classifier.fit(den);
    extras.agnostic = classifier.state();
  }
  extras.normalization = c.extras.normalization;  // the inputs the network was first trained on
  // Earlier rows as stored; tasks learned without measured metrics get NaN rows.
  for (int64_t j = 1; j < t; ++j) {
    engine::TaskEvaluation row;
    row.after_task = j;
    row.accuracy.assign(static_cast<size_t>(j), std::nan(""));
    row.auroc = row.accuracy;
    extras.evaluations.push_back(row);
  }
  for (const engine::TaskEvaluation& prior : c.extras.evaluations) {
    if (prior.after_task >= 1 && prior.after_task < t) extras.evaluations[prior.after_task - 1] = prior;
  }
  engine::TaskEvaluation e;
  e.after_task = t;
  e.accuracy.assign(static_cast<size_t>(t), std::nan(""));
  e.auroc = e.accuracy;
  if (task.test_x.defined() && task.test_x.size(0) > 0) {
    const at::Tensor scores = den.predict_scores(t, task.test_x);
    e.accuracy.back() = engine::accuracy(scores, task.test_y);
    e.auroc.back() = engine::mean_auroc(scores, task.test_y);
  }
  extras.evaluations.push_back(e);
  print_table_row(stdout, report, e);
  return extras;
}

void print_learned(int64_t t, std::chrono::steady_clock::time_point started, const std::string& output,
                   const engine::Engine& den) {
  std::printf("task %lld learned in %.1f s; checkpoint written to %s (%lld tasks)\n", static_cast<long long>(t),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), output.c_str(),
              static_cast<long long>(den.num_tasks()));
}

/// `den add-task --data DIR` with the task's own samples in DIR (cli/task_data.h).
int add_own_task(AddTaskOptions& o, io::LoadedCheckpoint& c, const std::string& output) {
  engine::Engine& den = c.engine;
  if (!given(o.command, "--data")) {
    throw std::invalid_argument("add-task " + o.checkpoint + ": give the task's samples with --data DIR");
  }
  const std::string& dir = o.run.data_dir;
  const data::Dataset train = data::load_half(dir, data::Half::Train);
  const data::Dataset test = data::has_half(dir, data::Half::Test) ? data::load_half(dir, data::Half::Test)
                                                                   : data::Dataset{};
  for (const data::Dataset* part : {&train, &test}) {
    if (part->size() > 0 && part->dim() != den.input_dim()) {
      throw data::DataError("--data " + dir + ": samples have " + std::to_string(part->dim()) +
                            " features but the checkpoint's network takes " + std::to_string(den.input_dim()));
    }
  }
  const std::vector<int64_t> classes = o.classes.empty() ? classes_in(train) : parse_classes(o.classes, "--classes");
  // Raw samples get the normalization the network was trained with.
  data::FeatureScaling scaling;
  if (c.extras.normalization) scaling = {c.extras.normalization->shift, c.extras.normalization->scale};
  data::Dataset scaled_train = train, scaled_test = test;
  scaled_train.features = data::apply_scaling(train.features, scaling);
  if (test.size() > 0) scaled_test.features = data::apply_scaling(test.features, scaling);

  std::string name = "classes[";
  for (size_t i = 0; i < classes.size(); ++i) name += (i > 0 ? "," : "") + std::to_string(classes[i]);
  name += "] (add-task --data)";
  const engine::AgnosticState* memory = c.extras.agnostic ? &*c.extras.agnostic : nullptr;
  const engine::Task task = task_from_samples(name, scaled_train, scaled_test, classes, memory,
                                              o.run.stream.val_fraction, den.config().seed + den.num_tasks());
  const int64_t t = den.num_tasks() + 1;
  engine::configure_threads(o.threads);
  engine::ProgressCallback progress;
  if (!o.quiet) progress = progress_printer(t, false);
  print_table_header(stdout);
  const auto started = std::chrono::steady_clock::now();
  const io::CheckpointExtras extras = learn_outside_stream(c, task, o.exemplars, progress);
  io::save_checkpoint(den, output, extras);
  print_learned(t, started, output, den);
  return kOk;
}

}  // namespace

uint32_t data_fingerprint(const data::TrainTest& files) {
  uLong crc = ::crc32(0L, Z_NULL, 0);
  for (const at::Tensor& t : {files.train.features, files.train.labels, files.test.features, files.test.labels}) {
    const at::Tensor c = t.contiguous();
    const auto* p = static_cast<const Bytef*>(c.data_ptr());
    size_t left = static_cast<size_t>(c.numel()) * c.element_size();
    while (left > 0) {
      const uInt piece = static_cast<uInt>(std::min<size_t>(left, 1u << 30));
      crc = ::crc32(crc, p, piece);
      p += piece;
      left -= piece;
    }
  }
  return static_cast<uint32_t>(crc);
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
      if (given(o.command, s.flag) && s.value(o) != s.value(stored)) {
        throw std::invalid_argument("--resume " + o.resume_path + ": the run was started with " + s.flag + " " +
                                    s.value(stored) + ", this command says " + s.value(o) +
                                    " (a resumed run continues the same run; leave the flag out)");
      }
    }
    RunOptions next = stored;
    if (given(o.command, "--data")) next.data_dir = o.data_dir;
    if (given(o.command, "--tasks")) next.stream.num_tasks = o.stream.num_tasks;
    if (next.stream.num_tasks < resumed_->engine.num_tasks()) {
      throw std::invalid_argument("--tasks " + std::to_string(next.stream.num_tasks) + " is fewer than the " +
                                  std::to_string(resumed_->engine.num_tasks()) + " tasks the checkpoint has learned");
    }
    if (static_cast<int64_t>(resumed_->extras.evaluations.size()) != resumed_->engine.num_tasks()) {
      throw io::CheckpointError(io::CheckpointError::Kind::Inconsistent,
                                "checkpoint '" + o.resume_path + "' lacks the test metrics of some tasks");
    }
    o = next;
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

void RunCheckpoints::check_data(const data::TrainTest& files, const data::FeatureScaling& scaling) {
  if (save_path_.empty() && !resumed_) return;
  normalization_ = feature_normalization(options_.normalization, scaling);
  fingerprint_ = data_fingerprint(files);
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
      io::save_checkpoint(engine, save_path_, {evaluations_, run_info(num_tasks), agnostic_, normalization_},
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

// ---------------------------------------------------------------------------------------------
// den add-task
// ---------------------------------------------------------------------------------------------

CLI::App* add_add_task_command(CLI::App& app, AddTaskOptions& o) {
  CLI::App* cmd = app.add_subcommand(
      "add-task", "Load a checkpoint, learn one more task from data, and write the checkpoint back");
  RunOptions& r = o.run;
  cmd->add_option("checkpoint", o.checkpoint, "Checkpoint to extend")->required();
  cmd->add_option("-o,--output", o.output, "Write the extended checkpoint here (default: in place)");
  cmd->add_option("--data", r.data_dir,
                  "Data directory (default: the checkpoint's run). With --classes, or for a checkpoint without a run "
                  "record (den import): a folder of this task's own samples, labels = class ids (train-images/labels "
                  "IDX or train.csv; t10k-*/test.csv, if there, are its test samples)");
  cmd->add_option("--classes", o.classes,
                  "The task's classes, comma separated (default: the labels in --data); one class learns it against "
                  "the exemplars of the classes already known");
  cmd->add_option("--protocol", r.protocol, "Task stream: permuted, split or one-vs-rest (default: the checkpoint's)")
      ->check(CLI::IsMember({"permuted", "split", "one-vs-rest"}));
  cmd->add_option("--exemplars", o.exemplars, "With --data of the task's own samples: exemplars kept per class")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--task-index", o.task_index,
                  "Which task of the stream to learn (default: the one after the checkpoint's last)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--classes-per-task", r.stream.classes_per_task, "Classes per task (split protocol)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--train-limit", r.stream.train_limit, "At most N training samples (0 = all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--val-fraction", r.stream.val_fraction, "Fraction of the training file held out for validation")
      ->check(CLI::Range(0.0, 0.9));
  cmd->add_option("--normalize", r.normalization, "Feature normalization: none, minmax or standardize")
      ->check(CLI::IsMember({"none", "minmax", "standardize"}));
  cmd->add_option("--seed", r.stream.seed, "Seed of the task stream (default: the checkpoint's)");
  cmd->add_option("--threads", o.threads, "Threads for the matrix products (0 = all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--quiet", o.quiet, "No progress output");
  add_label_gaps_flag(cmd, r.allow_label_gaps);
  o.command = cmd;
  return cmd;
}

int add_task_command(AddTaskOptions& o) {
  const std::string output = o.output.empty() ? o.checkpoint : o.output;
  check_writable(output);
  io::LoadedCheckpoint c = io::load_checkpoint(o.checkpoint);
  engine::Engine& den = c.engine;

  // The task's own samples: asked for with --classes, and the only kind of data a checkpoint
  // without a run record (den import) can take unless a stream protocol is named.
  RunOptions& r = o.run;
  const std::optional<io::RunInfo> stored = c.extras.run;
  if (given(o.command, "--classes") || (!stored && given(o.command, "--data") && !given(o.command, "--protocol"))) {
    return add_own_task(o, c, output);
  }
  // Stream flags default to the checkpoint's run; without one, --data is required.
  if (stored) {
    const RunOptions s = stored_options(r, den.config(), *stored);
    if (!given(o.command, "--data")) r.data_dir = s.data_dir;
    if (!given(o.command, "--protocol")) r.protocol = s.protocol;
    if (!given(o.command, "--classes-per-task")) r.stream.classes_per_task = s.stream.classes_per_task;
    if (!given(o.command, "--base-classes")) r.stream.base_classes = s.stream.base_classes;
    if (!given(o.command, "--train-limit")) r.stream.train_limit = s.stream.train_limit;
    if (!given(o.command, "--val-fraction")) r.stream.val_fraction = s.stream.val_fraction;
    if (!given(o.command, "--normalize")) r.normalization = s.normalization;
    if (!given(o.command, "--seed")) r.stream.seed = s.stream.seed;
  } else if (!given(o.command, "--data")) {
    throw std::invalid_argument("add-task " + o.checkpoint + ": the checkpoint holds no `den run` record; "
                                "give the data with --data DIR");
  }
  const int64_t t = den.num_tasks() + 1;
  const int64_t index = o.task_index > 0 ? o.task_index : t;
  r.stream.protocol = data::parse_protocol(r.protocol);
  r.stream.num_tasks = index;
  r.quiet = o.quiet;
  engine::configure_threads(o.threads);

  data::FeatureScaling scaling;
  data::TrainTest files = load_files(r, &scaling);
  const uint32_t fingerprint = data_fingerprint(files);
  const data::TaskStream stream(std::move(files.train), std::move(files.test), r.stream);
  if (stream.input_dim() != den.input_dim()) {
    throw data::DataError("the data has " + std::to_string(stream.input_dim()) + " features but the checkpoint's "
                          "network takes " + std::to_string(den.input_dim()));
  }

  // The same stream continued by its next task: evaluate every task, as den run does, and keep
  // the run record so that --resume and add-task can go on. Otherwise only the new task's test
  // data is at hand (NaN for the others) and the checkpoint no longer describes one stream.
  const bool continues = stored && stored->data_dir == r.data_dir && stored->protocol == data::to_string(r.stream.protocol) &&
                         stored->classes_per_task == r.stream.classes_per_task &&
                         stored->base_classes == r.stream.base_classes &&
                         stored->train_limit == r.stream.train_limit && stored->val_fraction == r.stream.val_fraction &&
                         stored->normalize == r.normalization && stored->seed == r.stream.seed &&
                         (!stored->data_crc32 || *stored->data_crc32 == fingerprint) && index == t &&
                         static_cast<int64_t>(c.extras.evaluations.size()) == den.num_tasks();
  engine::RunCallbacks callbacks;
  if (!o.quiet) {
    callbacks.progress = [](const engine::ProgressEvent& e) {
      if (e.iteration == e.max_iter) {
        std::fprintf(stderr, "[task %lld] %-10s it %5lld  loss %.4f  val %.4f\n", static_cast<long long>(e.task),
                     e.phase.c_str(), static_cast<long long>(e.iteration), e.train_loss, e.val_loss);
      }
    };
  }
  print_table_header(stdout);
  io::CheckpointExtras extras;
  const auto started = std::chrono::steady_clock::now();
  if (continues) {
    callbacks.task_done = [](const engine::TaskReport& report, const engine::TaskEvaluation& evaluation) {
      print_table_row(stdout, report, evaluation);
    };
    const engine::RunPrior prior{c.extras.evaluations, stored->seconds, c.extras.agnostic};
    // Task-agnostic evaluation as the run had it. Checkpoints older than the exemplars record:
    // on (default exemplars) when its stored metrics have it.
    engine::RunSettings settings;
    const bool agnostic = !c.extras.evaluations.empty() && !c.extras.evaluations.back().agnostic_accuracy.empty();
    settings.agnostic.exemplars_per_class = stored->exemplars_per_class.value_or(agnostic ? RunOptions{}.exemplars : 0);
    settings.agnostic.seed = den.config().seed;
    warn_if_rebuilt(prior, settings, o.checkpoint);
    const engine::RunResult result = engine::resume_stream(
        den, index, [&stream](int64_t j) { return stream.task(j); }, prior, callbacks, settings);
    extras.evaluations = result.evaluations;
    extras.run = stored;
    extras.run->num_tasks = std::max(stored->num_tasks, index);
    extras.run->seconds = result.seconds;
    extras.agnostic = result.agnostic;
    extras.normalization = feature_normalization(r.normalization, scaling);
  } else {
    engine::Task task = stream.task(index);
    task.name += " (add-task)";
    const int64_t exemplars = stored && stored->exemplars_per_class ? *stored->exemplars_per_class
                                                                    : RunOptions{}.exemplars;
    extras = learn_outside_stream(c, task, exemplars, callbacks.progress);
  }
  io::save_checkpoint(den, output, extras);
  print_learned(t, started, output, den);
  return kOk;
}

}  // namespace den::cli
