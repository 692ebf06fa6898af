#include "data/dataset.h"

#include "tests/data/test_files.h"

#include <gtest/gtest.h>

#include <limits>

namespace den::data {
namespace {

using testing::contains_all;
using testing::message_of;

/// n rows of d features; row i holds i in every column, label i % classes.
Dataset row_id_dataset(int64_t n, int64_t d, int64_t classes) {
  Dataset ds;
  ds.features = at::arange(n, at::kFloat).unsqueeze(1).repeat({1, d}).contiguous();
  ds.labels = at::arange(n, at::kLong).remainder(classes);
  ds.num_classes = classes;
  ds.sample_shape = {d};
  return ds;
}

TEST(DataDataset, SeededPermutationIsAPermutationAndDeterministic) {
  const at::Tensor p = seeded_permutation(1000, 7);
  EXPECT_EQ(p.scalar_type(), at::kLong);
  EXPECT_TRUE(at::equal(std::get<0>(p.sort()), at::arange(1000, at::kLong)));
  EXPECT_FALSE(at::equal(p, at::arange(1000, at::kLong)));
  EXPECT_TRUE(at::equal(p, seeded_permutation(1000, 7)));
  EXPECT_FALSE(at::equal(p, seeded_permutation(1000, 8)));
  EXPECT_EQ(seeded_permutation(0, 1).numel(), 0);
  EXPECT_TRUE(at::equal(seeded_permutation(1, 1), at::zeros({1}, at::kLong)));
}

TEST(DataDataset, SeededPermutationIsRoughlyUniform) {
  // Where element 0 lands over many seeds: each of 4 slots should get about a quarter.
  std::vector<int> counts(4, 0);
  for (uint64_t seed = 0; seed < 4000; ++seed) {
    const at::Tensor p = seeded_permutation(4, seed);
    for (int i = 0; i < 4; ++i) {
      if (p[i].item<int64_t>() == 0) ++counts[i];
    }
  }
  for (int c : counts) EXPECT_NEAR(c, 1000, 120);
}

TEST(DataDataset, ValidateAcceptsGoodData) { EXPECT_NO_THROW(validate(row_id_dataset(10, 3, 4), "good")); }

TEST(DataDataset, ValidateRejectsBadShapesAndCounts) {
  Dataset empty = row_id_dataset(10, 3, 4);
  empty.features = empty.features.slice(0, 0, 0);
  empty.labels = empty.labels.slice(0, 0, 0);
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { validate(empty, "train"); }), {"train", "no samples"}));

  Dataset flat = row_id_dataset(10, 3, 4);
  flat.features = flat.features.view({-1});
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { validate(flat, "train"); }), {"2-D"}));

  Dataset mismatch = row_id_dataset(10, 3, 4);
  mismatch.labels = mismatch.labels.slice(0, 0, 9);
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { validate(mismatch, "test"); }), {"test", "10", "9"}));

  Dataset doubles = row_id_dataset(10, 3, 4);
  doubles.features = doubles.features.to(at::kDouble);
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { validate(doubles, "train"); }), {"float32"}));

  Dataset missing;
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { validate(missing, "val"); }), {"val", "missing"}));
}

TEST(DataDataset, ValidateRejectsLabelsOutOfRange) {
  Dataset high = row_id_dataset(10, 3, 4);
  high.labels[6] = 4;
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { validate(high, "train"); }), {"label 4", "index 6", "[0, 4)"}));

  Dataset negative = row_id_dataset(10, 3, 4);
  negative.labels[2] = -1;
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { validate(negative, "train"); }), {"label -1", "index 2"}));
}

TEST(DataDataset, ValidateRejectsNonFiniteFeaturesNamingTheRow) {
  Dataset nan = row_id_dataset(10, 3, 4);
  nan.features[7][1] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { validate(nan, "train"); }), {"row 7"}));

  Dataset inf = row_id_dataset(10, 3, 4);
  inf.features[3][2] = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { validate(inf, "train"); }), {"row 3"}));
}

TEST(DataDataset, SelectRowsPicksRowsAndKeepsClassCount) {
  const Dataset ds = row_id_dataset(10, 3, 4);
  const Dataset sub = select_rows(ds, at::tensor({8, 1, 5}, at::kLong));
  EXPECT_TRUE(at::equal(sub.features.select(1, 0), at::tensor({8.0f, 1.0f, 5.0f})));
  EXPECT_TRUE(at::equal(sub.labels, at::tensor({0, 1, 1}, at::kLong)));
  EXPECT_EQ(sub.num_classes, 4);
  EXPECT_EQ(sub.sample_shape, ds.sample_shape);
}

TEST(DataDataset, SplitTrainValPartitionsRowsDeterministically) {
  const Dataset ds = row_id_dataset(101, 2, 3);
  const auto [train, val] = split_train_val(ds, 0.2, 42);
  EXPECT_EQ(val.size(), 20);  // round(101 * 0.2)
  EXPECT_EQ(train.size(), 81);
  EXPECT_EQ(train.num_classes, 3);
  // Every row lands in exactly one part.
  const at::Tensor ids = at::cat({train.features.select(1, 0), val.features.select(1, 0)});
  EXPECT_TRUE(at::equal(std::get<0>(ids.sort()), at::arange(101, at::kFloat)));

  const auto [train2, val2] = split_train_val(ds, 0.2, 42);
  EXPECT_TRUE(at::equal(val.features, val2.features));
  EXPECT_TRUE(at::equal(train.labels, train2.labels));
  const auto [train3, val3] = split_train_val(ds, 0.2, 43);
  EXPECT_FALSE(at::equal(val.features, val3.features));
}

TEST(DataDataset, SplitTrainValEdgeCases) {
  const Dataset ds = row_id_dataset(10, 2, 3);
  const auto [train, val] = split_train_val(ds, 0.0, 1);
  EXPECT_EQ(train.size(), 10);
  EXPECT_EQ(val.size(), 0);
  EXPECT_EQ(val.features.sizes(), at::IntArrayRef({0, 2}));
  EXPECT_THROW(split_train_val(ds, 1.0, 1), std::invalid_argument);
  EXPECT_THROW(split_train_val(ds, -0.1, 1), std::invalid_argument);
  EXPECT_THROW(split_train_val(ds, 0.97, 1), std::invalid_argument);  // rounds to all 10 rows
}

}  // namespace
}  // namespace den::data
