#include "graph/subnetwork.h"

#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cstdint>
#include <stdexcept>
#include <vector>

namespace den::graph {
namespace {

using Ids = std::vector<int64_t>;

// Builds a [rows, cols] bool pattern from a list of true (row, col) entries.
at::Tensor pattern(int64_t rows, int64_t cols, const std::vector<std::pair<int64_t, int64_t>>& on) {
  at::Tensor t = at::zeros({rows, cols}, at::kBool);
  for (const auto& [r, c] : on) t[r][c] = true;
  return t;
}

// Hand-built network: 5 inputs -> 4 hidden -> 3 hidden -> head with 2 outputs.
//   head: out0 reads top unit 0, out1 reads top unit 2; top unit 1 has an all-zero head column.
//   W1:   top 0 reads h0 {0, 1}; top 1 reads h0 {3}; top 2 reads h0 {1}; nobody reads h0 unit 2.
//   W0:   h0 0 reads x0; h0 1 reads x2; h0 2 reads x1; h0 3 reads x4; nobody reads x3.
struct HandNetwork {
  at::Tensor w0 = pattern(4, 5, {{0, 0}, {1, 2}, {2, 1}, {3, 4}});
  at::Tensor w1 = pattern(3, 4, {{0, 0}, {0, 1}, {1, 3}, {2, 1}});
  at::Tensor head = pattern(2, 3, {{0, 0}, {1, 2}});
};

TEST(SubnetworkTest, SelectsExactlyTheUnitsReachableFromTheHead) {
  HandNetwork n;
  const Subnetwork s = select_subnetwork({n.w0, n.w1}, n.head);
  ASSERT_EQ(s.hidden.size(), 2u);
  // Top unit 1 has no nonzero head weight, so h0 unit 3 (reached only through it) is out, and so
  // is x4 (reached only through h0 unit 3). x1 is reached only through the unselected h0 unit 2.
  EXPECT_EQ(s.hidden[1], (Ids{0, 2}));
  EXPECT_EQ(s.hidden[0], (Ids{0, 1}));
  EXPECT_EQ(s.inputs, (Ids{0, 2}));
}

TEST(SubnetworkTest, AcceptsUint8Patterns) {
  HandNetwork n;
  const Subnetwork a = select_subnetwork({n.w0, n.w1}, n.head);
  const Subnetwork b =
      select_subnetwork({n.w0.to(at::kByte), n.w1.to(at::kByte) * 7}, n.head.to(at::kByte));
  EXPECT_EQ(a.inputs, b.inputs);
  EXPECT_EQ(a.hidden, b.hidden);
}

TEST(SubnetworkTest, ZeroWeightDoesNotConnect) {
  // Dense-looking weights where the only path to h0 unit 1 and to x2 is an exact 0.0.
  at::Tensor w0 = at::tensor({0.5, -0.1, 0.0, 0.0, 0.0, 0.3}, at::kFloat).reshape({2, 3});
  at::Tensor w1 = at::tensor({0.2, 0.0}, at::kFloat).reshape({1, 2});
  at::Tensor head = at::tensor({1.0}, at::kFloat).reshape({1, 1});
  const Subnetwork s = select_subnetwork({w0.ne(0), w1.ne(0)}, head.ne(0));
  EXPECT_EQ(s.hidden[1], (Ids{0}));
  EXPECT_EQ(s.hidden[0], (Ids{0}));
  EXPECT_EQ(s.inputs, (Ids{0, 1}));
}

TEST(SubnetworkTest, AllZeroHeadSelectsNothing) {
  HandNetwork n;
  const Subnetwork s = select_subnetwork({n.w0, n.w1}, at::zeros({2, 3}, at::kBool));
  EXPECT_TRUE(s.inputs.empty());
  ASSERT_EQ(s.hidden.size(), 2u);
  EXPECT_TRUE(s.hidden[0].empty());
  EXPECT_TRUE(s.hidden[1].empty());
}

TEST(SubnetworkTest, DensePatternSelectsEverything) {
  const Subnetwork s = select_subnetwork({at::ones({4, 6}, at::kBool)}, at::ones({3, 4}, at::kBool));
  EXPECT_EQ(s.inputs, (Ids{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(s.hidden[0], (Ids{0, 1, 2, 3}));
}

// Invariance: BFS on the graph against layer-by-layer propagation with ATen reductions.
TEST(SubnetworkTest, MatchesLayerwisePropagationOnRandomSparsePatterns) {
  at::manual_seed(7);
  const std::vector<int64_t> sizes = {40, 30, 20, 10};  // input, hidden 0..2
  for (int trial = 0; trial < 5; ++trial) {
    std::vector<at::Tensor> layers;
    for (size_t l = 1; l < sizes.size(); ++l) layers.push_back(at::rand({sizes[l], sizes[l - 1]}).lt(0.05));
    const at::Tensor head = at::rand({3, sizes.back()}).lt(0.2);
    const Subnetwork s = select_subnetwork(layers, head);

    at::Tensor selected = head.any(0);  // [n_top]
    std::vector<Ids> expected_hidden(layers.size());
    for (int64_t l = static_cast<int64_t>(layers.size()) - 1; l >= 0; --l) {
      expected_hidden[l] = Ids();
      for (int64_t i = 0; i < selected.size(0); ++i) {
        if (selected[i].item<bool>()) expected_hidden[l].push_back(i);
      }
      selected = layers[l].logical_and(selected.unsqueeze(1)).any(0);
    }
    Ids expected_inputs;
    for (int64_t j = 0; j < selected.size(0); ++j) {
      if (selected[j].item<bool>()) expected_inputs.push_back(j);
    }
    EXPECT_EQ(s.hidden, expected_hidden) << "trial " << trial;
    EXPECT_EQ(s.inputs, expected_inputs) << "trial " << trial;
  }
}

TEST(SubnetworkTest, ShapeMismatchThrows) {
  HandNetwork n;
  // W1 must have as many columns as layer 0 has units.
  EXPECT_THROW(select_subnetwork({n.w0, at::ones({3, 5}, at::kBool)}, n.head), std::invalid_argument);
  // The head must have as many columns as the top layer has units.
  EXPECT_THROW(select_subnetwork({n.w0, n.w1}, at::ones({2, 4}, at::kBool)), std::invalid_argument);
}

TEST(SubnetworkTest, InvalidPatternsThrow) {
  HandNetwork n;
  EXPECT_THROW(select_subnetwork({}, n.head), std::invalid_argument);
  EXPECT_THROW(select_subnetwork({n.w0, n.w1}, at::ones({3}, at::kBool)), std::invalid_argument);
  EXPECT_THROW(select_subnetwork({n.w0.to(at::kFloat), n.w1}, n.head), std::invalid_argument);
  EXPECT_THROW(select_subnetwork({n.w0, at::Tensor()}, n.head), std::invalid_argument);
}

}  // namespace
}  // namespace den::graph
