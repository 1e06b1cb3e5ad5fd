#include "agent/shared_root.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace dx::agent {
namespace {

// The type of the filesystem holding `fd` as the mount table names it ("vfat", "cifs",
// "fuse.fusefat"...), for messages.
std::string FilesystemName(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) == 0) {
    const std::string device =
        std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev));
    std::ifstream mounts("/proc/self/mountinfo");
    std::string line;
    while (std::getline(mounts, line)) {
      // id parent major:minor root mount-point options ... - type source super-options
      std::istringstream fields(line);
      std::string id, parent, dev;
      fields >> id >> parent >> dev;
      size_t dash = line.find(" - ");
      if (dev != device || dash == std::string::npos) continue;
      std::istringstream rest(line.substr(dash + 3));
      std::string type;
      rest >> type;
      if (!type.empty()) return type;
    }
  }
  struct statfs fs {};
  if (::fstatfs(fd, &fs) != 0) return "unknown filesystem";
  char hex[32];
  std::snprintf(hex, sizeof(hex), "filesystem type 0x%lx", static_cast<unsigned long>(fs.f_type));
  return hex;
}

}  // namespace

Status PrepareSharedRoot(const std::string& root, std::optional<unsigned> mode) {
  std::error_code ec;
  std::filesystem::create_directories(root, ec);
  if (ec) return FailedPrecondition("cannot create shared root " + root + ": " + ec.message());
  int dir = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) {
    return FailedPrecondition("shared root " + root +
                              " is not a usable folder: " + std::strerror(errno));
  }
  const std::string where = "shared root " + root + " (" + FilesystemName(dir) + ")";
  const std::string probe = ".dx-check-" + std::to_string(::getpid());
  const std::string moved = probe + ".moved";
  auto fail = [&](const std::string& what, int err) {
    ::unlinkat(dir, probe.c_str(), 0);
    ::unlinkat(dir, moved.c_str(), 0);
    ::close(dir);
    return FailedPrecondition(where + ": " + what + ": " + std::strerror(err));
  };
  int fd = ::openat(dir, probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return fail("cannot create files in it", errno);
  bool wrote = ::write(fd, "x", 1) == 1 && ::fsync(fd) == 0;
  int err = errno;
  if (!wrote) {
    ::close(fd);
    return fail("cannot write and fsync a file in it", err);
  }
  if (mode) {
    struct stat st {};
    if (::fchmod(fd, *mode) != 0) {
      err = errno;
      ::close(fd);
      return fail("it does not keep file modes (set files.mode: keep): chmod failed", err);
    }
    if (::fstat(fd, &st) != 0 || (st.st_mode & 07777) != *mode) {
      char text[160];
      std::snprintf(text, sizeof(text),
                    "it does not keep file modes: chmod %04o gave %04o (set files.mode: keep)",
                    *mode, st.st_mode & 07777);
      ::close(fd);
      return fail(text, EPERM);
    }
  }
  ::close(fd);
  if (::renameat(dir, probe.c_str(), dir, moved.c_str()) != 0) {
    return fail("cannot rename files in it", errno);
  }
  if (::unlinkat(dir, moved.c_str(), 0) != 0 || ::fsync(dir) != 0) {
    return fail("cannot remove files in it or fsync it", errno);
  }
  ::close(dir);
  return Status::Ok();
}

}  // namespace dx::agent
