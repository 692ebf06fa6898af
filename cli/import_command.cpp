// `den import`: a TorchScript model trained elsewhere becomes task 1 of a checkpoint.

#include "cli/import_command.h"

#include "cli/exit_codes.h"
#include "cli/flag_checks.h"
#include "cli/image_data.h"
#include "cli/report.h"
#include "cli/run_options.h"
#include "cli/task_data.h"
#include "data/idx_reader.h"
#include "engine/evaluation/metrics.h"
#include "engine/evaluation/task_agnostic.h"
#include "engine/hyperparameters.h"
#include "serialization/checkpoint.h"
#include "serialization/torchscript_import.h"

#include <algorithm>
#include <cstdio>
#include <optional>

namespace den::cli {

namespace {

/// Decodes the image folder of the model's classes. Folders named by a class id are that class;
/// otherwise every folder is named and there is one per model output, in the order of the model's
/// outputs when sorted (as torchvision's ImageFolder numbers them for training): the folder sorted
/// o-th is output o, class output_classes[o], and keeps its name in `extras`.
data::Dataset imported_classes_from_folder(const std::string& dir, const data::ImagePreprocess& preprocess,
                                           const std::vector<int64_t>& output_classes, io::CheckpointExtras& extras) {
  ImageSamples images = load_image_samples(dir, preprocess, {}, 0, /*allow_unlabelled=*/false, /*quiet=*/false,
                                           extras.trunk ? &*extras.trunk : nullptr);
  if (images.class_names.empty()) return std::move(images.dataset);
  const auto outputs = static_cast<int64_t>(output_classes.size());
  if (images.class_names.size() != output_classes.size() || images.class_names.rbegin()->first != outputs - 1) {
    throw data::DataError("--data " + dir + ": " + std::to_string(images.class_names.size()) + " class folders are "
                          "named (" + images.class_names.begin()->second + ", ...), but the model has " +
                          std::to_string(outputs) + " outputs: name the folders by class id (0/, 1/, ...), or give "
                          "one named folder per output, which are matched to the outputs in sorted order");
  }
  const at::Tensor to_class = at::tensor(output_classes, at::kLong);
  images.dataset.labels = to_class.index_select(0, images.dataset.labels);
  images.dataset.num_classes = to_class.max().item<int64_t>() + 1;
  for (const auto& [output, name] : images.class_names) extras.class_names[output_classes[output]] = name;
  return std::move(images.dataset);
}

/// Whether `path` names an ONNX model (.onnx) rather than a TorchScript archive.
bool is_onnx(const std::string& path) {
  return path.size() >= 5 && path.compare(path.size() - 5, 5, ".onnx") == 0;
}

}  // namespace

CLI::App* add_import_command(CLI::App& app, ImportOptions& o) {
  CLI::App* cmd = app.add_subcommand(
      "import", "Make a checkpoint whose task 1 is a PyTorch model (TorchScript of Conv2d, BatchNorm, pooling, Linear and ReLU layers)");
  engine::EngineConfig& c = o.engine;
  cmd->add_option("model", o.model, "TorchScript file (torch.jit.save of torch.jit.script or torch.jit.trace), or an "
                                    "ONNX model (named .onnx; torch.onnx.export, tf2onnx for Keras)")
      ->required();
  cmd->add_option("-o,--output", o.output, "Checkpoint to write")->required();
  cmd->add_option("--classes", o.classes, "Class id of each model output, comma separated (default 0..c-1)");
  cmd->add_option("--data", o.data_dir,
                  "Samples of the model's classes: an image folder (DIR/<class>/*.png|jpg; folders named by class "
                  "id, or by name in the order of the model's outputs), or train-images/labels IDX or train.csv "
                  "(labels = class ids). They are the exemplars for task-agnostic prediction and for later "
                  "single-class tasks; the model's accuracy on them is printed");
  add_image_flags(cmd, o.images);
  cmd->add_option("--exemplars", o.exemplars, "Samples kept per class from --data")
      ->check(at_least(0))
      ->capture_default_str();
  // The settings of the tasks learned next (den add-task reads them from the checkpoint): the
  // preset's, as in den run, with the flags given taking precedence.
  add_preset_option(cmd, o.preset);
  cmd->add_option_function<std::string>(
         "--input-shape", [&c](const std::string& text) { engine::from_text(text, c.input_shape); },
         "C,H,W of the images a model with conv layers or a frozen trunk reads, or D for flat features "
         "(default: from --data's IDX files)")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            std::vector<int64_t> shape;
            try {
              engine::from_text(text, shape);
            } catch (const std::invalid_argument& e) {
              return e.what();
            }
            const bool ok = (shape.size() == 3 || shape.size() == 1) &&
                            std::all_of(shape.begin(), shape.end(), [](int64_t d) { return d >= 1; });
            return ok ? std::string() : text + " must be C,H,W (three sizes >= 1) or D";
          },
          ""));
  cmd->add_option("--trunk", o.trunk,
                  "The frozen trunk (what runs before den's layers and never learns) ends after this top-level "
                  "module of the model (default: the shortest after which the rest maps to den layers; none: no "
                  "trunk, refuse what does not map)");
  cmd->add_option("--max-iter", c.max_iter, "Iterations per training phase of later tasks")->capture_default_str();
  cmd->add_option("--batch-size", c.batch_size, "Mini-batch size of later tasks")->capture_default_str();
  cmd->add_option("--lr", c.lr, "Adam learning rate of later tasks")->capture_default_str();
  cmd->add_option("--l2", c.l2, "L2 strength")->capture_default_str();
  cmd->add_option("--mu", c.mu, "L1 strength")->capture_default_str();
  cmd->add_option("--lambda", c.lambda, "Drift penalty toward the previous task's weights")->capture_default_str();
  cmd->add_option("--k", c.k, "Units added per hidden layer by dynamic expansion")->capture_default_str();
  cmd->add_option("--tau", c.tau, "Expand when the validation loss after selective retraining exceeds tau")
      ->capture_default_str();
  cmd->add_flag("--freeze-existing", c.freeze_existing,
                "Grow only: later tasks never change the imported units");
  cmd->add_option("--eval-every", c.eval_every, "Iterations between validation evaluations")->capture_default_str();
  cmd->add_option("--seed", c.seed, "Random seed of later tasks and of the exemplar draw")->capture_default_str();
  o.command = cmd;
  return cmd;
}

