// The layers' text form and the geometry they take on an input (engine/architecture.h).

#include "engine/architecture.h"
#include "engine/config.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace den::engine {
namespace {

std::string error_of(const std::string& text) {
  try {
    parse_layers(text);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

std::string geometry_error(const std::string& text, const std::vector<int64_t>& shape, int64_t input_dim) {
  try {
    plan_geometry(parse_layers(text), shape, input_dim);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(Layers, TheIssuesArchitectureParsesAndPrintsBack) {
  const Layers layers = parse_layers("conv5x5:32,maxpool2,conv5x5:64,maxpool2,fc:256,fc:128");
  ASSERT_EQ(layers.size(), 4u);
  EXPECT_EQ(layers[0], LayerSpec::conv(32, 5).pooled(PoolKind::Max, 2));
  EXPECT_EQ(layers[1], LayerSpec::conv(64, 5).pooled(PoolKind::Max, 2));
  EXPECT_EQ(layers[2], LayerSpec(256));
  EXPECT_EQ(layers[3], LayerSpec(128));
  EXPECT_EQ(layers_to_text(layers), "conv5x5:32,maxpool2,conv5x5:64,maxpool2,fc:256,fc:128");
  EXPECT_EQ(layer_units(layers), (std::vector<int64_t>{32, 64, 256, 128}));
  EXPECT_TRUE(has_conv(layers));
}

TEST(Layers, StridePaddingAveragePoolingAndBareUnitCounts) {
  const Layers layers = parse_layers(" conv3x3s2p1:16 , avgpool2, conv1x3:4, 312 ,128");
  ASSERT_EQ(layers.size(), 4u);
  EXPECT_EQ(layers[0], LayerSpec::conv(16, 3, 2, 1).pooled(PoolKind::Avg, 2));
  EXPECT_EQ(layers[1].kernel_h, 1);
  EXPECT_EQ(layers[1].kernel_w, 3);
  EXPECT_EQ(layers[2], LayerSpec(312));
  EXPECT_EQ(layers_to_text(layers), "conv3x3s2p1:16,avgpool2,conv1x3:4,fc:312,fc:128");
  EXPECT_EQ(parse_layers(layers_to_text(layers)), layers);
  EXPECT_FALSE(has_conv(parse_layers("312,128")));
}

TEST(Layers, GlobalAveragePoolingIsGap) {
  const Layers layers = parse_layers("conv3x3p1:8,maxpool2,conv3x3:16,gap,fc:10");
  EXPECT_EQ(layers[1], LayerSpec::conv(16, 3).pooled(PoolKind::GlobalAvg, 0));
  EXPECT_EQ(layers_to_text(layers), "conv3x3p1:8,maxpool2,conv3x3:16,gap,fc:10");
  // Whatever the map's size, gap leaves 1x1 per channel: the fc layer reads one column per filter.
  const std::vector<LayerGeometry> g = plan_geometry(layers, {3, 13, 11}, 3 * 13 * 11);
  EXPECT_EQ(g[1].in_height, 6);
  EXPECT_EQ(g[1].out_height, 1);
  EXPECT_EQ(g[1].out_width, 1);
  EXPECT_EQ(g[2].block, 1);
  EXPECT_THROW(parse_layers("fc:8,gap"), std::invalid_argument);
  EXPECT_THROW(parse_layers("conv3x3:8,gap,gap"), std::invalid_argument);
  EXPECT_THROW(parse_layers("conv3x3:8,gap2"), std::invalid_argument);
  EXPECT_THROW(check_layers({LayerSpec::conv(4, 3).pooled(PoolKind::GlobalAvg, 2)}), std::invalid_argument);
}

TEST(Layers, AStringThatDoesNotParseNamesItsToken) {
  EXPECT_NE(error_of("conv5:32").find("'conv5:32' does not parse"), std::string::npos) << error_of("conv5:32");
  EXPECT_NE(error_of("conv5x5").find("'conv5x5'"), std::string::npos);
  EXPECT_NE(error_of("conv5x5:32,maxpool").find("'maxpool'"), std::string::npos);
  EXPECT_NE(error_of("maxpool2,fc:10").find("'maxpool2' has no layer before it"), std::string::npos);
  EXPECT_NE(error_of("fc:10,maxpool2").find("'maxpool2' follows an fc layer"), std::string::npos);
  EXPECT_NE(error_of("conv3x3:4,maxpool2,avgpool2").find("pooled already"), std::string::npos);
  EXPECT_NE(error_of("dense:10").find("'dense:10' does not parse"), std::string::npos);
  EXPECT_NE(error_of("fc:10,,fc:5").find("empty layer token"), std::string::npos);
  EXPECT_NE(error_of("fc:10,").find("empty layer token"), std::string::npos);
  EXPECT_NE(error_of("fc:-3").find("'fc:-3'"), std::string::npos);
}

TEST(Layers, ConvAfterFcAndEmptyLayersAreRefusedByValidate) {
  const auto message = [](const Layers& layers) {
    try {
      EngineConfig().set_layers(layers).validate();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(message(parse_layers("fc:10,conv3x3:4")).find("layer 2 'conv3x3:4' follows an fc layer"), std::string::npos);
  EXPECT_NE(message(parse_layers("conv3x3:0")).find("layer 1 'conv3x3:0' has no units"), std::string::npos);
  EXPECT_NE(message({}).find("no layer"), std::string::npos);
  EXPECT_EQ(message(parse_layers("conv3x3:4,maxpool2,fc:8")), "");
}

// The column map: each unit below owns kh*kw columns of a conv layer and H*W columns of the fc
// layer after the flatten; the heads read the top layer the same way.
TEST(Geometry, BlocksAndSpatialSizesOfALeNet) {
  const std::vector<LayerGeometry> g =
      plan_geometry(parse_layers("conv5x5:32,maxpool2,conv5x5:64,maxpool2,fc:256,fc:128"), {1, 28, 28}, 784);
  ASSERT_EQ(g.size(), 5u);
  EXPECT_EQ(g[0].block, 25);
  EXPECT_EQ(g[0].out_height, 12);  // (28 - 4) / 2
  EXPECT_EQ(g[1].block, 25);
  EXPECT_EQ(g[1].in_height, 12);
  EXPECT_EQ(g[1].out_width, 4);    // (12 - 4) / 2
  EXPECT_EQ(g[2].block, 16);       // 4x4 per channel at the flatten
  EXPECT_EQ(g[3].block, 1);
  EXPECT_EQ(g[4].block, 1);        // heads after fc
  EXPECT_EQ(input_units(parse_layers("conv5x5:32"), {3, 8, 8}, 192), 3);
  EXPECT_EQ(input_units(parse_layers("fc:8"), {}, 192), 192);
  // A conv top layer: each channel owns its H*W columns of every head.
  EXPECT_EQ(plan_geometry(parse_layers("conv3x3p1:4"), {2, 5, 5}, 50).back().block, 25);
}

TEST(Geometry, InputsThatCannotHoldTheLayersAreRefusedByName) {
  EXPECT_NE(geometry_error("conv5x5:8", {1, 4, 4}, 16).find("layer 1 'conv5x5:8': kernel 5x5 is larger than its input 4x4"),
            std::string::npos)
      << geometry_error("conv5x5:8", {1, 4, 4}, 16);
  EXPECT_EQ(geometry_error("conv5x5p1:8", {1, 4, 4}, 16), "");  // padding makes room
  EXPECT_NE(geometry_error("conv3x3:4,maxpool4", {1, 5, 5}, 25).find("pooling 4x4 leaves nothing of its input 3x3"),
            std::string::npos)
      << geometry_error("conv3x3:4,maxpool4", {1, 5, 5}, 25);
  EXPECT_NE(geometry_error("conv3x3:4", {}, 25).find("--input-shape"), std::string::npos);
  EXPECT_NE(geometry_error("conv3x3:4", {1, 5, 6}, 25).find("holds 30 values, but the data has 25 features"),
            std::string::npos);
  EXPECT_NE(geometry_error("fc:4", {1, 5}, 5).find("C,H,W"), std::string::npos);
}

}  // namespace
}  // namespace den::engine
