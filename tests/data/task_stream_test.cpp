#include "data/task_stream.h"

#include "tests/data/test_files.h"

#include <gtest/gtest.h>

#include <limits>
#include <set>

namespace den::data {
namespace {

using testing::contains_all;
using testing::message_of;

constexpr int64_t kDim = 6;
constexpr int64_t kClasses = 10;

/// Rows whose values encode where they came from: x[i, j] = (offset + i) * 8 + j, label i % 10.
/// So any cell tells its original row (x / 8) and column (x % 8), whatever a task did to it.
Dataset coded(int64_t n, int64_t offset) {
  Dataset ds;
  const at::Tensor rows = at::arange(offset, offset + n, at::kFloat).unsqueeze(1);
  const at::Tensor cols = at::arange(kDim, at::kFloat).unsqueeze(0);
  ds.features = (rows * 8 + cols).contiguous();
  ds.labels = at::arange(n, at::kLong).remainder(kClasses);
  ds.num_classes = kClasses;
  ds.sample_shape = {kDim};
  return ds;
}

at::Tensor row_ids(const at::Tensor& x) { return at::floor_divide(x.select(1, 0), 8).to(at::kLong); }
at::Tensor col_ids(const at::Tensor& x) { return x.select(0, 0).remainder(8).to(at::kLong); }
/// The original class of each row of `x` (labels are row % 10 in both coded sets).
at::Tensor original_labels(const at::Tensor& x) { return row_ids(x).remainder(kClasses); }

/// (features, labels) of a task's train, val and test parts.
std::vector<std::pair<at::Tensor, at::Tensor>> parts(const engine::Task& t) {
  return {{t.train_x, t.train_y}, {t.val_x, t.val_y}, {t.test_x, t.test_y}};
}

StreamOptions options(Protocol protocol, int64_t tasks, uint64_t seed = 1) {
  StreamOptions o;
  o.protocol = protocol;
  o.num_tasks = tasks;
  o.seed = seed;
  return o;
}

TaskStream stream(const StreamOptions& o) { return TaskStream(coded(400, 0), coded(100, 1000), o); }

void expect_well_formed(const engine::Task& task) {
  for (const at::Tensor* x : {&task.train_x, &task.val_x, &task.test_x}) {
    EXPECT_EQ(x->scalar_type(), at::kFloat);
    EXPECT_EQ(x->dim(), 2);
    EXPECT_EQ(x->size(1), kDim);
    EXPECT_TRUE(x->is_contiguous());
  }
  for (const at::Tensor* y : {&task.train_y, &task.val_y, &task.test_y}) {
    EXPECT_EQ(y->scalar_type(), at::kLong);
    EXPECT_EQ(y->dim(), 1);
    EXPECT_TRUE(y->is_contiguous());
    if (y->numel() > 0) {
      EXPECT_GE(y->min().item<int64_t>(), 0);
      EXPECT_LT(y->max().item<int64_t>(), task.num_classes);
    }
  }
  EXPECT_EQ(task.train_x.size(0), task.train_y.size(0));
  EXPECT_EQ(task.val_x.size(0), task.val_y.size(0));
  EXPECT_EQ(task.test_x.size(0), task.test_y.size(0));
}

TEST(DataTaskStream, ParsesProtocolNames) {
  for (Protocol p : {Protocol::Permuted, Protocol::Split, Protocol::OneVsRest}) {
    EXPECT_EQ(parse_protocol(to_string(p)), p);
  }
  EXPECT_EQ(to_string(Protocol::OneVsRest), "one-vs-rest");
  EXPECT_THROW(parse_protocol("rotated"), std::invalid_argument);
}

TEST(DataTaskStream, MaxTasksPerProtocol) {
  EXPECT_EQ(TaskStream::max_tasks(Protocol::Permuted, 10, 2), 1000);
  EXPECT_EQ(TaskStream::max_tasks(Protocol::Split, 10, 2), 5);
  EXPECT_EQ(TaskStream::max_tasks(Protocol::Split, 10, 3), 3);
  EXPECT_EQ(TaskStream::max_tasks(Protocol::OneVsRest, 10, 2), 10);
}

TEST(DataTaskStream, PermutedTaskOneIsIdentityAndLaterTasksPermuteColumns) {
  const TaskStream s = stream(options(Protocol::Permuted, 3));
  EXPECT_EQ(s.input_dim(), kDim);
  const engine::Task t1 = s.task(1);
  expect_well_formed(t1);
  EXPECT_EQ(t1.name, "permuted-1");
  EXPECT_EQ(t1.num_classes, kClasses);
  EXPECT_EQ(t1.train_x.size(0), 360);  // 400 minus round(0.1 * 400) for validation
  EXPECT_EQ(t1.val_x.size(0), 40);
  EXPECT_EQ(t1.test_x.size(0), 100);
  EXPECT_TRUE(at::equal(col_ids(t1.train_x), at::arange(kDim, at::kLong)));
  // Labels still belong to their rows.
  EXPECT_TRUE(at::equal(t1.train_y, original_labels(t1.train_x)));
  EXPECT_TRUE(at::equal(t1.test_y, original_labels(t1.test_x)));

  const engine::Task t2 = s.task(2);
  expect_well_formed(t2);
  EXPECT_EQ(t2.name, "permuted-2");
  const at::Tensor perm = col_ids(t2.train_x);
  EXPECT_FALSE(at::equal(perm, at::arange(kDim, at::kLong)));
  EXPECT_TRUE(at::equal(std::get<0>(perm.sort()), at::arange(kDim, at::kLong)));
  // One permutation for every row of train, val and test.
  for (const at::Tensor* x : {&t2.train_x, &t2.val_x, &t2.test_x}) {
    EXPECT_TRUE(at::equal(x->remainder(8).to(at::kLong), perm.unsqueeze(0).expand({x->size(0), kDim})));
  }
  // Same rows and labels as task 1; only the columns moved.
  EXPECT_TRUE(at::equal(row_ids(t2.train_x), row_ids(t1.train_x)));
  EXPECT_TRUE(at::equal(t2.train_y, t1.train_y));
  EXPECT_FALSE(at::equal(col_ids(s.task(3).train_x), perm));
}

TEST(DataTaskStream, TasksDoNotShareStorageWithTheStream) {
  const TaskStream s = stream(options(Protocol::Permuted, 2));
  engine::Task t1 = s.task(1);
  const at::Tensor before = t1.train_x.clone();
  t1.train_x.mul_(0);
  t1.train_y.fill_(0);
  EXPECT_TRUE(at::equal(s.task(1).train_x, before));
}

TEST(DataTaskStream, SameSeedSameTasksDifferentSeedDifferentTasks) {
  const engine::Task a = stream(options(Protocol::Permuted, 3, 5)).task(3);
  const engine::Task b = stream(options(Protocol::Permuted, 3, 5)).task(3);
  EXPECT_TRUE(at::equal(a.train_x, b.train_x));
  EXPECT_TRUE(at::equal(a.train_y, b.train_y));
  EXPECT_TRUE(at::equal(a.val_x, b.val_x));
  EXPECT_TRUE(at::equal(a.test_x, b.test_x));

  const engine::Task c = stream(options(Protocol::Permuted, 3, 6)).task(3);
  EXPECT_FALSE(at::equal(col_ids(a.train_x), col_ids(c.train_x)));
  EXPECT_FALSE(at::equal(row_ids(a.val_x), row_ids(c.val_x)));  // the validation split moves too

  const engine::Task d = stream(options(Protocol::OneVsRest, 3, 5)).task(2);
  const engine::Task e = stream(options(Protocol::OneVsRest, 3, 5)).task(2);
  EXPECT_TRUE(at::equal(d.train_x, e.train_x));
  EXPECT_TRUE(at::equal(d.test_y, e.test_y));
}

TEST(DataTaskStream, SplitSelectsAndRelabelsClasses) {
  StreamOptions o = options(Protocol::Split, 5);
  o.classes_per_task = 2;
  const TaskStream s = stream(o);
  const engine::Task t = s.task(2);
  expect_well_formed(t);
  EXPECT_EQ(t.name, "split-2[2,3]");
  EXPECT_EQ(t.num_classes, 2);
  // Classes 2 and 3 hold 20 of the 100 test rows; every one of them is kept.
  EXPECT_EQ(t.test_x.size(0), 20);
  EXPECT_EQ(t.train_x.size(0) + t.val_x.size(0), 80);
  for (const auto& [x, y] : parts(t)) {
    EXPECT_TRUE(at::equal(original_labels(x), y + 2));
  }
  EXPECT_EQ(s.task(5).name, "split-5[8,9]");

  o.classes_per_task = 3;
  o.num_tasks = 3;
  const engine::Task t3 = stream(o).task(3);
  EXPECT_EQ(t3.name, "split-3[6,7,8]");
  EXPECT_EQ(t3.num_classes, 3);
  EXPECT_TRUE(at::equal(original_labels(t3.test_x), t3.test_y + 6));
}

TEST(DataTaskStream, OneVsRestIsBalancedAndInterleaved) {
  const TaskStream s = stream(options(Protocol::OneVsRest, 10));
  const engine::Task t = s.task(4);  // class 3 against the rest
  expect_well_formed(t);
  EXPECT_EQ(t.name, "one-vs-rest-4");
  EXPECT_EQ(t.num_classes, 2);
  for (const auto& [x, y] : parts(t)) {
    const at::Tensor positive = original_labels(x) == 3;
    EXPECT_TRUE(at::equal(y, positive.to(at::kLong)));
    EXPECT_EQ(y.sum().item<int64_t>() * 2, y.size(0));  // as many negatives as positives
  }
  // All 10 test rows of class 3 are kept, with 10 negatives.
  EXPECT_EQ(t.test_x.size(0), 20);
  // Rows are distinct and the two classes interleave rather than come in two blocks.
  const at::Tensor ids = row_ids(t.train_x);
  EXPECT_EQ(std::get<0>(at::_unique(ids)).numel(), ids.numel());
  const int64_t half = t.train_y.size(0) / 2;
  EXPECT_GT(t.train_y.slice(0, 0, half).sum().item<int64_t>(), 0);
  EXPECT_LT(t.train_y.slice(0, 0, half).sum().item<int64_t>(), half);
  // Negatives come from several other classes.
  const at::Tensor neg_classes = original_labels(t.train_x).masked_select(t.train_y == 0);
  EXPECT_GT(std::get<0>(at::_unique(neg_classes)).numel(), 3);
}

TEST(DataTaskStream, OneVsRestKeepsAllNegativesWhenTheyAreFewer) {
  // 30 rows of class 0, 10 of class 1: task 1 (class 0 positive) keeps all 10 negatives.
  Dataset train = coded(40, 0);
  train.labels = (at::arange(40, at::kLong) >= 30).to(at::kLong);
  train.num_classes = 2;
  Dataset test = train;
  StreamOptions o = options(Protocol::OneVsRest, 2);
  o.val_fraction = 0.0;
  const TaskStream s(train, test, o);
  const engine::Task t1 = s.task(1);
  EXPECT_EQ(t1.train_y.size(0), 40);
  EXPECT_EQ(t1.train_y.sum().item<int64_t>(), 30);
  EXPECT_EQ(t1.val_x.size(0), 0);
  const engine::Task t2 = s.task(2);
  EXPECT_EQ(t2.train_y.size(0), 20);
  EXPECT_EQ(t2.train_y.sum().item<int64_t>(), 10);
}

TEST(DataTaskStream, TrainLimitCapsOnlyTrainingRows) {
  StreamOptions o = options(Protocol::Permuted, 2);
  o.train_limit = 50;
  const engine::Task t = stream(o).task(2);
  expect_well_formed(t);
  EXPECT_EQ(t.train_x.size(0), 50);
  EXPECT_EQ(t.val_x.size(0), 40);
  EXPECT_EQ(t.test_x.size(0), 100);
  const at::Tensor ids = row_ids(t.train_x);
  EXPECT_EQ(std::get<0>(at::_unique(ids)).numel(), 50);
  EXPECT_TRUE(at::equal(t.train_y, original_labels(t.train_x)));

  o.train_limit = 10000;  // more than there is: everything
  EXPECT_EQ(stream(o).task(1).train_x.size(0), 360);

  StreamOptions ovr = options(Protocol::OneVsRest, 2);
  ovr.train_limit = 20;
  const engine::Task b = stream(ovr).task(1);
  EXPECT_EQ(b.train_y.size(0), 20);
  EXPECT_EQ(b.test_y.size(0), 20);
}

TEST(DataTaskStream, TooManyTasksThrowsInvalidArgument) {
  EXPECT_TRUE(contains_all(message_of<std::invalid_argument>([] { (void)stream(options(Protocol::OneVsRest, 12)); }),
                           {"--tasks 12", "10 tasks", "one-vs-rest", "10 classes"}));
  StreamOptions split = options(Protocol::Split, 4);
  split.classes_per_task = 3;
  EXPECT_TRUE(contains_all(message_of<std::invalid_argument>([&] { (void)stream(split); }),
                           {"--tasks 4", "3 tasks", "split", "--classes-per-task 3"}));
  EXPECT_TRUE(contains_all(message_of<std::invalid_argument>([] { (void)stream(options(Protocol::Permuted, 1001)); }),
                           {"--tasks 1001", "1000"}));
  EXPECT_NO_THROW(stream(options(Protocol::OneVsRest, 10)));
}

TEST(DataTaskStream, BadOptionsThrowInvalidArgument) {
  StreamOptions o = options(Protocol::Split, 1);
  o.classes_per_task = 0;
  EXPECT_TRUE(contains_all(message_of<std::invalid_argument>([&] { (void)stream(o); }), {"--classes-per-task 0"}));
  o.classes_per_task = 11;
  EXPECT_TRUE(contains_all(message_of<std::invalid_argument>([&] { (void)stream(o); }), {"--classes-per-task 11"}));
  o.classes_per_task = 1;  // one class is nothing to tell apart
  EXPECT_TRUE(contains_all(message_of<std::invalid_argument>([&] { (void)stream(o); }),
                           {"--classes-per-task 1", "at least 2 classes"}));
  o = options(Protocol::Permuted, 0);
  EXPECT_TRUE(contains_all(message_of<std::invalid_argument>([&] { (void)stream(o); }), {"--tasks 0"}));
  o = options(Protocol::Permuted, 2);
  o.train_limit = -1;
  EXPECT_TRUE(contains_all(message_of<std::invalid_argument>([&] { (void)stream(o); }), {"--train-limit -1"}));
  o.train_limit = 0;
  o.val_fraction = 1.0;
  EXPECT_TRUE(contains_all(message_of<std::invalid_argument>([&] { (void)stream(o); }), {"--val-fraction 1"}));
}

TEST(DataTaskStream, BadDataThrowsDataError) {
  Dataset nan = coded(400, 0);
  nan.features[17][2] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { (void)TaskStream(nan, coded(100, 1000), StreamOptions{}); }),
                           {"training set", "row 17"}));
  Dataset bad_label = coded(100, 1000);
  bad_label.labels[5] = 10;
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { (void)TaskStream(coded(400, 0), bad_label, StreamOptions{}); }),
                           {"test set", "label 10", "index 5"}));
  Dataset narrow = coded(100, 1000);
  narrow.features = narrow.features.slice(1, 0, 4).contiguous();
  EXPECT_THROW((void)TaskStream(coded(400, 0), narrow, StreamOptions{}), DataError);
  // Classes the test file has and the training file lacks (label gaps let through): the split task
  // of those classes has nothing to learn from.
  Dataset low = coded(400, 0);
  low.labels = low.labels.remainder(2);  // classes 0 and 1 only
  StreamOptions split = options(Protocol::Split, 2);
  const TaskStream s(low, coded(100, 1000), split);
  EXPECT_NO_THROW(s.task(1));
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { (void)s.task(2); }), {"split-2", "has no training samples"}));
}

