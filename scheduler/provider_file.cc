#include "scheduler/provider_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common/file_path.h"

namespace dx::scheduler {
namespace {

Status OpenError(const std::string& what, int err) {
  std::string msg = what + ": " + std::strerror(err);
  if (err == ENOENT || err == ENOTDIR) return NotFound(msg);
  if (err == EACCES || err == EPERM) return PermissionDenied(msg);
  if (err == ELOOP) return FailedPrecondition(what + ": a symbolic link (not followed)");
  return Unavailable(msg);
}

const char* KindOf(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  if (S_ISDIR(mode)) return "a folder";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

}  // namespace

FileVersion VersionOfStat(const void* p) {
  const auto* st = static_cast<const struct stat*>(p);
  FileVersion v;
  v.size = static_cast<uint64_t>(st->st_size);
  v.mtime_ns = static_cast<int64_t>(st->st_mtim.tv_sec) * 1000000000 + st->st_mtim.tv_nsec;
  v.ctime_ns = static_cast<int64_t>(st->st_ctim.tv_sec) * 1000000000 + st->st_ctim.tv_nsec;
  v.inode = static_cast<uint64_t>(st->st_ino);
  return v;
}

Result<ProviderFile> ProviderFile::Open(const std::string& root, const std::string& relative) {
  const std::string shown = EscapeInvalidUtf8(relative);
  int dir = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return OpenError("open " + root, errno);
  std::vector<std::string> parts = SplitPath(relative);
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    int next = ::openat(dir, parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int err = errno;
    ::close(dir);
    if (next < 0) return OpenError("open the folder of " + shown, err);
    dir = next;
  }
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
  int fd = ::openat(dir, parts.back().c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  int err = errno;
  ::close(dir);
  if (fd < 0) return OpenError("open " + shown, err);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    err = errno;
    ::close(fd);
    return OpenError("stat " + shown, err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return FailedPrecondition(shown + " is " + KindOf(st.st_mode) + " now, not a regular file");
  }
  return ProviderFile(fd, shown, VersionOfStat(&st));
}

ProviderFile::ProviderFile(ProviderFile&& o) noexcept
    : fd_(o.fd_), name_(std::move(o.name_)), version_(o.version_) {
  o.fd_ = -1;
}

ProviderFile::~ProviderFile() {
  if (fd_ >= 0) ::close(fd_);
}

Status ProviderFile::ReadAt(uint64_t offset, char* data, size_t len, size_t* got) const {
  *got = 0;
  while (*got < len) {
    ssize_t n = ::pread(fd_, data + *got, len - *got, static_cast<off_t>(offset + *got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Unavailable("read " + name_ + ": " + std::strerror(errno));
    if (n == 0) break;
    *got += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status ProviderFile::CheckUnchanged() const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return Unavailable("stat " + name_ + ": " + std::strerror(errno));
  FileVersion now = VersionOfStat(&st);
  if (now == version_ && st.st_nlink > 0) return Status::Ok();
  std::string what = st.st_nlink == 0 ? "was deleted"
                     : now.size != version_.size
                         ? "changed size (" + std::to_string(version_.size) + " -> " +
                               std::to_string(now.size) + " bytes)"
                         : "was modified";
  return Unavailable(name_ + " " + what + " while it was read");
}

}  // namespace dx::scheduler
