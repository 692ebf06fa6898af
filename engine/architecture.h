#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace den::engine {

/// What a hidden layer's units are: fully connected units, or the filters (output channels) of a
/// 2-D convolution.
enum class LayerKind { Fc, Conv };
/// Pooling after a conv layer's ReLU: max or average with window and stride `pool_size`, or the
/// global average over the whole feature map (to 1x1, pool_size 0), as image models end their trunk.
enum class PoolKind { None, Max, Avg, GlobalAvg };

/// One hidden layer of the base network. Its units grow and shrink with DEN; everything else here
/// stays fixed for the network's life.
struct LayerSpec {
  LayerKind kind = LayerKind::Fc;
  int64_t units = 0;        ///< fc units, or conv filters (output channels)
  int64_t kernel_h = 1;     ///< conv only
  int64_t kernel_w = 1;
  int64_t stride = 1;       ///< conv only, both directions
  int64_t padding = 0;      ///< conv only, zeros on every side
  PoolKind pool = PoolKind::None;
  int64_t pool_size = 0;    ///< window and stride of the pooling; 0 without pooling and for GlobalAvg

  LayerSpec() = default;
  /// An fc layer of `fc_units` units; implicit, so that `{312, 128}` is two fc layers.
  LayerSpec(int64_t fc_units) : units(fc_units) {}  // NOLINT(google-explicit-constructor)
  static LayerSpec conv(int64_t filters, int64_t kernel, int64_t stride = 1, int64_t padding = 0);
  /// This layer followed by `kind` pooling of window `size`.
  LayerSpec pooled(PoolKind kind, int64_t size) const;

  bool operator==(const LayerSpec& o) const;
  bool operator!=(const LayerSpec& o) const { return !(*this == o); }
};

/// The hidden layers of a network, lowest first.
using Layers = std::vector<LayerSpec>;

/// The unit counts of `layers`.
std::vector<int64_t> layer_units(const Layers& layers);
/// Whether any layer is a convolution.
bool has_conv(const Layers& layers);

/// The text form, as `--layers` and config files write it: tokens separated by commas,
///   fc:<units> (or a bare <units>), conv<KH>x<KW>[s<stride>][p<padding>]:<filters>,
///   maxpool<N>, avgpool<N>, gap (pooling after the conv layer before it; gap is the global average).
/// "conv5x5:32,maxpool2,fc:256" is a conv layer of 32 5x5 filters with 2x2 max pooling, then an fc
/// layer of 256 units; "312,128" is two fc layers. Layers print with their kind: "fc:312,fc:128".
std::string layers_to_text(const Layers& layers);
/// Parses the text form; throws std::invalid_argument naming the token that does not parse.
Layers parse_layers(const std::string& text);
/// The token of one layer ("conv5x5:32,maxpool2" for a pooled one), for messages.
std::string layer_token(const LayerSpec& layer);

/// Throws std::invalid_argument naming the first problem: no layer, a layer without units, a conv
/// layer after an fc one, pooling after an fc layer, a kernel, stride or pool window below 1, or a
/// negative padding.
void check_layers(const Layers& layers);

/// The fixed geometry of one layer for a given input: how many columns of the layer's augmented
/// weight (NOTE: [augmented rows]) each unit of the layer below owns (the column map), and the
/// spatial sizes around it.
struct LayerGeometry {
  LayerKind kind = LayerKind::Fc;
  /// Columns per unit below: kh*kw for a conv layer (one channel's slice of a filter), H*W for the
  /// fc layer that reads the flattened output of a conv layer, 1 otherwise.
  int64_t block = 1;
  int64_t in_height = 1, in_width = 1;    ///< conv: the input's spatial size
  int64_t out_height = 1, out_width = 1;  ///< after the layer and its pooling (1x1 for fc)
};

/// The geometry of every layer, and one more entry for the heads, which read the top layer as an fc
/// layer does. `input_shape` is the input's C,H,W (empty: flat features, only fc layers);
/// `input_dim` the width of the data. Throws std::invalid_argument naming the layer for a conv
/// network on flat input, a shape whose size is not `input_dim`, a kernel larger than its padded
/// input, or pooling that leaves nothing.
std::vector<LayerGeometry> plan_geometry(const Layers& layers, const std::vector<int64_t>& input_shape,
                                         int64_t input_dim);

/// Units the lowest layer reads: the input channels of a conv layer, the input features of an fc one.
int64_t input_units(const Layers& layers, const std::vector<int64_t>& input_shape, int64_t input_dim);

}  // namespace den::engine
