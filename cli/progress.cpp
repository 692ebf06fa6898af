// Progress of a run: terminal and log-friendly lines with elapsed time and ETA, the --log JSONL
// file, and the loss curves the report keeps.

#include "cli/progress.h"

#include "cli/report.h"
#include "cli/run_options.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>

namespace den::cli {

namespace {

double seconds_between(RunClock::Clock::time_point from, RunClock::Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

template <typename T>
double mean_of(const std::vector<T>& values, size_t first) {
  if (values.size() <= first) return std::nan("");
  return std::accumulate(values.begin() + static_cast<std::ptrdiff_t>(first), values.end(), 0.0) /
         static_cast<double>(values.size() - first);
}

/// Task 1 is left out of the means once a later task is done (NOTE: [eta]).
size_t first_counted(size_t done) { return done >= 2 ? 1 : 0; }

/// `count` indices spread evenly over 0..size-1, the first and the last included.
std::vector<size_t> spread_indices(size_t size, size_t count) {
  std::vector<size_t> out;
  if (size <= count) {
    for (size_t i = 0; i < size; ++i) out.push_back(i);
    return out;
  }
  for (size_t i = 0; i < count; ++i) out.push_back(i * (size - 1) / (count - 1));
  return out;
}

nlohmann::json curve_json(const std::vector<engine::ProgressEvent>& events) {
  nlohmann::json iteration = nlohmann::json::array(), train = nlohmann::json::array(), val = nlohmann::json::array();
  for (size_t i : spread_indices(events.size(), kMaxCurvePoints)) {
    iteration.push_back(events[i].iteration);
    train.push_back(number_or_null(events[i].train_loss));
    val.push_back(number_or_null(events[i].val_loss));
  }
  return {{"iteration", iteration}, {"train_loss", train}, {"val_loss", val}};
}

}  // namespace

std::function<void(int64_t, int64_t)> count_on_terminal(const std::string& prefix, const std::string& unit, bool quiet) {
  if (quiet || ::isatty(STDERR_FILENO) == 0) return {};
  return [prefix, unit](int64_t done, int64_t total) {
    std::fprintf(stderr, "\r%s: %lld/%lld %s", prefix.c_str(), static_cast<long long>(done),
                 static_cast<long long>(total), unit.c_str());
    if (done == total) std::fputc('\n', stderr);
  };
}

std::string clock_text(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto total = static_cast<long long>(std::llround(seconds));
  char buf[32];
  if (total >= 3600) {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", total / 3600, total / 60 % 60, total % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lld:%02lld", total / 60, total % 60);
  }
  return buf;
}

RunClock::RunClock(int64_t num_tasks, Clock::time_point start)
    : num_tasks_(num_tasks), start_(start), task_start_(start) {}

void RunClock::on_event(const engine::ProgressEvent& e, Clock::time_point now) {
  const bool new_phase = e.task != task_ || e.phase != phase_ || e.iteration <= last_iteration_;
  const int64_t trained = new_phase ? e.iteration : e.iteration - last_iteration_;
  iterations_ += trained;
  task_iterations_ += trained;
  task_ = e.task;
  phase_ = e.phase;
  last_iteration_ = e.iteration;
  phase_remaining_ = std::max<int64_t>(0, e.max_iter - e.iteration);
  if (iterations_ > 0) seconds_per_iteration_ = seconds_between(start_, now) / static_cast<double>(iterations_);
}

void RunClock::on_task_done(Clock::time_point now) {
  done_iterations_.push_back(task_iterations_);
  done_seconds_.push_back(seconds_between(task_start_, now));
  task_start_ = now;
  task_iterations_ = 0;
  last_iteration_ = 0;
  phase_.clear();
  phase_remaining_ = 0;
}

double RunClock::run_elapsed(Clock::time_point now) const { return seconds_between(start_, now); }

double RunClock::task_elapsed(Clock::time_point now) const { return seconds_between(task_start_, now); }

double RunClock::task_eta() const {
  if (iterations_ == 0) return std::nan("");
  double remaining = static_cast<double>(phase_remaining_);
  const double expected = mean_of(done_iterations_, first_counted(done_iterations_.size()));
  if (std::isfinite(expected)) remaining = std::max(remaining, expected - static_cast<double>(task_iterations_));
  return remaining * seconds_per_iteration_;
}

double RunClock::run_eta() const {
  const double task = task_eta();
  if (!std::isfinite(task)) return task;
  const auto later_tasks = static_cast<double>(std::max<int64_t>(0, num_tasks_ - task_));
  double per_task = mean_of(done_seconds_, first_counted(done_seconds_.size()));
  if (!std::isfinite(per_task)) {
    per_task = static_cast<double>(task_iterations_ + phase_remaining_) * seconds_per_iteration_;
  }
  return task + later_tasks * per_task;
}

ProgressLog::ProgressLog(const std::string& path) : path_(path) {
  check_writable(path);
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd_ < 0) throw OutputError("cannot write --log '" + path + "': " + std::strerror(errno));
}

