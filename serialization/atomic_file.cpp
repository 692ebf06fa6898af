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

std::string resolve_output(const std::string& path) {
  fs::path p(path);
  for (int hops = 0;; ++hops) {
    std::error_code ec;
    if (!fs::is_symlink(p, ec)) return p.string();
    if (hops == 40) throw WriteError("cannot write '" + path + "': too many levels of symbolic links");
    const fs::path next = fs::read_symlink(p, ec);
    if (ec) throw WriteError("cannot write '" + path + "': " + ec.message());
    p = next.is_absolute() || !p.has_parent_path() ? next : p.parent_path() / next;
  }
}

bool is_stream_output(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return false;
  if (S_ISBLK(st.st_mode) || S_ISSOCK(st.st_mode)) {
    throw WriteError("cannot write '" + path + "': it is a " + (S_ISBLK(st.st_mode) ? "block device" : "socket") +
                     ", which den does not write to");
  }
  return S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode);
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  // stat follows the links: /dev/stdout leads to /proc/self/fd/1 and on to a pipe, no file name.
  if (is_stream_output(path_)) {
    // A device or a pipe takes the bytes as they come; replacing it would break what reads it.
    stream_ = true;
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
    file_ = fd >= 0 ? ::fdopen(fd, "wb") : nullptr;
    if (file_ == nullptr) {
      const int err = errno;
      if (fd >= 0) ::close(fd);
      throw WriteError("cannot write '" + path_ + "': " + std::strerror(err));
    }
    return;
  }
  target_ = resolve_output(path_);
  const fs::path target(target_);
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
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
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
  if (stream_) {  // nothing to sync or rename: the bytes went where they were sent
    const int closed = std::fclose(file_);
    file_ = nullptr;
    if (closed != 0) fail("close failed");
    return;
  }
  if (::fsync(::fileno(file_)) != 0) fail("fsync failed");
  const int closed = std::fclose(file_);
  file_ = nullptr;
  if (closed != 0) fail("close failed");
  if (std::rename(temp_path_.c_str(), target_.c_str()) != 0) fail("rename failed");
  temp_path_.clear();
  // Make the rename itself durable; a failure here leaves a complete file, so it is not an error.
  const fs::path target(target_);
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
