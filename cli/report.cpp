#include "cli/report.h"

#include "cli/run_options.h"
#include "engine/hyperparameters.h"
#include "serialization/checkpoint.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <sstream>
#include <type_traits>

namespace den::cli {

std::string join(const std::vector<int64_t>& values, const char* sep) {
  std::ostringstream out;
  for (size_t i = 0; i < values.size(); ++i) out << (i ? sep : "") << values[i];
  return out.str();
}

std::string join(const std::vector<std::string>& values, const char* sep) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) out += (i ? sep : "") + values[i];
  return out;
}

int64_t sum(const std::vector<int64_t>& values) { return std::accumulate(values.begin(), values.end(), int64_t{0}); }

nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

namespace {

double mean(const std::vector<double>& values, size_t count) {
  double total = 0.0;
  for (size_t i = 0; i < count; ++i) total += values[i];
  return count > 0 ? total / static_cast<double>(count) : std::nan("");
}

/// Task-agnostic accuracy of the first `count` tasks, pooled over their samples.
double pooled_agnostic(const engine::TaskEvaluation& e, size_t count) {
  double correct = 0.0;
  int64_t samples = 0;
  for (size_t i = 0; i < count && i < e.agnostic_accuracy.size() && i < e.agnostic_samples.size(); ++i) {
    if (e.agnostic_samples[i] == 0) continue;  // its accuracy is NaN
    correct += e.agnostic_accuracy[i] * static_cast<double>(e.agnostic_samples[i]);
    samples += e.agnostic_samples[i];
  }
  return samples > 0 ? correct / static_cast<double>(samples) : std::nan("");
}

/// Square matrix with nulls above the diagonal (task j not yet seen after task i).
nlohmann::json matrix_json(const std::vector<std::vector<double>>& rows) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& row : rows) {
    nlohmann::json r = nlohmann::json::array();
    for (size_t j = 0; j < rows.size(); ++j) r.push_back(j < row.size() ? number_or_null(row[j]) : nlohmann::json());
    out.push_back(r);
  }
  return out;
}

}  // namespace

nlohmann::json config_json(const engine::EngineConfig& c) {
  nlohmann::json doc = nlohmann::json::object();
  // Fields resolved later (-1 = max_iter/10) are written as the value in effect.
  engine::visit_hyperparameters([&](const auto& h) {
    const auto value = h.effective_value(c);
    using T = std::decay_t<decltype(value)>;
    if constexpr (std::is_enum_v<T> || std::is_same_v<T, engine::Layers>) {
      doc[h.name] = engine::to_text(value);
    } else {
      doc[h.name] = value;
    }
  });
  return doc;
}

namespace {

/// The JSON report's object of a report struct: every field of its table (NOTE: [report fields] in
/// engine/task_report.h) under its JSON key, nested reports as arrays of objects.
template <typename S>
nlohmann::json fields_json(const S& s) {
  nlohmann::json doc = nlohmann::json::object();
  engine::visit_report_fields(static_cast<const S*>(nullptr), [&](const auto& field) {
    using T = typename std::decay_t<decltype(field)>::Value;
    if (*field.json_name() == '\0') return;
    if constexpr (std::is_same_v<T, std::vector<engine::PhaseResult>> || std::is_same_v<T, std::vector<engine::SplitPair>>) {
      nlohmann::json items = nlohmann::json::array();
      for (const auto& item : s.*field.member) items.push_back(fields_json(item));
      doc[field.json_name()] = items;
    } else if constexpr (!std::is_same_v<T, graph::Subnetwork>) {
      doc[field.json_name()] = s.*field.member;
    }
  });
  return doc;
}

}  // namespace

nlohmann::json task_json(const engine::TaskReport& r, const engine::TaskEvaluation& e, const nlohmann::json& curves) {
  nlohmann::json doc = fields_json(r);
  if (curves.is_array() && curves.size() == r.phases.size()) {
    for (size_t i = 0; i < r.phases.size(); ++i) doc["phases"][i]["curve"] = curves[i];
  }
  doc["test_accuracy"] = e.accuracy.back();
  doc["test_auroc"] = e.auroc.back();
  const bool agnostic = !e.agnostic_accuracy.empty();
  nlohmann::json per_task = nlohmann::json::array();
  for (double a : e.agnostic_accuracy) per_task.push_back(number_or_null(a));
  doc["task_agnostic_accuracy"] = agnostic ? per_task : nlohmann::json();
  const size_t seen = e.accuracy.size();
  if (seen >= 2) {
    doc["old_classes"] = {{"accuracy", number_or_null(mean(e.accuracy, seen - 1))},
                          {"task_agnostic_accuracy", number_or_null(pooled_agnostic(e, seen - 1))}};
    doc["new_classes"] = {{"accuracy", number_or_null(e.accuracy.back())},
                          {"task_agnostic_accuracy",
                           agnostic ? number_or_null(e.agnostic_accuracy.back()) : nlohmann::json()}};
  }
  return doc;
}

