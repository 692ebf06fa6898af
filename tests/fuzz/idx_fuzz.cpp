// libFuzzer target for the IDX reader (den::data::read_idx), raw and gzip: any input must read or
// raise data::DataError; another exception, a crash, a hang, a huge allocation or a sanitizer
// report is a bug. Each input is read as any kind, as an images file (3 dims) and as labels (1).
//
// Build and run: tests/fuzz/README.md.

#include "data/idx_reader.h"
#include "tests/fuzz/reader_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = den::testing::fuzz_input_file(data, size, ".idx");
  for (const int dims : {0, 3, 1}) {
    try {
      den::data::read_idx(path, dims);
    } catch (const den::data::DataError&) {
    }
  }
  return 0;
}
