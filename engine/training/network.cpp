#include "engine/training/network.h"

#include "engine/training/threads.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <stdexcept>

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

namespace {

/// This machine's physical memory in bytes (0 when unknown).
double physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<double>(pages) * static_cast<double>(page) : 0.0;
}

/// Refuses hidden layers whose training could not fit in memory, before anything is allocated:
/// their parameters as float32, times the copies training keeps (weights, gradients, two Adam
/// moments, the previous task's weights).
void check_fits_memory(const Layers& layers, const std::vector<LayerGeometry>& geometry, int64_t below) {
  constexpr double kTrainingCopies = 5.0;
  double params = 0.0;
  for (size_t l = 0; l < layers.size(); ++l) {
    params += static_cast<double>(layers[l].units) * (static_cast<double>(below) * geometry[l].block + 1.0);
    below = layers[l].units;
  }
  const double bytes = params * 4.0 * kTrainingCopies, memory = physical_memory_bytes();
  if (memory > 0.0 && bytes > memory) {
    char text[256];
    std::snprintf(text, sizeof text,
                  "hidden layers %s would hold %.3g parameters: %.1f GiB to train (%.0fx the %.1f GiB of parameters "
                  "as float32), more than this machine's %.1f GiB of memory; use fewer or smaller layers",
                  layers_to_text(layers).c_str(), params, bytes / (1 << 30), kTrainingCopies, params * 4.0 / (1 << 30),
                  memory / (1 << 30));
    throw std::invalid_argument(text);
  }
}

}  // namespace

Network::Network(int64_t input_dim, const Layers& layers, at::Generator generator, at::Device device,
                 const std::vector<int64_t>& input_shape)
    : input_dim_(input_dim),
      input_shape_(input_shape),
      specs_(layers),
      geometry_(plan_geometry(layers, input_shape, input_dim)),
      device_(device),
      generator_(std::move(generator)) {
  int64_t below = input_units(layers, input_shape, input_dim);
  check_fits_memory(layers, geometry_, below);
  for (size_t l = 0; l < layers.size(); ++l) {
    const int64_t fan_in = below * geometry_[l].block;
    layers_.push_back(random_block(layers[l].units, fan_in, fan_in + 1));
    below = layers[l].units;
  }
}

namespace {

Layers fc_specs(const std::vector<at::Tensor>& layers) {
  Layers specs;
  for (const at::Tensor& w : layers) specs.emplace_back(w.size(0));
  return specs;
}

}  // namespace

Network::Network(int64_t input_dim, const Layers& specs, std::vector<at::Tensor> layers, std::vector<at::Tensor> heads,
                 at::Generator generator, at::Device device, const std::vector<int64_t>& input_shape)
    : input_dim_(input_dim),
      input_shape_(input_shape),
      specs_(specs.empty() ? fc_specs(layers) : specs),  // before `layers` moves into layers_
      geometry_(plan_geometry(specs_, input_shape, input_dim)),
      device_(device),
      generator_(std::move(generator)),
      layers_(std::move(layers)),
      heads_(std::move(heads)) {
  TORCH_INTERNAL_ASSERT(specs_.size() == layers_.size(), "one spec per layer");
  for (at::Tensor& w : layers_) w = w.to(device_);
  for (at::Tensor& h : heads_) h = h.to(device_);
}

Network::Network(int64_t input_dim, std::vector<at::Tensor> layers, std::vector<at::Tensor> heads,
                 at::Generator generator, at::Device device)
    : Network(input_dim, Layers{}, std::move(layers), std::move(heads), std::move(generator), device) {}

int64_t Network::units_below(int64_t layer) const {
  return layer == 0 ? (layers_[0].size(1) - 1) / block(0) : layers_[layer - 1].size(0);
}

at::Tensor Network::random_block(int64_t rows, int64_t fan_in, int64_t cols) {
  // Uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)), the LibTorch Linear and Conv2d default scale (fan_in
  // counts a filter's C_in*kh*kw weights); biases (the last column of a full row block) start at zero.
  const double bound = 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(fan_in, 1)));
  at::Tensor block = at::empty({rows, cols}, at::kFloat);
  block.uniform_(-bound, bound, generator_);
  if (cols == fan_in + 1) block.select(1, fan_in).zero_();
  return block.to(device_);
}

int64_t Network::add_head(int64_t num_outputs) {
  const int64_t width = layers_.back().size(0) * block(num_layers());
  heads_.push_back(random_block(num_outputs, width, width + 1));
  return num_heads();
}

