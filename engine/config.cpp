#include "engine/config.h"

#include <ATen/Context.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <optional>
#include <sstream>
#include <stdexcept>

namespace den::engine {

namespace {

template <typename T>
void require(bool ok, const char* name, T value, const char* rule) {
  if (!ok) {
    std::ostringstream msg;
    msg << "invalid setting " << name << " = " << value << ": " << rule;
    throw std::invalid_argument(msg.str());
  }
}

}  // namespace

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
  require(!hidden.empty(), "hidden", "(empty)", "at least one hidden layer is needed");
  for (size_t l = 0; l < hidden.size(); ++l) {
    require(hidden[l] >= 1, "hidden", hidden[l], "every hidden layer needs at least 1 unit");
  }
  require(max_iter >= 1, "max_iter", max_iter, "must be >= 1");
  require(head_iters >= -1, "head_iters", head_iters, "must be >= 0, or -1 for max_iter/10");
  require(batch_size >= 1, "batch_size", batch_size, "must be >= 1");
  require(std::isfinite(lr) && lr > 0, "lr", lr, "must be a positive number");
  require(std::isfinite(lr_decay) && lr_decay > 0 && lr_decay <= 1, "lr_decay", lr_decay, "must be in (0, 1]");
  require(std::isfinite(mu) && mu >= 0, "mu", mu, "must be >= 0");
  require(std::isfinite(l2) && l2 >= 0, "l2", l2, "must be >= 0");
  require(std::isfinite(gamma) && gamma >= 0, "gamma", gamma, "must be >= 0");
  require(std::isfinite(lambda) && lambda >= 0, "lambda", lambda, "must be >= 0");
  require(k >= 0, "k", k, "must be >= 0");
  require(std::isfinite(tau) && tau >= 0, "tau", tau, "must be >= 0");
  require(std::isfinite(sigma) && sigma >= 0, "sigma", sigma, "must be >= 0");
  require(max_splits_per_layer >= -1, "max_splits_per_layer", max_splits_per_layer, "must be >= 0, or -1 for k");
  require(eval_every >= 1, "eval_every", eval_every, "must be >= 1");
  require(early_stop_window >= 2, "early_stop_window", early_stop_window, "must be >= 2");
  require(std::isfinite(early_stop_tol) && early_stop_tol >= 0, "early_stop_tol", early_stop_tol, "must be >= 0");
  require(early_stop_patience >= 0, "early_stop_patience", early_stop_patience, "must be >= 0 (0 = off)");
  require(std::isfinite(early_stop_min_delta) && early_stop_min_delta >= 0 && early_stop_min_delta < 1,
          "early_stop_min_delta", early_stop_min_delta, "must be in [0, 1)");
  require(max_eval_samples >= 1, "max_eval_samples", max_eval_samples, "must be >= 1");
  require(device == "cpu" || device.rfind("cuda", 0) == 0, "device", device, "must be cpu or cuda[:N]");
}

}  // namespace den::engine
