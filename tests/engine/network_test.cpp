#include "engine/training/network.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

namespace den::engine {

namespace {
Network small_network() { return Network(5, {4, 3}, at::make_generator<at::CPUGeneratorImpl>(7)); }
}  // namespace

TEST(Network, ForwardIsReluAffineStackWithBiasColumn) {
  Network net = small_network();
  net.add_head(2);
  const at::Tensor x = at::randn({6, 5});
  at::Tensor h = x;
  for (const at::Tensor& w : net.layers()) {
    h = at::relu(at::matmul(h, w.narrow(1, 0, w.size(1) - 1).t()) + w.select(1, w.size(1) - 1));
  }
  const at::Tensor& head = net.head(1);
  const at::Tensor expected = at::matmul(h, head.narrow(1, 0, 3).t()) + head.select(1, 3);
  EXPECT_TRUE(at::allclose(net.logits(1, x), expected, 1e-5, 1e-6));
}

TEST(Network, AddUnitsAppendsRowsAndInsertsColumnsBeforeBias) {
  Network net = small_network();
  net.add_head(2);
  net.add_head(3);
  const at::Tensor l0 = net.layer(0).clone(), l1 = net.layer(1).clone();
  const at::Tensor h1 = net.head(1).clone(), h2 = net.head(2).clone();

  net.add_units(0, 2, /*trainable_head=*/2);
  EXPECT_EQ(net.layer(0).sizes(), (std::vector<int64_t>{6, 6}));
  EXPECT_TRUE(at::equal(net.layer(0).narrow(0, 0, 4), l0));
  EXPECT_EQ(net.layer(1).sizes(), (std::vector<int64_t>{3, 7}));
  EXPECT_TRUE(at::equal(net.layer(1).narrow(1, 0, 4), l1.narrow(1, 0, 4)));
  EXPECT_TRUE(at::equal(net.layer(1).select(1, 6), l1.select(1, 4)));  // bias stays last

  net.add_units(1, 2, /*trainable_head=*/2);
  EXPECT_EQ(net.head(1).sizes(), (std::vector<int64_t>{2, 6}));
  EXPECT_TRUE(at::equal(net.head(1).narrow(1, 3, 2), at::zeros({2, 2})));  // older head: frozen zeros
  EXPECT_TRUE(at::equal(net.head(1).select(1, 5), h1.select(1, 3)));
  EXPECT_GT(net.head(2).narrow(1, 3, 2).abs().sum().item<float>(), 0.0f);  // trainable head: random
  EXPECT_TRUE(at::equal(net.head(2).narrow(1, 0, 3), h2.narrow(1, 0, 3)));
}

TEST(Network, RemoveUnitsDropsRowsAndOutgoingColumns) {
  Network net = small_network();
  net.add_head(2);
  const at::Tensor l0 = net.layer(0).clone(), l1 = net.layer(1).clone();
  net.remove_units(0, {1, 3});
  EXPECT_TRUE(at::equal(net.layer(0), l0.index_select(0, at::tensor({0L, 2L}))));
  EXPECT_TRUE(at::equal(net.layer(1), l1.index_select(1, at::tensor({0L, 2L, 4L}))));
}

TEST(Network, DuplicateUnitCopiesRowAndColumn) {
  Network net = small_network();
  net.add_head(2);
  net.add_head(2);
  const int64_t copy = net.duplicate_unit(1, 2, /*trainable_head=*/2);
  EXPECT_EQ(copy, 3);
  EXPECT_TRUE(at::equal(net.layer(1).select(0, 3), net.layer(1).select(0, 2)));
  EXPECT_TRUE(at::equal(net.head(2).select(1, 3), net.head(2).select(1, 2)));
  EXPECT_TRUE(at::equal(net.head(1).select(1, 3), at::zeros({2})));
  EXPECT_EQ(net.num_params(), 4 * 6 + 4 * 5 + 2 * 5 * 2);
}

}  // namespace den::engine

namespace den::engine {

TEST(Network, LogitsFromAnyLayerEqualLogits) {
  Network net = small_network();
  net.add_head(2);
  const at::Tensor x = at::randn({6, 5});
  const at::Tensor first = affine(x, net.layer(0));
  EXPECT_TRUE(at::allclose(net.logits_from(1, 0, first), net.logits(1, x)));
  EXPECT_TRUE(at::allclose(net.logits_from(1, 1, affine(at::relu(first), net.layer(1))), net.logits(1, x)));
}

}  // namespace den::engine
