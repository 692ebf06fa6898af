#pragma once

#include "engine/config.h"
#include "engine/method.h"
#include "engine/training/network.h"
#include "engine/task.h"
#include "engine/training/trainer.h"
#include "graph/subnetwork.h"
#include "graph/unit_graph.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace spdlog {
class logger;
}

namespace den::engine {

struct EngineState;

/// The engine's named logger ("den.engine"). It has no sinks until the host program adds some;
/// the library never prints by itself.
std::shared_ptr<spdlog::logger> logger();

/// A Dynamically Expandable Network (Yoon et al., ICLR 2018): learns a sequence of tasks, growing
/// only as much as each needs. Task ids are 1-based and equal the birth stages of units.
///
///   den::engine::Engine engine(cfg, /*input_dim=*/784);
///   TaskReport r = engine.add_task(task);
///   at::Tensor logits = engine.predict(/*task_id=*/1, x);
///
/// add_task is not thread-safe; the const calls (predict, predict_all) may run concurrently.
class Engine : public Method {
 public:
  /// Validates `config` (std::invalid_argument) and builds the base network.
  Engine(EngineConfig config, int64_t input_dim);

  /// Move-only: a member-wise copy would share the parameter tensors and the generator, so that
  /// training the copy would change the original. clone() makes an independent deep copy.
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  Engine(Engine&&) = default;
  Engine& operator=(Engine&&) = default;
  ~Engine() override = default;

  /// A deep copy: its own tensors, graph, history and generator state, so either engine can
  /// learn further tasks without changing the other; both predict the same until then.
  Engine clone() const;

  /// Learns one more task: on the first task, sparse training of the whole network; afterwards
  /// selective retraining, dynamic expansion if the validation loss stays above tau, and
  /// split/duplication of drifted units (docs/algorithm.md). Throws
  /// std::invalid_argument for a task whose data is empty, of the wrong width, with labels out of
  /// range or non-finite features; the engine is unchanged then.
  TaskReport add_task(const Task& task, const ProgressCallback& progress = {}) override;

  /// Logits `[N, c_task]` of task `task_id` for `x` `[N, input_dim]`, using only the units born at
  /// stages <= task_id (timestamped inference) through a compacted copy of that task's network.
  /// Throws std::invalid_argument for an unknown task id, wrong width, or non-finite input.
  /// predict and predict_all may run from several threads at once (not during add_task).
  at::Tensor predict(int64_t task_id, const at::Tensor& x) const override;

  /// Logits of every task for `x`: predict(s, x) for each s, up to float rounding, since the first
  /// layer's product is made once over all its rows for all tasks (NOTE: [shared first layer]).
  /// Empty before the first task.
  std::vector<at::Tensor> predict_all(const at::Tensor& x) const override;

  std::string name() const override { return "den"; }

  int64_t num_tasks() const override { return graph_.num_heads(); }
  int64_t input_dim() const { return network_.input_dim(); }
  const EngineConfig& config() const override { return config_; }
  const graph::UnitGraph& graph() const { return graph_; }
  const Network& network() const { return network_; }
  const std::vector<TaskReport>& history() const { return history_; }
  /// Parameters of all layers and heads now.
  int64_t num_params() const override { return network_.num_params(); }
  /// Parameters of the network for task 1 alone, before any growth (0 before the first task).
  int64_t base_params() const override { return base_params_; }
  double hidden_growth() const override;

  /// A task's network with only the units it may use, born at stages <= the task, in the network's
  /// order and layout (NOTE: [augmented rows]): the network as it was after that task.
  struct CompactNetwork {
    std::vector<at::Tensor> layers;
    at::Tensor head;
    at::Tensor first_layer_rows;    ///< int64 positions of its first-layer units in the network
    bool first_layer_leading = false;  ///< whether those are the network's leading rows
  };
  /// Task `task_id`'s compacted network, built once per task and kept until the next add_task
  /// (predict's, and the exports' starting point). `task_id` must be 1..num_tasks().
  const CompactNetwork& compact(int64_t task_id) const;

  /// Everything that defines the engine (engine/engine_state.h). The tensors share storage with
  /// the engine, so the state is a view that later training changes: take `state().clone()` for a
  /// snapshot. The generator state is a copy.
  EngineState state() const;
  /// Rebuilds an engine from `state` (for example a loaded checkpoint), which it takes over: the
  /// tensors must not be shared with a live engine. Throws std::invalid_argument naming the first
  /// inconsistency: an invalid config, hidden layers or heads whose count or shapes do not match
  /// the graph, non-float32 or non-finite parameters, a history that is not one report per task,
  /// or a generator state of the wrong size.
  static Engine from_state(EngineState state);

 private:
  struct RestoreTag {};
  Engine(EngineState&& state, RestoreTag);  // from_state, after validation

  Task checked_task(const Task& task) const;
  at::Tensor checked_input(int64_t task_id, const at::Tensor& x) const;

  // Phases, one file each (engine/den/first_task.cpp, selective_retrain.cpp, expansion.cpp, split.cpp).
  void train_first_task(int64_t t, const Task& task, const ProgressCallback& progress, TaskReport& report);
  graph::Subnetwork selective_retrain(int64_t t, const Task& task, const std::vector<at::Tensor>& previous,
                                      const ProgressCallback& progress, TaskReport& report);
  void expand(int64_t t, const Task& task, const ProgressCallback& progress, TaskReport& report);
  /// Trains task t's head alone over its whole budget (grow-only tasks without kept units).
  void train_head_alone(int64_t t, const Task& task, const ProgressCallback& progress, TaskReport& report);
  void split(int64_t t, const Task& task, const std::vector<at::Tensor>& previous, const graph::Subnetwork& selected,
             const ProgressCallback& progress, TaskReport& report);

  EngineConfig config_;
  at::Generator generator_;
  Network network_;
  graph::UnitGraph graph_;
  Trainer trainer_;
  std::vector<TaskReport> history_;
  int64_t base_params_ = 0;
  mutable std::vector<std::optional<CompactNetwork>> compact_cache_;
  // Guards compact_cache_, which concurrent predicts fill lazily. Moving an engine leaves the new one
  // a fresh mutex: nothing may use an engine while it is moved.
  struct CacheMutex {
    std::mutex mutex;
    CacheMutex() = default;
    CacheMutex(CacheMutex&&) noexcept {}
    CacheMutex& operator=(CacheMutex&&) noexcept { return *this; }
  };
  mutable CacheMutex compact_mutex_;
};

}  // namespace den::engine
