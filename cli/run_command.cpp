#include "cli/run_command.h"

#include "cli/checkpoint_commands.h"
#include "cli/report.h"
#include "data/idx_reader.h"
#include "engine/engine.h"
#include "engine/run.h"
#include "engine/threads.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <cstdio>
#include <sstream>

namespace den::cli {

namespace {

std::vector<int64_t> parse_hidden(const std::string& text) {
  std::vector<int64_t> sizes;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    int64_t value = 0;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size()) {
      throw std::invalid_argument("--hidden '" + text + "': '" + item + "' is not an integer");
    }
    if (value < 1) throw std::invalid_argument("--hidden '" + text + "': layer sizes must be >= 1, got " + item);
    sizes.push_back(value);
  }
  if (sizes.empty()) throw std::invalid_argument("--hidden is empty; give sizes like 312,128");
  return sizes;
}

/// Progress on stderr: an updating line on a terminal, otherwise a line per 1000 iterations.
engine::ProgressCallback progress_printer(int64_t num_tasks, bool quiet) {
  if (quiet) return {};
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  return [num_tasks, tty](const engine::ProgressEvent& e) {
    const bool phase_end = e.iteration == e.max_iter;
    if (tty) {
      std::fprintf(stderr, "\r[task %lld/%lld] %-10s it %5lld/%-5lld  loss %.4f  val %.4f   ",
                   static_cast<long long>(e.task), static_cast<long long>(num_tasks), e.phase.c_str(),
                   static_cast<long long>(e.iteration), static_cast<long long>(e.max_iter), e.train_loss, e.val_loss);
      if (phase_end) std::fputc('\n', stderr);
    } else if (phase_end || e.iteration % 1000 == 0) {
      std::fprintf(stderr, "[task %lld/%lld] %-10s it %5lld/%-5lld  loss %.4f  val %.4f\n",
                   static_cast<long long>(e.task), static_cast<long long>(num_tasks), e.phase.c_str(),
                   static_cast<long long>(e.iteration), static_cast<long long>(e.max_iter), e.train_loss, e.val_loss);
    }
    std::fflush(stderr);
  };
}

}  // namespace

