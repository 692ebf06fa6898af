// Conv layers in the one layer type (NOTE: [augmented rows]): filters as rows, the column map at
// conv inputs and at the flatten, DEN's phases acting on whole filters.

#include "engine/den/growth.h"
#include "engine/engine.h"
#include "engine/engine_state.h"
#include "engine/training/trainer.h"
#include "synthetic.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

namespace den::engine {
namespace {

// 1x8x8 images: conv3x3 (6 filters) -> 6x6, max pool -> 3x3, conv2x2 (8 filters) -> 2x2, flatten
// (each channel owns 4 columns of the fc layer), fc 12, head.
const std::vector<int64_t> kShape = {1, 8, 8};
constexpr int64_t kDim = 64;
Layers conv_layers() { return parse_layers("conv3x3:6,maxpool2,conv2x2:8,fc:12"); }

Network conv_network(uint64_t seed = 3) {
  Network net(kDim, conv_layers(), at::make_generator<at::CPUGeneratorImpl>(seed), at::kCPU, kShape);
  net.add_head(3);
  return net;
}

testing::SyntheticSpec image_spec() {
  testing::SyntheticSpec s;
  s.dim = kDim;
  s.informative = kDim;
  return s;
}

EngineConfig conv_config(const std::string& preset_name = "den") {
  return preset(preset_name)
      .set_layers(conv_layers())
      .set_input_shape(kShape)
      .set_max_iter(200)
      .set_batch_size(64)
      .set_eval_every(50)
      .set_k(3);
}

/// The same network written the plain way: each layer's filters as a contiguous [n, C, kh, kw]
/// tensor and a bias, at::conv2d, relu, pooling, flatten, linear.
at::Tensor reference_logits(const std::vector<at::Tensor>& layers, const at::Tensor& head, const at::Tensor& x) {
  at::Tensor h = x.view({x.size(0), 1, 8, 8});
  const auto split = [](const at::Tensor& w) {
    const int64_t n_in = w.size(1) - 1;
    return std::make_pair(w.narrow(1, 0, n_in).contiguous(), w.select(1, n_in).contiguous());
  };
  auto [w0, b0] = split(layers[0]);
  h = at::max_pool2d(at::relu(at::conv2d(h, w0.view({w0.size(0), -1, 3, 3}), b0)), {2, 2});
  auto [w1, b1] = split(layers[1]);
  h = at::relu(at::conv2d(h, w1.view({w1.size(0), -1, 2, 2}), b1)).flatten(1);
  auto [w2, b2] = split(layers[2]);
  h = at::relu(at::linear(h, w2, b2));
  auto [wh, bh] = split(head);
  return at::linear(h, wh, bh);
}

TEST(ConvNetwork, RowsAreFiltersAndTheForwardIsTheUsualConvNet) {
  const Network net = conv_network();
  EXPECT_EQ(net.layer(0).sizes(), (std::vector<int64_t>{6, 1 * 9 + 1}));
  EXPECT_EQ(net.layer(1).sizes(), (std::vector<int64_t>{8, 6 * 4 + 1}));
  EXPECT_EQ(net.layer(2).sizes(), (std::vector<int64_t>{12, 8 * 4 + 1}));  // 2x2 per channel at the flatten
  EXPECT_EQ(net.block(0), 9);
  EXPECT_EQ(net.block(2), 4);
  EXPECT_EQ(net.units_below(0), 1);
  EXPECT_FALSE(net.all_fc());
  const at::Tensor x = testing::synthetic_task(1, image_spec()).test_x.narrow(0, 0, 20);
  EXPECT_TRUE(at::allclose(net.logits(1, x), reference_logits(net.layers(), net.head(1), x), 1e-5, 1e-6));
}

// The conv objective's gradient with respect to the augmented rows is the gradient of the plain
// network's filters and biases, laid out by the column map.
TEST(ConvNetwork, TheObjectivesGradientsAreThePlainNetworksGradients) {
  Network net = conv_network();
  const Task task = testing::synthetic_task(1, image_spec());
  const Trainer trainer(EngineConfig(), at::make_generator<at::CPUGeneratorImpl>(1));
  const Objective objective = trainer.task_objective(net, 1, task);
  EXPECT_FALSE(objective.batch_gradients);  // the hand-written backward is for fc networks
  const at::Tensor idx = at::tensor(std::vector<int64_t>{3, 17, 5, 120, 64, 9, 3, 77}, at::kLong);

  std::vector<at::Tensor> ours;
  for (at::Tensor& w : net.layers()) ours.push_back(w.requires_grad_(true));
  ours.push_back(net.head(1).requires_grad_(true));
  const std::vector<at::Tensor> grads = torch::autograd::grad({objective.batch_loss(idx)}, ours);
  for (at::Tensor& t : ours) t.requires_grad_(false);

  std::vector<at::Tensor> plain;
  for (const at::Tensor& t : ours) plain.push_back(t.detach().clone().requires_grad_(true));
  const at::Tensor x = task.train_x.index_select(0, idx), y = task.train_y.index_select(0, idx);
  const std::vector<at::Tensor> layers(plain.begin(), plain.end() - 1);
  const std::vector<at::Tensor> expected =
      torch::autograd::grad({data_loss(reference_logits(layers, plain.back(), x), y, LossKind::Softmax)}, plain);
  for (size_t i = 0; i < grads.size(); ++i) {
    EXPECT_TRUE(at::allclose(grads[i], expected[i], 1e-4, 1e-6)) << "tensor " << i;
    EXPECT_GT(expected[i].abs().sum().item<double>(), 0.0) << "tensor " << i;
  }
}

// Growth acts on whole filters: a new filter is a row, and its outgoing slices are column blocks
// of the layer above (kh*kw in a conv layer, H*W in the fc layer after the flatten).
TEST(ConvNetwork, AddRemoveAndDuplicateMoveWholeColumnBlocks) {
  Network net = conv_network();
  const at::Tensor fc = net.layer(2).clone(), conv1 = net.layer(1).clone();
  net.add_units(1, 2, 1);  // two filters in the layer before the flatten
  EXPECT_EQ(net.layer(1).size(0), 10);
  EXPECT_EQ(net.layer(2).size(1), 10 * 4 + 1);
  EXPECT_TRUE(at::equal(net.layer(2).narrow(1, 0, 32), fc.narrow(1, 0, 32)));  // old blocks in place
  EXPECT_TRUE(at::equal(net.layer(2).select(1, 40), fc.select(1, 32)));        // bias last

  const int64_t copy = net.duplicate_unit(1, 3, 1);
  EXPECT_EQ(copy, 10);
  EXPECT_TRUE(at::equal(net.layer(1)[copy], conv1[3]));
  EXPECT_TRUE(at::equal(net.layer(2).narrow(1, copy * 4, 4), fc.narrow(1, 3 * 4, 4)));

  net.remove_units(1, {3, 8});
  EXPECT_EQ(net.layer(1).size(0), 9);
  EXPECT_EQ(net.layer(2).size(1), 9 * 4 + 1);
  EXPECT_TRUE(at::equal(net.layer(2).narrow(1, 3 * 4, 4), fc.narrow(1, 4 * 4, 4)));  // block 4 moved down

  net.add_units(0, 1, 1);  // a filter of the first layer: one 2x2 slice in every filter above
  EXPECT_EQ(net.layer(1).size(1), 7 * 4 + 1);
  const at::Tensor x = testing::synthetic_task(2, image_spec()).test_x.narrow(0, 0, 10);
  EXPECT_TRUE(at::allclose(net.logits(1, x), reference_logits(net.layers(), net.head(1), x), 1e-5, 1e-6));
}

TEST(ConvGrowth, PruningDropsAFiltersOutgoingSlicesIncludingTheFcBlocksAtTheFlatten) {
  Network net = conv_network();
  graph::UnitGraph graph(1, {6, 8, 12});
  graph.add_head(1, 3);
  const std::vector<int64_t> first_new = {6, 8, 12};
  for (int64_t l = 0; l < 3; ++l) {
    net.add_units(l, 2, 1);
    graph.add_units(l, 2, 2, graph::Origin::Expanded);
  }
  net.layer(1).select(0, 9).zero_();  // new filter 9 of the conv layer below the flatten
  net.layer(0).select(0, 6).zero_();  // new filter 6 of the first layer
  const at::Tensor conv1 = net.layer(1).clone(), fc = net.layer(2).clone();
  const auto removed = prune_zero_units(net, graph, first_new);
  EXPECT_EQ(removed[0], (std::vector<int64_t>{6}));
  EXPECT_EQ(removed[1], (std::vector<int64_t>{9}));
  EXPECT_EQ(graph.layer_sizes(), (std::vector<int64_t>{7, 9, 14}));
  // The fc layer lost filter 9's 2x2 block (columns 36..39), the conv layer above filter 6's slice.
  std::vector<int64_t> fc_cols;
  for (int64_t c = 0; c < fc.size(1); ++c) {
    if (c < 36 || c >= 40) fc_cols.push_back(c);
  }
  EXPECT_TRUE(at::equal(net.layer(2), fc.index_select(1, at::tensor(fc_cols))));
  std::vector<int64_t> conv_cols, conv_rows;
  for (int64_t c = 0; c < conv1.size(1); ++c) {
    if (c < 24 || c >= 28) conv_cols.push_back(c);
  }
  for (int64_t r = 0; r < 10; ++r) {
    if (r != 9) conv_rows.push_back(r);
  }
  EXPECT_TRUE(at::equal(net.layer(1), conv1.index_select(0, at::tensor(conv_rows)).index_select(1, at::tensor(conv_cols))));
}

TEST(ConvGrowth, SplitRestoresAFilterExactlyAndTheCopyTakesItsSlices) {
  Network net = conv_network();
  graph::UnitGraph graph(1, {6, 8, 12});
  graph.add_head(1, 3);
  const std::vector<at::Tensor> previous = net.snapshot_layers();
  net.layer(1).select(0, 2).add_(0.5);
  const at::Tensor drifted = net.layer(1)[2].clone(), fc = net.layer(2).clone();
  std::vector<std::vector<int64_t>> restored;
  const auto pairs = split_drifted_units(net, graph, previous, 0.1, false, 1, 2, restored);
  ASSERT_EQ(pairs.size(), 1u);
  EXPECT_EQ(restored[1], (std::vector<int64_t>{2}));
  EXPECT_TRUE(at::equal(net.layer(1)[2], previous[1][2]));  // the filter, bit for bit
  EXPECT_TRUE(at::equal(net.layer(1)[8], drifted));         // the copy
  EXPECT_TRUE(at::equal(net.layer(2).narrow(1, 8 * 4, 4), fc.narrow(1, 2 * 4, 4)));  // its fc block
}

TEST(ConvEngine, SelectiveRetrainingLeavesFiltersOutsideTheSubnetworkBitIdentical) {
  // Released selection (breadth-first over channel connectivity), no expansion, no split.
  Engine engine(conv_config("released").set_mu(1e-3).set_k(0).set_sigma(1e9), kDim);
  engine.add_task(testing::synthetic_task(1, image_spec()));
  const std::vector<at::Tensor> before = engine.network().snapshot_layers();
  const TaskReport report = engine.add_task(testing::synthetic_task(2, image_spec()));
  const graph::Subnetwork& s = report.subnetwork;
  bool changed_inside = false;
  for (int64_t l = 0; l < 3; ++l) {
    const at::Tensor& after = engine.network().layer(l);
    ASSERT_EQ(after.sizes(), before[l].sizes());
    const int64_t block = engine.network().block(l);
    const std::vector<int64_t>& below = l == 0 ? s.inputs : s.hidden[l - 1];
    at::Tensor inside = at::zeros_like(after, at::kBool);
    for (int64_t r : s.hidden[l]) {
      for (int64_t c : unit_columns(below, block)) inside[r][c] = true;
      inside[r][after.size(1) - 1] = true;
    }
    const at::Tensor outside = inside.logical_not();
    EXPECT_TRUE(at::equal(after.masked_select(outside), before[l].masked_select(outside))) << "layer " << l;
    changed_inside |= !at::equal(after.masked_select(inside), before[l].masked_select(inside));
  }
  EXPECT_TRUE(changed_inside);
}

// The den preset keeps earlier tasks exact on conv layers too; units born later are never read by
// an earlier task (timestamped inference through the column map).
TEST(ConvEngine, DenKeepsEarlierTasksBitIdenticalWhileItGrowsFilters) {
  Engine engine(conv_config().set_tau(0).set_sigma(0), kDim);
  engine.add_task(testing::synthetic_task(1, image_spec()));
  const at::Tensor x = testing::synthetic_task(9, image_spec()).test_x;
  const at::Tensor task1 = engine.predict(1, x);
  const TaskReport r2 = engine.add_task(testing::synthetic_task(2, image_spec()));
  const at::Tensor task2 = engine.predict(2, x);
  engine.add_task(testing::synthetic_task(3, image_spec()));
  EXPECT_GT(r2.split[0] + r2.split[1] + r2.split[2], 0);
  EXPECT_GT(engine.graph().layer_size(0) + engine.graph().layer_size(1), 14);  // filters were added or split
  EXPECT_TRUE(at::equal(engine.predict(1, x), task1));
  EXPECT_TRUE(at::equal(engine.predict(2, x), task2));
  const std::vector<at::Tensor> all = engine.predict_all(x);
  EXPECT_TRUE(at::allclose(all[0], task1, 1e-5, 1e-6));

  // Scrambling every unit born after task 1 leaves task 1's outputs as they were.
  EngineState state = engine.state().clone();
  for (int64_t l = 0; l < 3; ++l) {
    for (int64_t p : state.graph.units_born_at(l, 2)) state.layers[l][p].normal_();
    for (int64_t p : state.graph.units_born_at(l, 3)) state.layers[l][p].normal_();
  }
  const Engine changed = Engine::from_state(std::move(state));
  EXPECT_TRUE(at::equal(changed.predict(1, x), task1));
}

// Global average pooling (gap) between the conv layers and the fc layer: each filter owns one
// column at the flatten, and DEN still keeps task 1 exact while it learns task 2.
TEST(ConvEngine, GlobalAveragePoolingLearnsAndKeepsEarlierTasksExact) {
  Engine engine(conv_config().set_layers(parse_layers("conv3x3:6,maxpool2,conv2x2:8,gap,fc:12")).set_tau(0), kDim);
  EXPECT_EQ(engine.network().block(2), 1);
  const Task first = testing::synthetic_task(1, image_spec());
  engine.add_task(first);
  const at::Tensor task1 = engine.predict(1, first.test_x);
  const double accuracy = task1.argmax(1).eq(first.test_y).to(at::kDouble).mean().item<double>();
  EXPECT_GT(accuracy, 0.5);  // chance is 1/3
  engine.add_task(testing::synthetic_task(2, image_spec()));
  EXPECT_TRUE(at::equal(engine.predict(1, first.test_x), task1));
}

TEST(ConvEngine, LearnsImageTasksAndRefusesInputsThatDoNotFit) {
  Engine engine(conv_config(), kDim);
  const Task task = testing::synthetic_task(1, image_spec());
  engine.add_task(task);
  const double accuracy = engine.predict(1, task.test_x).argmax(1).eq(task.test_y).to(at::kDouble).mean().item<double>();
  EXPECT_GT(accuracy, 0.8);  // chance is 1/3
  EXPECT_THROW(Engine(conv_config(), 65), std::invalid_argument);                          // 65 is not 1x8x8
  EXPECT_THROW(Engine(conv_config().set_input_shape({}), kDim), std::invalid_argument);     // flat input
  EXPECT_THROW(Engine(conv_config().set_input_shape({1, 2, 32}), kDim), std::invalid_argument);  // 3x3 kernel > 2 rows
}

}  // namespace
}  // namespace den::engine
