#include "cli/task_data.h"

#include "cli/progress.h"
#include "data/normalize.h"
#include "engine/hyperparameters.h"

#include <algorithm>
#include <set>

namespace den::cli {

std::vector<int64_t> parse_classes(const std::string& text, const std::string& flag) {
  std::vector<int64_t> classes;
  try {
    engine::from_text(text, classes);  // the integer-list form of --hidden
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(flag + ": " + e.what());
  }
  std::set<int64_t> seen;
  for (int64_t c : classes) {
    if (c < 0) throw std::invalid_argument(flag + " '" + text + "': class ids are >= 0, got " + std::to_string(c));
    if (!seen.insert(c).second) {
      throw std::invalid_argument(flag + " '" + text + "': class " + std::to_string(c) + " is repeated");
    }
  }
  if (classes.empty()) throw std::invalid_argument(flag + " is empty; give class ids like 8,9");
  return classes;
}

std::vector<int64_t> classes_in(const data::Dataset& samples) {
  const at::Tensor unique = std::get<0>(at::_unique(samples.labels, /*sorted=*/true)).contiguous();
  return std::vector<int64_t>(unique.data_ptr<int64_t>(), unique.data_ptr<int64_t>() + unique.numel());
}

at::Tensor output_labels(const data::Dataset& samples, const std::vector<int64_t>& classes, const std::string& where) {
  // A lookup table from class id to output; -1 for ids that are no output.
  const int64_t top = std::max(*std::max_element(classes.begin(), classes.end()), samples.labels.max().item<int64_t>());
  at::Tensor table = at::full({top + 1}, -1, at::kLong);
  for (size_t o = 0; o < classes.size(); ++o) table[classes[o]] = static_cast<int64_t>(o);
  const at::Tensor outputs = table.index_select(0, samples.labels);
  const at::Tensor unknown = outputs.lt(0).nonzero();
  if (unknown.numel() > 0) {
    const int64_t i = unknown[0][0].item<int64_t>();
    std::string names;
    for (int64_t c : classes) names += (names.empty() ? "" : ",") + std::to_string(c);
    throw data::DataError(where + ": sample " + std::to_string(i) + " has label " +
                          std::to_string(samples.labels[i].item<int64_t>()) + ", which is none of the classes " +
                          names + " (--classes)");
  }
  return outputs;
}

at::Tensor network_input(const io::CheckpointExtras& extras, int64_t input_dim, const at::Tensor& raw,
                         const std::string& where, bool quiet, bool through_trunk) {
  const bool into_trunk = extras.trunk && !through_trunk;
  const int64_t expected = into_trunk ? extras.trunk->input_dim() : input_dim;
  if (raw.size(1) != expected) {
    throw data::DataError(where + ": samples have " + std::to_string(raw.size(1)) + " values but the " +
                          (into_trunk ? "model's frozen trunk" : "network") + " takes " + std::to_string(expected) +
                          (into_trunk ? " (" + engine::to_text(extras.trunk->input_shape) + ")" : ""));
  }
  if (through_trunk) return raw;
  if (!extras.trunk) {
    data::FeatureScaling scaling;
    if (extras.normalization) scaling = {extras.normalization->shift, extras.normalization->scale};
    return data::apply_scaling(raw, scaling);
  }
  try {
    return io::trunk_features(*extras.trunk, raw, 0, count_on_terminal("the frozen trunk's features", "samples", quiet));
  } catch (const std::runtime_error& e) {
    throw data::DataError(where + ": " + e.what());
  }
}

// A task of new classes with the rest output of NOTE: [negatives from exemplars] (engine/evaluation/
// task_agnostic.h), its negatives the memory's exemplars of the classes known before.
engine::Task task_from_samples(const std::string& name, const data::Dataset& train, const data::Dataset& test,
                               const std::vector<int64_t>& classes, const engine::AgnosticState* memory,
                               double val_fraction, uint64_t seed) {
  data::Dataset labelled = train;
  labelled.labels = output_labels(train, classes, name);
  labelled.num_classes = static_cast<int64_t>(classes.size());
  auto [fit, val] = data::split_train_val(labelled, val_fraction, seed);
  engine::Task task;
  task.name = name;
  task.num_classes = static_cast<int64_t>(classes.size());
  task.output_classes = classes;
  task.train_x = fit.features;
  task.train_y = fit.labels;
  task.val_x = val.features;
  task.val_y = val.labels;
  if (test.size() > 0) {
    task.test_x = test.features;
    task.test_y = output_labels(test, classes, name + " (test)");
  }

  // The exemplars of the classes known before, which are none of this task's: the "rest" output.
  std::vector<int64_t> others;
  if (memory != nullptr && memory->memory_x.defined()) {
    for (size_t i = 0; i < memory->memory_classes.size(); ++i) {
      if (std::find(classes.begin(), classes.end(), memory->memory_classes[i]) == classes.end()) {
        others.push_back(static_cast<int64_t>(i));
      }
    }
  }
  if (others.empty()) {
    if (classes.size() == 1) {
      throw data::DataError(name + ": a task of the single class " + std::to_string(classes.front()) +
                            " needs negatives from the exemplars of the classes already known, and the checkpoint "
                            "keeps none (import with --data DIR to keep exemplars, or give two or more classes)");
    }
    return task;
  }
  data::Dataset negatives;
  negatives.features = memory->memory_x.index_select(0, at::tensor(others, at::kLong)).to(at::kFloat);
  negatives.labels = at::zeros({negatives.features.size(0)}, at::kLong);
  negatives.num_classes = 2;
  auto [neg_fit, neg_val] = data::split_train_val(negatives, val_fraction, seed + 1);
  if (neg_fit.size() == 0) neg_fit = negatives;  // too few exemplars to split: train on all of them
  return engine::with_rest_output(std::move(task), neg_fit.features, neg_val.features);
}

}  // namespace den::cli
