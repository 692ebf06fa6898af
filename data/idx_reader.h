#pragma once

#include "data/dataset.h"

#include <string>

namespace den::data {

/// Reads one IDX file (raw, or gzip-compressed: detected from the content, not the name).
/// Checks the magic number (0x0000 then type 0x08 = unsigned byte, then the number of
/// dimensions), and that the payload holds exactly prod(dims) bytes. Returns a uint8 tensor
/// with the file's dimensions. Throws DataError naming the file on any problem.
at::Tensor read_idx(const std::string& path);

/// Loads an images file (>= 2 dims, e.g. [N, 28, 28]) and a labels file ([N]) into a Dataset:
/// features float32 in [0, 1] (bytes / 255), flattened to [N, prod(dims[1:])]; num_classes =
/// max label + 1 unless `num_classes` > 0 is given (then labels must be below it).
Dataset load_idx_pair(const std::string& images_path, const std::string& labels_path, int64_t num_classes = 0);

/// The train and test halves of a data directory.
struct TrainTest {
  Dataset train;
  Dataset test;
};

/// Loads a data directory. IDX layout: `train-images-idx3-ubyte[.gz]`,
/// `train-labels-idx1-ubyte[.gz]`, `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`.
/// CSV layout: `train.csv` and `test.csv` (see csv_reader.h). Both halves share num_classes
/// (the larger of the two). Throws DataError if the directory is missing or holds neither layout.
TrainTest load_directory(const std::string& dir);

}  // namespace den::data
