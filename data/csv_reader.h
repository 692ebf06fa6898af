#pragma once

#include "data/dataset.h"

#include <string>

namespace den::data {

/// Options for reading a CSV data set: one sample per line, one label column, the rest features.
struct CsvOptions {
  int64_t label_column = 0;  ///< index of the label column; -1 means the last column
  char delimiter = ',';
  int64_t num_classes = 0;  ///< 0: max label + 1
  /// false: every column is a feature (inputs to predict); the Dataset's labels stay undefined.
  bool labelled = true;
};

/// Reads a CSV file. A first line in which no field is a number is a header; a first line that
/// mixes numbers and text is an error (NOTE: [csv header] in csv_reader.cpp). Labels
/// must be non-negative integers; features are parsed as float and kept as they are (use
/// normalize.h to scale). Throws DataError naming file, line and column for ragged rows,
/// unparsable or NaN fields, negative or fractional labels, or an empty file.
Dataset load_csv(const std::string& path, const CsvOptions& options = {});

}  // namespace den::data
