#include "data/dataset.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>

namespace den::data {

std::string read_input_file(const std::string& path, const std::string& what) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw DataError(what + " '" + path + "' is a directory, not a file");
  if (!std::filesystem::exists(path, ec)) throw DataError(what + " '" + path + "' does not exist");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError("cannot open " + what + " '" + path + "'");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) throw DataError("cannot read " + what + " '" + path + "'");
  return bytes.str();
}

namespace {

/// Uniform integer in [0, bound) from a 64-bit generator by rejection. std::uniform_int_distribution
/// is implementation-defined, so it would make permutations depend on the standard library.
uint64_t bounded_uniform(std::mt19937_64& rng, uint64_t bound) {
  // Values below `threshold` would make the low residues more likely; reject them.
  const uint64_t threshold = (0 - bound) % bound;
  while (true) {
    const uint64_t r = rng();
    if (r >= threshold) return r % bound;
  }
}

/// First index where the boolean tensor `mask` [N] is true (caller knows there is one).
int64_t first_true(const at::Tensor& mask) {
  return at::nonzero(mask).view({-1})[0].item<int64_t>();
}

}  // namespace

void validate(const Dataset& dataset, const std::string& what) {
  const at::Tensor& x = dataset.features;
  const at::Tensor& y = dataset.labels;
  if (!x.defined() || !y.defined()) throw DataError(what + ": features or labels are missing");
  if (x.dim() != 2) {
    std::ostringstream msg;
    msg << what << ": features must be 2-D [N, D], got shape " << x.sizes();
    throw DataError(msg.str());
  }
  if (x.scalar_type() != at::kFloat) {
    throw DataError(what + ": features must be float32, got " + std::string(c10::toString(x.scalar_type())));
  }
  if (y.dim() != 1) {
    std::ostringstream msg;
    msg << what << ": labels must be 1-D [N], got shape " << y.sizes();
    throw DataError(msg.str());
  }
  if (y.scalar_type() != at::kLong) {
    throw DataError(what + ": labels must be int64, got " + std::string(c10::toString(y.scalar_type())));
  }
  if (x.size(0) != y.size(0)) {
    throw DataError(what + ": " + std::to_string(x.size(0)) + " feature rows but " + std::to_string(y.size(0)) +
                    " labels");
  }
  if (y.size(0) == 0) throw DataError(what + ": holds no samples");
  if (x.size(1) == 0) throw DataError(what + ": samples have 0 features");
  if (dataset.num_classes < 1) {
    throw DataError(what + ": num_classes is " + std::to_string(dataset.num_classes) + ", must be at least 1");
  }
  const at::Tensor bad_label = (y < 0).logical_or_(y >= dataset.num_classes);
  if (bad_label.any().item<bool>()) {
    const int64_t i = first_true(bad_label);
    throw DataError(what + ": label " + std::to_string(y[i].item<int64_t>()) + " at index " + std::to_string(i) +
                    " is outside [0, " + std::to_string(dataset.num_classes) + ")");
  }
  // A plain loop: at::isfinite costs about 2 s on 60000x784 with Debian's LibTorch, this ~50 ms.
  const at::Tensor xc = x.contiguous();
  const float* p = xc.data_ptr<float>();
  const int64_t count = xc.numel();
  for (int64_t i = 0; i < count; ++i) {
    if (!std::isfinite(p[i])) {
      throw DataError(what + ": row " + std::to_string(i / x.size(1)) + " holds a non-finite feature (" +
                      std::to_string(p[i]) + ")");
    }
  }
}

Dataset select_rows(const Dataset& dataset, const at::Tensor& indices) {
  Dataset out;
  out.features = dataset.features.index_select(0, indices).contiguous();
  out.labels = dataset.labels.index_select(0, indices).contiguous();
  out.num_classes = dataset.num_classes;
  out.sample_shape = dataset.sample_shape;
  return out;
}

std::pair<Dataset, Dataset> split_train_val(const Dataset& dataset, double val_fraction, uint64_t seed) {
  if (!(val_fraction >= 0.0 && val_fraction < 1.0)) {
    throw std::invalid_argument("val_fraction " + std::to_string(val_fraction) + " must be in [0, 1)");
  }
  const int64_t n = dataset.size();
  const auto n_val = static_cast<int64_t>(std::llround(static_cast<double>(n) * val_fraction));
  if (n > 0 && n_val >= n) {
    std::ostringstream msg;
    msg << "a held-out fraction of " << val_fraction << " leaves no training sample of the " << n
        << " (--val-fraction, --holdout)";
    throw std::invalid_argument(msg.str());
  }
  const at::Tensor perm = seeded_permutation(n, seed);
  // Sorting keeps the file's order inside each part, so the split only decides membership.
  const at::Tensor val_idx = std::get<0>(perm.slice(0, 0, n_val).sort());
  const at::Tensor train_idx = std::get<0>(perm.slice(0, n_val, n).sort());
  return {select_rows(dataset, train_idx), select_rows(dataset, val_idx)};
}

at::Tensor seeded_permutation(int64_t n, uint64_t seed) {
  if (n < 0) throw std::invalid_argument("seeded_permutation: n " + std::to_string(n) + " is negative");
  at::Tensor perm = at::arange(n, at::kLong);
  int64_t* p = perm.data_ptr<int64_t>();
  std::mt19937_64 rng(seed);
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(bounded_uniform(rng, static_cast<uint64_t>(i) + 1));
    std::swap(p[i], p[j]);
  }
  return perm;
}

}  // namespace den::data
