#include "engine/baselines/baselines.h"

#include <torch/csrc/autograd/autograd.h>

namespace den::engine {

at::Tensor sample_predicted_labels(const Network& network, int64_t task_id, const at::Tensor& x, LossKind loss,
                                   at::Generator& generator) {
  at::NoGradGuard no_grad;
  at::Tensor scores = scores_from_logits(network.logits(task_id, x), loss).to(at::kCPU, at::kDouble);
  // Sigmoid scores need not sum to 1; multinomial normalizes each row itself.
  scores = scores.clamp_min(1e-300);
  return at::multinomial(scores, 1, /*replacement=*/true, generator).view(-1).to(x.device());
}

// NOTE: [Fisher from outer products] For a layer z = W [a; 1], sample n's gradient is the outer
// product delta_n [a_n; 1]^T with delta_n = d loss_n / d z_n, so the sum over samples of its
// elementwise square is (delta^2)^T [a^2, 1]. Each sample's loss depends only on its own rows, so
// one backward pass of sum_n loss_n to the pre-activations gives every delta_n at once.
namespace {

/// The same Fisher for any network, one sample's gradient at a time: a conv layer's gradient is a
/// sum over positions, not one outer product per sample.
std::vector<at::Tensor> per_sample_fisher(const Network& network, int64_t task_id, const at::Tensor& x,
                                          const at::Tensor& labels, LossKind loss) {
  std::vector<at::Tensor> layers, fisher;
  for (const at::Tensor& w : network.layers()) {
    layers.push_back(w.detach().requires_grad_(true));
    fisher.push_back(at::zeros_like(w));
  }
  for (int64_t n = 0; n < x.size(0); ++n) {
    const at::Tensor sample_loss =
        data_loss(network.forward(layers, network.head(task_id), x.narrow(0, n, 1)), labels.narrow(0, n, 1), loss);
    const std::vector<at::Tensor> grads = torch::autograd::grad({sample_loss}, layers);
    for (size_t l = 0; l < grads.size(); ++l) fisher[l].add_(grads[l].detach().square());
  }
  for (at::Tensor& f : fisher) f.div_(static_cast<double>(x.size(0)));
  return fisher;
}

}  // namespace

std::vector<at::Tensor> diagonal_fisher(const Network& network, int64_t task_id, const at::Tensor& x,
                                        const at::Tensor& labels, LossKind loss) {
  at::AutoGradMode enable_grad(true);
  if (!network.all_fc()) return per_sample_fisher(network, task_id, x, labels, loss);
  const int64_t n = x.size(0);
  // x requires grad only so that the pre-activations are in the graph; its gradient is not asked for.
  at::Tensor a = x.detach().requires_grad_(true);
  std::vector<at::Tensor> layer_inputs, pre_activations;
  for (const at::Tensor& w : network.layers()) {
    layer_inputs.push_back(a.detach());
    at::Tensor z = affine(a, w);
    pre_activations.push_back(z);
    a = at::relu(z);
  }
  // data_loss is a mean over samples; times n it is the sum of the per-sample losses.
  const at::Tensor total = data_loss(affine(a, network.head(task_id)), labels, loss) * static_cast<double>(n);
  const std::vector<at::Tensor> deltas = torch::autograd::grad({total}, pre_activations);

  std::vector<at::Tensor> fisher;
  for (size_t l = 0; l < deltas.size(); ++l) {
    const at::Tensor d2 = deltas[l].detach().square();
    at::Tensor f = at::cat({d2.t().mm(layer_inputs[l].square()), d2.sum(0).unsqueeze(1)}, 1);
    fisher.push_back(f.div_(static_cast<double>(n)).contiguous());
  }
  return fisher;
}

}  // namespace den::engine
