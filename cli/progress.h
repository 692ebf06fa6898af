#pragma once

#include "engine/task_report.h"
#include "engine/training/trainer.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace den::cli {

// NOTE: [eta] The remaining time is estimated from the seconds per training iteration measured so
// far in this process and the iterations still to come. In the current phase those are known (its
// budget, max_iter); for the rest of the task and for later tasks they are the mean iterations and
// seconds of the tasks finished so far (task 1 left out once a later task is done: DEN trains one
// phase on task 1 and up to five on later tasks). Before any task is done the task's ETA is its
// current phase's and the run's assumes later tasks cost what this one did so far. Early stopping
// makes every figure an upper bound rather than an exact one.

/// Elapsed time and the NOTE: [eta] estimates of one method's run of `num_tasks` tasks.
class RunClock {
 public:
  using Clock = std::chrono::steady_clock;

  explicit RunClock(int64_t num_tasks, Clock::time_point start = Clock::now());

  /// Takes in a progress event seen at `now`.
  void on_event(const engine::ProgressEvent& event, Clock::time_point now);
  /// Marks the current task finished at `now`.
  void on_task_done(Clock::time_point now);

  double run_elapsed(Clock::time_point now) const;
  double task_elapsed(Clock::time_point now) const;
  /// Seconds until the current task ends; NaN before the first event.
  double task_eta() const;
  /// Seconds until the last task ends; NaN before the first event.
  double run_eta() const;

 private:
  int64_t num_tasks_;
  Clock::time_point start_;
  Clock::time_point task_start_;
  double seconds_per_iteration_ = 0.0;
  int64_t iterations_ = 0;       ///< trained in this process
  int64_t task_iterations_ = 0;  ///< of the current task
  int64_t last_iteration_ = 0;   ///< of the current phase
  std::string phase_;
  int64_t task_ = 0;
  int64_t phase_remaining_ = 0;
  std::vector<int64_t> done_iterations_;  ///< per finished task
  std::vector<double> done_seconds_;
};

/// `--log FILE.jsonl`: one JSON line per validation step of every phase. A log is read while the
/// run goes on, so it is appended line by line (one write() per line: a killed run leaves whole
/// lines) rather than replaced atomically at the end like the other outputs.
class ProgressLog {
 public:
  /// Creates or truncates `path`. Throws OutputError.
  explicit ProgressLog(const std::string& path);
  ~ProgressLog();
  ProgressLog(const ProgressLog&) = delete;
  ProgressLog& operator=(const ProgressLog&) = delete;

  /// Appends {"method", "task", "phase", "iteration", "max_iter", "train_loss", "val_loss",
  /// "elapsed_seconds", "task_elapsed_seconds"}. Throws OutputError.
  void write(const std::string& method, const engine::ProgressEvent& event, double elapsed, double task_elapsed);

 private:
  std::string path_;
  int fd_ = -1;
};

/// Most points kept of one phase's loss curve in the report: a report stays small whatever the
/// iteration budget.
constexpr size_t kMaxCurvePoints = 200;

/// The progress of one method's run: printed on stderr with elapsed time and ETA (an updating line
/// on a terminal; otherwise a line at each phase's end and at most every 10 s), written to the
/// --log, and kept as each phase's loss curve for the report.
class RunProgress {
 public:
  /// `log` may be null (no --log); it must outlive this object.
  RunProgress(std::string method, int64_t num_tasks, bool quiet, ProgressLog* log);

  /// The callback to give the trainer (RunCallbacks::progress); it refers to this object.
  engine::ProgressCallback callback();
  /// Call when a task is done: its ETA figures restart.
  void task_done();
  /// The loss curves of `report`'s phases, one {"iteration", "train_loss", "val_loss"} object of
  /// parallel arrays (at most kMaxCurvePoints) per phase, in phase order; a phase that sent no
  /// event gets empty arrays. Forgets the task's events.
  nlohmann::json take_curves(const engine::TaskReport& report);

 private:
  void print(const engine::ProgressEvent& event, RunClock::Clock::time_point now);

  std::string method_;
  int64_t num_tasks_;
  bool quiet_;
  bool tty_;
  ProgressLog* log_;
  RunClock clock_;
  RunClock::Clock::time_point last_line_;
  /// Per task: the events of each phase run, in order (a new run starts when the phase's name
  /// changes or its iteration count goes back).
  std::map<int64_t, std::vector<std::vector<engine::ProgressEvent>>> events_;
};

/// A counter for work over many items, `prefix: done/total unit` ("decoding old/: 12/50 images") on
/// one updating stderr line, ended when done == total: the progress callback of work that calls it
/// with (done, total). Empty (no output) when `quiet` or when stderr is no terminal.
std::function<void(int64_t, int64_t)> count_on_terminal(const std::string& prefix, const std::string& unit, bool quiet);

/// `seconds` as "m:ss" or "h:mm:ss"; "?" when not finite.
std::string clock_text(double seconds);

}  // namespace den::cli