at::Tensor Network::layer_output(int64_t layer, const at::Tensor& weights, const at::Tensor& h) const {
  const LayerGeometry& g = geometry_[layer];
  if (g.kind == LayerKind::Fc) return affine_relu(h.flatten(1), weights);  // flatten(1) of [N, D] is [N, D] itself
  const LayerSpec& s = specs_[layer];
  const int64_t n_in = weights.size(1) - 1;
  const int64_t channels = n_in / g.block;
  // The data arrives flat `[N, C*H*W]`; a conv layer reads it as images (a view, no copy).
  const at::Tensor x = h.dim() == 4 ? h : h.view({h.size(0), channels, g.in_height, g.in_width});
  // The filters are the rows' weight parts, a strided view `[n, C, kh, kw]` of the augmented tensor.
  const at::Tensor filters = weights.narrow(1, 0, n_in).view({weights.size(0), channels, s.kernel_h, s.kernel_w});
  at::Tensor z = at::conv2d(x, filters, weights.select(1, n_in), {s.stride, s.stride}, {s.padding, s.padding});
  z.relu_();
  if (s.pool == PoolKind::Max) return at::max_pool2d(z, {s.pool_size, s.pool_size}, {s.pool_size, s.pool_size});
  if (s.pool == PoolKind::Avg) return at::avg_pool2d(z, {s.pool_size, s.pool_size}, {s.pool_size, s.pool_size});
  if (s.pool == PoolKind::GlobalAvg) return z.mean({2, 3}, /*keepdim=*/true);
  return z;
}

at::Tensor Network::forward(const std::vector<at::Tensor>& layers, const at::Tensor& head, const at::Tensor& x,
                            size_t from) const {
  at::Tensor h = x;
  for (size_t l = from; l < layers.size(); ++l) h = layer_output(static_cast<int64_t>(l), layers[l], h);
  return affine(h.flatten(1), head);
}

at::Tensor Network::features(const at::Tensor& x) const {
  at::Tensor h = x;
  for (int64_t l = 0; l < num_layers(); ++l) h = layer_output(l, layers_[l], h);
  return h.flatten(1);
}

at::Tensor Network::logits(int64_t task, const at::Tensor& x) const { return affine(features(x), head(task)); }

at::Tensor Network::logits_from(int64_t task, int64_t layer, const at::Tensor& preactivation,
                                std::vector<at::Tensor>* inputs) const {
  TORCH_INTERNAL_ASSERT(all_fc(), "logits_from serves all-fc networks");
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

std::vector<int64_t> unit_columns(const std::vector<int64_t>& units, int64_t block) {
  std::vector<int64_t> columns;
  columns.reserve(units.size() * static_cast<size_t>(block));
  for (int64_t u : units) {
    for (int64_t c = 0; c < block; ++c) columns.push_back(u * block + c);
  }
  return columns;
}

at::Tensor column_blocks(const at::Tensor& w, int64_t block) {
  return w.narrow(1, 0, w.size(1) - 1).reshape({w.size(0), -1, block});
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
  const int64_t cols = count * block(layer + 1);
  const int64_t fan_in_above = w.size(0) * block(layer + 1);
  if (layer + 1 < num_layers()) {
    at::Tensor& above = layers_[layer + 1];
    above = insert_columns_before_bias(above, random_block(above.size(0), fan_in_above, cols));
  } else {
    for (int64_t t = 1; t <= num_heads(); ++t) {
      at::Tensor& h = heads_[t - 1];
      at::Tensor block = t == trainable_head ? random_block(h.size(0), fan_in_above, cols)
                                             : at::zeros({h.size(0), cols}, h.options());
      h = insert_columns_before_bias(h, block);
    }
  }
}

void Network::remove_units(int64_t layer, const std::vector<int64_t>& positions) {
  if (positions.empty()) return;
  layers_[layer] = drop_indices(layers_[layer], 0, positions);
  const std::vector<int64_t> columns = unit_columns(positions, block(layer + 1));
  for (at::Tensor* consumer : consumers_of(layer)) *consumer = drop_indices(*consumer, 1, columns);
}

int64_t Network::duplicate_unit(int64_t layer, int64_t position, int64_t trainable_head) {
  at::Tensor& w = layers_[layer];
  w = at::cat({w, w.narrow(0, position, 1)}, 0).contiguous();
  const int64_t b = block(layer + 1);
  if (layer + 1 < num_layers()) {
    at::Tensor& above = layers_[layer + 1];
    above = insert_columns_before_bias(above, above.narrow(1, position * b, b));
  } else {
    for (int64_t t = 1; t <= num_heads(); ++t) {
      at::Tensor& h = heads_[t - 1];
      at::Tensor columns = t == trainable_head ? h.narrow(1, position * b, b) : at::zeros({h.size(0), b}, h.options());
      h = insert_columns_before_bias(h, columns);
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
