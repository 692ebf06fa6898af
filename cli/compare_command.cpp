// `den compare`: every method of the DEN paper's comparison on one task stream.

#include "cli/compare_command.h"

#include "cli/config_file.h"
#include "cli/exit_codes.h"
#include "cli/interrupt.h"
#include "cli/progress.h"
#include "cli/report.h"
#include "cli/report_command.h"
#include "data/idx_reader.h"
#include "engine/baselines/baselines.h"
#include "engine/evaluation/run.h"
#include "engine/training/threads.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace den::cli {

namespace {

/// One row of the comparison table.
struct Row {
  std::string method;
  double auroc = 0.0;
  double accuracy = 0.0;
  double agnostic = 0.0;  ///< NaN when task-agnostic prediction is off
  double bwt = 0.0;
  int64_t params = 0;
  double vs_stl = 0.0;  ///< params / parameters of one network per task
  double vs_mtl = 0.0;  ///< params / parameters of one shared network with a head per task
  double seconds = 0.0;
  int64_t memory = 0;        ///< samples kept from earlier tasks (RunResult::memory_samples)
  int64_t memory_bytes = 0;
};

void print_table(std::FILE* out, const std::vector<Row>& rows, int64_t stl, int64_t mtl) {
  // Task-agnostic accuracy first: classifying among all classes seen without the task id is what a
  // model that learns new classes is used for.
  std::fprintf(out, "\n%-12s %12s %9s %9s %9s %11s %7s %7s %8s %10s %9s\n", "method", "agnostic_acc", "auroc",
               "accuracy", "bwt_acc", "params", "x_stl", "x_mtl", "memory", "memory_kb", "seconds");
  for (const Row& r : rows) {
    char agnostic[32] = "-";
    if (!std::isnan(r.agnostic)) std::snprintf(agnostic, sizeof agnostic, "%.4f", r.agnostic);
    std::fprintf(out, "%-12s %12s %9.4f %9.4f %+9.4f %11lld %7.3f %7.3f %8lld %10.1f %9.1f\n", r.method.c_str(), agnostic,
                 r.auroc, r.accuracy, r.bwt, static_cast<long long>(r.params), r.vs_stl, r.vs_mtl,
                 static_cast<long long>(r.memory), static_cast<double>(r.memory_bytes) / 1024.0, r.seconds);
  }
  std::fprintf(out, "x_stl, x_mtl: parameters relative to one network per task (%lld) and to one shared network "
                    "with a head per task (%lld); memory: samples kept from earlier tasks (replayed, or calibrating "
                    "task-agnostic prediction)\n",
               static_cast<long long>(stl), static_cast<long long>(mtl));
  std::fflush(out);
}

std::string table_csv(const std::vector<Row>& rows) {
  std::ostringstream out;
  out.precision(17);
  out << "method,avg_auroc,avg_accuracy,task_agnostic_accuracy,bwt,params,params_vs_stl,params_vs_mtl,seconds,memory,"
         "memory_bytes\n";
  for (const Row& r : rows) {
    out << r.method << ',' << r.auroc << ',' << r.accuracy << ',';
    if (!std::isnan(r.agnostic)) out << r.agnostic;
    out << ',' << r.bwt << ',' << r.params << ',' << r.vs_stl << ',' << r.vs_mtl << ',' << r.seconds << ','
        << r.memory << ',' << r.memory_bytes << '\n';
  }
  return out.str();
}

nlohmann::json table_json(const std::vector<Row>& rows) {
  nlohmann::json out = nlohmann::json::array();
  for (const Row& r : rows) {
    out.push_back({{"method", r.method},
                   {"avg_auroc", r.auroc},
                   {"avg_accuracy", r.accuracy},
                   {"task_agnostic_accuracy", number_or_null(r.agnostic)},
                   {"bwt", r.bwt},
                   {"params", r.params},
                   {"params_vs_stl", r.vs_stl},
                   {"params_vs_mtl", r.vs_mtl},
                   {"seconds", r.seconds},
                   {"memory", r.memory},
                   {"memory_bytes", r.memory_bytes}});
  }
  return out;
}

Row row_from_json(const nlohmann::json& j) {
  const auto number = [&j](const char* key) { return j.at(key).is_null() ? std::nan("") : j.at(key).get<double>(); };
  return {j.at("method").get<std::string>(), number("avg_auroc"), number("avg_accuracy"),
          number("task_agnostic_accuracy"), number("bwt"), j.at("params").get<int64_t>(), number("params_vs_stl"),
          number("params_vs_mtl"), number("seconds"), j.value("memory", int64_t{0}), j.value("memory_bytes", int64_t{0})};
}

/// `doc` as it reads back from a report file (bytes that are not UTF-8 replaced, NOTE in json_text).
nlohmann::json as_written(const nlohmann::json& doc) { return nlohmann::json::parse(json_text(doc)); }

/// What differs between the settings a report was run with and today's: the keys that differ, each
/// as "key then -> now", not the two whole objects.
std::string differences(const nlohmann::json& then, const nlohmann::json& now) {
  if (!then.is_object() || !now.is_object()) return then.dump() + " -> " + now.dump();
  std::string text;
  const auto add = [&](const std::string& key) {
    const nlohmann::json a = then.value(key, nlohmann::json()), b = now.value(key, nlohmann::json());
    if (a != b) text += (text.empty() ? "" : ", ") + key + " " + a.dump() + " -> " + b.dump();
  };
  for (auto it = now.begin(); it != now.end(); ++it) add(it.key());
  for (auto it = then.begin(); it != then.end(); ++it) {
    if (!now.contains(it.key())) add(it.key());
  }
  return text;
}

/// The methods a `--report` file of an earlier, interrupted `den compare` finished, with their
/// reports and table rows, checked to be the same comparison. Empty when the file does not exist.
std::map<std::string, std::pair<nlohmann::json, Row>> finished_methods(const CompareOptions& o,
                                                                       const std::vector<std::string>& methods) {
  std::map<std::string, std::pair<nlohmann::json, Row>> done;
  const std::string& path = o.run.report_path;
  std::ifstream in(path);
  if (!in) return done;
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(in);
    for (const nlohmann::json& row : doc.at("table")) {
      const std::string method = row.at("method").get<std::string>();
      if (std::find(methods.begin(), methods.end(), method) == methods.end()) continue;
      RunOptions run = o.run;
      run.method = method;
      const nlohmann::json& report = doc.at("methods").at(method);
      const nlohmann::json settings = as_written(run_settings_json(run));
      for (auto it = settings.begin(); it != settings.end(); ++it) {
        if (!report.contains(it.key()) || report.at(it.key()) != it.value()) {
          throw std::invalid_argument("--resume: method " + method + " in '" + path + "' was run with other " +
                                      it.key() + " settings (" +
                                      differences(report.value(it.key(), nlohmann::json()), it.value()) +
                                      "); resume with the same flags");
        }
      }
      done[method] = {report, row_from_json(row)};
    }
  } catch (const nlohmann::json::exception& e) {
    // An input that is not what it should be: a data error, as `den report` says of the same file.
    throw data::DataError("--resume: '" + path + "' is not a den compare report: " + e.what());
  }
  return done;
}

}  // namespace

