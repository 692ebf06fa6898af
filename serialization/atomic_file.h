#pragma once

// Files written so that a crash never leaves a half-written one: checkpoints, reports, exports.

#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>

namespace den::io {

/// A file (checkpoint or export) that cannot be written. Any existing file at the path is untouched.
class WriteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A file written atomically: `file()` is a temporary `.NAME.tmp-XXXXXX` in the destination's
/// directory, mode 0666 less the umask; `commit()` flushes, fsyncs, renames it over the
/// destination and fsyncs the directory. Destroyed without commit, it removes the temporary.
/// Temporaries of the same destination left by a killed writer are removed when the next one is
/// opened (NOTE: [temp file locks] in atomic_file.cpp). Throws WriteError naming the path.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  std::FILE* file() { return file_; }
  /// Writes `size` bytes; throws WriteError when short.
  void write(const void* data, size_t size);
  void commit();

 private:
  [[noreturn]] void fail(const std::string& what);
  std::string path_;
  std::string temp_path_;
  std::FILE* file_ = nullptr;
};

/// Writes `bytes` to `path` atomically (AtomicFile).
void write_file_atomically(const std::string& path, std::string_view bytes);

}  // namespace den::io
