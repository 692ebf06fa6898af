// `den predict`: a checkpoint's predictions for new samples, task-agnostic or for one task.

#include "cli/predict_command.h"

#include "cli/exit_codes.h"
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

/// The samples to predict, raw as the user has them, and their labels when the input has some.
data::Dataset read_inputs(const PredictOptions& o) {
  if (!o.data_dir.empty() == !o.csv.empty()) {
    throw std::invalid_argument("predict: give exactly one of --data DIR and --csv FILE");
  }
  if (!o.csv.empty()) {
    data::CsvOptions options;
    options.labelled = false;
    return data::load_csv(o.csv, options);
  }
  return data::load_half(o.data_dir, o.split == "train" ? data::Half::Train : data::Half::Test);
}

std::string class_name(int64_t c) { return c < 0 ? std::string("rest") : std::to_string(c); }

}  // namespace

CLI::App* add_predict_command(CLI::App& app, PredictOptions& o) {
  CLI::App* cmd = app.add_subcommand(
      "predict", "Predict the classes of new samples with a checkpoint: among all classes seen, or for one task");
  cmd->add_option("checkpoint", o.checkpoint, "Checkpoint file")->required();
  cmd->add_option("--data", o.data_dir, "Data directory: predicts its test files (t10k-* IDX or test.csv; --split) "
                                        "and prints the accuracy against their labels");
  cmd->add_option("--split", o.split, "Which half of --data: test or train")
      ->check(CLI::IsMember({"test", "train"}))
      ->capture_default_str();
  cmd->add_option("--csv", o.csv, "CSV of raw features, one sample per line, no label column");
  cmd->add_option("--task", o.task, "Task-aware: this task's head only (default: task-agnostic)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("-o,--output", o.output, "CSV of predictions (default: stdout)");
  cmd->add_flag("--scores", o.scores, "Add every class's score to each row");
  return cmd;
}

int predict_command(const PredictOptions& o) {
  if (!o.output.empty()) check_writable(o.output);
  const io::LoadedCheckpoint c = io::load_checkpoint(o.checkpoint);
  const engine::Engine& den = c.engine;
  if (o.task > den.num_tasks()) {
    throw std::invalid_argument("--task " + std::to_string(o.task) + ": the checkpoint has tasks 1.." +
                                std::to_string(den.num_tasks()));
  }
  const data::Dataset inputs = read_inputs(o);
  const int64_t n = inputs.features.size(0);  // inputs.size() counts labels, which a CSV to predict has none of
  const std::string source = o.csv.empty() ? o.data_dir : o.csv;
  if (inputs.dim() != den.input_dim()) {
    throw data::DataError(source + ": samples have " + std::to_string(inputs.dim()) + " features but the model takes " +
                          std::to_string(den.input_dim()));
  }
  // Raw inputs get the normalization the network was trained with.
  data::FeatureScaling scaling;
  if (c.extras.normalization) scaling = {c.extras.normalization->shift, c.extras.normalization->scale};
  const at::Tensor x = data::apply_scaling(inputs.features, scaling);

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

  std::ostringstream out;
  out << "sample,class,score";
  if (o.scores) {
    for (int64_t k : columns) out << ",score_" << class_name(k);
  }
  out << "\n";
  const at::Tensor all = scores.contiguous();
  const double* s = all.data_ptr<double>();
  char number[32];
  for (int64_t i = 0; i < n; ++i) {
    std::snprintf(number, sizeof number, "%.6g", best[i].item<double>());
    out << i << "," << class_name(predicted[i].item<int64_t>()) << "," << number;
    if (o.scores) {
      for (size_t k = 0; k < columns.size(); ++k) {
        std::snprintf(number, sizeof number, "%.6g", s[i * static_cast<int64_t>(columns.size()) + k]);
        out << "," << number;
      }
    }
    out << "\n";
  }
  if (o.output.empty()) {
    std::fputs(out.str().c_str(), stdout);
  } else {
    io::write_file_atomically(o.output, out.str());
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
  std::fprintf(stderr, "%s%s\n", summary.c_str(), o.output.empty() ? "" : ("; written to " + o.output).c_str());
  return kOk;
}

}  // namespace den::cli