std::vector<std::string> parse_methods(const std::string& text) {
  std::vector<std::string> methods;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) continue;
    const auto& known = engine::method_names();
    if (std::find(known.begin(), known.end(), item) == known.end()) {
      throw std::invalid_argument("--methods: unknown method '" + item + "' (known: " + engine::method_names_text() +
                                  ")");
    }
    if (std::find(methods.begin(), methods.end(), item) != methods.end()) {
      throw std::invalid_argument("--methods: '" + item + "' is listed twice");
    }
    methods.push_back(item);
  }
  if (methods.empty()) {
    throw std::invalid_argument("--methods '" + text + "' names no method (known: " + engine::method_names_text() +
                                ")");
  }
  return methods;
}

std::vector<std::string> default_methods(int64_t memory) {
  std::vector<std::string> methods;
  for (const std::string& name : engine::method_names()) {
    if (memory > 0 || !engine::needs_memory(name)) methods.push_back(name);
  }
  return methods;
}

CLI::App* add_compare_command(CLI::App& app, CompareOptions& o) {
  CLI::App* cmd = app.add_subcommand(
      "compare", "Learn the same task stream with several methods in turn and print the DEN paper's comparison table");
  add_run_flags(cmd, o.run);
  cmd->add_option("--methods", o.methods,
                  "Methods to compare, comma separated (known: " + engine::method_names_text() +
                      "; default: all of them, icarl and der++ only with --memory)");
  cmd->add_option("--report", o.run.report_path,
                  "Write a JSON report to this file: each method's `den run` report and the table");
  cmd->add_option("--csv", o.csv_path, "Write the comparison table as CSV to this file");
  cmd->add_option("--html", o.html_path,
                  "Write the comparison as one self-contained HTML page to this file (as `den report` draws it)");
  cmd->add_flag("--resume", o.resume,
                "Continue the comparison in the --report file: skip the methods it already holds (same settings)");
  return cmd;
}

