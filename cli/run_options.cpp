#include "cli/run_options.h"

#include "cli/config_file.h"
#include "cli/flag_checks.h"
#include "cli/hyperparameter_flags.h"
#include "cli/report.h"
#include "data/idx_reader.h"
#include "data/image_folder.h"
#include "engine/hyperparameters.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

namespace den::cli {

namespace {

/// A flag that only some methods use, and those methods.
struct MethodFlag {
  std::string flag;
  std::vector<std::string> methods;
  bool run_only = false;  ///< a `den run` flag only (`den compare --resume` means something else)
};

const std::vector<MethodFlag>& method_flags() {
  static const std::vector<MethodFlag> flags = [] {
    std::vector<MethodFlag> f;
    for (const std::string& flag : den_only_flags()) f.push_back({flag, {"den"}});
    // Checkpoints hold a DEN engine (serialization/checkpoint.h).
    f.push_back({"--checkpoint", {"den"}, true});
    f.push_back({"--resume", {"den"}, true});
    f.push_back({"--l2-lambda", {"l2"}});
    f.push_back({"--ewc-lambda", {"ewc"}});
    f.push_back({"--ewc-samples", {"ewc"}});
    f.push_back({"--lwf-lambda", {"lwf"}});
    f.push_back({"--distill-temperature", {"lwf"}});
    f.push_back({"--derpp-alpha", {"der++"}});
    f.push_back({"--derpp-beta", {"der++"}});
    f.push_back({"--ranpac-dim", {"ranpac"}});
    return f;
  }();
  return flags;
}

}  // namespace

void add_run_flags(CLI::App* cmd, RunOptions& o) {
  engine::EngineConfig& c = o.engine;
  data::StreamOptions& s = o.stream;

  add_config_flags(cmd, o.config_path, o.print_config);

  cmd->add_option("--data", o.data_dir, "Data directory: IDX files (train-/t10k-images/labels, .gz or raw), "
                                        "train.csv/test.csv (label in column 0), or image folders: DIR/train/<class>/ "
                                        "and DIR/test/<class>/ (or val/), or DIR/<class>/ alone (20% held out for testing)")
      ->capture_default_str();
  add_image_flags(cmd, o.images);
  cmd->add_option("--protocol", o.protocol, "Task stream: permuted, split or one-vs-rest")
      ->check(one_of({"permuted", "split", "one-vs-rest"}))
      ->capture_default_str();
  cmd->add_option("--tasks", s.num_tasks, "Number of tasks (with --base-classes: default all the data allows)")
      ->check(at_least(1))
      ->capture_default_str();
  cmd->add_option("--classes-per-task", s.classes_per_task, "Classes per task (split protocol)")
      ->check(at_least(1))
      ->capture_default_str();
  cmd->add_option("--base-classes", s.base_classes,
                  "New-classes scenario (split protocol): task 1 learns classes 0..K-1, each later task adds one "
                  "new class, as a binary task against as many samples of the classes known so far")
      ->type_name("K");
  cmd->add_option("--train-limit", s.train_limit, "At most N training samples per task (0 = all)")
      ->check(at_least(0))
      ->capture_default_str();
  cmd->add_option("--val-fraction", s.val_fraction, "Fraction of the training file held out for validation")
      ->check(above_up_to(0.0, 0.9))
      ->capture_default_str();
  cmd->add_option("--holdout", o.holdout,
                  "Evaluate on this fraction of the training file, held out from training, instead of the test "
                  "file, which is then not read (for choosing hyperparameters; 0 = off)")
      ->check(between(0.0, 0.5))
      ->capture_default_str();
  cmd->add_option("--normalize", o.normalization, "Feature normalization: none, minmax or standardize "
                                                  "(IDX bytes are already scaled to [0,1])")
      ->check(one_of({"none", "minmax", "standardize"}))
      ->capture_default_str();
  add_preset_option(cmd, o.preset);
  // Every EngineConfig field with a flag, from the table; DEN's own settings after the common
  // ones (check_method_flags refuses them for the other methods).
  add_hyperparameter_flags(cmd, c);
  // The baselines' own settings.
  cmd->add_option("--l2-lambda", o.baseline.l2_transfer, "l2: lambda of lambda*||W - W_prev||^2 toward the previous task")
      ->capture_default_str();
  cmd->add_option("--ewc-lambda", o.baseline.ewc_lambda, "ewc: lambda of (lambda/2)*sum F (W - W*)^2")
      ->capture_default_str();
  cmd->add_option("--ewc-samples", o.baseline.fisher_samples, "ewc: training samples the diagonal Fisher is estimated on")
      ->check(at_least(1))
      ->capture_default_str();
  cmd->add_option("--lwf-lambda", o.baseline.lwf_lambda, "lwf: weight of the distillation loss on the earlier heads")
      ->capture_default_str();
  cmd->add_option("--distill-temperature", o.baseline.temperature, "lwf: temperature of the distillation softmax")
      ->capture_default_str();
  cmd->add_option("--derpp-alpha", o.baseline.derpp_alpha, "der++: weight of the replayed logits' squared error")
      ->capture_default_str();
  cmd->add_option("--derpp-beta", o.baseline.derpp_beta, "der++: weight of the replayed labels' cross-entropy")
      ->capture_default_str();
  cmd->add_option("--ranpac-dim", o.baseline.ranpac_dim, "ranpac: width of the random projection")
      ->check(at_least(1))
      ->capture_default_str();
  cmd->add_option("--memory", o.baseline.memory,
                  "Samples kept from earlier tasks, the same budget for every method: icarl and der++ replay them, "
                  "den and the methods with a head per task calibrate task-agnostic prediction on them (instead of "
                  "--exemplars per class); lwf, ncm and ranpac keep none (0 = --exemplars)")
      ->check(at_least(0))
      ->capture_default_str();

  cmd->add_option("--exemplars", o.exemplars,
                  "Task-agnostic prediction: validation samples kept per class to calibrate the task heads "
                  "against each other (0 = off)")
      ->check(at_least(0))
      ->capture_default_str();
  cmd->add_flag("--memory-negatives", o.memory_negatives,
               "den and the methods with a head per task: every task after the first gets a 'rest' output learned "
               "from the calibration memory's samples of the other classes, so that its head learns to reject them");
  cmd->add_option("--threads", o.threads, "Threads for the matrix products; element-wise ops use one (0 = all cores)")
      ->check(at_least(0))
      ->capture_default_str();
  cmd->add_flag("--quiet", o.quiet, "No progress output (results table only)");
  cmd->add_option("--log", o.log_path,
                  "Write one JSON line per validation step to this file: method, task, phase, iteration, losses, "
                  "elapsed seconds");
  add_label_gaps_flag(cmd, o.allow_label_gaps);
  o.command = cmd;
}

void add_preset_option(CLI::App* command, std::string& preset) {
  command->add_option("--preset", preset,
                      "Hyperparameters the flags not given take: den (den's own, chosen on validation data) or "
                      "released (the authors' released code)")
      ->check(CLI::Validator(
          [](std::string& name) -> std::string {
            try {
              engine::preset(name);
            } catch (const std::invalid_argument& e) {
              return e.what();
            }
            return {};
          },
          ""))
      ->type_name("TEXT:{den,released}")
      ->capture_default_str();
}

void add_label_gaps_flag(CLI::App* command, bool& allow) {
  command->add_flag("--allow-label-gaps", allow,
                    "Accept data in which some class below the largest label has no training sample (refused by "
                    "default: those classes get outputs that never see a sample)");
}

bool flag_given(const CLI::App* command, const std::string& flag) {
  if (command == nullptr) return false;
  try {
    return command->count(flag) > 0;
  } catch (const CLI::OptionNotFound&) {
    return false;
  }
}

namespace {

/// The flag's entry in method_flags(), if `command` has it there (`den compare --resume` has not).
const MethodFlag* method_flag(const CLI::App* command, const std::string& flag) {
  const bool compare = command != nullptr && command->get_name() == "compare";
  for (const MethodFlag& f : method_flags()) {
    if (f.flag == flag && !(compare && f.run_only)) return &f;
  }
  return nullptr;
}

bool used_by(const MethodFlag& f, const std::vector<std::string>& methods) {
  return std::any_of(methods.begin(), methods.end(), [&f](const std::string& m) {
    return std::find(f.methods.begin(), f.methods.end(), m) != f.methods.end();
  });
}

}  // namespace

bool flag_applies(const CLI::App* command, const std::string& flag, const std::vector<std::string>& methods) {
  const MethodFlag* f = method_flag(command, flag);
  return f == nullptr || used_by(*f, methods);
}

void check_method_flags(const CLI::App* command, const std::vector<std::string>& methods) {
  const bool compare = command != nullptr && command->get_name() == "compare";
  for (const MethodFlag& f : method_flags()) {
    if ((compare && f.run_only) || !flag_given(command, f.flag)) continue;
    if (!used_by(f, methods)) {
      throw std::invalid_argument(f.flag + " is a setting of method " + join(f.methods, ",") +
                                  ", which " + (compare ? "--methods " : "--method ") + join(methods, ",") +
                                  (compare ? " does not include" : " is not"));
    }
  }
}

void apply_preset(const std::string& name, const CLI::App* command, engine::EngineConfig& config) {
  const engine::EngineConfig preset = engine::preset(name);
  engine::visit_hyperparameters([&](const auto& h) {
    if (*h.flag == '\0' || !flag_given(command, h.flag)) config.*h.member = preset.*h.member;
  });
}

void resolve_options(RunOptions& o) {
  apply_preset(o.preset, o.command, o.engine);
  if (o.holdout > 0 && (!o.checkpoint_path.empty() || !o.resume_path.empty())) {
    throw std::invalid_argument("--holdout is for choosing hyperparameters and does not combine with --checkpoint "
                                "or --resume");
  }
  o.stream.protocol = data::parse_protocol(o.protocol);
  o.stream.seed = o.engine.seed;
  if (flag_given(o.command, "--base-classes")) {
    const std::string k = "--base-classes " + std::to_string(o.stream.base_classes);
    if (o.stream.protocol != data::Protocol::Split) {
      throw std::invalid_argument(k + " needs --protocol split (the new-classes scenario), not " + o.protocol);
    }
    if (o.stream.base_classes < 1) {
      throw std::invalid_argument(k + " is outside 1..C-1 (C: the classes of the data)");
    }
  }
  o.engine.validate();
  o.baseline.validate();
  // A missing GPU is a usage error before any data is read; a printed configuration may be meant
  // for another machine.
  if (!o.print_config) o.engine.resolved_device();
}

std::optional<ImageLayout> image_layout(const std::string& dir) {
  if (data::has_half(dir, data::Half::Train)) return std::nullopt;  // IDX or CSV
  const std::filesystem::path root(dir);
  if (data::is_image_folder((root / "train").string())) {
    for (const char* test : {"test", "val"}) {
      std::error_code ec;
      if (std::filesystem::is_directory(root / test, ec)) return ImageLayout{(root / "train").string(), (root / test).string()};
    }
    return ImageLayout{(root / "train").string(), ""};
  }
  if (data::is_image_folder(dir)) return ImageLayout{dir, ""};
  return std::nullopt;
}

namespace {

/// How a run trained from scratch prepares its images: --input-shape C,H,W if given, else the first
/// image's channels and size (H = W = --image-size when that is given).
data::ImagePreprocess run_preprocess(const RunOptions& o, const std::string& train_dir) {
  std::vector<int64_t> shape = o.engine.input_shape;
  if (shape.empty()) {
    const std::string first = data::first_image(train_dir);
    const at::Tensor image = data::decode_image((std::filesystem::path(train_dir) / first).string());
    shape = {image.size(0), image.size(1), image.size(2)};
    if (o.images.image_size > 0) shape[1] = shape[2] = o.images.image_size;
    if (!o.quiet) {
      std::fprintf(stderr, "images as %lld x %lld x %lld (C x H x W), as the first image '%s' (--input-shape to choose)\n",
                   static_cast<long long>(shape[0]), static_cast<long long>(shape[1]), static_cast<long long>(shape[2]),
                   first.c_str());
    }
  }
  return preprocess_from_flags(o.images, shape);
}

/// The training and test images of `layout`, one class id per folder name in both; no test images
/// for a single folder.
RunData load_image_run(const RunOptions& o, const ImageLayout& layout) {
  RunData d;
  d.images = o.stored_images ? *o.stored_images : run_preprocess(o, layout.train);
  ImageSamples train = load_image_samples(layout.train, *d.images, {}, 0, false, o.quiet);
  d.class_names = train.class_names;
  d.files.train = std::move(train.dataset);
  if (layout.test.empty()) return d;  // load_files holds a part out for testing
  const ImageSamples test = load_image_samples(layout.test, *d.images, train.class_names, 0, false, o.quiet);
  for (const auto& [id, name] : test.class_names) {
    if (d.class_names.count(id) == 0) {
      throw data::DataError("class folder '" + name + "' of test folder '" + layout.test + "' is not in training "
                            "folder '" + layout.train + "'");
    }
  }
  d.files.test = test.dataset;
  const int64_t classes = std::max(d.files.train.num_classes, d.files.test.num_classes);
  d.files.train.num_classes = d.files.test.num_classes = classes;
  return d;
}

}  // namespace

RunData load_files(const RunOptions& o) {
  if (!o.quiet) std::fprintf(stderr, "loading %s\n", o.data_dir.c_str());
  RunData d;
  const std::optional<ImageLayout> layout = image_layout(o.data_dir);
  const bool tested_on_part = layout && layout->test.empty();
  if (layout) {
    d = load_image_run(o, *layout);
  } else {
    // Image preprocessing has nothing to act on: say so rather than ignore it.
    for (const auto& [flag, given] : {std::pair<const char*, bool>{"--image-size", o.images.image_size > 0},
                                      {"--mean", !o.images.mean.empty()},
                                      {"--std", !o.images.std.empty()}}) {
      if (given) {
        throw std::invalid_argument(std::string(flag) + " prepares image folders, but '" + o.data_dir +
                                    "' holds IDX or CSV files, which are used as they are");
      }
    }
    data::DirectoryOptions directory;
    directory.allow_label_gaps = o.allow_label_gaps;
    d.files = data::load_directory(o.data_dir, directory);
  }
  // --holdout F tests on a part of the training data; a single image folder is tested on one
  // anyway (kImageTestFraction unless --holdout says). Seeded apart from the stream's own
  // validation split, so that the two never coincide.
  const double held_out = o.holdout > 0 ? o.holdout : tested_on_part ? kImageTestFraction : 0.0;
  if (held_out > 0) {
    auto [fit, test] = data::split_train_val(d.files.train, held_out, o.engine.seed ^ 0x5eedf00dULL);
    d.files.train = std::move(fit);
    d.files.test = std::move(test);
    if (tested_on_part && !o.quiet) {
      std::fprintf(stderr, "testing on a seeded %.0f%% of '%s' (%lld images; DIR/train/ and DIR/test/ to choose)\n",
                   100 * held_out, layout->train.c_str(), static_cast<long long>(d.files.test.size()));
    }
  }
  if (layout && !o.allow_label_gaps) data::check_no_label_gaps(d.files.train, "image folder '" + layout->train + "'");
  d.scaling = data::normalize_(d.files.train, d.files.test, data::parse_normalization(o.normalization));
  return d;
}

RunData load_data_set(RunOptions& o) {
  RunData d = load_files(o);
  const data::TrainTest& files = d.files;
  set_input_shape(o.engine, files.train);
  if (o.stream.base_classes > 0 && !flag_given(o.command, "--tasks")) {
    const int64_t classes = std::max(files.train.num_classes, files.test.num_classes);
    // Out of range, the task stream refuses the base classes (with the valid range).
    if (o.stream.base_classes < classes) o.stream.num_tasks = 1 + classes - o.stream.base_classes;
  }
  return d;
}

std::vector<int64_t> image_shape(const data::Dataset& samples) {
  const std::vector<int64_t>& shape = samples.sample_shape;
  if (shape.size() == 2) return {1, shape[0], shape[1]};  // IDX images: one channel of rows x columns
  return shape.size() == 3 ? shape : std::vector<int64_t>{};
}

void set_input_shape(engine::EngineConfig& config, const data::Dataset& train) {
  if (!engine::has_conv(config.layers) || !config.input_shape.empty()) return;
  config.input_shape = image_shape(train);
  if (config.input_shape.empty()) {
    throw std::invalid_argument("--layers " + engine::layers_to_text(config.layers) + " has conv layers, but the data's "
                                "samples are " + std::to_string(train.dim()) + " flat features: give their shape with "
                                "--input-shape C,H,W");
  }
}

std::string stream_description(const RunOptions& o) {
  std::string text = data::to_string(o.stream.protocol);
  if (o.stream.base_classes > 0) {
    text += " (base classes " + std::to_string(o.stream.base_classes) + ", then one new class per task)";
  }
  return text;
}

void check_memory(const RunOptions& o, const data::TaskStream& stream) {
  const int64_t memory = o.baseline.memory;
  if (memory == 0) return;
  int64_t outputs = 0;
  for (int64_t c : stream.task_classes()) outputs += c;
  // Outputs >= classes: a split stream has one output per class, a permuted one a class per output
  // of every task, a one-vs-rest one a class and a rest per task.
  if (memory < outputs) {
    throw std::invalid_argument("--memory " + std::to_string(memory) + " is below the stream's " +
                                std::to_string(outputs) + " head outputs (" + std::to_string(stream.num_classes()) +
                                " classes): the memory must keep at least one sample of each");
  }
}

engine::RunSettings run_settings(const RunOptions& o) {
  engine::RunSettings settings;
  settings.agnostic.exemplars_per_class = o.exemplars;
  settings.agnostic.seed = o.engine.seed;
  settings.negatives_from_memory = o.memory_negatives;
  settings.agnostic.memory = o.baseline.memory;
  return settings;
}

}  // namespace den::cli
