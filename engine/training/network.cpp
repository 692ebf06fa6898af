#include "engine/training/network.h"

#include "engine/training/threads.h"

#include <cmath>

namespace den::engine {

at::Tensor affine(const at::Tensor& x, const at::Tensor& augmented) {
  const int64_t n_in = augmented.size(1) - 1;
  const at::Tensor weights_t = augmented.narrow(1, 0, n_in).t();
  const ProductThreads threads(x, weights_t);
  return at::addmm(augmented.select(1, n_in), x, weights_t);
}

at::Tensor affine_relu(const at::Tensor& x, const at::Tensor& augmented) {
  at::Tensor z = affine(x, augmented);
  return z.relu_();
}

Network::Network(int64_t input_dim, const std::vector<int64_t>& hidden, at::Generator generator, at::Device device)
    : input_dim_(input_dim), device_(device), generator_(std::move(generator)) {
  int64_t fan_in = input_dim;
  for (int64_t size : hidden) {
    layers_.push_back(random_block(size, fan_in, fan_in + 1));
    fan_in = size;
  }
}

Network::Network(int64_t input_dim, std::vector<at::Tensor> layers, std::vector<at::Tensor> heads,
                 at::Generator generator, at::Device device)
    : input_dim_(input_dim), device_(device), generator_(std::move(generator)), layers_(std::move(layers)),
      heads_(std::move(heads)) {
  for (at::Tensor& w : layers_) w = w.to(device_);
  for (at::Tensor& h : heads_) h = h.to(device_);
}

at::Tensor Network::random_block(int64_t rows, int64_t fan_in, int64_t cols) {
  // Uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)), the LibTorch Linear default scale; biases (the last
  // column of a full row block) start at zero.
  const double bound = 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(fan_in, 1)));
  at::Tensor block = at::empty({rows, cols}, at::kFloat);
  block.uniform_(-bound, bound, generator_);
  if (cols == fan_in + 1) block.select(1, fan_in).zero_();
  return block.to(device_);
}

int64_t Network::add_head(int64_t num_outputs) {
  const int64_t width = layers_.back().size(0);
  heads_.push_back(random_block(num_outputs, width, width + 1));
  return num_heads();
}

at::Tensor Network::forward(const std::vector<at::Tensor>& layers, const at::Tensor& head, const at::Tensor& x,
                            size_t from) {
  at::Tensor h = x;
  for (size_t l = from; l < layers.size(); ++l) h = affine_relu(h, layers[l]);
  return affine(h, head);
}

at::Tensor Network::features(const at::Tensor& x) const {
  at::Tensor h = x;
  for (const at::Tensor& w : layers_) h = affine_relu(h, w);
  return h;
}

at::Tensor Network::logits(int64_t task, const at::Tensor& x) const { return affine(features(x), head(task)); }

at::Tensor Network::logits_from(int64_t task, int64_t layer, const at::Tensor& preactivation,
                                std::vector<at::Tensor>* inputs) const {
  if (inputs) inputs->clear();
  at::Tensor h = at::relu(preactivation);
  for (int64_t l = layer + 1; l < num_layers(); ++l) {
    if (inputs) inputs->push_back(h);
    h = affine_relu(h, layers_[l]);
  }
  if (inputs) inputs->push_back(h);
  return affine(h, head(task));
}

std::vector<at::Tensor*> Network::consumers_of(int64_t layer) {
  std::vector<at::Tensor*> out;
  if (layer + 1 < num_layers()) {
    out.push_back(&layers_[layer + 1]);
  } else {
    for (at::Tensor& h : heads_) out.push_back(&h);
  }
  return out;
}

namespace {

/// Inserts `block` `[rows, count]` before the bias column of augmented `w`.
at::Tensor insert_columns_before_bias(const at::Tensor& w, const at::Tensor& block) {
  const int64_t n_in = w.size(1) - 1;
  return at::cat({w.narrow(1, 0, n_in), block, w.narrow(1, n_in, 1)}, 1).contiguous();
}

/// Rows (dim 0) or columns (dim 1) of `w` except `positions`.
at::Tensor drop_indices(const at::Tensor& w, int64_t dim, const std::vector<int64_t>& positions) {
  std::vector<bool> drop(w.size(dim), false);
  for (int64_t p : positions) drop[p] = true;
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < w.size(dim); ++i) {
    if (!drop[i]) keep.push_back(i);
  }
  return w.index_select(dim, at::tensor(keep, at::kLong).to(w.device())).contiguous();
}

}  // namespace

void Network::add_units(int64_t layer, int64_t count, int64_t trainable_head) {
  if (count <= 0) return;
  at::Tensor& w = layers_[layer];
  const int64_t fan_in = w.size(1) - 1;
  w = at::cat({w, random_block(count, fan_in, fan_in + 1)}, 0).contiguous();
  const int64_t fan_in_above = w.size(0);
  if (layer + 1 < num_layers()) {
    at::Tensor& above = layers_[layer + 1];
    above = insert_columns_before_bias(above, random_block(above.size(0), fan_in_above, count));
  } else {
    for (int64_t t = 1; t <= num_heads(); ++t) {
      at::Tensor& h = heads_[t - 1];
      at::Tensor block = t == trainable_head ? random_block(h.size(0), fan_in_above, count)
                                             : at::zeros({h.size(0), count}, h.options());
      h = insert_columns_before_bias(h, block);
    }
  }
}

void Network::remove_units(int64_t layer, const std::vector<int64_t>& positions) {
  if (positions.empty()) return;
  layers_[layer] = drop_indices(layers_[layer], 0, positions);
  for (at::Tensor* consumer : consumers_of(layer)) *consumer = drop_indices(*consumer, 1, positions);
}

int64_t Network::duplicate_unit(int64_t layer, int64_t position, int64_t trainable_head) {
  at::Tensor& w = layers_[layer];
  w = at::cat({w, w.narrow(0, position, 1)}, 0).contiguous();
  if (layer + 1 < num_layers()) {
    at::Tensor& above = layers_[layer + 1];
    above = insert_columns_before_bias(above, above.narrow(1, position, 1));
  } else {
    for (int64_t t = 1; t <= num_heads(); ++t) {
      at::Tensor& h = heads_[t - 1];
      at::Tensor column = t == trainable_head ? h.narrow(1, position, 1) : at::zeros({h.size(0), 1}, h.options());
      h = insert_columns_before_bias(h, column);
    }
  }
  return w.size(0) - 1;
}

std::vector<at::Tensor> Network::snapshot_layers() const {
  std::vector<at::Tensor> copy;
  for (const at::Tensor& w : layers_) copy.push_back(w.detach().clone());
  return copy;
}

int64_t Network::num_params() const {
  int64_t n = 0;
  for (const at::Tensor& w : layers_) n += w.numel();
  for (const at::Tensor& h : heads_) n += h.numel();
  return n;
}

int64_t Network::num_nonzero_params() const {
  int64_t n = 0;
  for (const at::Tensor& w : layers_) n += w.count_nonzero().item<int64_t>();
  for (const at::Tensor& h : heads_) n += h.count_nonzero().item<int64_t>();
  return n;
}

}  // namespace den::engine
