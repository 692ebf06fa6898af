#pragma once

#include "data/dataset.h"
#include "engine/task.h"
#include "engine/evaluation/task_agnostic.h"
#include "serialization/checkpoint.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace den::cli {

/// Class ids from a comma-separated list ("8,9"); std::invalid_argument naming `flag` for an empty
/// list, a non-integer, a negative or a repeated id.
std::vector<int64_t> parse_classes(const std::string& text, const std::string& flag);

/// The distinct labels of `samples`, sorted: the classes a folder of samples holds.
std::vector<int64_t> classes_in(const data::Dataset& samples);

/// `samples.labels`, which are class ids, as the head outputs of `classes` (output o stands for
/// classes[o]). data::DataError naming `where` for a label that is none of them.
at::Tensor output_labels(const data::Dataset& samples, const std::vector<int64_t>& classes, const std::string& where);

/// What the network of a checkpoint reads for raw samples `raw` [N, D] (as den reads data: images
/// flattened): the frozen trunk's features when it has one (NOTE: [frozen trunk]; computed once,
/// with a progress line on a terminal unless `quiet`), else the samples with the checkpoint's
/// normalization. `through_trunk`: the rows already are the trunk's features (image folders read
/// through it, load_image_samples) and are only checked. data::DataError naming `where` for
/// samples of another width than the trunk or the network takes.
at::Tensor network_input(const io::CheckpointExtras& extras, int64_t input_dim, const at::Tensor& raw,
                         const std::string& where, bool quiet,
                         bool through_trunk = false);

/// A task from a folder of the user's samples (den add-task --data DIR), its labels class ids: one
/// output per class, and, when `memory` (the checkpoint's exemplars) holds samples of other classes,
/// output 0 for the "rest", learned from them (class -1; NOTE: [negatives from exemplars]). One class
/// c is then c against the classes already known, as the split protocol's --base-classes draws them.
/// Validation: `val_fraction` of the samples (and of the exemplars), seeded. `test`, when defined,
/// becomes the test split (the task's classes only). data::DataError for labels outside `classes`
/// and for a single class without exemplars of other classes.
engine::Task task_from_samples(const std::string& name, const data::Dataset& train, const data::Dataset& test,
                               const std::vector<int64_t>& classes, const engine::AgnosticState* memory,
                               double val_fraction, uint64_t seed);

}  // namespace den::cli