int compare_command(CompareOptions& o) {
  install_interrupt_handlers();
  RunOptions& r = o.run;
  apply_config_file(r.command, r.config_path);
  const bool named = !o.methods.empty() || r.command->count("--methods") > 0;
  const std::vector<std::string> methods = named ? parse_methods(o.methods) : default_methods(r.baseline.memory);
  check_method_flags(r.command, methods);
  resolve_options(r);
  if (r.print_config) {
    std::fputs(config_text(r.command, methods).c_str(), stdout);
    return kOk;
  }
  if (o.resume && r.report_path.empty()) throw std::invalid_argument("--resume needs --report FILE (the comparison to continue)");
  if (!r.report_path.empty()) check_writable(r.report_path);
  if (!o.csv_path.empty()) check_writable(o.csv_path);
  if (!o.html_path.empty()) check_writable(o.html_path);
  if (!r.log_path.empty()) check_writable(r.log_path);
  // --resume reads --report and writes it again: the one output that may be an input.
  check_distinct_files({{"--report", r.report_path}, {"--csv", o.csv_path}, {"--html", o.html_path}, {"--log", r.log_path}},
                       {{"--config", r.config_path}});
  engine::configure_threads(r.threads);

  auto err = spdlog::stderr_color_mt("den.cli");
  err->set_pattern("%v");
  RunData data = load_data_set(r);
  const data::TaskStream stream(std::move(data.files.train), std::move(data.files.test), r.stream);
  check_memory(r, stream);
  const auto make_task = [&stream](int64_t t) { return stream.task(t); };
  // What one network per task and one shared network would hold: no need to train STL or MTL.
  const std::vector<int64_t> classes = stream.task_classes();
  const int64_t stl = engine::stl_params(stream.input_dim(), r.engine.layers, classes, r.engine.input_shape);
  const int64_t mtl = engine::shared_params(stream.input_dim(), r.engine.layers, classes, r.engine.input_shape);

  std::printf("den compare: methods %s, protocol %s, %lld tasks, layers %s, max-iter %lld, seed %llu\n",
              join(methods, ",").c_str(), stream_description(r).c_str(), static_cast<long long>(stream.num_tasks()),
              engine::layers_to_text(r.engine.layers).c_str(), static_cast<long long>(r.engine.max_iter), static_cast<unsigned long long>(r.engine.seed));
  // The stream's settings are final only now (--base-classes may set --tasks from the data).
  const auto finished = o.resume ? finished_methods(o, methods) : decltype(finished_methods(o, methods)){};
  // One log for every method (each line names its method).
  const std::unique_ptr<ProgressLog> log = r.log_path.empty() ? nullptr : std::make_unique<ProgressLog>(r.log_path);
  std::vector<Row> rows;
  nlohmann::json reports = nlohmann::json::object();
  // Written after every method, so that an interrupted comparison keeps the methods it finished.
  const auto report_doc = [&](bool partial) -> nlohmann::json {
    return {{"methods", reports}, {"table", table_json(rows)}, {"stl_params", stl},
            {"mtl_params", mtl},  {"partial", partial}};
  };
  const auto write_report = [&](bool partial) {
    if (!r.report_path.empty()) write_json_file(r.report_path, report_doc(partial));
  };
  for (size_t i = 0; i < methods.size(); ++i) {
    RunOptions run = r;
    run.method = methods[i];
    if (const auto it = finished.find(run.method); it != finished.end()) {
      std::printf("\n== method %s (%zu/%zu): done in %s, skipped\n", run.method.c_str(), i + 1, methods.size(),
                  r.report_path.c_str());
      reports[run.method] = it->second.first;
      rows.push_back(it->second.second);
      continue;
    }
    std::printf("\n== method %s (%zu/%zu)\n", run.method.c_str(), i + 1, methods.size());
    print_table_header(stdout);
    std::fflush(stdout);
    // Each method is built just before it trains, from the same settings and seed, so that it
    // learns exactly what `den run --method` would.
    std::unique_ptr<engine::Method> method =
        engine::make_method(run.method, run.engine, run.baseline, stream.input_dim());
    RunProgress progress(run.method, stream.num_tasks(), run.quiet, log.get());
    engine::RunCallbacks callbacks;
    callbacks.progress = interruptible(progress.callback());
    nlohmann::json tasks = nlohmann::json::array();
    callbacks.task_done = [&tasks, &progress](const engine::TaskReport& report,
                                              const engine::TaskEvaluation& evaluation) {
      print_table_row(stdout, report, evaluation);
      tasks.push_back(task_json(report, evaluation, progress.take_curves(report)));
      progress.task_done();
      stop_if_interrupted();
    };
    engine::RunResult result;
    try {
      result = engine::run_stream(*method, stream.num_tasks(), make_task, callbacks, run_settings(run));
    } catch (const Interrupted&) {
      std::fprintf(stderr, "den: interrupted during method %s; %zu of %zu methods done%s\n", run.method.c_str(),
                   rows.size(), methods.size(),
                   r.report_path.empty() ? "" : (" and kept in " + r.report_path + " (continue with --resume)").c_str());
      write_report(true);
      return kInterrupted;
    }
    method.reset();
    print_summary(stdout, result);
    rows.push_back({run.method, result.avg_auroc, result.avg_accuracy, result.avg_agnostic_accuracy, result.bwt,
                    result.params, stl > 0 ? static_cast<double>(result.params) / static_cast<double>(stl) : 0.0,
                    mtl > 0 ? static_cast<double>(result.params) / static_cast<double>(mtl) : 0.0, result.seconds,
                    result.memory_samples, result.memory_bytes});
    reports[run.method] = run_report_json(run, tasks, result);
    write_report(i + 1 < methods.size());
  }
  print_table(stdout, rows, stl, mtl);

  if (!o.csv_path.empty()) {
    write_text_file(o.csv_path, table_csv(rows));
    std::printf("table written to %s\n", o.csv_path.c_str());
  }
  if (!r.report_path.empty()) {
    write_report(false);  // the same as after the last method; also when every method was skipped
    std::printf("report written to %s\n", r.report_path.c_str());
  }
  if (!o.html_path.empty()) {
    // As read back from the JSON report, so that both show the same (NOTE in json_text).
    write_report_html(o.html_path, as_written(report_doc(false)), "den compare: " + join(methods, ", "));
    std::printf("report page written to %s\n", o.html_path.c_str());
  }
  return kOk;
}

}  // namespace den::cli
