#include "data/task_stream.h"

#include <algorithm>
#include <numeric>
#include <sstream>

namespace den::data {

namespace {

constexpr int64_t kMaxPermutedTasks = 1000;

/// What a derived seed is used for, so that two uses in the same task draw independent streams.
enum class SeedUse : uint64_t { FeaturePermutation = 1, Negatives = 2, Shuffle = 3, TrainLimit = 4 };
enum class Part : uint64_t { Train = 0, Val = 1, Test = 2 };

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

/// Seed for one use in task `t`: seed*1000003 + t, then mixed with the use and the data part.
uint64_t derive_seed(uint64_t seed, int64_t t, SeedUse use, Part part = Part::Train) {
  const uint64_t base = seed * 1000003ULL + static_cast<uint64_t>(t);
  return splitmix64(base ^ splitmix64((static_cast<uint64_t>(use) << 8) | static_cast<uint64_t>(part)));
}

/// An empty part (val_fraction = 0) passes through as [0, D], so callers can still read its width.
bool empty(const Dataset& d) { return d.size() == 0; }

/// Rows of `d` whose label lies in [lo, hi), relabelled to label - lo.
Dataset select_classes(const Dataset& d, int64_t lo, int64_t hi) {
  if (empty(d)) return d;
  const at::Tensor idx = at::nonzero((d.labels >= lo).logical_and_(d.labels < hi)).view({-1});
  Dataset out = select_rows(d, idx);
  out.labels = (out.labels - lo).contiguous();
  out.num_classes = hi - lo;
  return out;
}

/// The binary task of rows `pos` (class `positive`, label 1) and `neg` (label 0), shuffled so the
/// two interleave.
Dataset binary_task(const Dataset& d, const at::Tensor& pos, const at::Tensor& neg, int64_t positive, uint64_t seed,
                    int64_t t, Part part) {
  const at::Tensor rows = at::cat({pos, neg});
  const at::Tensor order = seeded_permutation(rows.size(0), derive_seed(seed, t, SeedUse::Shuffle, part));
  Dataset out = select_rows(d, rows.index_select(0, order));
  out.labels = (out.labels == positive).to(at::kLong).contiguous();
  out.num_classes = 2;
  return out;
}

/// Class `positive` (label 1) against the rest (label 0): all positives, negatives subsampled to
/// as many as there are positives, then shuffled so the two classes interleave.
Dataset one_vs_rest(const Dataset& d, int64_t positive, uint64_t seed, int64_t t, Part part) {
  if (empty(d)) return d;
  const at::Tensor is_pos = d.labels == positive;
  const at::Tensor pos = at::nonzero(is_pos).view({-1});
  at::Tensor neg = at::nonzero(is_pos.logical_not()).view({-1});
  if (neg.size(0) > pos.size(0)) {
    const at::Tensor pick = seeded_permutation(neg.size(0), derive_seed(seed, t, SeedUse::Negatives, part));
    neg = neg.index_select(0, pick.slice(0, 0, pos.size(0)));
  }
  return binary_task(d, pos, neg, positive, seed, t, part);
}

/// The rows of `d` labelled `c` for each class c in [0, known), as many in all as `want` (or all of
/// them when fewer), spread as evenly over the classes as their sizes allow: each class gives
/// min(its size, an equal share of what is still wanted), smallest classes first, so a class with
/// too few rows passes its shortfall on to the larger ones. Which rows of a class: seeded.
at::Tensor even_sample_of_classes(const Dataset& d, int64_t known, int64_t want, uint64_t seed) {
  std::vector<at::Tensor> rows(static_cast<size_t>(known));
  std::vector<int64_t> order(static_cast<size_t>(known));
  for (int64_t k = 0; k < known; ++k) {
    rows[static_cast<size_t>(k)] = at::nonzero(d.labels == k).view({-1});
    order[static_cast<size_t>(k)] = k;
  }
  // Stable: ties keep class order, so the split of a remainder is deterministic.
  std::stable_sort(order.begin(), order.end(), [&rows](int64_t a, int64_t b) {
    return rows[static_cast<size_t>(a)].size(0) < rows[static_cast<size_t>(b)].size(0);
  });
  std::vector<at::Tensor> picked;
  int64_t left = want;
  for (size_t i = 0; i < order.size(); ++i) {
    const at::Tensor& of_class = rows[static_cast<size_t>(order[i])];
    const int64_t share = left / static_cast<int64_t>(order.size() - i);
    const int64_t take = std::min(of_class.size(0), share);
    if (take == 0) continue;
    const at::Tensor pick = seeded_permutation(of_class.size(0), splitmix64(seed ^ static_cast<uint64_t>(order[i])));
    picked.push_back(of_class.index_select(0, pick.slice(0, 0, take)));
    left -= take;
  }
  return picked.empty() ? at::empty({0}, at::kLong) : at::cat(picked);
}

/// New class `c` (label 1) against the classes known before it, [0, c) (label 0): all rows of class
/// c, and as many rows of the known classes, drawn evenly from them; shuffled so the two interleave.
Dataset new_class_vs_known(const Dataset& d, int64_t c, uint64_t seed, int64_t t, Part part) {
  if (empty(d)) return d;
  const at::Tensor pos = at::nonzero(d.labels == c).view({-1});
  const at::Tensor neg = even_sample_of_classes(d, c, pos.size(0), derive_seed(seed, t, SeedUse::Negatives, part));
  return binary_task(d, pos, neg, c, seed, t, part);
}

std::vector<int64_t> class_range(int64_t lo, int64_t hi) {
  std::vector<int64_t> classes(static_cast<size_t>(hi - lo));
  std::iota(classes.begin(), classes.end(), lo);
  return classes;
}

}  // namespace

Protocol parse_protocol(const std::string& name, const std::string& option) {
  if (name == "permuted") return Protocol::Permuted;
  if (name == "split") return Protocol::Split;
  if (name == "one-vs-rest") return Protocol::OneVsRest;
  throw std::invalid_argument(option + " '" + name + "' is not one of permuted, split, one-vs-rest");
}

std::string to_string(Protocol protocol) {
  switch (protocol) {
    case Protocol::Permuted:
      return "permuted";
    case Protocol::Split:
      return "split";
    case Protocol::OneVsRest:
      return "one-vs-rest";
  }
  return "unknown";
}

int64_t TaskStream::max_tasks(Protocol protocol, int64_t num_classes, int64_t classes_per_task, int64_t base_classes) {
  switch (protocol) {
    case Protocol::Permuted:
      return kMaxPermutedTasks;
    case Protocol::Split:
      if (base_classes > 0) return base_classes < num_classes ? 1 + num_classes - base_classes : 0;
      return classes_per_task > 0 ? num_classes / classes_per_task : 0;
    case Protocol::OneVsRest:
      return num_classes;
  }
  return 0;
}

TaskStream::TaskStream(Dataset train, Dataset test, StreamOptions options) : options_(options) {
  validate(train, "training set");
  validate(test, "test set");
  if (train.dim() != test.dim()) {
    throw DataError("training samples have " + std::to_string(train.dim()) + " features but test samples have " +
                    std::to_string(test.dim()));
  }
  const int64_t num_classes = std::max(train.num_classes, test.num_classes);
  train.num_classes = num_classes;
  test.num_classes = num_classes;

  const std::string protocol = to_string(options.protocol);
  const bool new_classes = options.base_classes != 0;
  if (new_classes && options.protocol != Protocol::Split) {
    throw std::invalid_argument(options.names.base_classes + " " + std::to_string(options.base_classes) +
                                " needs " + options.names.protocol + " split (the new-classes scenario), not " + protocol);
  }
  if (new_classes && (options.base_classes < 1 || options.base_classes > num_classes - 1)) {
    throw std::invalid_argument(options.names.base_classes + " " + std::to_string(options.base_classes) + " is outside 1.." +
                                std::to_string(num_classes - 1) + " for the " + std::to_string(num_classes) +
                                " classes of the data (at least one class must be left to add)");
  }
  if (options.num_tasks < 1) {
    throw std::invalid_argument(options.names.num_tasks + " " + std::to_string(options.num_tasks) + " must be at least 1");
  }
  if (options.classes_per_task < 1) {
    throw std::invalid_argument(options.names.classes_per_task + " " + std::to_string(options.classes_per_task) +
                                " must be at least 1");
  }
  if (options.train_limit < 0) {
    throw std::invalid_argument(options.names.train_limit + " " + std::to_string(options.train_limit) +
                                " must be 0 (all) or positive");
  }
  if (!(options.val_fraction >= 0.0 && options.val_fraction < 1.0)) {
    std::ostringstream msg;
    msg << options.names.val_fraction << " " << options.val_fraction << " must be in [0, 1)";
    throw std::invalid_argument(msg.str());
  }
  if (options.protocol == Protocol::Split && !new_classes && options.classes_per_task < 2) {
    throw std::invalid_argument(options.names.classes_per_task + " " + std::to_string(options.classes_per_task) +
                                ": a split task needs at least 2 classes to tell apart");
  }
  if (options.protocol == Protocol::Split && !new_classes && options.classes_per_task > num_classes) {
    throw std::invalid_argument(options.names.classes_per_task + " " + std::to_string(options.classes_per_task) +
                                " is larger than the " + std::to_string(num_classes) + " classes of the data");
  }
  const int64_t limit = max_tasks(options.protocol, num_classes, options.classes_per_task, options.base_classes);
  if (options.num_tasks > limit) {
    std::string msg = options.names.num_tasks + " " + std::to_string(options.num_tasks) + " is larger than the " + std::to_string(limit) +
                      " tasks protocol " + protocol + " allows";
    if (new_classes) {
      msg += " for " + std::to_string(num_classes) + " classes with " + options.names.base_classes + " " +
             std::to_string(options.base_classes);
    } else if (options.protocol == Protocol::Split) {
      msg += " for " + std::to_string(num_classes) + " classes with " + options.names.classes_per_task + " " +
             std::to_string(options.classes_per_task);
    } else if (options.protocol == Protocol::OneVsRest) {
      msg += " for " + std::to_string(num_classes) + " classes";
    }
    throw std::invalid_argument(msg);
  }

  auto [fit, val] = split_train_val(train, options.val_fraction, options.seed);
  train_ = std::move(fit);
  val_ = std::move(val);
  test_ = std::move(test);
  num_classes_ = num_classes;
}

std::vector<int64_t> TaskStream::task_classes() const {
  std::vector<int64_t> classes;
  for (int64_t t = 1; t <= options_.num_tasks; ++t) {
    switch (options_.protocol) {
      case Protocol::Permuted:
        classes.push_back(num_classes_);
        break;
      case Protocol::Split:
        if (options_.base_classes > 0) {
          classes.push_back(t == 1 ? options_.base_classes : 2);
        } else {
          classes.push_back(options_.classes_per_task);
        }
        break;
      case Protocol::OneVsRest:
        classes.push_back(2);
        break;
    }
  }
  return classes;
}

engine::Task TaskStream::task(int64_t t) const {
  if (t < 1 || t > options_.num_tasks) {
    throw std::out_of_range("task " + std::to_string(t) + " is outside 1.." + std::to_string(options_.num_tasks));
  }
  const uint64_t seed = options_.seed;
  engine::Task task;
  Dataset train, val, test;

  switch (options_.protocol) {
    case Protocol::Permuted: {
      task.name = "permuted-" + std::to_string(t);
      train = train_;
      val = val_;
      test = test_;
      // Task 1 keeps the original order; it is copied all the same, so that a caller editing a
      // task's tensors in place cannot change the stream's data.
      const at::Tensor perm = t > 1 ? seeded_permutation(train_.dim(), derive_seed(seed, t, SeedUse::FeaturePermutation))
                                    : at::arange(train_.dim(), at::kLong);
      train.features = train.features.index_select(1, perm).contiguous();
      val.features = val.features.index_select(1, perm).contiguous();
      test.features = test.features.index_select(1, perm).contiguous();
      train.labels = train.labels.clone();
      val.labels = val.labels.clone();
      test.labels = test.labels.clone();
      task.num_classes = num_classes_;
      task.output_classes = class_range(0, num_classes_);  // the labels are shared by all tasks
      break;
    }
    case Protocol::Split: {
      if (options_.base_classes > 0) {
        const int64_t k = options_.base_classes;
        if (t == 1) {
          task.name = k > 1 ? "base[0-" + std::to_string(k - 1) + "]" : "base[0]";
          train = select_classes(train_, 0, k);
          val = select_classes(val_, 0, k);
          test = select_classes(test_, 0, k);
          task.num_classes = k;
          task.output_classes = class_range(0, k);
        } else {
          const int64_t c = k + t - 2;
          task.name = "new-class-" + std::to_string(c);
          train = new_class_vs_known(train_, c, seed, t, Part::Train);
          val = new_class_vs_known(val_, c, seed, t, Part::Val);
          test = new_class_vs_known(test_, c, seed, t, Part::Test);
          task.num_classes = 2;
          task.output_classes = {-1, c};
        }
        break;
      }
      const int64_t k = options_.classes_per_task;
      const int64_t lo = (t - 1) * k;
      task.name = "split-" + std::to_string(t) + "[";
      for (int64_t c = lo; c < lo + k; ++c) task.name += (c > lo ? "," : "") + std::to_string(c);
      task.name += "]";
      train = select_classes(train_, lo, lo + k);
      val = select_classes(val_, lo, lo + k);
      test = select_classes(test_, lo, lo + k);
      task.num_classes = k;
      task.output_classes = class_range(lo, lo + k);
      break;
    }
    case Protocol::OneVsRest: {
      task.name = "one-vs-rest-" + std::to_string(t);
      train = one_vs_rest(train_, t - 1, seed, t, Part::Train);
      val = one_vs_rest(val_, t - 1, seed, t, Part::Val);
      test = one_vs_rest(test_, t - 1, seed, t, Part::Test);
      task.num_classes = 2;
      task.output_classes = {-1, t - 1};
      break;
    }
  }

  if (train.size() == 0) throw DataError("task '" + task.name + "' has no training samples");
  if (options_.train_limit > 0 && train.size() > options_.train_limit) {
    const at::Tensor keep = seeded_permutation(train.size(), derive_seed(seed, t, SeedUse::TrainLimit))
                                .slice(0, 0, options_.train_limit);
    train = select_rows(train, keep);
  }

  task.train_x = train.features.contiguous();
  task.train_y = train.labels.contiguous();
  task.val_x = val.features.contiguous();
  task.val_y = val.labels.contiguous();
  task.test_x = test.features.contiguous();
  task.test_y = test.labels.contiguous();
  return task;
}

}  // namespace den::data
