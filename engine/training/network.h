#pragma once

#include "engine/architecture.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace den::engine {

// NOTE: [augmented rows] Each hidden layer is one tensor `[n_l, cols_l + 1]` whose last column is
// the bias; each task head is `[c_t, cols_L + 1]`. A row is then exactly one unit's incoming
// parameters (an fc unit's weights, or a conv filter [C_in, kh, kw] flattened), so DEN's row-wise
// operations (group sparsity, drift, split, restore, prune) act on one row, and a unit with a zero
// row outputs relu(0) = 0 and can be removed without changing anything. The columns follow the
// column map: unit j of the layer below owns the `block` columns [j * block, (j + 1) * block) of
// the layer above (engine/architecture.h, LayerGeometry::block): kh*kw for a conv layer, H*W for
// the fc layer after the flatten, 1 between fc layers. New units are appended, so their blocks are
// appended too. The forward pass uses strided views of the weight and bias parts (no copies).

/// The parameters of a DEN network: hidden layers and per-task heads, as leaf tensors with the
/// layout of NOTE: [augmented rows], and each layer's fixed geometry. Structure bookkeeping lives
/// in graph::UnitGraph; the engine keeps both in the same unit order.
class Network {
 public:
  /// Base network with randomly initialized layers (uniform +-1/sqrt(fan_in), zero bias) for input
  /// `[N, input_dim]`, read as `input_shape` (C,H,W; empty = flat) by conv layers. Parameters live
  /// on `device`; random values are drawn on the CPU generator, so a seed gives the same network on
  /// every device. Throws std::invalid_argument for layers that do not fit the input
  /// (plan_geometry).
  Network(int64_t input_dim, const Layers& layers, at::Generator generator, at::Device device = at::kCPU,
          const std::vector<int64_t>& input_shape = {});
  /// A network from existing augmented layers and heads (a restored engine), `specs` giving each
  /// layer's kind and geometry (their unit counts are the tensors'; empty: all fc). The caller has checked that
  /// the shapes chain; the tensors are taken over, not copied. They move to `device`.
  Network(int64_t input_dim, const Layers& specs, std::vector<at::Tensor> layers, std::vector<at::Tensor> heads,
          at::Generator generator, at::Device device = at::kCPU, const std::vector<int64_t>& input_shape = {});
  /// An all-fc network from existing augmented layers and heads (the constructor above with no specs).
  Network(int64_t input_dim, std::vector<at::Tensor> layers, std::vector<at::Tensor> heads, at::Generator generator,
          at::Device device = at::kCPU);

  int64_t input_dim() const { return input_dim_; }
  const std::vector<int64_t>& input_shape() const { return input_shape_; }
  at::Device device() const { return device_; }
  int64_t num_layers() const { return static_cast<int64_t>(layers_.size()); }
  int64_t layer_size(int64_t layer) const { return layers_[layer].size(0); }
  int64_t num_heads() const { return static_cast<int64_t>(heads_.size()); }
  /// Layer `layer`'s kind and geometry (its `units` are the base network's; layer_size() is now's).
  const LayerSpec& spec(int64_t layer) const { return specs_[layer]; }
  /// Whether every layer is fc: the hand-written backward and the frozen-row caches apply.
  bool all_fc() const { return !has_conv(specs_); }

  /// The column map: columns that each unit of the layer below owns in `layer`'s weights, or in
  /// every head for layer == num_layers().
  int64_t block(int64_t layer) const { return geometry_[layer].block; }
  /// Units of the layer below `layer` (input channels or features for layer 0; the top layer's
  /// units for layer == num_layers()).
  int64_t units_below(int64_t layer) const;

  /// Augmented weights of hidden layer `layer` (0-based).
  at::Tensor& layer(int64_t layer) { return layers_[layer]; }
  const at::Tensor& layer(int64_t layer) const { return layers_[layer]; }
  const std::vector<at::Tensor>& heads() const { return heads_; }
  /// Augmented weights of the head of 1-based task `task`.
  at::Tensor& head(int64_t task) { return heads_[task - 1]; }
  const at::Tensor& head(int64_t task) const { return heads_[task - 1]; }
  std::vector<at::Tensor>& layers() { return layers_; }
  const std::vector<at::Tensor>& layers() const { return layers_; }

