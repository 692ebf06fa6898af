#include "serialization/atomic_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace den::io {

namespace fs = std::filesystem;

namespace {

/// The process's umask. Read from /proc (reading it with umask() means setting it for a moment,
/// which races with other threads creating files); umask() only where /proc is missing.
mode_t process_umask() {
  std::FILE* status = std::fopen("/proc/self/status", "re");
  if (status != nullptr) {
    char line[256];
    unsigned value = 0;
    bool found = false;
    while (!found && std::fgets(line, sizeof line, status) != nullptr) {
      found = std::sscanf(line, "Umask: %o", &value) == 1;
    }
    std::fclose(status);
    if (found) return static_cast<mode_t>(value);
  }
  const mode_t mask = ::umask(022);
  ::umask(mask);
  return mask;
}

/// Whether `name` is one of `target`'s temporaries: ".<target>.tmp-" and mkstemp's 6 characters.
bool is_temp_of(const std::string& name, const std::string& prefix) {
  return name.size() == prefix.size() + 6 && name.compare(0, prefix.size(), prefix) == 0;
}

/// Removes temporaries of `target` left by a writer that died (SIGKILL, power loss) before it could
/// clean up. NOTE: [temp file locks] A live writer holds an exclusive flock on its temporary for as
/// long as it writes; a temporary that can be locked has no writer left.
void remove_stale_temps(const fs::path& dir, const std::string& prefix) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!is_temp_of(name, prefix)) continue;
    const int fd = ::open(it->path().c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) continue;
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) ::unlink(it->path().c_str());
    ::close(fd);
  }
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  const fs::path target(path_);
  if (target.filename().empty()) throw WriteError("cannot write '" + path_ + "': not a file name");
  std::error_code ec;
  if (fs::is_directory(target, ec)) throw WriteError("cannot write '" + path_ + "': it is a directory");
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  const std::string prefix = "." + target.filename().string() + ".tmp-";
  remove_stale_temps(dir, prefix);
  int fd = -1;
  // A cleaner in another process may lock and remove a temporary between its creation and its
  // flock (NOTE: [temp file locks]); then the name no longer leads to it, and a new one is made.
  for (int attempt = 0; attempt < 8 && fd < 0; ++attempt) {
    std::string pattern = (dir / (prefix + "XXXXXX")).string();
    fd = ::mkostemp(pattern.data(), O_CLOEXEC);
    if (fd < 0) {
      throw WriteError("cannot write '" + path_ + "': cannot create a file in '" + dir.string() +
                       "': " + std::strerror(errno));
    }
    struct stat held {}, named {};
    if (::flock(fd, LOCK_EX) != 0 || ::fstat(fd, &held) != 0 || ::stat(pattern.c_str(), &named) != 0 ||
        held.st_ino != named.st_ino || held.st_dev != named.st_dev) {
      ::close(fd);
      fd = -1;
      continue;
    }
    temp_path_ = pattern;
  }
  if (fd < 0) throw WriteError("cannot write '" + path_ + "': cannot hold a temporary file in '" + dir.string() + "'");
  // mkstemp makes 0600; a checkpoint or model is an ordinary file, so 0666 less the umask.
  ::fchmod(fd, 0666 & ~process_umask());
  file_ = ::fdopen(fd, "wb");
  if (file_ == nullptr) {
    const int err = errno;
    ::close(fd);
    ::unlink(temp_path_.c_str());
    throw WriteError("cannot write '" + path_ + "': " + std::strerror(err));
  }
}

AtomicFile::~AtomicFile() {
  if (file_ != nullptr) std::fclose(file_);
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
}

void AtomicFile::fail(const std::string& what) {
  const int err = errno;
  if (file_ != nullptr) std::fclose(file_);
  file_ = nullptr;
  ::unlink(temp_path_.c_str());
  temp_path_.clear();
  throw WriteError("cannot write '" + path_ + "': " + what + (err ? std::string(": ") + std::strerror(err) : ""));
}

void AtomicFile::write(const void* data, size_t size) {
  if (file_ == nullptr) throw WriteError("cannot write '" + path_ + "': file already closed");
  errno = 0;
  if (size > 0 && std::fwrite(data, 1, size, file_) != size) fail("write failed");
}

void AtomicFile::commit() {
  if (file_ == nullptr) throw WriteError("cannot write '" + path_ + "': file already closed");
  errno = 0;
  if (std::fflush(file_) != 0) fail("flush failed");
  if (::fsync(::fileno(file_)) != 0) fail("fsync failed");
  const int closed = std::fclose(file_);
  file_ = nullptr;
  if (closed != 0) fail("close failed");
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) fail("rename failed");
  temp_path_.clear();
  // Make the rename itself durable; a failure here leaves a complete file, so it is not an error.
  const fs::path target(path_);
  const std::string dir = target.has_parent_path() ? target.parent_path().string() : std::string(".");
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

void write_file_atomically(const std::string& path, std::string_view bytes) {
  AtomicFile file(path);
  file.write(bytes.data(), bytes.size());
  file.commit();
}

}  // namespace den::io