nlohmann::json final_json(const engine::RunResult& result) {
  return {{"avg_accuracy", result.avg_accuracy},
          {"avg_auroc", result.avg_auroc},
          {"task_agnostic_accuracy", number_or_null(result.avg_agnostic_accuracy)},
          {"agnostic_matrix", result.agnostic_matrix.empty() ? nlohmann::json() : matrix_json(result.agnostic_matrix)},
          {"accuracy_matrix", matrix_json(result.accuracy_matrix)},
          {"auroc_matrix", matrix_json(result.auroc_matrix)},
          {"bwt", result.bwt},
          {"bwt_auroc", result.bwt_auroc},
          {"params", result.params},
          {"base_params", result.base_params},
          {"params_ratio", result.base_params > 0 ? static_cast<double>(result.params) / result.base_params : 0.0},
          {"hidden_growth", result.hidden_growth},
          {"memory_samples", result.memory_samples},
          {"memory_bytes", result.memory_bytes},
          {"hidden_units", result.tasks.empty() ? std::vector<int64_t>{} : result.tasks.back().hidden_units},
          {"seconds", result.seconds}};
}

nlohmann::json run_settings_json(const RunOptions& o) {
  nlohmann::json doc = {{"method", o.method},
                        {"protocol", data::to_string(o.stream.protocol)},
                        {"data", o.data_dir},
                        {"preset", o.preset},
                        {"config", config_json(o.engine)},
                        {"stream",
                         {{"tasks", o.stream.num_tasks},
                          {"classes_per_task", o.stream.classes_per_task},
                          {"base_classes", o.stream.base_classes},
                          {"train_limit", o.stream.train_limit},
                          {"val_fraction", o.stream.val_fraction},
                          {"holdout", o.holdout},
                          {"normalize", o.normalization}}},
                        {"exemplars_per_class", o.exemplars},
                        {"memory", o.baseline.memory},
                        {"memory_negatives", o.memory_negatives}};
  if (o.method == "l2") doc["method_options"] = {{"l2_lambda", o.baseline.l2_transfer}};
  if (o.method == "ewc") {
    doc["method_options"] = {{"ewc_lambda", o.baseline.ewc_lambda}, {"ewc_samples", o.baseline.fisher_samples}};
  }
  if (o.method == "lwf") {
    doc["method_options"] = {{"lwf_lambda", o.baseline.lwf_lambda}, {"distill_temperature", o.baseline.temperature}};
  }
  if (o.method == "der++") {
    doc["method_options"] = {{"derpp_alpha", o.baseline.derpp_alpha}, {"derpp_beta", o.baseline.derpp_beta}};
  }
  if (o.method == "ranpac") doc["method_options"] = {{"ranpac_dim", o.baseline.ranpac_dim}};
  return doc;
}

namespace {

/// The settings, the tasks done, and the final figures (null for a run that did not finish).
nlohmann::json report_json(const RunOptions& o, const nlohmann::json& tasks, nlohmann::json final) {
  nlohmann::json doc = run_settings_json(o);
  doc["tasks"] = tasks;
  doc["partial"] = final.is_null();
  doc["final"] = std::move(final);
  return doc;
}

}  // namespace

nlohmann::json run_report_json(const RunOptions& o, const nlohmann::json& tasks, const engine::RunResult& result) {
  return report_json(o, tasks, final_json(result));
}

nlohmann::json partial_run_report_json(const RunOptions& o, const nlohmann::json& tasks) {
  return report_json(o, tasks, nullptr);
}

void check_writable(const std::string& path) {
  namespace fs = std::filesystem;
  std::string resolved;
  try {
    if (io::is_stream_output(path)) return;  // a device or pipe is written to as it is
    resolved = io::resolve_output(path);     // a link is written through to its target
  } catch (const io::WriteError& e) {
    throw OutputError(e.what());
  }
  const fs::path target(resolved);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw OutputError("cannot write '" + path + "': '" + dir.string() + "' " +
                      (fs::exists(dir, ec) ? "is a file, not a directory" : "does not exist"));
  }
  if (fs::is_directory(target, ec)) throw OutputError("cannot write '" + path + "': it is a directory");
  if (::access(dir.c_str(), W_OK) != 0) throw OutputError("cannot write '" + path + "': directory is not writable");
  // access() says yes to root everywhere, /proc included: create the temporary the write will need.
  std::string probe = (dir / ".den-write-check-XXXXXX").string();
  const int fd = ::mkstemp(probe.data());
  if (fd < 0) {
    throw OutputError("cannot write '" + path + "': cannot create a file in '" + dir.string() + "': " +
                      std::strerror(errno));
  }
  ::close(fd);
  ::unlink(probe.c_str());
}

namespace {

bool same_file(const std::string& a, const std::string& b) {
  namespace fs = std::filesystem;
  std::error_code ec_a, ec_b;
  const fs::path x = fs::weakly_canonical(a, ec_a), y = fs::weakly_canonical(b, ec_b);
  if (!ec_a && !ec_b && x == y) return true;
  std::error_code ec;
  return fs::exists(a, ec) && fs::exists(b, ec) && fs::equivalent(a, b, ec);
}

}  // namespace

