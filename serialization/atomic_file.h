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

/// Where a write to `path` lands: `path` with its symlinks followed (a dangling one to the file it
/// names), so that an output that is a link is written through to its target. Throws WriteError
/// for a loop of links.
std::string resolve_output(const std::string& path);

/// Whether `path` (its links followed) is an existing character device or FIFO (/dev/stdout, /dev/null, a
/// named pipe), which a write goes to directly instead of replacing it. Throws WriteError for a
/// block device or a socket, which den never writes to.
bool is_stream_output(const std::string& path);

/// A file written atomically: `file()` is a temporary `.NAME.tmp-XXXXXX` in the destination's
/// directory, mode 0666 less the umask; `commit()` flushes, fsyncs, renames it over the
/// destination and fsyncs the directory. Destroyed without commit, it removes the temporary.
/// Temporaries of the same destination left by a killed writer are removed when the next one is
/// opened (NOTE: [temp file locks] in atomic_file.cpp). A destination that is a symlink is written
/// through to its target, atomically there (resolve_output); a character device or a FIFO
/// (is_stream_output) is written to directly, never replaced, and a failed write to it (/dev/full)
/// still throws. Throws WriteError naming the path.
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
  std::string target_;  ///< path_ with its symlinks followed
  std::string temp_path_;
  bool stream_ = false;  ///< a device or FIFO, written directly
  std::FILE* file_ = nullptr;
};

/// Writes `bytes` to `path` atomically (AtomicFile).
void write_file_atomically(const std::string& path, std::string_view bytes);

}  // namespace den::io
