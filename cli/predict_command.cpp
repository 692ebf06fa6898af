// `den predict`: a checkpoint's predictions for new samples, task-agnostic or for one task.

#include "cli/predict_command.h"

#include "cli/exit_codes.h"
#include "cli/flag_checks.h"
#include "cli/image_data.h"
#include "cli/task_data.h"
#include "cli/report.h"
#include "data/csv_reader.h"
#include "data/idx_reader.h"
#include "data/normalize.h"
#include "serialization/atomic_file.h"
#include "serialization/checkpoint.h"

#include <cstdio>
#include <sstream>

namespace den::cli {

namespace {

/// The samples to predict, raw as the user has them (images prepared as the checkpoint says, and
/// with a frozen trunk its features), and their labels when the input has some; `files` receives
/// an image folder's file names.
data::Dataset read_inputs(const PredictOptions& o, const io::LoadedCheckpoint& c, std::vector<std::string>& files) {
  if (static_cast<int>(!o.data_dir.empty()) + static_cast<int>(!o.csv.empty()) + static_cast<int>(!o.images.empty()) != 1) {
    throw std::invalid_argument("predict: give exactly one of --data DIR, --csv FILE and --images DIR");
  }
  if (!o.csv.empty()) {
    data::CsvOptions options;
    options.labelled = false;
    return data::load_csv(o.csv, options);
  }
  if (!o.images.empty()) {
    const data::ImagePreprocess preprocess = checkpoint_preprocess(c, "--images " + o.images);
    ImageSamples samples = load_image_samples(o.images, preprocess, c.extras.class_names, next_free_class(c),
                                              /*allow_unlabelled=*/true, o.quiet,
                                              c.extras.trunk ? &*c.extras.trunk : nullptr);
    for (const auto& [id, name] : samples.class_names) {
      if (!c.extras.class_names.count(id) && !o.quiet) {
        std::fprintf(stderr, "note: class folder '%s' names no class the checkpoint knows; its images count as "
                             "errors in the accuracy\n", name.c_str());
      }
    }
    files = std::move(samples.files);
    return std::move(samples.dataset);
  }
  return data::load_half(o.data_dir, o.split == "train" ? data::Half::Train : data::Half::Test);
}

/// `text` as one CSV field (RFC 4180): quoted, with quotes doubled, when it holds a comma, a quote or
/// a line break, as a file or class folder name may.
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char ch : text) quoted += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return quoted + "\"";
}

}  // namespace

CLI::App* add_predict_command(CLI::App& app, PredictOptions& o) {
  CLI::App* cmd = app.add_subcommand(
      "predict", "Predict the classes of new samples with a checkpoint: among all classes seen, or for one task");
  cmd->add_option("checkpoint", o.checkpoint, "Checkpoint file")->required();
  cmd->add_option("--data", o.data_dir, "Data directory: predicts its test files (t10k-* IDX or test.csv; --split) "
                                        "and prints the accuracy against their labels");
  cmd->add_option("--split", o.split, "Which half of --data: test or train")
      ->check(one_of({"test", "train"}))
      ->capture_default_str();
  cmd->add_option("--csv", o.csv, "CSV of raw features, one sample per line, no label column");
  cmd->add_option("--images", o.images,
                  "Image folder: class folders (DIR/<class>/*.png|jpg; the accuracy is printed) or images directly "
                  "in DIR; each row names its file");
  cmd->add_flag("-q,--quiet", o.quiet, "No progress line while images decode");
  cmd->add_option("--task", o.task, "Task-aware: this task's head only (default: task-agnostic)")
      ->check(at_least(1));
  cmd->add_option("-o,--output", o.output, "CSV of predictions (default or -: standard output)");
  cmd->add_flag("--scores", o.scores, "Add every class's score to each row");
  return cmd;
}

