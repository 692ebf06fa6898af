#include "engine/engine.h"

namespace den::engine {

// Task 1: every layer and the head train on loss + l2*||W||^2, with the L1 prox after each step so
// that the network starts sparse (DEN, Sec. 3, "for t = 1").
void Engine::train_first_task(int64_t t, const Task& task, const ProgressCallback& progress, TaskReport& report) {
  PhaseSpec spec;
  spec.name = "train";
  spec.max_iter = config_.max_iter;
  spec.l2 = config_.l2;
  spec.mu = config_.mu;
  for (at::Tensor& w : network_.layers()) spec.params.push_back({&w, {}, {}, {}, {}});
  spec.params.push_back({&network_.head(t), {}, {}, {}, {}});
  report.phases.push_back(trainer_.train(network_, t, task, spec, progress));
}

}  // namespace den::engine