TEST(DataTaskStream, OutputClassesNameTheOriginalClassOfEveryOutput) {
  const TaskStream permuted = stream(options(Protocol::Permuted, 3));
  for (int64_t t : {1, 3}) {
    EXPECT_EQ(permuted.task(t).output_classes, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})) << t;
  }
  StreamOptions o = options(Protocol::Split, 3);
  o.classes_per_task = 3;
  const TaskStream split = stream(o);
  EXPECT_EQ(split.task(1).output_classes, (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(split.task(3).output_classes, (std::vector<int64_t>{6, 7, 8}));
  const TaskStream ovr = stream(options(Protocol::OneVsRest, 10));
  EXPECT_EQ(ovr.task(1).output_classes, (std::vector<int64_t>{-1, 0}));
  EXPECT_EQ(ovr.task(7).output_classes, (std::vector<int64_t>{-1, 6}));
  EXPECT_EQ(split.task_classes(), (std::vector<int64_t>{3, 3, 3}));
  EXPECT_EQ(permuted.task_classes(), (std::vector<int64_t>{10, 10, 10}));
  EXPECT_EQ(stream(options(Protocol::OneVsRest, 2)).task_classes(), (std::vector<int64_t>{2, 2}));
  // Every output of every protocol maps a label to its original class.
  for (const engine::Task& t : {permuted.task(2), split.task(2), ovr.task(4)}) {
    ASSERT_EQ(static_cast<int64_t>(t.output_classes.size()), t.num_classes) << t.name;
    const at::Tensor map = at::tensor(t.output_classes, at::kLong);
    for (const auto& [x, y] : parts(t)) {
      const at::Tensor mapped = map.index_select(0, y);
      const at::Tensor has_class = mapped >= 0;
      EXPECT_TRUE(at::equal(mapped.masked_select(has_class), original_labels(x).masked_select(has_class))) << t.name;
    }
  }
}

StreamOptions base_classes(int64_t k, int64_t tasks) {
  StreamOptions o = options(Protocol::Split, tasks);
  o.base_classes = k;
  return o;
}

TEST(DataTaskStream, BaseClassesStartWithKClassesThenAddOneClassAtATime) {
  EXPECT_EQ(TaskStream::max_tasks(Protocol::Split, 10, 2, 7), 4);
  EXPECT_EQ(TaskStream::max_tasks(Protocol::Split, 10, 2, 1), 10);
  const TaskStream s = stream(base_classes(7, 4));  // classes 0..6, then 7, 8, 9
  const engine::Task t1 = s.task(1);
  expect_well_formed(t1);
  EXPECT_EQ(t1.name, "base[0-6]");
  EXPECT_EQ(t1.num_classes, 7);
  EXPECT_EQ(t1.output_classes, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(t1.test_x.size(0), 70);  // every test row of classes 0..6
  for (const auto& [x, y] : parts(t1)) EXPECT_TRUE(at::equal(original_labels(x), y));

  for (int64_t t = 2; t <= 4; ++t) {
    const engine::Task task = s.task(t);
    const int64_t c = 7 + t - 2;
    expect_well_formed(task);
    EXPECT_EQ(task.name, "new-class-" + std::to_string(c));
    EXPECT_EQ(task.num_classes, 2);
    EXPECT_EQ(task.output_classes, (std::vector<int64_t>{-1, c}));
    for (const auto& [x, y] : parts(task)) {
      const at::Tensor original = original_labels(x);
      EXPECT_TRUE(at::equal(y, (original == c).to(at::kLong)));
      EXPECT_EQ(y.sum().item<int64_t>() * 2, y.size(0));  // balanced
      // Negatives only from the classes already known, never from classes still to come.
      const at::Tensor negatives = original.masked_select(y == 0);
      EXPECT_LT(negatives.max().item<int64_t>(), c);
      const at::Tensor ids = row_ids(x);
      EXPECT_EQ(std::get<0>(at::_unique(ids)).numel(), ids.numel());
    }
    // All 10 test rows of the new class, 10 negatives spread evenly: c known classes give
    // floor(10 / c) or one more each.
    ASSERT_EQ(task.test_x.size(0), 20);
    const at::Tensor negatives = original_labels(task.test_x).masked_select(task.test_y == 0);
    const at::Tensor counts = at::bincount(negatives, {}, c);
    EXPECT_LE((counts.max() - counts.min()).item<int64_t>(), 1) << counts;
    EXPECT_EQ(counts.sum().item<int64_t>(), 10);
  }
  EXPECT_EQ(s.task_classes(), (std::vector<int64_t>{7, 2, 2, 2}));
  EXPECT_EQ(s.num_classes(), 10);
  // Training negatives also cover every known class.
  const engine::Task t2 = s.task(2);
  const at::Tensor train_neg = original_labels(t2.train_x).masked_select(t2.train_y == 0);
  EXPECT_EQ(std::get<0>(at::_unique(train_neg)).numel(), 7);
  // Deterministic given the seed, different with another seed.
  EXPECT_TRUE(at::equal(stream(base_classes(7, 4)).task(3).train_x, s.task(3).train_x));
  StreamOptions other = base_classes(7, 4);
  other.seed = 9;
  const at::Tensor seeded = std::get<0>(row_ids(stream(other).task(3).test_x).sort());
  EXPECT_FALSE(at::equal(seeded, std::get<0>(row_ids(s.task(3).test_x).sort())));
}

TEST(DataTaskStream, BaseClassesNegativesMakeUpForASmallKnownClass) {
  // Class 0 has 2 rows, class 1 has 20, class 2 (the new one) has 12: 12 negatives, 2 + 10.
  Dataset train = coded(34, 0);
  train.labels = at::cat({at::zeros({2}, at::kLong), at::ones({20}, at::kLong), at::full({12}, 2, at::kLong)});
  train.num_classes = 3;
  StreamOptions o = base_classes(2, 2);
  o.val_fraction = 0.0;
  const engine::Task t2 = TaskStream(train, train, o).task(2);
  EXPECT_EQ(t2.test_y.size(0), 24);
  const at::Tensor rows = row_ids(t2.test_x).masked_select(t2.test_y == 0);
  EXPECT_EQ(rows.lt(2).sum().item<int64_t>(), 2);
  EXPECT_EQ(rows.ge(2).logical_and(rows.lt(22)).sum().item<int64_t>(), 10);
}

TEST(DataTaskStream, BadBaseClassesThrowInvalidArgument) {
  for (int64_t k : {10, 11, -1}) {
    EXPECT_TRUE(contains_all(message_of<std::invalid_argument>([&] { (void)stream(base_classes(k, 1)); }),
                             {"--base-classes " + std::to_string(k), "1..9"}))
        << k;
  }
  StreamOptions permuted = base_classes(3, 2);
  permuted.protocol = Protocol::Permuted;
  EXPECT_TRUE(contains_all(message_of<std::invalid_argument>([&] { (void)stream(permuted); }),
                           {"--base-classes 3", "split"}));
  permuted.protocol = Protocol::OneVsRest;
  EXPECT_THROW((void)stream(permuted), std::invalid_argument);
  EXPECT_TRUE(contains_all(message_of<std::invalid_argument>([] { (void)stream(base_classes(7, 5)); }),
                           {"--tasks 5", "4 tasks", "--base-classes 7"}));
  EXPECT_NO_THROW(stream(base_classes(9, 2)));
  EXPECT_NO_THROW(stream(base_classes(1, 10)));
}

TEST(DataTaskStream, TaskIndexOutOfRangeThrows) {
  const TaskStream s = stream(options(Protocol::Permuted, 3));
  EXPECT_THROW(s.task(0), std::out_of_range);
  EXPECT_THROW(s.task(4), std::out_of_range);
}

}  // namespace
}  // namespace den::data
