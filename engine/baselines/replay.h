#pragma once

// The pieces the rehearsal and prototype baselines (engine/baselines/class_incremental.cpp) are made
// of, public so that tests can check each against its definition: herding, the reservoir, the
// distillation losses and the ridge solve.

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace den::engine {

/// iCaRL's herding (Rebuffi et al. 2017, Algorithm 4): the rows of `features` `[N, d]`, in the order
/// they are picked, whose running mean stays closest to the mean of all rows: pick k is
///   argmin_i || mu - (phi_i + sum_{j<k} phi_{p_j}) / k ||
/// over the rows not picked yet. Returns min(count, N) row indices; a memory of m samples keeps the
/// first m, so a smaller memory keeps a prefix of a larger one's order.
std::vector<int64_t> herding_order(const at::Tensor& features, int64_t count);

/// Reservoir sampling (Vitter's Algorithm R), as DER++'s memory fills: the slots that `count`
/// samples offered in turn take in a memory of `capacity` slots, the first of them being the
/// stream's sample number `seen` (0-based, counting every sample offered before it); -1 for a
/// sample not kept. Sample n is kept with probability capacity / (n + 1) in a uniform slot, so every
/// sample offered so far is held with the same probability. One draw from `generator` per call.
std::vector<int64_t> reservoir_slots(int64_t seen, int64_t count, int64_t capacity, at::Generator& generator);

/// Learning without Forgetting's distillation (Li and Hoiem 2016, eq. 2 with their T = 2): the mean
/// over rows of sum over groups g of the cross-entropy between softmax(targets_g / T) and
/// softmax(logits_g / T), each group being one earlier task's head, `group_sizes` the width of each
/// (their sum is the columns of both `[N, O]` tensors). The targets carry no gradient.
at::Tensor softmax_distillation(const at::Tensor& logits, const at::Tensor& targets,
                                const std::vector<int64_t>& group_sizes, double temperature);

/// The closed form of ridge regression from accumulated statistics: W = (G + lambda I)^-1 C for any
/// lambda, from one eigendecomposition of the Gram matrix G = sum h h^T `[M, M]`. RanPAC's
/// classifier (McDonnell et al. 2023) with C = sum h y^T `[M, O]`. Float64 throughout.
class RidgeSolver {
 public:
  /// Decomposes the symmetric `gram` `[M, M]`.
  explicit RidgeSolver(const at::Tensor& gram);
  /// (G + lambda I)^-1 `targets` for `targets` `[M, O]`; lambda > 0.
  at::Tensor solve(const at::Tensor& targets, double lambda) const;

 private:
  at::Tensor eigenvalues_, eigenvectors_;
};

}  // namespace den::engine
