#include "cli/interrupt.h"

#include "cli/exit_codes.h"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <utility>

namespace den::cli {

namespace {

// Lock-free, so the handler may touch it (async-signal-safe).
std::atomic<int> g_signals{0};
static_assert(std::atomic<int>::is_always_lock_free);

extern "C" void on_interrupt(int) {
  if (g_signals.fetch_add(1) > 0) ::_exit(kInterrupted);  // the second one: at once (NOTE: [interrupts])
  static const char message[] =
      "\nden: interrupted; stopping at the next step and keeping the work done (again to quit at once)\n";
  const ssize_t ignored = ::write(STDERR_FILENO, message, sizeof message - 1);
  (void)ignored;
}

}  // namespace

void install_interrupt_handlers() {
  struct sigaction action {};
  action.sa_handler = on_interrupt;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // file writes and waits in progress go on undisturbed
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
}

bool interrupt_requested() { return g_signals.load() > 0; }

void stop_if_interrupted() {
  if (interrupt_requested()) throw Interrupted();
}

engine::ProgressCallback interruptible(engine::ProgressCallback progress) {
  return [progress = std::move(progress)](const engine::ProgressEvent& event) {
    stop_if_interrupted();
    if (progress) progress(event);
  };
}

}  // namespace den::cli
