#pragma once

#include "data/dataset.h"

#include <string>

namespace den::data {

/// Reads one IDX file (raw, or gzip-compressed: detected from the content, not the name).
/// Checks the magic number (0x0000 then type 0x08 = unsigned byte, then the number of
/// dimensions, which must be `expected_dims` when that is > 0), and that the payload holds exactly
/// prod(dims) bytes; the declared size is compared with the file's size before anything is
/// allocated. Returns a uint8 tensor with the file's dimensions. Throws DataError naming the file
/// on any problem.
at::Tensor read_idx(const std::string& path, int expected_dims = 0);

/// Loads an images file (3 dims, [N, rows, columns]) and a labels file ([N]) into a Dataset:
/// features float32 in [0, 1] (bytes / 255), flattened to [N, prod(dims[1:])]; num_classes =
/// max label + 1 unless `num_classes` > 0 is given (then labels must be below it).
Dataset load_idx_pair(const std::string& images_path, const std::string& labels_path, int64_t num_classes = 0);

/// The train and test halves of a data directory.
struct TrainTest {
  Dataset train;
  Dataset test;
};

/// Options of load_directory.
struct DirectoryOptions {
  /// Accept classes below the largest label that have no training sample. Refused by default:
  /// labels {0..3, 250..255} would build a 256-output head in which 246 outputs never see a sample.
  bool allow_label_gaps = false;
  /// How the caller names the directory, for messages (the Python module: data_dir).
  std::string option = "--data";
};

/// Loads a data directory. IDX layout: `train-images-idx3-ubyte[.gz]`,
/// `train-labels-idx1-ubyte[.gz]`, `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`.
/// CSV layout: `train.csv` and `test.csv` (see csv_reader.h). Both halves share num_classes
/// (the larger of the two). Throws DataError if the directory is missing or holds neither layout,
/// or (unless allowed) when some class in 0..num_classes-1 has no training sample.
TrainTest load_directory(const std::string& dir, const DirectoryOptions& options = {});

/// The two halves of a data directory (load_directory).
enum class Half { Train, Test };

/// Whether `dir` holds `half`: its IDX pair (`train-`/`t10k-images-idx3-ubyte[.gz]` and
/// `-labels-idx1-ubyte[.gz]`) or its CSV file (`train.csv`/`test.csv`).
bool has_half(const std::string& dir, Half half);

/// One half of a data directory, as load_directory reads it, without needing the other half: a
/// folder of one task's samples (den add-task --data) holds only training files. Labels are kept as
/// they are (num_classes = max label + 1). Throws DataError naming the directory when it is missing,
/// lacks the half, or holds only one file of the IDX pair.
Dataset load_half(const std::string& dir, Half half);

/// Throws DataError naming `where` and the empty classes when some class in
/// 0..train.num_classes-1 has no sample in `train`.
void check_no_label_gaps(const Dataset& train, const std::string& where);

}  // namespace den::data
