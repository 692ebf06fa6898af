#pragma once

// The per-element maths lives in cuda/elementwise_math.h so that the CUDA kernels, which may not
// depend on ops/ (docs/architecture.md: ops uses cuda, cuda uses none), share it with the CPU loops. This
// header makes the same names available as den::ops::*.

#include "cuda/elementwise_math.h"

namespace den::ops {

using cuda::AdamRegularizers;
using cuda::AdamStepConsts;
using cuda::adam_update;
using cuda::apply_group_factor;
using cuda::group_shrink_factor;
using cuda::kAnchored;
using cuda::kTrainable;
using cuda::regularized_adam_element;
using cuda::soft_threshold;

}  // namespace den::ops
