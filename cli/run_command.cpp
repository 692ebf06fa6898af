#include "cli/run_command.h"

#include "cli/run_checkpoints.h"
#include "cli/config_file.h"
#include "cli/flag_checks.h"
#include "cli/exit_codes.h"
#include "cli/interrupt.h"
#include "cli/progress.h"
#include "cli/report.h"
#include "engine/baselines/baselines.h"
#include "engine/engine.h"
#include "engine/evaluation/run.h"
#include "engine/training/trainer.h"
#include "engine/training/threads.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <memory>

namespace den::cli {

CLI::App* add_run_command(CLI::App& app, RunOptions& o) {
  CLI::App* run = app.add_subcommand("run", "Learn a stream of tasks with one method and print per-task results");
  add_run_flags(run, o);
  run->add_option("--method", o.method, "Learning method: " + engine::method_names_text())
      ->check(one_of(engine::method_names()))
      ->capture_default_str();
  run->add_option("--report", o.report_path, "Write a JSON report to this file");
  run->add_option("--checkpoint", o.checkpoint_path, "den: save a checkpoint to this file after every task");
  run->add_option("--resume", o.resume_path,
                  "den: continue the run stored in this checkpoint with its next task (settings from the checkpoint)");
  return run;
}

int run_command(RunOptions& o) {
  install_interrupt_handlers();
  apply_config_file(o.command, o.config_path);
  check_method_flags(o.command, {o.method});
  resolve_options(o);
  if (o.print_config) {
    std::fputs(config_text(o.command, {o.method}).c_str(), stdout);
    return kOk;
  }
  RunCheckpoints checkpoints(o);  // --checkpoint, --resume (NOTE: [resume] in cli/run_checkpoints.h)
  if (!o.report_path.empty()) check_writable(o.report_path);
  if (!o.log_path.empty()) check_writable(o.log_path);
  // A resumed run saves to the checkpoint it read (NOTE: [resume]); nothing else may.
  check_distinct_files({{checkpoints.save_flag(), checkpoints.save_path()}, {"--report", o.report_path}, {"--log", o.log_path}},
                       {{"--config", o.config_path}});
  check_distinct_files({{"--report", o.report_path}, {"--log", o.log_path}}, {{"--resume", o.resume_path}});
  engine::configure_threads(o.threads);

  auto err = spdlog::stderr_color_mt("den.cli");
  err->set_pattern("%v");
  RunData data = load_data_set(o);
  checkpoints.check_data(data);
  const data::TaskStream stream(std::move(data.files.train), std::move(data.files.test), o.stream);
  check_memory(o, stream);

  // DEN may come from a checkpoint; the other methods start afresh.
  std::unique_ptr<engine::Method> method;
  engine::Engine* den = nullptr;
  if (o.method == "den") {
    auto engine = std::make_unique<engine::Engine>(checkpoints.make_engine(stream.input_dim()));
    den = engine.get();
    method = std::move(engine);
  } else {
    method = engine::make_method(o.method, o.engine, o.baseline, stream.input_dim());
  }
  const std::unique_ptr<ProgressLog> log = o.log_path.empty() ? nullptr : std::make_unique<ProgressLog>(o.log_path);
  RunProgress progress(o.method, stream.num_tasks(), o.quiet, log.get());
  engine::RunCallbacks callbacks;
  callbacks.progress = interruptible(progress.callback());
  nlohmann::json tasks = nlohmann::json::array();
  std::printf("den run: method %s, protocol %s, %lld tasks, layers %s, max-iter %lld, seed %llu\n", o.method.c_str(),
              stream_description(o).c_str(), static_cast<long long>(stream.num_tasks()), engine::layers_to_text(o.engine.layers).c_str(),
              static_cast<long long>(o.engine.max_iter), static_cast<unsigned long long>(o.engine.seed));
  print_table_header(stdout);
  std::fflush(stdout);
  const auto add_row = [&tasks](const engine::TaskReport& report, const engine::TaskEvaluation& evaluation,
                                const nlohmann::json& curves) {
    print_table_row(stdout, report, evaluation);
    tasks.push_back(task_json(report, evaluation, curves));
  };
  // Tasks restored from the checkpoint have no curves: their progress was another process's.
  checkpoints.for_each_prior(
      [&add_row](const engine::TaskReport& report, const engine::TaskEvaluation& evaluation) {
        add_row(report, evaluation, nullptr);
      });
  // After the task's checkpoint is written (RunCheckpoints::run saves before calling this).
  callbacks.task_done = [&add_row, &progress](const engine::TaskReport& report,
                                              const engine::TaskEvaluation& evaluation) {
    add_row(report, evaluation, progress.take_curves(report));
    progress.task_done();
    stop_if_interrupted();
  };
  const auto make_task = [&stream](int64_t t) { return stream.task(t); };
  engine::RunResult result;
  try {
    result = den != nullptr ? checkpoints.run(*den, stream.num_tasks(), make_task, callbacks, run_settings(o))
                            : engine::run_stream(*method, stream.num_tasks(), make_task, callbacks, run_settings(o));
  } catch (const Interrupted&) {
    std::fprintf(stderr, "den: interrupted after %zu of %lld tasks\n", tasks.size(),
                 static_cast<long long>(stream.num_tasks()));
    if (!o.report_path.empty()) {
      write_json_file(o.report_path, partial_run_report_json(o, tasks));
      std::fprintf(stderr, "partial report written to %s\n", o.report_path.c_str());
    }
    return kInterrupted;
  } catch (const engine::TrainingDiverged&) {
    // The tasks learned before are kept: their checkpoint (the last one written) and the report.
    if (!o.report_path.empty()) {
      write_json_file(o.report_path, partial_run_report_json(o, tasks));
      std::fprintf(stderr, "partial report written to %s\n", o.report_path.c_str());
    }
    throw;
  }
  print_summary(stdout, result);

  if (!o.report_path.empty()) {
    write_json_file(o.report_path, run_report_json(o, tasks, result));
    std::printf("report written to %s\n", o.report_path.c_str());
  }
  return 0;
}

}  // namespace den::cli
