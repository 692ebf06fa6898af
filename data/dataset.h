#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace den::data {

/// Raised for any problem with input data: missing or malformed files, wrong magic numbers,
/// truncated payloads, mismatched counts, labels out of range, NaN features. The CLI maps it to
/// exit code 3. The message names the file or field and the offending value.
class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The bytes of file `path` (`what` names it in messages: "CSV file", "report"). DataError when it
/// is missing, a directory, or cannot be read.
std::string read_input_file(const std::string& path, const std::string& what);

/// A labelled data set held in memory: features float32 `[N, D]` (D = product of sample_shape),
/// labels int64 `[N]` in `[0, num_classes)`.
struct Dataset {
  at::Tensor features;
  at::Tensor labels;
  int64_t num_classes = 0;
  std::vector<int64_t> sample_shape;  ///< e.g. {28, 28} for IDX images, {D} for CSV rows.

  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  int64_t dim() const { return features.defined() ? features.size(1) : 0; }
};

/// Checks the invariants of a Dataset and throws DataError naming `what` and the bad value:
/// non-empty, 2-D float features, 1-D int64 labels of the same count, labels in range, no NaN/Inf.
void validate(const Dataset& dataset, const std::string& what);

/// Rows `indices` (int64 `[M]`) of `dataset`, as a new Dataset with the same class count.
Dataset select_rows(const Dataset& dataset, const at::Tensor& indices);

/// Seeded random split of `dataset` into (train, validation) with round(N * val_fraction)
/// validation rows. `val_fraction` in [0, 1). Same seed, same split on every machine.
std::pair<Dataset, Dataset> split_train_val(const Dataset& dataset, double val_fraction, uint64_t seed);

/// A seeded permutation of 0..n-1 as int64 `[n]`, from std::mt19937_64 and an explicit
/// Fisher-Yates shuffle, so it does not depend on the standard library or LibTorch version.
at::Tensor seeded_permutation(int64_t n, uint64_t seed);

}  // namespace den::data
