#pragma once

#include "engine/config.h"
#include "engine/training/network.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace den::engine {

// NOTE: [hand-written backward] DEN's phases train an MLP of augmented affine layers (NOTE:
// [augmented rows]), ReLUs and one head. Autograd's share of such a step is large next to small
// products: its graph nodes, and for every weight the two views (weights and bias column) whose
// backward each zero-fills a gradient of the whole tensor before AccumulateGrad adds them. On
// 784-312-128 at batch 256, its forward and backward took 2.3-2.8 ms a step against 2.1-2.4 ms
// here, the products alone 1.9-2.0 ms; BM_AddTaskPhases' expansion went from 97-119k to
// 143-172k samples/s. The backward here writes each gradient once, straight into a buffer kept for the
// phase: the weight part with one product into the buffer's columns and the bias part with one
// column sum. It stops below the lowest trained layer, as autograd does. The objectives that use it
// keep their autograd `batch_loss`, and the tests hold the two to the same gradients.

/// Zeroed gradient buffers for a phase's trained tensors, one per tensor, found by the tensor.
class GradientBuffers {
 public:
  explicit GradientBuffers(const std::vector<const at::Tensor*>& tensors);
  /// The buffer of `tensor`, or null when the phase does not train it.
  at::Tensor* find(const at::Tensor& tensor);
  /// The buffers, in the order of the tensors given to the constructor.
  const std::vector<at::Tensor>& all() const { return buffers_; }

 private:
  std::vector<const at::Tensor*> tensors_;
  std::vector<at::Tensor> buffers_;
};

// NOTE: [one-pass loss] The softmax loss and its gradient on the CPU take one pass over each row of
// float logits (max, exponentials, their sum, then the scaled gradient) instead of seven ATen ops
// (log_softmax, gather, sum, item, exp_, scatter_, div_), each with its own dispatch and pass.
// On a [256, 10] batch: 10 us against 25 us back to back, and 37-61 us inside a training step.
// The loss sums in double per row as before; the values agree with the ATen path to float
// rounding. Other devices, dtypes and layouts, and the sigmoid loss, take the ATen ops.

/// Mean data loss of `logits` `[B, c]` against `labels` `[B]` (as data_loss), and its gradient
/// with respect to the logits, returned in `dlogits`. Throws on a label outside [0, c).
double data_loss_gradient(const at::Tensor& logits, const at::Tensor& labels, LossKind loss, at::Tensor& dlogits);

/// Writes the gradient of `affine(input, w)` with respect to the augmented `w` into `grad`
/// (`w`'s shape), given the gradient `dz` `[B, n_out]` of its output: dz^T input, then the bias
/// column sum(dz).
void write_affine_gradient(const at::Tensor& dz, const at::Tensor& input, at::Tensor& grad);

/// `grad` times relu's derivative at `activation` (a relu output, so `activation > 0`), in place.
at::Tensor& relu_backward_(at::Tensor& grad, const at::Tensor& activation);

/// Backward of network.logits_from(task, layer, pre, &inputs), given the gradient of the logits:
/// writes the gradients of the layers above `layer` and of the head that `grads` holds. Returns the
/// gradient with respect to `pre` when `need_pre_grad`; otherwise it stops at the lowest trained
/// tensor and returns an undefined tensor.
at::Tensor backward_from(const Network& network, int64_t task, int64_t layer, const std::vector<at::Tensor>& inputs,
                         const at::Tensor& dlogits, GradientBuffers& grads, bool need_pre_grad);

}  // namespace den::engine
