#pragma once

// Shared by the reader fuzz targets: the readers take paths, so each input is written to one file
// of the process, rewritten in place for every input.

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace den::testing {

/// Writes `data` to this process's input file (under $TMPDIR) and returns its path.
inline const std::string& fuzz_input_file(const uint8_t* data, size_t size, const char* suffix) {
  static const std::string path =
      (std::filesystem::temp_directory_path() / ("den-fuzz-" + std::to_string(::getpid()) + suffix)).string();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr || (size > 0 && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) std::abort();
  return path;
}

}  // namespace den::testing
