#pragma once

#include "engine/config.h"
#include "engine/engine.h"
#include "graph/unit_graph.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace den::engine {

/// Everything that defines an Engine, so that it can be stored and rebuilt exactly (checkpoints,
/// serialization/checkpoint.h). An Engine rebuilt with `Engine::from_state` continues as the
/// original would have: same outputs, same growth and, because the generator state is included,
/// the same random draws.
struct EngineState {
  EngineConfig config;
  int64_t input_dim = 0;
  graph::UnitGraph graph{1, {1}};
  /// Augmented hidden layers `[n_l, n_{l-1} + 1]` (NOTE: [augmented rows] in engine/training/network.h),
  /// float32, in the graph's unit order.
  std::vector<at::Tensor> layers;
  /// Augmented heads `[c_t, n_L + 1]`, one per task in task order.
  std::vector<at::Tensor> heads;
  std::vector<TaskReport> history;  ///< one report per task learned
  int64_t base_params = 0;          ///< parameters of the task-1 network (0 before any task)
  at::Tensor rng_state;             ///< the CPU generator's state (at::Generator::get_state), uint8

  /// A copy whose tensors share no storage with this one (or with the engine it came from).
  EngineState clone() const;
};

}  // namespace den::engine