ProgressLog::~ProgressLog() {
  if (fd_ >= 0) ::close(fd_);
}

void ProgressLog::write(const std::string& method, const engine::ProgressEvent& e, double elapsed,
                        double task_elapsed) {
  const nlohmann::json line = {{"method", method},
                               {"task", e.task},
                               {"phase", e.phase},
                               {"iteration", e.iteration},
                               {"max_iter", e.max_iter},
                               {"train_loss", number_or_null(e.train_loss)},
                               {"val_loss", number_or_null(e.val_loss)},
                               {"elapsed_seconds", elapsed},
                               {"task_elapsed_seconds", task_elapsed}};
  const std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd_, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw OutputError("cannot write --log '" + path_ + "': " + std::strerror(errno));
    written += static_cast<size_t>(n);
  }
}

RunProgress::RunProgress(std::string method, int64_t num_tasks, bool quiet, ProgressLog* log)
    : method_(std::move(method)),
      num_tasks_(num_tasks),
      quiet_(quiet),
      tty_(::isatty(STDERR_FILENO) != 0),
      log_(log),
      clock_(num_tasks),
      last_line_(RunClock::Clock::now()) {}

engine::ProgressCallback RunProgress::callback() {
  return [this](const engine::ProgressEvent& e) {
    const auto now = RunClock::Clock::now();
    clock_.on_event(e, now);
    auto& runs = events_[e.task];
    if (runs.empty() || runs.back().back().phase != e.phase || runs.back().back().iteration >= e.iteration) {
      runs.emplace_back();
    }
    runs.back().push_back(e);
    if (log_ != nullptr) log_->write(method_, e, clock_.run_elapsed(now), clock_.task_elapsed(now));
    if (!quiet_) print(e, now);
  };
}

void RunProgress::task_done() { clock_.on_task_done(RunClock::Clock::now()); }

nlohmann::json RunProgress::take_curves(const engine::TaskReport& report) {
  std::vector<std::vector<engine::ProgressEvent>> runs;
  if (auto it = events_.find(report.task); it != events_.end()) {
    runs = std::move(it->second);
    events_.erase(it);
  }
  // Phases run in report order; one that trained no iteration sent no event, so a run is given to
  // the next phase of its name.
  nlohmann::json curves = nlohmann::json::array();
  size_t next = 0;
  for (const engine::PhaseResult& phase : report.phases) {
    if (next < runs.size() && runs[next].front().phase == phase.name) {
      curves.push_back(curve_json(runs[next++]));
    } else {
      curves.push_back(curve_json({}));
    }
  }
  return curves;
}

void RunProgress::print(const engine::ProgressEvent& e, RunClock::Clock::time_point now) {
  const bool phase_end = e.iteration == e.max_iter;
  // Without a terminal every line stays in the log: one per phase, and one at most every 10 s.
  if (!tty_ && !phase_end && seconds_between(last_line_, now) < 10.0) return;
  last_line_ = now;
  std::fprintf(stderr, "%s[task %lld/%lld] %-10s it %5lld/%-5lld  loss %.4f  val %.4f  task %s eta %s  run %s eta %s%s",
               tty_ ? "\r" : "", static_cast<long long>(e.task), static_cast<long long>(num_tasks_), e.phase.c_str(),
               static_cast<long long>(e.iteration), static_cast<long long>(e.max_iter), e.train_loss, e.val_loss,
               clock_text(clock_.task_elapsed(now)).c_str(), clock_text(clock_.task_eta()).c_str(),
               clock_text(clock_.run_elapsed(now)).c_str(), clock_text(clock_.run_eta()).c_str(),
               tty_ && !phase_end ? "   " : "\n");
  std::fflush(stderr);
}

}  // namespace den::cli
