#pragma once

// Phase specs on the 16-8 test network of the frozen-row cache and hand-written backward tests
// (input width 20, head `task` being the phase's), written once so that both test the same phases.

#include "engine/den/masks.h"
#include "engine/training/network.h"
#include "engine/training/trainer.h"

#include <cstdint>
#include <vector>

namespace den::testing {

/// Selective-like: the first layer's `rows` train (all their inputs and bias) with drift, L2, L1 and
/// the group prox; the second layer and the head train whole.
inline engine::PhaseSpec scattered_rows_spec(engine::Network& net, int64_t task, const std::vector<int64_t>& rows) {
  engine::PhaseSpec spec;
  spec.name = "selective";
  spec.max_iter = 40;
  spec.l2 = 1e-4;
  spec.mu = 1e-4;
  spec.lambda = 0.5;
  spec.gamma = 1e-3;
  const at::Tensor selected = engine::selector(16, rows);
  const at::Tensor trainable =
      engine::outer_and(selected, engine::with_bias(at::ones({net.input_dim()}, at::kBool), true));
  spec.params.push_back({&net.layer(0), engine::element_mask(trainable, trainable), net.layer(0).clone(),
                         selected.to(at::kByte), {}});
  spec.params.push_back({&net.layer(1), {}, {}, {}, {}});
  spec.params.push_back({&net.head(task), {}, {}, {}, {}});
  return spec;
}

/// Expansion-like: old units 0..11 and 0..5 frozen; new units 12..15 and 6..7 train, with every
/// connection from a new unit, and the new units' rows under the group prox.
inline engine::PhaseSpec expansion_like_spec(engine::Network& net, int64_t task) {
  engine::PhaseSpec spec;
  spec.name = "expansion";
  spec.max_iter = 40;
  spec.mu = 1e-4;
  spec.gamma = 1e-3;
  const at::Tensor new_first = engine::range_selector(16, 12, 16), new_second = engine::range_selector(8, 6, 8);
  spec.params.push_back({&net.layer(0), engine::element_mask(engine::outer_or(new_first, at::zeros({21}, at::kBool))),
                         {}, new_first.to(at::kByte), {}});
  spec.params.push_back({&net.layer(1),
                         engine::element_mask(engine::outer_or(
                             new_second, engine::with_bias(engine::range_selector(16, 12, 16), false))),
                         {}, new_second.to(at::kByte), {}});
  spec.params.push_back({&net.head(task), {}, {}, {}, {}});
  return spec;
}

/// The sparse head phase: only the head trains, with the L1 prox.
inline engine::PhaseSpec head_only_spec(engine::Network& net, int64_t task) {
  engine::PhaseSpec spec;
  spec.name = "head";
  spec.max_iter = 40;
  spec.mu = 1e-4;
  spec.params.push_back({&net.head(task), {}, {}, {}, {}});
  return spec;
}

}  // namespace den::testing
