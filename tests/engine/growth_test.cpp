#include "engine/den/growth.h"

#include "ops/elementwise_math.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

namespace den::engine {

namespace {

struct Fixture {
  Network net{6, {5, 4}, at::make_generator<at::CPUGeneratorImpl>(3)};
  graph::UnitGraph graph{6, {5, 4}};
  Fixture() {
    net.add_head(2);
    graph.add_head(1, 2);
  }
};

}  // namespace

TEST(PruneZeroUnits, RemovesExactlyTheNewUnitsWithZeroGroupsAndTheirColumns) {
  Fixture f;
  const std::vector<int64_t> first_new = {5, 4};
  for (int64_t l = 0; l < 2; ++l) {
    f.net.add_units(l, 3, 1);
    f.graph.add_units(l, 3, 2, graph::Origin::Expanded);
  }
  // New units 5 and 7 of layer 0 and 6 of layer 1 end with zero groups (weights and bias);
  // old unit 0 of layer 0 is zero too but is not new, so it stays.
  for (int64_t p : {5, 7}) f.net.layer(0).select(0, p).zero_();
  f.net.layer(1).select(0, 6).zero_();
  f.net.layer(0).select(0, 0).zero_();
  const at::Tensor l0 = f.net.layer(0).clone(), l1 = f.net.layer(1).clone(), head = f.net.head(1).clone();

  const auto removed = prune_zero_units(f.net, f.graph, first_new);
  EXPECT_EQ(removed[0], (std::vector<int64_t>{5, 7}));
  EXPECT_EQ(removed[1], (std::vector<int64_t>{6}));
  EXPECT_EQ(f.graph.layer_sizes(), (std::vector<int64_t>{6, 6}));
  EXPECT_TRUE(at::equal(f.net.layer(0), l0.index_select(0, at::tensor({0L, 1L, 2L, 3L, 4L, 6L}))));
  // Layer 1 lost row 6 and the columns of layer 0's units 5 and 7.
  const at::Tensor kept_rows = at::tensor({0L, 1L, 2L, 3L, 4L, 5L});
  const at::Tensor kept_cols = at::tensor({0L, 1L, 2L, 3L, 4L, 6L, 8L});
  EXPECT_TRUE(at::equal(f.net.layer(1), l1.index_select(0, kept_rows).index_select(1, kept_cols)));
  EXPECT_TRUE(at::equal(f.net.head(1), head.index_select(1, at::tensor({0L, 1L, 2L, 3L, 4L, 5L, 7L}))));
  EXPECT_EQ(f.graph.removed_units().size(), 3u);
}

// NOTE: [prune to fixpoint]
TEST(PruneDeadUnits, RemovesUnitsThatOtherRemovalsLeaveWithoutInputsOrOutputsUntilNothingChanges) {
  Fixture f;
  const std::vector<int64_t> first_new = {5, 4};
  for (int64_t l = 0; l < 2; ++l) {
    f.net.add_units(l, 3, 1);
    f.graph.add_units(l, 3, 2, graph::Origin::Expanded);
  }
  at::Tensor& l0 = f.net.layer(0);  // [8, 7]
  at::Tensor& l1 = f.net.layer(1);  // [7, 9]
  at::Tensor& head = f.net.head(1);  // [2, 8]
  // Layer 0's new units 5, 6, 7 and layer 1's new units 4, 5, 6:
  //  - 0:5 has a zero group; 1:4's only input is 0:5, so 1:4 loses all inputs once 0:5 is gone
  //    (found by a second sweep, since sweeps run top layer first);
  //  - 1:5 has no outgoing weights in the head; 0:6's only output is 1:5;
  //  - 0:7 and 1:6 are used, as is old unit 0:0 with a zero group (old units always stay).
  l0.select(0, 5).zero_();
  l1.select(0, 4).zero_();
  l1[4][5] = 0.7;
  l1.select(1, 6).zero_();
  l1[5][6] = 0.5;
  head.select(1, 5).zero_();
  l0.select(0, 0).zero_();
  const at::Tensor x = at::rand({10, 6});
  const at::Tensor logits = f.net.logits(1, x);
  const at::Tensor w0 = l0.clone(), w1 = l1.clone(), h = head.clone();

  // One sweep over zero groups (the released code's) removes only 0:5.
  {
    Network net{6, {w0.clone(), w1.clone()}, {h.clone()}, at::make_generator<at::CPUGeneratorImpl>(3)};
    graph::UnitGraph graph = f.graph;
    const auto once = prune_zero_units(net, graph, first_new);
    EXPECT_EQ(once[0], (std::vector<int64_t>{5}));
    EXPECT_TRUE(once[1].empty());
  }

  const auto removed = prune_dead_units(f.net, f.graph, first_new);
  EXPECT_EQ(removed[0], (std::vector<int64_t>{5, 6}));
  EXPECT_EQ(removed[1], (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(f.graph.layer_sizes(), (std::vector<int64_t>{6, 5}));
  const at::Tensor rows0 = at::tensor({0L, 1L, 2L, 3L, 4L, 7L}), rows1 = at::tensor({0L, 1L, 2L, 3L, 6L});
  EXPECT_TRUE(at::equal(f.net.layer(0), w0.index_select(0, rows0)));
  EXPECT_TRUE(at::equal(f.net.layer(1), w1.index_select(0, rows1).index_select(1, at::tensor({0L, 1L, 2L, 3L, 4L, 7L, 8L}))));
  EXPECT_TRUE(at::equal(f.net.head(1), h.index_select(1, at::tensor({0L, 1L, 2L, 3L, 6L, 7L}))));
  EXPECT_TRUE(at::allclose(f.net.logits(1, x), logits, 1e-6, 1e-6));  // nothing removed contributed

  // At the fixpoint a second call removes nothing.
  const auto again = prune_dead_units(f.net, f.graph, {f.net.layer_size(0), f.net.layer_size(1)});
  EXPECT_TRUE(again[0].empty() && again[1].empty());
  const auto none = prune_dead_units(f.net, f.graph, {5, 4});
  EXPECT_TRUE(none[0].empty() && none[1].empty());
}

TEST(SplitDriftedUnits, RestoresOldRowsExactlyAndGivesCopiesTheCurrentOnes) {
  Fixture f;
  const std::vector<at::Tensor> previous = f.net.snapshot_layers();
  // Drift unit 1 of layer 0 by 0.3 and unit 3 by 0.2 (both above sigma = 0.1), unit 4 by 0.05.
  f.net.layer(0).select(0, 1).add_(0.3 / std::sqrt(7.0));
  f.net.layer(0).select(0, 3).add_(0.2 / std::sqrt(7.0));
  f.net.layer(0).select(0, 4).add_(0.05 / std::sqrt(7.0));
  const at::Tensor drifted = f.net.layer(0).clone();
  const at::Tensor above = f.net.layer(1).clone();

  std::vector<std::vector<int64_t>> restored;
  const auto pairs = split_drifted_units(f.net, f.graph, previous, /*sigma=*/0.1, /*relative_sigma=*/false, /*max_per_layer=*/1, /*stage=*/2,
                                         restored);
  ASSERT_EQ(pairs.size(), 1u);  // capped at one per layer: the largest drift wins
  EXPECT_EQ(restored[0], (std::vector<int64_t>{1}));
  EXPECT_TRUE(restored[1].empty());
  EXPECT_NEAR(pairs[0].drift, 0.3, 1e-5);
  EXPECT_TRUE(at::equal(f.net.layer(0).select(0, 1), previous[0].select(0, 1)));  // exact old weights
  EXPECT_TRUE(at::equal(f.net.layer(0).select(0, 5), drifted.select(0, 1)));      // copy has the new ones
  EXPECT_TRUE(at::equal(f.net.layer(0).select(0, 3), drifted.select(0, 3)));      // not split: untouched
  EXPECT_TRUE(at::equal(f.net.layer(1).select(1, 5), above.select(1, 1)));        // outgoing column copied
  EXPECT_EQ(f.graph.unit(0, 5).origin, graph::Origin::Split);
  EXPECT_EQ(f.graph.unit(0, 5).split_from, f.graph.unit(0, 1).id);
  EXPECT_EQ(f.graph.unit(0, 5).birth_stage, 2);
}

TEST(SplitRetrainMasks, TrainNewUnitsSelectedRowsAndNewColumnsButNeverRestoredOriginals) {
  Fixture f;
  const std::vector<at::Tensor> previous = f.net.snapshot_layers();
  // Task 2 expands by 2 units per layer, then splits unit 2 of layer 0 (its copy is 0:7).
  for (int64_t l = 0; l < 2; ++l) {
    f.net.add_units(l, 2, 1);
    f.graph.add_units(l, 2, 2, graph::Origin::Expanded);
  }
  ASSERT_EQ(f.net.duplicate_unit(0, 2, 2), 7);
  f.graph.split_unit(0, 2, 2);
  graph::Subnetwork selected;
  selected.inputs = {0, 3};
  selected.hidden = {{1, 2}, {0, 3}};
  const std::vector<std::vector<int64_t>> restored = {{2}, {}};
  const std::vector<at::Tensor> masks = split_retrain_masks(f.net, f.graph, previous, selected, restored, 2);
  ASSERT_EQ(masks.size(), 2u);
  ASSERT_EQ(masks[0].sizes(), f.net.layer(0).sizes());  // [8, 7]
  ASSERT_EQ(masks[1].sizes(), f.net.layer(1).sizes());  // [6, 9]
  const auto trainable = [](const at::Tensor& m) { return m.bitwise_and(ops::kTrainable).ne(0); };
  const auto anchored = [](const at::Tensor& m) { return m.bitwise_and(ops::kAnchored).ne(0); };

  // Layer 0: whole rows of the selected unit 1 (every input, not only the selected ones), of the
  // new units 5, 6 and of the copy 7; the restored original 2 and the unselected 0, 3, 4 not at all.
  at::Tensor t0 = at::zeros({8, 7}, at::kBool);
  for (int64_t r : {1, 5, 6, 7}) t0.select(0, r).fill_(true);
  EXPECT_TRUE(at::equal(trainable(masks[0]), t0));
  at::Tensor a0 = at::zeros({8, 7}, at::kBool);
  a0.select(0, 1).fill_(true);  // the pre-existing block: rows 0..4, all 6 inputs and the bias
  EXPECT_TRUE(at::equal(anchored(masks[0]), a0));

  // Layer 1: whole rows of the selected 0, 3 and the new 4, 5; in the unselected rows 1, 2 the
  // columns of layer 0's units born at 2 (5, 6 and the copy 7), with no drift anchor there.
  at::Tensor t1 = at::zeros({6, 9}, at::kBool);
  for (int64_t r : {0, 3, 4, 5}) t1.select(0, r).fill_(true);
  for (int64_t c : {5, 6, 7}) t1.select(1, c).fill_(true);
  EXPECT_TRUE(at::equal(trainable(masks[1]), t1));
  at::Tensor a1 = at::zeros({6, 9}, at::kBool);
  for (int64_t r : {0, 3}) {
    a1.select(0, r).narrow(0, 0, 5).fill_(true);  // old unit columns 0..4
    a1[r][8] = true;                              // and the bias
  }
  EXPECT_TRUE(at::equal(anchored(masks[1]), a1));
}

TEST(SplitDriftedUnits, RestoredRowHasZerosTowardUnitsBornLater) {
  Fixture f;
  const std::vector<at::Tensor> previous = f.net.snapshot_layers();
  f.net.add_units(0, 2, 1);
  f.graph.add_units(0, 2, 2, graph::Origin::Expanded);
  f.net.layer(1).select(0, 2).add_(1.0);
  std::vector<std::vector<int64_t>> restored;
  split_drifted_units(f.net, f.graph, previous, 0.1, false, 10, 2, restored);
  ASSERT_EQ(restored[1], (std::vector<int64_t>{2}));
  const at::Tensor row = f.net.layer(1).select(0, 2);
  EXPECT_TRUE(at::equal(row.narrow(0, 0, 5), previous[1].select(0, 2).narrow(0, 0, 5)));
  EXPECT_TRUE(at::equal(row.narrow(0, 5, 2), at::zeros({2})));
  EXPECT_EQ(row[7].item<float>(), previous[1][2][5].item<float>());  // bias
}

}  // namespace den::engine
