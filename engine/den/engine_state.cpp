#include "engine/engine_state.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/util/Exception.h>

#include <stdexcept>
#include <string>

namespace den::engine {

namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument("engine state: " + message);
}

std::string shape_string(at::IntArrayRef sizes) {
  std::string out = "[";
  for (size_t i = 0; i < sizes.size(); ++i) out += (i ? ", " : "") + std::to_string(sizes[i]);
  return out + "]";
}

/// Checks one augmented parameter tensor: defined, CPU, float32, 2-D `[rows, fan_in + 1]`, finite.
void check_parameter(const at::Tensor& t, const std::string& name, int64_t rows, int64_t fan_in) {
  require(t.defined(), name + " is missing");
  require(t.device().is_cpu(), name + " is not on the CPU");
  require(t.scalar_type() == at::kFloat, name + " must be float32, got " + std::string(at::toString(t.scalar_type())));
  // Compared as size(1) - 1 == fan_in: fan_in comes from a file and may be as large as int64 allows.
  require(t.dim() == 2 && t.size(0) == rows && t.size(1) - 1 == fan_in,
          name + " has shape " + shape_string(t.sizes()) + " but the graph needs [" + std::to_string(rows) + ", " +
              std::to_string(fan_in) + " + 1]");
  // In blocks: a whole-tensor isfinite() would allocate a bool copy of a possibly multi-GiB tensor.
  const at::Tensor flat = t.reshape(-1);
  constexpr int64_t kBlock = int64_t{1} << 22;
  for (int64_t i = 0; i < flat.numel(); i += kBlock) {
    const at::Tensor block = flat.narrow(0, i, std::min(kBlock, flat.numel() - i));
    require(block.isfinite().all().item<bool>(), name + " has a NaN or infinite value");
  }
}

/// Validates `state` as a whole, so that from_state either builds a consistent engine or throws.
void validate(const EngineState& s) {
  s.config.validate();
  const graph::UnitGraph& g = s.graph;
  require(s.input_dim >= 1, "input width " + std::to_string(s.input_dim) + " is below 1");
  std::vector<LayerGeometry> geometry;
  try {
    geometry = plan_geometry(s.config.layers, s.config.input_shape, s.input_dim);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument("engine state: " + std::string(e.what()));
  }
  const int64_t inputs = input_units(s.config.layers, s.config.input_shape, s.input_dim);
  require(inputs == g.input_dim(), "the layers read " + std::to_string(inputs) + " input units but the graph has " +
                                       std::to_string(g.input_dim()));
  require(static_cast<int64_t>(s.config.layers.size()) == g.num_layers(),
          "the config has " + std::to_string(s.config.layers.size()) + " hidden layers but the graph " +
              std::to_string(g.num_layers()));
  require(static_cast<int64_t>(s.layers.size()) == g.num_layers(),
          std::to_string(s.layers.size()) + " layer tensors for " + std::to_string(g.num_layers()) + " hidden layers");
  // The column map: each unit below owns `block` columns (NOTE: [augmented rows]).
  int64_t below = inputs;
  for (int64_t l = 0; l < g.num_layers(); ++l) {
    check_parameter(s.layers[l], "layer " + std::to_string(l), g.layer_size(l), below * geometry[l].block);
    below = g.layer_size(l);
  }
  const int64_t fan_in = below * geometry.back().block;
  require(static_cast<int64_t>(s.heads.size()) == g.num_heads(),
          std::to_string(s.heads.size()) + " head tensors for " + std::to_string(g.num_heads()) + " tasks");
  for (int64_t t = 1; t <= g.num_heads(); ++t) {
    check_parameter(s.heads[t - 1], "head " + std::to_string(t), g.head(t).num_outputs, fan_in);
  }
  require(static_cast<int64_t>(s.history.size()) == g.num_heads(),
          std::to_string(s.history.size()) + " task reports for " + std::to_string(g.num_heads()) + " tasks");
  for (int64_t t = 1; t <= g.num_heads(); ++t) {
    const TaskReport& r = s.history[t - 1];
    require(r.task == t, "task report " + std::to_string(t) + " is numbered " + std::to_string(r.task));
    require(r.num_classes == g.head(t).num_outputs,
            "task " + std::to_string(t) + " has " + std::to_string(r.num_classes) + " classes but its head " +
                std::to_string(g.head(t).num_outputs) + " outputs");
  }
  require(g.num_heads() == 0 ? s.base_params == 0 : s.base_params > 0,
          "base parameter count " + std::to_string(s.base_params) + " does not fit " +
              std::to_string(g.num_heads()) + " tasks");

  // The generator state must be exactly what CPUGeneratorImpl::set_state accepts.
  require(s.rng_state.defined() && s.rng_state.scalar_type() == at::kByte && s.rng_state.dim() == 1,
          "the generator state must be a 1-D uint8 tensor");
  at::Generator probe = at::make_generator<at::CPUGeneratorImpl>(0);
  require(s.rng_state.numel() == probe.get_state().numel(),
          "the generator state has " + std::to_string(s.rng_state.numel()) + " bytes, expected " +
              std::to_string(probe.get_state().numel()));
  try {
    probe.set_state(s.rng_state.contiguous());
  } catch (const c10::Error& e) {
    throw std::invalid_argument("engine state: invalid generator state: " + std::string(e.what_without_backtrace()));
  }
}

}  // namespace

EngineState EngineState::clone() const {
  EngineState copy = *this;
  for (at::Tensor& t : copy.layers) t = t.clone();
  for (at::Tensor& t : copy.heads) t = t.clone();
  if (copy.rng_state.defined()) copy.rng_state = copy.rng_state.clone();
  return copy;
}

EngineState Engine::state() const {
  EngineState s;
  s.config = config_;
  s.input_dim = input_dim();
  s.graph = graph_;
  // On the CPU, to(kCPU) returns the same tensors (the state is a view); a GPU engine's are copied.
  for (const at::Tensor& w : network_.layers()) s.layers.push_back(w.to(at::kCPU));
  for (const at::Tensor& h : network_.heads()) s.heads.push_back(h.to(at::kCPU));
  s.history = history_;
  s.base_params = base_params_;
  s.rng_state = generator_.get_state();
  return s;
}

Engine Engine::clone() const { return from_state(state().clone()); }

Engine Engine::from_state(EngineState state) {
  validate(state);
  for (at::Tensor& t : state.layers) t = t.detach().contiguous();
  for (at::Tensor& t : state.heads) t = t.detach().contiguous();
  return Engine(std::move(state), RestoreTag{});
}

Engine::Engine(EngineState&& s, RestoreTag)
    : config_(std::move(s.config)),
      generator_(at::make_generator<at::CPUGeneratorImpl>(config_.seed)),
      network_(s.input_dim, config_.layers, std::move(s.layers), std::move(s.heads), generator_, config_.resolved_device(),
               config_.input_shape),
      graph_(std::move(s.graph)),
      trainer_(config_, generator_),
      history_(std::move(s.history)),
      base_params_(s.base_params) {
  generator_.set_state(s.rng_state.contiguous());
}

}  // namespace den::engine