CLI::App* add_run_command(CLI::App& app, RunOptions& o) {
  CLI::App* run = app.add_subcommand("run", "Learn a stream of tasks with one method and print per-task results");
  engine::EngineConfig& c = o.engine;
  data::StreamOptions& s = o.stream;

  run->add_option("--data", o.data_dir, "Data directory: IDX files (train-/t10k-images/labels, .gz or raw) "
                                        "or train.csv/test.csv (label in column 0)")
      ->capture_default_str();
  run->add_option("--protocol", o.protocol, "Task stream: permuted, split or one-vs-rest")
      ->check(CLI::IsMember({"permuted", "split", "one-vs-rest"}))
      ->capture_default_str();
  run->add_option("--tasks", s.num_tasks, "Number of tasks")->check(CLI::PositiveNumber)->capture_default_str();
  run->add_option("--classes-per-task", s.classes_per_task, "Classes per task (split protocol)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  run->add_option("--train-limit", s.train_limit, "At most N training samples per task (0 = all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  run->add_option("--val-fraction", s.val_fraction, "Fraction of the training file held out for validation")
      ->check(CLI::Range(0.0, 0.9))
      ->capture_default_str();
  run->add_option("--normalize", o.normalization, "Feature normalization: none, minmax or standardize "
                                                  "(IDX bytes are already scaled to [0,1])")
      ->check(CLI::IsMember({"none", "minmax", "standardize"}))
      ->capture_default_str();
  run->add_option("--method", o.method, "Learning method (den)")->check(CLI::IsMember({"den"}))->capture_default_str();
  run->add_option("--hidden", o.hidden, "Hidden layer sizes of the base network, comma separated")->capture_default_str();
  run->add_option("--max-iter", c.max_iter, "Iterations per training phase (early stopping may end sooner)")
      ->capture_default_str();
  run->add_option("--head-iters", c.head_iters, "Iterations of the sparse-head phase (-1 = max-iter/10)")
      ->capture_default_str();
  run->add_option("--batch-size", c.batch_size, "Mini-batch size")->capture_default_str();
  run->add_option("--lr", c.lr, "Adam learning rate")->capture_default_str();
  run->add_option("--lr-decay", c.lr_decay, "Staircase learning-rate decay per epoch")->capture_default_str();
  run->add_option("--mu", c.mu, "L1 strength (soft-threshold per step)")->capture_default_str();
  run->add_option("--l2", c.l2, "L2 strength")->capture_default_str();
  run->add_option("--gamma", c.gamma, "Group-lasso strength for expanded units")->capture_default_str();
  run->add_option("--lambda", c.lambda, "Drift penalty toward the previous task's weights")->capture_default_str();
  run->add_option("--k", c.k, "Units added per hidden layer by dynamic expansion")->capture_default_str();
  run->add_option("--tau", c.tau, "Expand when the validation loss after selective retraining exceeds tau")
      ->capture_default_str();
  run->add_option("--sigma", c.sigma, "Split units whose incoming weights drifted by more than sigma (L2)")
      ->capture_default_str();
  run->add_option("--max-splits", c.max_splits_per_layer, "Most units split per layer per task (-1 = k)")
      ->capture_default_str();
  run->add_option("--split-policy", o.split_policy, "always (paper) or after-expansion (released code)")
      ->check(CLI::IsMember({"always", "after-expansion"}))
      ->capture_default_str();
  run->add_option("--loss", o.loss, "Head loss: softmax (cross-entropy) or sigmoid (per-output BCE)")
      ->check(CLI::IsMember({"softmax", "sigmoid"}))
      ->capture_default_str();
  run->add_flag("--prox-scale-lr", c.prox_scale_by_lr, "Scale prox thresholds by the learning rate");
  run->add_flag("--freeze-existing", c.freeze_existing,
                "Grow only: skip selective retraining and splits, so earlier tasks never change");
  run->add_option("--eval-every", c.eval_every, "Iterations between validation evaluations")->capture_default_str();
  run->add_option("--device", c.device, "cpu, or cuda[:N] with a CUDA LibTorch and a GPU")->capture_default_str();
  run->add_option("--seed", c.seed, "Random seed (data stream and training)")->capture_default_str();
  run->add_option("--threads", o.threads, "Threads for the matrix products; element-wise ops use one (0 = all cores)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  run->add_option("--report", o.report_path, "Write a JSON report to this file");
  run->add_flag("--quiet", o.quiet, "No progress output (results table only)");
  run->add_option("--checkpoint", o.checkpoint_path, "Save a checkpoint to this file after every task");
  run->add_option("--resume", o.resume_path,
                  "Continue the run stored in this checkpoint with its next task (settings from the checkpoint)");
  o.command = run;
  return run;
}

int run_command(RunOptions& o) {
  o.engine.hidden = parse_hidden(o.hidden);
  o.engine.loss = engine::parse_loss(o.loss);
  o.engine.split_policy = engine::parse_split_policy(o.split_policy);
  o.stream.protocol = data::parse_protocol(o.protocol);
  o.stream.seed = o.engine.seed;
  o.engine.validate();
  o.engine.resolved_device();  // a missing GPU is a usage error before any data is read
  RunCheckpoints checkpoints(o);  // --checkpoint, --resume (NOTE: [resume] in cli/checkpoint_commands.h)
  if (!o.report_path.empty()) check_writable(o.report_path);
  engine::configure_threads(o.threads);

  auto err = spdlog::stderr_color_mt("den.cli");
  err->set_pattern("%v");
  if (!o.quiet) std::fprintf(stderr, "loading %s\n", o.data_dir.c_str());
  data::TrainTest files = data::load_directory(o.data_dir);
  data::normalize_(files.train, files.test, data::parse_normalization(o.normalization));
  checkpoints.check_data(files);
  const data::TaskStream stream(std::move(files.train), std::move(files.test), o.stream);

  engine::Engine den = checkpoints.make_engine(stream.input_dim());
  engine::RunCallbacks callbacks;
  callbacks.progress = progress_printer(stream.num_tasks(), o.quiet);
  nlohmann::json tasks = nlohmann::json::array();
  std::printf("den run: method %s, protocol %s, %lld tasks, hidden %s, max-iter %lld, seed %llu\n", o.method.c_str(),
              data::to_string(o.stream.protocol).c_str(), static_cast<long long>(stream.num_tasks()), o.hidden.c_str(),
              static_cast<long long>(o.engine.max_iter), static_cast<unsigned long long>(o.engine.seed));
  print_table_header(stdout);
  std::fflush(stdout);
  callbacks.task_done = [&tasks](const engine::TaskReport& report, const engine::TaskEvaluation& evaluation) {
    print_table_row(stdout, report, evaluation);
    tasks.push_back(task_json(report, evaluation));
  };
  checkpoints.for_each_prior(callbacks.task_done);
  const engine::RunResult result =
      checkpoints.run(den, stream.num_tasks(), [&stream](int64_t t) { return stream.task(t); }, callbacks);
  print_summary(stdout, result);

  if (!o.report_path.empty()) {
    nlohmann::json doc = {{"method", o.method},
                          {"protocol", data::to_string(o.stream.protocol)},
                          {"data", o.data_dir},
                          {"config", config_json(o.engine)},
                          {"stream",
                           {{"tasks", o.stream.num_tasks},
                            {"classes_per_task", o.stream.classes_per_task},
                            {"train_limit", o.stream.train_limit},
                            {"val_fraction", o.stream.val_fraction},
                            {"normalize", o.normalization}}},
                          {"tasks", tasks},
                          {"final", final_json(result)}};
    write_json_file(o.report_path, doc);
    std::printf("report written to %s\n", o.report_path.c_str());
  }
  return 0;
}

}  // namespace den::cli
