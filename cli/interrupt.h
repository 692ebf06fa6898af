#pragma once

#include "engine/evaluation/run.h"

#include <stdexcept>

namespace den::cli {

// NOTE: [interrupts] The first SIGINT or SIGTERM only sets a flag. den checks it at step
// boundaries: each validation step inside a training phase (every --eval-every iterations) and the
// end of each task, after that task's checkpoint is written. There it stops, keeps what it has (the
// checkpoint of the last finished task, a report marked "partial") and exits with 130. A second
// signal exits at once with 130: every file den writes is replaced atomically (a temporary, then a
// rename), so what is on disk is the last complete version of each file.

/// Installs the SIGINT and SIGTERM handlers of NOTE: [interrupts]. Idempotent.
void install_interrupt_handlers();

/// Whether a first SIGINT or SIGTERM has arrived.
bool interrupt_requested();

/// Thrown at a step boundary once a signal has arrived; the commands catch it, write what they
/// have and return kInterrupted.
class Interrupted : public std::runtime_error {
 public:
  Interrupted() : std::runtime_error("interrupted") {}
};

/// Throws Interrupted when a signal has arrived: call it at a step boundary.
void stop_if_interrupted();

/// `progress` (which may be empty) preceded by stop_if_interrupted: the training loop calls it at
/// every validation step.
engine::ProgressCallback interruptible(engine::ProgressCallback progress);

}  // namespace den::cli
