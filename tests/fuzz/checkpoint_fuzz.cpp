// libFuzzer target for the checkpoint loader (den::io::load_checkpoint_bytes). Any input must
// either load or raise io::CheckpointError: another exception, a crash, a hang or a sanitizer
// report is a bug. Each input is tried twice, with checksums verified (what users get) and with
// them off (so that mutations reach the parser and the validation behind the checksums).
//
// Build and run: tests/fuzz/README.md.

#include "serialization/checkpoint.h"

#include <google/protobuf/stubs/logging.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Mutated strings make protobuf log "invalid UTF-8" for every input; the loader reports them as
  // corrupt checkpoints, so the log is noise here.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

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
