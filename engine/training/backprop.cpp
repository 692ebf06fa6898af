#include "engine/training/backprop.h"

#include "engine/training/threads.h"

#include <algorithm>
#include <cmath>

namespace den::engine {

GradientBuffers::GradientBuffers(const std::vector<const at::Tensor*>& tensors) : tensors_(tensors) {
  for (const at::Tensor* t : tensors_) buffers_.push_back(at::zeros_like(*t));
}

at::Tensor* GradientBuffers::find(const at::Tensor& tensor) {
  for (size_t i = 0; i < tensors_.size(); ++i) {
    if (tensors_[i]->unsafeGetTensorImpl() == tensor.unsafeGetTensorImpl()) return &buffers_[i];
  }
  return nullptr;
}

namespace {

/// Softmax cross-entropy and its gradient in one pass over each row of contiguous float CPU
/// logits: NOTE: [one-pass loss].
double softmax_cross_entropy_rows(const at::Tensor& logits, const at::Tensor& labels, at::Tensor& dlogits) {
  const int64_t rows = logits.size(0), classes = logits.size(1);
  const at::Tensor labels_cpu = labels.to(at::kLong).contiguous();
  const int64_t* label = labels_cpu.data_ptr<int64_t>();
  dlogits = at::empty_like(logits);
  const float* in = logits.data_ptr<float>();
  float* out = dlogits.data_ptr<float>();
  const float inv_batch = 1.0f / static_cast<float>(rows);
  double total = 0.0;
  for (int64_t r = 0; r < rows; ++r, in += classes, out += classes) {
    TORCH_CHECK(label[r] >= 0 && label[r] < classes, "data_loss_gradient: label ", label[r], " out of range for ",
                classes, " classes");
    float max = in[0];
    for (int64_t c = 1; c < classes; ++c) max = std::max(max, in[c]);
    float sum = 0.0f;
    for (int64_t c = 0; c < classes; ++c) {
      out[c] = std::exp(in[c] - max);
      sum += out[c];
    }
    const float log_sum = std::log(sum);
    total -= static_cast<double>(in[label[r]] - max - log_sum);
    const float scale = inv_batch / sum;
    for (int64_t c = 0; c < classes; ++c) out[c] *= scale;
    out[label[r]] -= inv_batch;
  }
  return total / static_cast<double>(rows);
}

}  // namespace

double data_loss_gradient(const at::Tensor& logits, const at::Tensor& labels, LossKind loss, at::Tensor& dlogits) {
  const auto batch = static_cast<double>(logits.size(0));
  if (loss == LossKind::Softmax && logits.is_cpu() && logits.scalar_type() == at::kFloat && logits.dim() == 2 &&
      logits.is_contiguous() && logits.size(0) > 0 && logits.size(1) > 0) {
    return softmax_cross_entropy_rows(logits, labels, dlogits);
  }
  if (loss == LossKind::Softmax) {
    // d/dlogits of mean(-log softmax(logits)[label]) = (softmax(logits) - one_hot(label)) / B.
    const at::Tensor target = labels.unsqueeze(1);
    dlogits = at::log_softmax(logits, 1);
    const at::Tensor picked = dlogits.gather(1, target);
    const double value = -picked.sum().item<double>() / batch;
    dlogits.exp_().scatter_(1, target, picked.exp().sub_(1.0)).div_(batch);
    return value;
  }
  // d/dlogits of mean(bce(sigmoid(logits), one_hot)) = (sigmoid(logits) - one_hot) / (B * c).
  const at::Tensor targets = at::one_hot(labels, logits.size(1)).to(logits.scalar_type());
  const double value = at::binary_cross_entropy_with_logits(logits, targets).item<double>();
  dlogits = at::sigmoid(logits).sub_(targets).div_(batch * static_cast<double>(logits.size(1)));
  return value;
}

void write_affine_gradient(const at::Tensor& dz, const at::Tensor& input, at::Tensor& grad) {
  const int64_t n_in = grad.size(1) - 1;
  // Views of the buffer: BLAS writes the weight part in place through its row stride.
  at::Tensor weights = grad.narrow(1, 0, n_in);
  at::Tensor bias = grad.select(1, n_in);
  const ProductThreads threads(dz.t(), input);
  at::mm_out(weights, dz.t(), input);
  at::sum_out(bias, dz, at::IntArrayRef{0});
}

at::Tensor& relu_backward_(at::Tensor& grad, const at::Tensor& activation) {
  return at::threshold_backward_out(grad, grad, activation, 0);
}

at::Tensor backward_from(const Network& network, int64_t task, int64_t layer, const std::vector<at::Tensor>& inputs,
                         const at::Tensor& dlogits, GradientBuffers& grads, bool need_pre_grad) {
  const int64_t head_level = network.num_layers();
  TORCH_INTERNAL_ASSERT(static_cast<int64_t>(inputs.size()) == head_level - layer,
                        "backward_from needs the inputs that logits_from recorded");
  const auto trained_below = [&](int64_t level) {
    for (int64_t l = layer + 1; l < level; ++l) {
      if (grads.find(network.layer(l))) return true;
    }
    return false;
  };
  at::Tensor grad_out = dlogits;  // gradient of the current level's output (its pre-activation)
  for (int64_t level = head_level; level > layer; --level) {
    const at::Tensor& w = level == head_level ? network.head(task) : network.layer(level);
    const at::Tensor& input = inputs[level - layer - 1];
    if (at::Tensor* grad = grads.find(w)) write_affine_gradient(grad_out, input, *grad);
    if (!need_pre_grad && !trained_below(level)) return {};
    // `input` is relu of the level below.
    const at::Tensor weights = w.narrow(1, 0, w.size(1) - 1);
    const ProductThreads threads(grad_out, weights);
    at::Tensor grad_in = at::mm(grad_out, weights);
    grad_out = relu_backward_(grad_in, input);
  }
  return grad_out;
}

}  // namespace den::engine
