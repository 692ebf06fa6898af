#include "cli/report.h"

#include "cli/run_command.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>
#include <unistd.h>

namespace den::cli {

namespace {

std::string join(const std::vector<int64_t>& values, const char* sep) {
  std::ostringstream out;
  for (size_t i = 0; i < values.size(); ++i) out << (i ? sep : "") << values[i];
  return out.str();
}

int64_t sum(const std::vector<int64_t>& values) { return std::accumulate(values.begin(), values.end(), int64_t{0}); }

/// Square matrix with nulls above the diagonal (task j not yet seen after task i).
nlohmann::json matrix_json(const std::vector<std::vector<double>>& rows) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& row : rows) {
    nlohmann::json r = nlohmann::json::array();
    for (size_t j = 0; j < rows.size(); ++j) r.push_back(j < row.size() ? nlohmann::json(row[j]) : nlohmann::json());
    out.push_back(r);
  }
  return out;
}

}  // namespace

nlohmann::json config_json(const engine::EngineConfig& c) {
  return {{"hidden", c.hidden},
          {"max_iter", c.max_iter},
          {"head_iters", c.resolved_head_iters()},
          {"batch_size", c.batch_size},
          {"lr", c.lr},
          {"lr_decay", c.lr_decay},
          {"mu", c.mu},
          {"l2", c.l2},
          {"gamma", c.gamma},
          {"lambda", c.lambda},
          {"k", c.k},
          {"tau", c.tau},
          {"sigma", c.sigma},
          {"max_splits_per_layer", c.resolved_max_splits()},
          {"split_policy", engine::to_string(c.split_policy)},
          {"loss", engine::to_string(c.loss)},
          {"prox_scale_by_lr", c.prox_scale_by_lr},
          {"freeze_existing", c.freeze_existing},
          {"eval_every", c.eval_every},
          {"early_stop_window", c.early_stop_window},
          {"early_stop_tol", c.early_stop_tol},
          {"max_eval_samples", c.max_eval_samples},
          {"seed", c.seed},
          {"device", c.device}};
}

nlohmann::json task_json(const engine::TaskReport& r, const engine::TaskEvaluation& e) {
  nlohmann::json phases = nlohmann::json::array();
  for (const engine::PhaseResult& p : r.phases) {
    phases.push_back({{"phase", p.name},
                      {"iterations", p.iterations},
                      {"train_loss", p.train_loss},
                      {"val_loss", p.val_loss},
                      {"seconds", p.seconds},
                      {"early_stopped", p.early_stopped}});
  }
  nlohmann::json pairs = nlohmann::json::array();
  for (const engine::SplitPair& s : r.split_pairs) {
    pairs.push_back({{"layer", s.layer}, {"original", s.original_id}, {"copy", s.copy_id}, {"drift", s.drift}});
  }
  return {{"task", r.task},
          {"name", r.name},
          {"num_classes", r.num_classes},
          {"test_accuracy", e.accuracy.back()},
          {"test_auroc", e.auroc.back()},
          {"hidden_units", r.hidden_units},
          {"params", r.params},
          {"nonzero_params", r.nonzero_params},
          {"seconds", r.seconds},
          {"selected_units", r.selected_units},
          {"added", r.added},
          {"pruned", r.pruned},
          {"split", r.split},
          {"split_pairs", pairs},
          {"expanded", r.expanded},
          {"val_loss_after_selective", r.val_loss_after_selective},
          {"val_loss", r.val_loss},
          {"phases", phases}};
}

nlohmann::json final_json(const engine::RunResult& result) {
  return {{"avg_accuracy", result.avg_accuracy},
          {"avg_auroc", result.avg_auroc},
          {"accuracy_matrix", matrix_json(result.accuracy_matrix)},
          {"auroc_matrix", matrix_json(result.auroc_matrix)},
          {"bwt", result.bwt},
          {"bwt_auroc", result.bwt_auroc},
          {"params", result.params},
          {"base_params", result.base_params},
          {"params_ratio", result.base_params > 0 ? static_cast<double>(result.params) / result.base_params : 0.0},
          {"hidden_units", result.tasks.empty() ? std::vector<int64_t>{} : result.tasks.back().hidden_units},
          {"seconds", result.seconds}};
}

void check_writable(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw OutputError("cannot write '" + path + "': directory '" + dir.string() + "' does not exist");
  if (fs::is_directory(target, ec)) throw OutputError("cannot write '" + path + "': it is a directory");
  if (::access(dir.c_str(), W_OK) != 0) throw OutputError("cannot write '" + path + "': directory is not writable");
}

void write_json_file(const std::string& path, const nlohmann::json& doc) {
  check_writable(path);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << doc.dump(2) << "\n";
    out.flush();
    if (!out) {
      std::filesystem::remove(tmp);
      throw OutputError("cannot write '" + tmp + "'");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw OutputError("cannot rename '" + tmp + "' to '" + path + "': " + ec.message());
}

void print_table_header(std::FILE* out) {
  std::fprintf(out, "%4s  %-18s %8s %8s %8s  %-11s %9s %-9s %-9s %-9s %8s\n", "task", "name", "test_acc", "auroc",
               "avg_acc", "hidden", "params", "selected", "added", "pruned", "seconds");
}

void print_table_row(std::FILE* out, const engine::TaskReport& r, const engine::TaskEvaluation& e) {
  const double avg = std::accumulate(e.accuracy.begin(), e.accuracy.end(), 0.0) / static_cast<double>(e.accuracy.size());
  std::fprintf(out, "%4lld  %-18s %8.4f %8.4f %8.4f  %-11s %9lld %-9s %-9s %-9s %8.1f   split %s\n",
               static_cast<long long>(r.task), r.name.substr(0, 18).c_str(), e.accuracy.back(), e.auroc.back(), avg,
               join(r.hidden_units, "-").c_str(), static_cast<long long>(r.params),
               r.selected_units.empty() ? "-" : join(r.selected_units, "/").c_str(), join(r.added, "/").c_str(),
               join(r.pruned, "/").c_str(), r.seconds, join(r.split, "/").c_str());
  std::fflush(out);
}

void print_summary(std::FILE* out, const engine::RunResult& result) {
  std::fprintf(out, "\naverage test accuracy %.4f, average AUROC %.4f over %zu tasks\n", result.avg_accuracy,
               result.avg_auroc, result.tasks.size());
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
  }
  std::fprintf(out, "wall time %.1f s\n", result.seconds);
}

}  // namespace den::cli
