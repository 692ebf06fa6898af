#include "engine/baselines/replay.h"

#include <limits>
#include <stdexcept>
#include <string>

namespace den::engine {

std::vector<int64_t> herding_order(const at::Tensor& features, int64_t count) {
  if (features.dim() != 2) throw std::invalid_argument("herding: features must be [N, d]");
  const at::Tensor f = features.to(at::kDouble);
  const int64_t n = f.size(0);
  const at::Tensor mean = f.mean(0);
  at::Tensor picked_sum = at::zeros_like(mean);
  at::Tensor taken = at::zeros({n}, at::kBool);
  std::vector<int64_t> order;
  for (int64_t k = 1; k <= std::min(count, n); ++k) {
    const at::Tensor distance = (mean.unsqueeze(0) - (f + picked_sum) / static_cast<double>(k)).pow(2).sum(1);
    const int64_t best =
        distance.masked_fill(taken, std::numeric_limits<double>::infinity()).argmin().item<int64_t>();
    order.push_back(best);
    taken[best] = true;
    picked_sum += f[best];
  }
  return order;
}

std::vector<int64_t> reservoir_slots(int64_t seen, int64_t count, int64_t capacity, at::Generator& generator) {
  // Sample n draws j uniform in [0, n]: kept with probability capacity / (n + 1), in slot j. The
  // uniforms come in one draw; float64 keeps floor(u * (n + 1)) uniform for any stream length here.
  const at::Tensor u = at::rand({count}, generator, at::kDouble);
  const auto uniform = u.accessor<double, 1>();
  std::vector<int64_t> slots(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    const int64_t n = seen + i;
    const auto j = n < capacity ? n : static_cast<int64_t>(uniform[i] * static_cast<double>(n + 1));
    slots[static_cast<size_t>(i)] = j < capacity ? j : -1;
  }
  return slots;
}

at::Tensor softmax_distillation(const at::Tensor& logits, const at::Tensor& targets,
                                const std::vector<int64_t>& group_sizes, double temperature) {
  if (!(temperature > 0)) throw std::invalid_argument("distillation temperature must be > 0");
  at::Tensor total = at::zeros({}, logits.options());
  int64_t start = 0;
  for (int64_t width : group_sizes) {
    const at::Tensor p = at::softmax(targets.narrow(1, start, width).detach() / temperature, 1);
    const at::Tensor log_q = at::log_softmax(logits.narrow(1, start, width) / temperature, 1);
    total = total - (p * log_q).sum(1).mean();
    start += width;
  }
  if (start != logits.size(1)) {
    throw std::invalid_argument("distillation: groups of " + std::to_string(start) + " columns for " +
                                std::to_string(logits.size(1)));
  }
  return total;
}

RidgeSolver::RidgeSolver(const at::Tensor& gram) {
  const auto [values, vectors] = at::linalg_eigh(gram.to(at::kDouble));
  eigenvalues_ = values.clamp_min(0.0);  // G is positive semi-definite; rounding can dip below 0
  eigenvectors_ = vectors;
}

at::Tensor RidgeSolver::solve(const at::Tensor& targets, double lambda) const {
  if (!(lambda > 0)) throw std::invalid_argument("ridge lambda must be > 0");
  const at::Tensor projected = eigenvectors_.t().matmul(targets.to(at::kDouble));
  return eigenvectors_.matmul(projected / (eigenvalues_ + lambda).unsqueeze(1));
}

}  // namespace den::engine
