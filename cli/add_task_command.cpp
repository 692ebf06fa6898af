// `den add-task`.

#include "cli/add_task_command.h"

#include "cli/exit_codes.h"
#include "cli/flag_checks.h"
#include "cli/image_data.h"
#include "cli/interrupt.h"
#include "cli/progress.h"
#include "cli/report.h"
#include "cli/run_checkpoints.h"
#include "cli/task_data.h"
#include "data/normalize.h"
#include "engine/evaluation/metrics.h"
#include "engine/training/threads.h"

#include <chrono>
#include <cmath>
#include <cstdio>

namespace den::cli {

namespace {

/// Copies what a checkpoint says about its inputs into the extras written next: the normalization,
/// the image input, the class names and the frozen trunk.
void keep_inputs(const io::CheckpointExtras& from, io::CheckpointExtras& to) {
  to.normalization = from.normalization;  // the inputs the network was first trained on
  to.images = from.images;
  to.class_names = from.class_names;
  to.trunk = from.trunk;
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
  keep_inputs(c.extras, extras);
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
  if (!flag_given(o.command, "--data")) {
    throw std::invalid_argument("add-task " + o.checkpoint + ": give the task's samples with --data DIR");
  }
  const std::string& dir = o.run.data_dir;
  data::Dataset train, test;
  bool through_trunk = false;  // image folders go through the trunk as they decode
  if (data::is_image_folder(dir)) {
    // Images prepared as the checkpoint's network expects; a class folder with a new name gets the
    // next free class id, and the checkpoint keeps its name.
    const data::ImagePreprocess preprocess = checkpoint_preprocess(c, "--data " + dir);
    ImageSamples images = load_image_samples(dir, preprocess, c.extras.class_names, next_free_class(c),
                                             /*allow_unlabelled=*/false, o.quiet,
                                             c.extras.trunk ? &*c.extras.trunk : nullptr);
    through_trunk = images.through_trunk;
    train = std::move(images.dataset);
    for (const auto& [id, name] : images.class_names) {
      if (!c.extras.class_names.count(id) && !o.quiet) {
        std::printf("class folder '%s' is the new class %lld\n", name.c_str(), static_cast<long long>(id));
      }
      c.extras.class_names[id] = name;
    }
    if (!c.extras.images) c.extras.images = to_image_input(preprocess);
  } else {
    train = data::load_half(dir, data::Half::Train);
    if (data::has_half(dir, data::Half::Test)) test = data::load_half(dir, data::Half::Test);
  }
  const std::vector<int64_t> classes = o.classes.empty() ? classes_in(train) : parse_classes(o.classes, "--classes");
  // Raw samples get the normalization the network was trained with, or go through its frozen trunk.
  data::Dataset scaled_train = train, scaled_test = test;
  scaled_train.features =
      network_input(c.extras, den.input_dim(), train.features, "--data " + dir, o.quiet, through_trunk);
  if (test.size() > 0) {
    scaled_test.features = network_input(c.extras, den.input_dim(), test.features, "--data " + dir, o.quiet);
  }

  std::string name = "classes[";
  for (size_t i = 0; i < classes.size(); ++i) name += (i > 0 ? "," : "") + class_label(classes[i], c.extras.class_names);
  name += "] (add-task --data)";
  const engine::AgnosticState* memory = c.extras.agnostic ? &*c.extras.agnostic : nullptr;
  const engine::Task task = task_from_samples(name, scaled_train, scaled_test, classes, memory,
                                              o.run.stream.val_fraction, den.config().seed + den.num_tasks());
  const int64_t t = den.num_tasks() + 1;
  engine::configure_threads(o.threads);
  RunProgress progress("den", t, o.quiet, nullptr);  // task t of t: the ETA is this task's
  print_table_header(stdout);
  const auto started = std::chrono::steady_clock::now();
  const io::CheckpointExtras extras = learn_outside_stream(c, task, o.exemplars, interruptible(progress.callback()));
  io::save_checkpoint(den, output, extras);
  print_learned(t, started, output, den);
  return kOk;
}


}  // namespace

CLI::App* add_add_task_command(CLI::App& app, AddTaskOptions& o) {
  CLI::App* cmd = app.add_subcommand(
      "add-task", "Load a checkpoint, learn one more task from data, and write the checkpoint back");
  RunOptions& r = o.run;
  cmd->add_option("checkpoint", o.checkpoint, "Checkpoint to extend")->required();
  cmd->add_option("-o,--output", o.output, "Write the extended checkpoint here (default: in place)");
  cmd->add_option("--data", r.data_dir,
                  "Data directory (default: the checkpoint's run). An image folder (DIR/<class>/*.png|jpg), or with "
                  "--classes, or for a checkpoint without a run record (den import): a folder of this task's own "
                  "samples, labels = class ids (train-images/labels IDX or train.csv; t10k-*/test.csv, if there, are "
                  "its test samples)");
  cmd->add_option("--classes", o.classes,
                  "The task's classes, comma separated (default: the labels in --data); one class learns it against "
                  "the exemplars of the classes already known");
  cmd->add_option("--protocol", r.protocol, "Task stream: permuted, split or one-vs-rest (default: the checkpoint's)")
      ->check(one_of({"permuted", "split", "one-vs-rest"}));
  cmd->add_option("--exemplars", o.exemplars, "With --data of the task's own samples: exemplars kept per class")
      ->check(at_least(0))
      ->capture_default_str();
  cmd->add_option("--task-index", o.task_index,
                  "Which task of the stream to learn (default: the one after the checkpoint's last)")
      ->check(at_least(1));
  cmd->add_option("--classes-per-task", r.stream.classes_per_task, "Classes per task (split protocol)")
      ->check(at_least(1));
  cmd->add_option("--train-limit", r.stream.train_limit, "At most N training samples (0 = all)")
      ->check(at_least(0));
  cmd->add_option("--val-fraction", r.stream.val_fraction, "Fraction of the training file held out for validation")
      ->check(between(0.0, 0.9));
  cmd->add_option("--normalize", r.normalization, "Feature normalization: none, minmax or standardize")
      ->check(one_of({"none", "minmax", "standardize"}));
  cmd->add_option("--seed", r.stream.seed, "Seed of the task stream (default: the checkpoint's)");
  cmd->add_option("--threads", o.threads, "Threads for the matrix products (0 = all cores)")
      ->check(at_least(0));
  cmd->add_flag("--quiet", o.quiet, "No progress output");
  add_label_gaps_flag(cmd, r.allow_label_gaps);
  o.command = cmd;
  return cmd;
}

namespace {

int add_task(AddTaskOptions& o) {
  const std::string output = o.output.empty() ? o.checkpoint : o.output;
  // The checkpoint first: a directory or a pipe named as the checkpoint is a checkpoint error (exit
  // 5), not an output one. Still before any training.
  io::LoadedCheckpoint c = io::load_checkpoint(o.checkpoint);
  check_writable(output);
  engine::Engine& den = c.engine;

  // The task's own samples: asked for with --classes, and the only kind of data a checkpoint
  // without a run record (den import) can take unless a stream protocol is named.
  RunOptions& r = o.run;
  const std::optional<io::RunInfo> stored = c.extras.run;
  // An image folder is always one task's own samples (class folders).
  const bool own_samples = flag_given(o.command, "--classes") ||
                           (flag_given(o.command, "--data") && data::is_image_folder(r.data_dir)) ||
                           (!stored && flag_given(o.command, "--data") && !flag_given(o.command, "--protocol"));
  if (own_samples) {
    return add_own_task(o, c, output);
  }
  // Stream flags default to the checkpoint's run; without one, --data is required.
  if (stored) {
    const RunOptions s = stored_options(r, den.config(), *stored);
    if (!flag_given(o.command, "--data")) r.data_dir = s.data_dir;
    if (!flag_given(o.command, "--protocol")) r.protocol = s.protocol;
    if (!flag_given(o.command, "--classes-per-task")) r.stream.classes_per_task = s.stream.classes_per_task;
    if (!flag_given(o.command, "--base-classes")) r.stream.base_classes = s.stream.base_classes;
    if (!flag_given(o.command, "--train-limit")) r.stream.train_limit = s.stream.train_limit;
    if (!flag_given(o.command, "--val-fraction")) r.stream.val_fraction = s.stream.val_fraction;
    if (!flag_given(o.command, "--normalize")) r.normalization = s.normalization;
    if (!flag_given(o.command, "--seed")) r.stream.seed = s.stream.seed;
  } else if (!flag_given(o.command, "--data")) {
    throw std::invalid_argument("add-task " + o.checkpoint + ": the checkpoint holds no `den run` record; "
                                "give the data with --data DIR");
  }
  const int64_t t = den.num_tasks() + 1;
  const int64_t index = o.task_index > 0 ? o.task_index : t;
  r.stream.protocol = data::parse_protocol(r.protocol);
  r.stream.num_tasks = index;
  if (o.task_index > 0) r.stream.names.num_tasks = "--task-index";
  r.quiet = o.quiet;
  engine::configure_threads(o.threads);

  // Image folders are prepared as the checkpoint's images were, so that the same images give the
  // same samples.
  if (c.extras.images) r.stored_images = to_preprocess(*c.extras.images);
  RunData data = load_files(r);
  const uint32_t fingerprint = data_fingerprint(data.files);
  const data::TaskStream stream(std::move(data.files.train), std::move(data.files.test), r.stream);
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
  RunProgress progress("den", t, o.quiet, nullptr);  // task t of t: the ETA is this task's
  callbacks.progress = interruptible(progress.callback());
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
    settings.negatives_from_memory = stored->negatives_from_memory;
    settings.agnostic.memory = stored->memory;
    warn_if_rebuilt(prior, settings, o.checkpoint);
    const engine::RunResult result = engine::resume_stream(
        den, index, [&stream](int64_t j) { return stream.task(j); }, prior, callbacks, settings);
    extras.evaluations = result.evaluations;
    extras.run = stored;
    extras.run->num_tasks = std::max(stored->num_tasks, index);
    extras.run->seconds = result.seconds;
    extras.agnostic = result.agnostic;
    keep_inputs(c.extras, extras);
    extras.normalization = feature_normalization(r.normalization, data.scaling);
  } else {
    engine::Task task = stream.task(index);
    task.name += " (add-task)";
    const int64_t exemplars = stored && stored->exemplars_per_class ? *stored->exemplars_per_class
                                                                    : RunOptions{}.exemplars;
    extras = learn_outside_stream(c, task, exemplars, callbacks.progress);
  }
  if (!extras.images && data.images) extras.images = to_image_input(*data.images);
  extras.class_names.insert(data.class_names.begin(), data.class_names.end());  // keeps the names it has
  io::save_checkpoint(den, output, extras);
  print_learned(t, started, output, den);
  return kOk;
}

}  // namespace

int add_task_command(AddTaskOptions& o) {
  // NOTE: [interrupts]: the checkpoint is written only once the task is learned, so a stop before
  // leaves it as it was. Installed even when a script started den with SIGINT ignored.
  install_interrupt_handlers();
  try {
    return add_task(o);
  } catch (const Interrupted&) {
    std::fprintf(stderr, "den: interrupted; '%s' is unchanged\n", o.checkpoint.c_str());
    return kInterrupted;
  }
}

}  // namespace den::cli