int predict_command(const PredictOptions& o) {
  const std::string output = o.output == "-" ? std::string() : o.output;  // -o -: standard output
  if (!output.empty()) check_writable(output);
  check_distinct_files({{"-o", output}}, {{"checkpoint", o.checkpoint}, {"--csv", o.csv}});
  const io::LoadedCheckpoint c = io::load_checkpoint(o.checkpoint);
  const engine::Engine& den = c.engine;
  if (o.task > den.num_tasks()) {
    throw std::invalid_argument("--task " + std::to_string(o.task) + ": the checkpoint has tasks 1.." +
                                std::to_string(den.num_tasks()));
  }
  std::vector<std::string> files;
  const data::Dataset inputs = read_inputs(o, c, files);
  const int64_t n = inputs.features.size(0);  // inputs.size() counts labels, which a CSV to predict has none of
  const std::string source = !o.csv.empty() ? o.csv : !o.images.empty() ? o.images : o.data_dir;
  // Raw inputs get the normalization the network was trained with, or go through its frozen trunk.
  // Images went through the trunk as they decoded.
  const at::Tensor x = network_input(c.extras, den.input_dim(), inputs.features, source, o.quiet,
                                     !o.images.empty() && c.extras.trunk);

  // Scores per column, and the class of each column (-1: a one-vs-rest task's "rest").
  at::Tensor scores, best_column;
  std::vector<int64_t> columns;
  if (o.task == 0) {
    const engine::TaskAgnosticClassifier classifier = io::agnostic_classifier(c, o.checkpoint);
    // The class is the argmax of the calibrated class scores (NOTE: [task-agnostic prediction]),
    // taken before the softmax so that rounding cannot break a near tie otherwise than the
    // classifier (and the exported module) does; the score is the softmax, a probability among all
    // classes seen.
    const at::Tensor class_scores = classifier.class_scores(den, x);
    best_column = class_scores.argmax(1);
    scores = at::softmax(class_scores, 1);
    columns = classifier.classes();
  } else {
    scores = den.predict_scores(o.task, x).to(at::kDouble);
    best_column = scores.argmax(1);
    if (c.extras.agnostic) {
      columns = c.extras.agnostic->output_classes[o.task - 1];
    } else {
      for (int64_t k = 0; k < scores.size(1); ++k) columns.push_back(k);
    }
  }
  const at::Tensor best = scores.gather(1, best_column.unsqueeze(1)).squeeze(1);
  const at::Tensor predicted = at::tensor(columns, at::kLong).index_select(0, best_column);

  // Classes print as their names when image folders gave them one; the first column is the
  // image's file, or the sample's index.
  const std::map<int64_t, std::string>& names = c.extras.class_names;
  std::ostringstream out;
  out << (files.empty() ? "sample" : "file") << ",class,score";
  if (o.scores) {
    for (int64_t k : columns) out << "," << csv_field("score_" + class_label(k, names));
  }
  out << "\n";
  const at::Tensor all = scores.contiguous();
  const double* s = all.data_ptr<double>();
  char number[32];
  for (int64_t i = 0; i < n; ++i) {
    std::snprintf(number, sizeof number, "%.6g", best[i].item<double>());
    if (files.empty()) {
      out << i;
    } else {
      out << csv_field(files[static_cast<size_t>(i)]);
    }
    out << "," << csv_field(class_label(predicted[i].item<int64_t>(), names)) << "," << number;
    if (o.scores) {
      for (size_t k = 0; k < columns.size(); ++k) {
        std::snprintf(number, sizeof number, "%.6g", s[i * static_cast<int64_t>(columns.size()) + k]);
        out << "," << number;
      }
    }
    out << "\n";
  }
  if (output.empty()) {
    std::fputs(out.str().c_str(), stdout);
  } else {
    io::write_file_atomically(output, out.str());
  }

  std::string summary = std::to_string(n) + " samples predicted " +
                        (o.task == 0 ? "among " + std::to_string(columns.size()) + " classes (task-agnostic)"
                                     : "by task " + std::to_string(o.task));
  if (inputs.labels.defined()) {
    const double accuracy = predicted.eq(inputs.labels).to(at::kDouble).mean().item<double>();
    char text[64];
    std::snprintf(text, sizeof text, "; accuracy %.4f", accuracy);
    summary += text;
  }
  std::fprintf(stderr, "%s%s\n", summary.c_str(), output.empty() ? "" : ("; written to " + output).c_str());
  return kOk;
}

}  // namespace den::cli