int import_command(const ImportOptions& o) {
  check_writable(o.output);
  check_distinct_files({{"-o", o.output}}, {{"model", o.model}});
  io::ImportOptions options;
  if (!o.classes.empty()) options.classes = parse_classes(o.classes, "--classes");
  options.config = o.engine;
  apply_preset(o.preset, o.command, options.config);
  options.config.input_shape = o.engine.input_shape;  // not a preset's setting
  options.trunk = o.trunk;
  // --data's samples: task 1's exemplars, and (IDX) the images' shape for a conv model. An image
  // folder is decoded after the import, for the model's input shape, which the flags give.
  const bool image_folder = !o.data_dir.empty() && data::is_image_folder(o.data_dir);
  std::optional<data::Dataset> samples;
  if (!o.data_dir.empty() && !image_folder) samples = data::load_half(o.data_dir, data::Half::Train);
  if (options.config.input_shape.empty() && samples) options.config.input_shape = image_shape(*samples);
  // The checkpoint keeps how images become the input when an image folder or the image flags say it.
  const bool image_flags = flag_given(o.command, "--image-size") || flag_given(o.command, "--mean") ||
                           flag_given(o.command, "--std");
  std::optional<data::ImagePreprocess> preprocess;
  if (image_folder || image_flags) preprocess = preprocess_from_flags(o.images, options.config.input_shape);
  io::ImportedModel imported = is_onnx(o.model) ? io::import_onnx(o.model, options) : io::import_torchscript(o.model, options);
  const engine::Engine& den = imported.engine;
  for (const io::ImportedLayer& layer : imported.layers) {
    std::printf("  %-16s %s\n", layer.module.c_str(), layer.type.c_str());
  }
  if (imported.trunk) {
    std::printf("frozen trunk: up to '%s', %s in, %s features out (%.1f MB); den's layers learn on its features\n",
                imported.trunk->cut.c_str(), engine::to_text(imported.trunk->input_shape).c_str(),
                engine::to_text(imported.trunk->feature_shape).c_str(), imported.trunk->module.size() / 1e6);
  }
  io::CheckpointExtras extras;
  extras.trunk = imported.trunk;
  if (preprocess) extras.images = to_image_input(*preprocess);
  if (image_folder) samples = imported_classes_from_folder(o.data_dir, *preprocess, imported.output_classes, extras);

  // Task 1's entry of the task-agnostic state: its classes, calibration (1, 0), and exemplars
  // drawn from --data as a learned task's are drawn from its validation split.
  engine::AgnosticOptions agnostic;
  agnostic.exemplars_per_class = o.exemplars;
  agnostic.seed = o.engine.seed;
  engine::TaskAgnosticClassifier classifier(agnostic);
  engine::Task task;
  task.name = den.history().front().name;
  task.num_classes = static_cast<int64_t>(imported.output_classes.size());
  task.output_classes = imported.output_classes;
  if (samples) {
    // An image folder went through the trunk as it decoded.
    task.val_x = network_input(extras, den.input_dim(), samples->features, "--data " + o.data_dir, false,
                               image_folder && extras.trunk);
    task.val_y = output_labels(*samples, imported.output_classes, "--data " + o.data_dir);
    const double accuracy = engine::accuracy(den.predict(1, task.val_x), task.val_y);
    std::printf("the imported model's accuracy on the %lld samples of %s: %.4f\n",
                static_cast<long long>(samples->size()), o.data_dir.c_str(), accuracy);
  }
  classifier.add_task(1, task);
  extras.agnostic = classifier.state();
  io::save_checkpoint(den, o.output, extras);

  const std::string hidden = engine::layers_to_text(den.config().layers);
  std::printf("imported %s: %lld inputs, hidden layers %s, %lld classes, %lld parameters; %lld exemplars kept; "
              "checkpoint written to %s\n",
              o.model.c_str(), static_cast<long long>(den.input_dim()), hidden.c_str(),
              static_cast<long long>(task.num_classes), static_cast<long long>(den.num_params()),
              static_cast<long long>(classifier.memory_size()), o.output.c_str());
  if (classifier.memory_size() == 0) {
    std::printf("note: no sample of the imported classes is kept (no --data, or --exemplars 0). Later tasks still learn "
                "and the imported head stays exact, but among all classes den cannot weigh the new tasks' scores "
                "against the imported classes', so old-class samples are taken for new classes more often "
                "(docs/image-request.md#old-samples). A few samples per old class with --data avoid most of it.\n");
  }
  return kOk;
}

}  // namespace den::cli
