#include "agent/shared_root.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace dx::agent {
namespace {

// A readable name for the filesystem holding `fd`, for messages.
std::string FilesystemName(int fd) {
  struct statfs fs {};
  if (::fstatfs(fd, &fs) != 0) return "unknown filesystem";
  switch (static_cast<unsigned long>(fs.f_type)) {
    case 0x4d44:
      return "FAT (vfat)";
    case 0x2011BAB0:
      return "exFAT";
    case 0x5346544e:
      return "NTFS";
    case 0x65735546:
      return "FUSE";
    case 0xFF534D42:
    case 0xFE534D42:
      return "SMB/CIFS";
    case 0x6969:
      return "NFS";
    case 0xEF53:
      return "ext4";
    case 0x58465342:
      return "XFS";
    case 0x01021994:
      return "tmpfs";
    case 0x9123683E:
      return "Btrfs";
    default: {
      char hex[32];
      std::snprintf(hex, sizeof(hex), "filesystem type 0x%lx",
                    static_cast<unsigned long>(fs.f_type));
      return hex;
    }
  }
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
