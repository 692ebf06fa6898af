#include "engine/config.h"

#include "engine/hyperparameters.h"

#include <ATen/Context.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/util/Exception.h>

#include <optional>
#include <stdexcept>

namespace den::engine {

LossKind parse_loss(const std::string& name) {
  if (name == "softmax") return LossKind::Softmax;
  if (name == "sigmoid") return LossKind::Sigmoid;
  throw std::invalid_argument("unknown loss '" + name + "' (expected softmax or sigmoid)");
}

SplitPolicy parse_split_policy(const std::string& name) {
  if (name == "always") return SplitPolicy::Always;
  if (name == "after-expansion") return SplitPolicy::AfterExpansion;
  throw std::invalid_argument("unknown split policy '" + name + "' (expected always or after-expansion)");
}

std::string to_string(LossKind loss) { return loss == LossKind::Softmax ? "softmax" : "sigmoid"; }
std::string to_string(SplitPolicy policy) { return policy == SplitPolicy::Always ? "always" : "after-expansion"; }

at::Device EngineConfig::resolved_device() const {
  std::optional<at::Device> parsed;
  try {
    parsed = at::Device(device);
  } catch (const c10::Error&) {
    throw std::invalid_argument("unknown device '" + device + "' (expected cpu or cuda[:N])");
  }
  if (parsed->is_cuda()) {
    if (!at::hasCUDA()) {
      throw std::invalid_argument("device '" + device +
                                  "': this LibTorch was built without CUDA support (Debian's libtorch is CPU-only; "
                                  "configure with -DTorch_DIR=<a CUDA LibTorch>)");
    }
    const int64_t gpus = at::detail::getCUDAHooks().getNumGPUs();
    if (gpus == 0 || (parsed->has_index() && parsed->index() >= gpus)) {
      throw std::invalid_argument("device '" + device + "': " + std::to_string(gpus) + " CUDA device(s) present");
    }
  } else if (!parsed->is_cpu()) {
    throw std::invalid_argument("device '" + device + "' is not supported (expected cpu or cuda[:N])");
  }
  return *parsed;
}

void EngineConfig::validate() const {
  // The rules live in the table (engine/hyperparameters.h), where the CLI reads them too; the
  // layers' own message says which layer is wrong.
  const std::string layers_wrong = layers_problem(layers);
  if (!layers_wrong.empty()) throw std::invalid_argument("invalid setting layers = " + to_text(layers) + ": " + layers_wrong);
  visit_hyperparameters([this](const auto& h) {
    if (h.valid(h.value(*this))) return;
    const std::string text = to_text(h.value(*this));
    throw std::invalid_argument("invalid setting " + std::string(h.name) + " = " + (text.empty() ? "(empty)" : text) +
                                ": " + h.rule.text);
  });
}

EngineConfig preset(const std::string& name) {
  EngineConfig c;
  if (name == "released") return c;
  if (name != "den") {
    throw std::invalid_argument("unknown preset '" + name + "' (expected den or released)");
  }
  // NOTE: [presets] Chosen on a validation split of Fashion-MNIST's training file, never its test
  // file; docs/algorithm.md ("Presets") says why each value differs from the released one and how
  // it was chosen.
  c.k = 7;
  c.max_splits_per_layer = 2;
  c.selection_budget = 0.3;
  c.restore_drifted = true;
  c.relative_sigma = true;
  c.sigma = 0.05;
  c.relative_tau = true;
  c.tau = 0.05;
  c.expansion_min_gain = 0.01;
  c.selective_iter_fraction = 0.25;
  c.prune_to_fixpoint = true;
  c.reset_zeroed_moments = true;
  c.early_stop_patience = 10;
  c.early_stop_min_delta = 0.0;
  return c;
}

std::vector<std::string> preset_names() { return {"den", "released"}; }

}  // namespace den::engine