void check_distinct_files(const std::vector<NamedFile>& outputs, const std::vector<NamedFile>& inputs) {
  for (size_t i = 0; i < outputs.size(); ++i) {
    const NamedFile& out = outputs[i];
    if (out.path.empty()) continue;
    const auto clash = [&](const NamedFile& other, const char* what) {
      if (other.path.empty() || !same_file(out.path, other.path)) return;
      throw std::invalid_argument(out.flag + " '" + out.path + "' is the same file as " + what + " " + other.flag +
                                  " '" + other.path + "': writing it would destroy that; give another path");
    };
    for (size_t j = i + 1; j < outputs.size(); ++j) clash(outputs[j], "the output");
    for (const NamedFile& in : inputs) clash(in, "the input");
  }
}

std::string json_text(const nlohmann::json& doc) {
  // A path or task name need not be UTF-8 (file names are bytes); an invalid byte becomes U+FFFD
  // instead of an exception after hours of training.
  return doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

void write_json_file(const std::string& path, const nlohmann::json& doc) { write_text_file(path, json_text(doc)); }

void write_text_file(const std::string& path, const std::string& text) {
  check_writable(path);
  io::write_file_atomically(path, text);  // io::WriteError on failure; the old file stays
}

void print_table_header(std::FILE* out) {
  std::fprintf(out, "%4s  %-18s %8s %8s %8s %8s  %-11s %9s %-9s %-9s %-9s %8s\n", "task", "name", "test_acc", "auroc",
               "avg_acc", "agn_acc", "hidden", "params", "selected", "added", "pruned", "seconds");
}

void print_table_row(std::FILE* out, const engine::TaskReport& r, const engine::TaskEvaluation& e) {
  const double avg = std::accumulate(e.accuracy.begin(), e.accuracy.end(), 0.0) / static_cast<double>(e.accuracy.size());
  // Task-agnostic: the mean over the tasks seen, as the final average is.
  char agnostic[16] = "       -";
  if (!e.agnostic_accuracy.empty()) {
    std::snprintf(agnostic, sizeof agnostic, "%8.4f", mean(e.agnostic_accuracy, e.agnostic_accuracy.size()));
  }
  std::fprintf(out, "%4lld  %-18s %8.4f %8.4f %8.4f %8s  %-11s %9lld %-9s %-9s %-9s %8.1f   split %s\n",
               static_cast<long long>(r.task), r.name.substr(0, 18).c_str(), e.accuracy.back(), e.auroc.back(), avg,
               agnostic,
               join(r.hidden_units, "-").c_str(), static_cast<long long>(r.params),
               r.selected_units.empty() ? "-" : join(r.selected_units, "/").c_str(),
               r.added.empty() ? "-" : join(r.added, "/").c_str(), r.pruned.empty() ? "-" : join(r.pruned, "/").c_str(),
               r.seconds, r.split.empty() ? "-" : join(r.split, "/").c_str());
  std::fflush(out);
}

void print_summary(std::FILE* out, const engine::RunResult& result) {
  std::fputc('\n', out);
  if (!std::isnan(result.avg_agnostic_accuracy)) {
    std::fprintf(out, "task-agnostic accuracy %.4f (task not given, among all classes seen)\n",
                 result.avg_agnostic_accuracy);
  }
  std::fprintf(out, "average test accuracy %.4f, average AUROC %.4f over %zu tasks (task given)\n", result.avg_accuracy,
               result.avg_auroc, result.tasks.size());
  std::fprintf(out, "memory: %lld samples kept from earlier tasks (%.1f KB)\n",
               static_cast<long long>(result.memory_samples), static_cast<double>(result.memory_bytes) / 1024.0);
  std::fprintf(out, "backward transfer: accuracy %+.4f, AUROC %+.4f\n", result.bwt, result.bwt_auroc);
  if (!result.tasks.empty()) {
    std::fprintf(out, "hidden units %s, %lld parameters = %.3fx the base network (%lld); %lld units split\n",
                 join(result.tasks.back().hidden_units, "-").c_str(), static_cast<long long>(result.params),
                 result.base_params > 0 ? static_cast<double>(result.params) / result.base_params : 0.0,
                 static_cast<long long>(result.base_params),
                 static_cast<long long>(std::accumulate(result.tasks.begin(), result.tasks.end(), int64_t{0},
                                                        [](int64_t acc, const engine::TaskReport& r) {
                                                          return acc + sum(r.split);
                                                        })));
    if (result.hidden_growth > 0) {
      std::fprintf(out, "hidden layers %.3fx their size after task 1 (heads apart)\n", result.hidden_growth);
    }
  }
  std::fprintf(out, "wall time %.1f s\n", result.seconds);
}

}  // namespace den::cli