  /// Appends a randomly initialized head with `num_outputs` outputs; returns its task id.
  int64_t add_head(int64_t num_outputs);

  /// Hidden activations of the top layer for `x` `[N, input_dim]`, flattened to `[N, cols_L]`.
  at::Tensor features(const at::Tensor& x) const;
  /// Logits of task `task`'s head for `x`: `[N, c_task]`.
  at::Tensor logits(int64_t task, const at::Tensor& x) const;
  /// The output of layer `layer` (its ReLU and pooling) for `weights`, its augmented weights or a
  /// subset of their rows, given the layer below's output `h` (or the input, `[N, input_dim]`).
  at::Tensor layer_output(int64_t layer, const at::Tensor& weights, const at::Tensor& h) const;
  /// Logits through explicit augmented layers (this network's geometry, any unit counts) and head,
  /// from layer `from` (0-based), whose input `x` is: compacted predictions.
  at::Tensor forward(const std::vector<at::Tensor>& layers, const at::Tensor& head, const at::Tensor& x,
                     size_t from = 0) const;
  /// Logits of task `task`'s head from hidden layer `layer`'s (0-based) pre-activation `[N, n]`,
  /// for a phase that computes the layers up to it from pieces (NOTE: [frozen first-layer rows]).
  /// `inputs`, when given, receives the input of every layer above `layer` and of the head, for
  /// backward_from (NOTE: [hand-written backward]). All-fc networks only.
  at::Tensor logits_from(int64_t task, int64_t layer, const at::Tensor& preactivation,
                         std::vector<at::Tensor>* inputs = nullptr) const;

  /// Appends `count` units to hidden layer `layer`: random rows there, random column blocks in the
  /// layer above (or in the head of `trainable_head`, zero in every other head, which stay frozen).
  void add_units(int64_t layer, int64_t count, int64_t trainable_head);
  /// Removes the units at `positions` of `layer` with their outgoing column blocks.
  void remove_units(int64_t layer, const std::vector<int64_t>& positions);
  /// Appends a copy of unit `position` of `layer` (row and outgoing column block; zero in heads
  /// other than `trainable_head`); returns the copy's position.
  int64_t duplicate_unit(int64_t layer, int64_t position, int64_t trainable_head);

  /// Deep copy of the hidden layers (the heads are not needed as drift anchors).
  std::vector<at::Tensor> snapshot_layers() const;
  /// Number of parameters (weights and biases of all layers and heads).
  int64_t num_params() const;
  /// Number of nonzero parameters.
  int64_t num_nonzero_params() const;

 private:
  at::Tensor random_block(int64_t rows, int64_t fan_in, int64_t cols);
  /// The tensors that hold `layer`'s outgoing columns: the next layer, or every head.
  std::vector<at::Tensor*> consumers_of(int64_t layer);

  int64_t input_dim_;
  std::vector<int64_t> input_shape_;
  Layers specs_;
  std::vector<LayerGeometry> geometry_;  // one per layer, then the heads'
  at::Device device_ = at::kCPU;
  at::Generator generator_;
  std::vector<at::Tensor> layers_;
  std::vector<at::Tensor> heads_;
};

/// The columns that units `units` of the layer below own under a column map of `block` columns
/// per unit, in order.
std::vector<int64_t> unit_columns(const std::vector<int64_t>& units, int64_t block);
/// The weight part of augmented `w` as `[rows, units below, block]`: each unit's column block.
at::Tensor column_blocks(const at::Tensor& w, int64_t block);

/// One affine map `x W^T + b` for an augmented weight `[n_out, n_in + 1]`, as strided views.
at::Tensor affine(const at::Tensor& x, const at::Tensor& augmented);
/// relu(affine(x, augmented)), the ReLU applied in place to the fresh product (one buffer, one
/// pass fewer than at::relu; autograd records it as usual).
at::Tensor affine_relu(const at::Tensor& x, const at::Tensor& augmented);

}  // namespace den::engine
