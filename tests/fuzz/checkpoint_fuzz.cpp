// libFuzzer target for the checkpoint loader (den::io::load_checkpoint_bytes). Any input must
// either load or raise io::CheckpointError: another exception, a crash, a hang or a sanitizer
// report is a bug. Each input is tried twice, with checksums verified (what users get) and with
// them off (so that mutations reach the parser and the validation behind the checksums).
//
// Build (clang): cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DDEN_BUILD_FUZZ=ON
//   -DDEN_BUILD_TESTS=OFF -DDEN_CUDA=OFF && cmake --build build-fuzz --target den_checkpoint_fuzz
// Run:   build-fuzz/tests/fuzz/den_checkpoint_fuzz -max_total_time=300 -rss_limit_mb=4096
//          -max_len=65536 /tmp/corpus tests/fuzz/corpus

#include "serialization/checkpoint.h"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  for (const bool verify : {true, false}) {
    den::io::LoadOptions options;
    options.verify_checksums = verify;
    try {
      den::io::load_checkpoint_bytes(bytes, "fuzz", options);
    } catch (const den::io::CheckpointError&) {
    }
  }
  return 0;
}
