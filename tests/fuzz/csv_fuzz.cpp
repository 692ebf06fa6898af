// libFuzzer target for the CSV reader (den::data::load_csv): any input must load or raise
// data::DataError; anything else is a bug. Each input is read with the default options and with
// the label last, ';' as delimiter and a class count given.
//
// Build and run: tests/fuzz/README.md.

#include "data/csv_reader.h"
#include "tests/fuzz/reader_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = den::testing::fuzz_input_file(data, size, ".csv");
  den::data::CsvOptions other;
  other.label_column = -1;
  other.delimiter = ';';
  other.num_classes = 4;
  for (const den::data::CsvOptions& options : {den::data::CsvOptions{}, other}) {
    try {
      den::data::load_csv(path, options);
    } catch (const den::data::DataError&) {
    }
  }
  return 0;
}
