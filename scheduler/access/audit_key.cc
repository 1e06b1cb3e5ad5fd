#include "scheduler/access/audit_key.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "common/sha256.h"

namespace dx::scheduler {
namespace {

std::string Octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

Status CreateKey(const std::string& path, const std::string& what) {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof(raw)) != 1) return Internal("no randomness for the " + what);
  const std::string key =
      Sha256::HexEncode(std::string_view(reinterpret_cast<char*>(raw), sizeof(raw))) + "\n";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return InvalidArgument("cannot create the " + what + " file " + path + ": " +
                           std::strerror(errno));
  }
  bool ok =
      ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    return Unavailable("cannot write the " + what + " file " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> LoadOrCreateAuditKey(const std::string& path) {
  return LoadOrCreateKeyFile(path, "audit key");
}

Result<std::string> LoadOrCreateKeyFile(const std::string& path, const std::string& what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      return InvalidArgument("cannot read the " + what + " file " + path + ": " +
                             std::strerror(errno));
    }
    DX_RETURN_IF_ERROR(CreateKey(path, what));
    if (::stat(path.c_str(), &st) != 0) return Internal(what + " file " + path + " vanished");
  }
  if (!S_ISREG(st.st_mode)) return InvalidArgument(what + " " + path + " is not a file");
  if ((st.st_mode & 077) != 0) {
    return InvalidArgument(what + " file " + path + " has mode " + Octal(st.st_mode) +
                           ": others could read or replace the key; chmod 600 " + path);
  }
  std::ifstream in(path);
  std::string key;
  std::getline(in, key);
  if (!in && !in.eof()) return InvalidArgument("cannot read the " + what + " file " + path);
  size_t hex = 0;
  for (char c : key) hex += std::isxdigit(static_cast<unsigned char>(c)) ? 1 : 0;
  if (key.size() < 32 || hex != key.size()) {
    return InvalidArgument(what + " file " + path +
                           " does not hold a key (at least 32 hex digits on the first line)");
  }
  return key;
}

}  // namespace dx::scheduler
