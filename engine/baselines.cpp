#include "engine/baselines.h"

#include "engine/engine.h"

#include <stdexcept>

namespace den::engine {

void BaselineOptions::validate() const {
  if (!(l2_transfer >= 0)) throw std::invalid_argument("l2 transfer lambda must be >= 0, got " + std::to_string(l2_transfer));
  if (!(ewc_lambda >= 0)) throw std::invalid_argument("EWC lambda must be >= 0, got " + std::to_string(ewc_lambda));
  if (fisher_samples < 1) {
    throw std::invalid_argument("EWC Fisher samples must be >= 1, got " + std::to_string(fisher_samples));
  }
}

const std::vector<std::string>& method_names() {
  static const std::vector<std::string> names = {"den", "stl", "mtl", "finetune", "l2", "ewc", "progressive"};
  return names;
}

namespace {

/// Parameters of an MLP trunk with the given hidden sizes (weights and biases).
int64_t trunk_params(int64_t input_dim, const std::vector<int64_t>& hidden) {
  int64_t total = 0;
  int64_t fan_in = input_dim;
  for (int64_t width : hidden) {
    total += width * (fan_in + 1);
    fan_in = width;
  }
  return total;
}

int64_t head_params(const std::vector<int64_t>& hidden, int64_t classes) {
  return classes * ((hidden.empty() ? 0 : hidden.back()) + 1);
}

}  // namespace

int64_t stl_params(int64_t input_dim, const std::vector<int64_t>& hidden, const std::vector<int64_t>& classes) {
  int64_t total = 0;
  for (int64_t c : classes) total += trunk_params(input_dim, hidden) + head_params(hidden, c);
  return total;
}

int64_t shared_params(int64_t input_dim, const std::vector<int64_t>& hidden, const std::vector<int64_t>& classes) {
  int64_t total = trunk_params(input_dim, hidden);
  for (int64_t c : classes) total += head_params(hidden, c);
  return total;
}

std::unique_ptr<Method> make_method(const std::string& name, const EngineConfig& config,
                                    const BaselineOptions& options, int64_t input_dim) {
  options.validate();
  if (name == "den") return std::make_unique<Engine>(config, input_dim);
  std::string known;
  for (const std::string& n : method_names()) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument("unknown method '" + name + "' (known: " + known + ")");
}

}  // namespace den::engine
