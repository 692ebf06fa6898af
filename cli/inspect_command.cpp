// `den inspect`.

#include "cli/inspect_command.h"

#include "cli/exit_codes.h"
#include "cli/report.h"
#include "engine/hyperparameters.h"
#include "serialization/checkpoint.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <sstream>

namespace den::cli {

namespace {

std::string human_bytes(uint64_t bytes) {
  char buf[32];
  if (bytes >= (1u << 20)) {
    std::snprintf(buf, sizeof buf, "%.2f MiB", static_cast<double>(bytes) / (1 << 20));
  } else if (bytes >= 1024) {
    std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / 1024);
  } else {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  }
  return buf;
}

/// The evaluation stored after task `t`, if any.
const engine::TaskEvaluation* evaluation_after(const io::LoadedCheckpoint& c, int64_t t) {
  for (const engine::TaskEvaluation& e : c.extras.evaluations) {
    if (e.after_task == t) return &e;
  }
  return nullptr;
}

/// Live units per layer and birth stage: counts[l][s-1].
std::vector<std::vector<int64_t>> units_per_stage(const engine::Engine& den) {
  const graph::UnitGraph& g = den.graph();
  const int64_t stages = std::max<int64_t>(1, den.num_tasks());
  std::vector<std::vector<int64_t>> counts(static_cast<size_t>(g.num_layers()),
                                           std::vector<int64_t>(static_cast<size_t>(stages), 0));
  for (int64_t l = 0; l < g.num_layers(); ++l) {
    for (const graph::Unit& u : g.units(l)) ++counts[l][u.birth_stage - 1];
  }
  return counts;
}

std::vector<int64_t> pruned_per_layer(const engine::Engine& den) {
  std::vector<int64_t> out(static_cast<size_t>(den.graph().num_layers()), 0);
  for (const auto& entry : den.graph().removed_units()) ++out[static_cast<size_t>(entry.first)];
  return out;
}

struct ParameterInfo {
  std::string name;
  std::vector<int64_t> shape;
  int64_t nonzero = 0;
};

std::vector<ParameterInfo> parameters(const engine::Engine& den) {
  std::vector<ParameterInfo> out;
  const auto add = [&](const std::string& name, const at::Tensor& t) {
    out.push_back({name, t.sizes().vec(), t.count_nonzero().item<int64_t>()});
  };
  for (int64_t l = 0; l < den.network().num_layers(); ++l) add("layer." + std::to_string(l), den.network().layer(l));
  for (int64_t t = 1; t <= den.num_tasks(); ++t) add("head." + std::to_string(t), den.network().head(t));
  return out;
}

nlohmann::json run_json(const io::RunInfo& r) {
  nlohmann::json j = {{"method", r.method},         {"data", r.data_dir},
                      {"protocol", r.protocol},     {"tasks", r.num_tasks},
                      {"classes_per_task", r.classes_per_task}, {"train_limit", r.train_limit},
                      {"val_fraction", r.val_fraction}, {"normalize", r.normalize},
                      {"seed", r.seed},             {"seconds", r.seconds}};
  if (r.data_crc32) j["data_crc32"] = *r.data_crc32;
  return j;
}

nlohmann::json inspect_json(const InspectOptions& o, const io::LoadedCheckpoint& c) {
  const engine::Engine& den = c.engine;
  nlohmann::json tasks = nlohmann::json::array();
  for (const engine::TaskReport& r : den.history()) {
    const engine::TaskEvaluation* e = evaluation_after(c, r.task);
    engine::TaskEvaluation missing;
    missing.after_task = r.task;
    missing.accuracy = {std::nan("")};
    missing.auroc = {std::nan("")};
    nlohmann::json entry = task_json(r, e ? *e : missing);
    if (e) {
      entry["accuracy_after"] = e->accuracy;  // every task seen, right after this one
      entry["auroc_after"] = e->auroc;
    }
    tasks.push_back(entry);
  }
  nlohmann::json params = nlohmann::json::array();
  for (const ParameterInfo& p : parameters(den)) {
    params.push_back({{"name", p.name}, {"shape", p.shape}, {"dtype", "float32"}, {"nonzero", p.nonzero}});
  }
  nlohmann::json split_lineage = nlohmann::json::array();
  for (int64_t l = 0; l < den.graph().num_layers(); ++l) {
    for (const graph::Unit& u : den.graph().units(l)) {
      if (u.origin == graph::Origin::Split) {
        split_lineage.push_back({{"layer", l}, {"unit", u.id}, {"from", u.split_from}, {"stage", u.birth_stage}});
      }
    }
  }
  nlohmann::json doc = {{"file", o.checkpoint},
                        {"bytes", c.file_bytes},
                        {"format_version", c.format_version},
                        {"writer", c.writer},
                        {"input_dim", den.input_dim()},
                        {"num_tasks", den.num_tasks()},
                        {"hidden_units", den.graph().layer_sizes()},
                        {"params", den.num_params()},
                        {"base_params", den.base_params()},
                        {"config", config_json(den.config())},
                        {"units_per_stage", units_per_stage(den)},
                        {"pruned_units", pruned_per_layer(den)},
                        {"split_lineage", split_lineage},
                        {"parameters", params},
                        {"tasks", tasks}};
  doc["run"] = c.extras.run ? run_json(*c.extras.run) : nlohmann::json();
  if (c.extras.images) {
    const io::ImageInput& i = *c.extras.images;
    doc["image_input"] = {{"channels", i.channels}, {"height", i.height}, {"width", i.width},
                          {"resize", i.resize}, {"mean", i.mean}, {"std", i.std}};
  }
  if (c.extras.trunk) {
    doc["trunk"] = {{"cut", c.extras.trunk->cut}, {"input_shape", c.extras.trunk->input_shape},
                    {"feature_shape", c.extras.trunk->feature_shape}, {"bytes", c.extras.trunk->module.size()}};
  }
  nlohmann::json names = nlohmann::json::object();
  for (const auto& [id, name] : c.extras.class_names) names[std::to_string(id)] = name;
  doc["class_names"] = names;
  return doc;
}

void print_inspect(const InspectOptions& o, const io::LoadedCheckpoint& c) {
  const engine::Engine& den = c.engine;
  const engine::EngineConfig& cfg = den.config();
  std::printf("checkpoint %s: %s, format version %u, written by %s\n", o.checkpoint.c_str(),
              human_bytes(c.file_bytes).c_str(), c.format_version, c.writer.c_str());
  std::printf("network: input %lld, hidden %s (base %s), %lld tasks, %lld parameters", static_cast<long long>(den.input_dim()),
              join(den.graph().layer_sizes(), "-").c_str(), engine::layers_to_text(cfg.layers).c_str(),
              static_cast<long long>(den.num_tasks()), static_cast<long long>(den.num_params()));
  if (den.base_params() > 0) {
    std::printf(" = %.3fx the task-1 network (%lld)", static_cast<double>(den.num_params()) / den.base_params(),
                static_cast<long long>(den.base_params()));
  }
  std::printf(", loss %s\n", engine::to_string(cfg.loss).c_str());
  if (c.extras.trunk) {
    std::printf("frozen trunk: the imported model up to '%s', %s in, %s features out (%s)\n",
                c.extras.trunk->cut.c_str(), engine::to_text(c.extras.trunk->input_shape).c_str(),
                engine::to_text(c.extras.trunk->feature_shape).c_str(),
                human_bytes(c.extras.trunk->module.size()).c_str());
  }
  if (c.extras.images) {
    const io::ImageInput& i = *c.extras.images;
    std::printf("image input: %s %lldx%lld, shorter side resized to %lld, center crop", i.channels == 1 ? "gray" : "RGB",
                static_cast<long long>(i.height), static_cast<long long>(i.width),
                static_cast<long long>(i.resize > 0 ? i.resize : std::max(i.height, i.width)));
    const auto numbers = [](const std::vector<double>& values) {
      std::vector<std::string> text;
      char buf[32];
      for (double v : values) {
        std::snprintf(buf, sizeof buf, "%g", v);
        text.emplace_back(buf);
      }
      return join(text, ",");
    };
    if (!i.mean.empty()) std::printf(", mean %s, std %s", numbers(i.mean).c_str(), numbers(i.std).c_str());
    std::printf("\n");
  }
  if (!c.extras.class_names.empty()) {
    std::string names;
    for (const auto& [id, name] : c.extras.class_names) names += (names.empty() ? "" : ", ") + std::to_string(id) + " " + name;
    std::printf("class names: %s\n", names.c_str());
  }
  // Settings that are off by default are named only when on, so older checkpoints print as before.
  std::string later;
  if (cfg.prune_to_fixpoint) later += ", prune-fixpoint";
  if (cfg.reset_zeroed_moments) later += ", reset-zeroed-moments";
  if (cfg.early_stop_patience > 0) {
    char buf[80];
    std::snprintf(buf, sizeof buf, ", early-stop-patience %lld (min-delta %g)",
                  static_cast<long long>(cfg.early_stop_patience), cfg.early_stop_min_delta);
    later += buf;
  }
  std::printf("config: max-iter %lld, head-iters %lld, batch %lld, lr %g (decay %g), mu %g, l2 %g, gamma %g, "
              "lambda %g, k %lld, tau %g, sigma %g, max-splits %lld, split-policy %s%s%s%s, seed %llu\n",
              static_cast<long long>(cfg.max_iter), static_cast<long long>(cfg.resolved_head_iters()),
              static_cast<long long>(cfg.batch_size), cfg.lr, cfg.lr_decay, cfg.mu, cfg.l2, cfg.gamma, cfg.lambda,
              static_cast<long long>(cfg.k), cfg.tau, cfg.sigma, static_cast<long long>(cfg.resolved_max_splits()),
              engine::to_string(cfg.split_policy).c_str(), cfg.freeze_existing ? ", freeze-existing" : "",
              cfg.prox_scale_by_lr ? ", prox-scale-lr" : "", later.c_str(), static_cast<unsigned long long>(cfg.seed));
  if (c.extras.run) {
    const io::RunInfo& r = *c.extras.run;
    std::printf("run: %s on %s, protocol %s, %lld tasks planned, classes-per-task %lld, train-limit %lld, "
                "val-fraction %g, normalize %s, seed %llu, %.1f s so far\n",
                r.method.c_str(), r.data_dir.c_str(), r.protocol.c_str(), static_cast<long long>(r.num_tasks),
                static_cast<long long>(r.classes_per_task), static_cast<long long>(r.train_limit), r.val_fraction,
                r.normalize.c_str(), static_cast<unsigned long long>(r.seed), r.seconds);
  } else {
    std::printf("run: none recorded (saved outside den run)\n");
  }

  std::printf("\ntasks\n%4s  %-20s %7s  %-11s %-9s %-9s %-9s %-9s %3s %9s %9s %8s %8s %8s %8s\n", "task", "name",
              "classes", "hidden", "selected", "added", "pruned", "split", "exp", "params", "nonzero", "val_loss",
              "test_acc", "avg_acc", "seconds");
  for (const engine::TaskReport& r : den.history()) {
    const engine::TaskEvaluation* e = evaluation_after(c, r.task);
    double avg = std::nan("");
    if (e) {
      double total = 0;
      int64_t n = 0;
      for (double a : e->accuracy) {
        if (!std::isnan(a)) {
          total += a;
          ++n;
        }
      }
      if (n > 0) avg = total / static_cast<double>(n);
    }
    std::printf("%4lld  %-20s %7lld  %-11s %-9s %-9s %-9s %-9s %3s %9lld %9lld %8.4f %8.4f %8.4f %8.1f\n",
                static_cast<long long>(r.task), r.name.substr(0, 20).c_str(), static_cast<long long>(r.num_classes),
                join(r.hidden_units, "-").c_str(), r.selected_units.empty() ? "-" : join(r.selected_units, "/").c_str(),
                join(r.added, "/").c_str(), join(r.pruned, "/").c_str(), join(r.split, "/").c_str(),
                r.expanded ? "yes" : "no", static_cast<long long>(r.params), static_cast<long long>(r.nonzero_params),
                r.val_loss, e ? e->accuracy.back() : std::nan(""), avg, r.seconds);
  }

  const auto counts = units_per_stage(den);
  const auto pruned = pruned_per_layer(den);
  std::printf("\nlive units per birth stage\n%5s", "layer");
  for (size_t s = 0; s < (counts.empty() ? 0 : counts[0].size()); ++s) std::printf(" %6s", ("t" + std::to_string(s + 1)).c_str());
  std::printf(" %7s %7s\n", "total", "pruned");
  for (size_t l = 0; l < counts.size(); ++l) {
    std::printf("%5zu", l);
    for (int64_t n : counts[l]) std::printf(" %6lld", static_cast<long long>(n));
    std::printf(" %7lld %7lld\n", static_cast<long long>(sum(counts[l])), static_cast<long long>(pruned[l]));
  }

  std::printf("\nparameters\n%-10s %-14s %-8s %10s %10s\n", "name", "shape", "dtype", "numel", "nonzero");
  for (const ParameterInfo& p : parameters(den)) {
    const int64_t numel = std::accumulate(p.shape.begin(), p.shape.end(), int64_t{1}, std::multiplies<>());
    std::printf("%-10s %-14s %-8s %10lld %10lld\n", p.name.c_str(), ("[" + join(p.shape, ", ") + "]").c_str(),
                "float32", static_cast<long long>(numel), static_cast<long long>(p.nonzero));
  }

  std::printf("\ngrowth history\n%4s  %-12s %6s %5s %10s %10s %8s\n", "task", "phase", "iters", "early", "train_loss",
              "val_loss", "seconds");
  for (const engine::TaskReport& r : den.history()) {
    for (const engine::PhaseResult& p : r.phases) {
      std::printf("%4lld  %-12s %6lld %5s %10.4f %10.4f %8.2f\n", static_cast<long long>(r.task), p.name.c_str(),
                  static_cast<long long>(p.iterations), p.early_stopped ? "yes" : "no", p.train_loss, p.val_loss,
                  p.seconds);
    }
    if (!r.split_pairs.empty()) {
      std::printf("      split:");
      for (const engine::SplitPair& s : r.split_pairs) {
        std::printf(" L%lld u%lld->u%lld (%.3f)", static_cast<long long>(s.layer), static_cast<long long>(s.original_id),
                    static_cast<long long>(s.copy_id), s.drift);
      }
      std::printf("\n");
    }
  }
}

}  // namespace

CLI::App* add_inspect_command(CLI::App& app, InspectOptions& o) {
  CLI::App* cmd = app.add_subcommand("inspect", "Show what a checkpoint holds: tasks, growth, units, parameters");
  cmd->add_option("checkpoint", o.checkpoint, "Checkpoint file")->required();
  cmd->add_flag("--json", o.json, "Print JSON for machines");
  return cmd;
}

int inspect_command(const InspectOptions& o) {
  const io::LoadedCheckpoint c = io::load_checkpoint(o.checkpoint);
  if (o.json) {
    std::printf("%s", json_text(inspect_json(o, c)).c_str());
  } else {
    print_inspect(o, c);
  }
  return kOk;
}

}  // namespace den::cli
