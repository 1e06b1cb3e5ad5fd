#include "scheduler/file_listing.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "common/file_path.h"
#include "scheduler/file_patterns.h"
#include "scheduler/name_encoding.h"

namespace dx::scheduler {
namespace {

std::string Join(const std::string& a, const std::string& b) { return a.empty() ? b : a + "/" + b; }

struct Pending {
  int fd;
  std::string path;
  std::string raw_path;
};

}  // namespace

Result<Listing> ListResourceFiles(const CatalogEntry& entry) {
  DX_ASSIGN_OR_RETURN(NameEncoding names, NameEncoding::Open(entry.name_encoding));
  int root = ::open(entry.directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
      return Unavailable("directory " + entry.directory + " of '" + entry.name + "' is not there");
    }
    return Unavailable("cannot list directory " + entry.directory + " of '" + entry.name +
                       "': " + std::strerror(err));
  }
  Listing out;
  std::vector<Pending> stack{{root, "", ""}};
  while (!stack.empty()) {
    Pending dir = std::move(stack.back());
    stack.pop_back();
    DIR* d = ::fdopendir(dir.fd);
    if (d == nullptr) {
      ::close(dir.fd);
      continue;
    }
    errno = 0;
    while (dirent* e = ::readdir(d)) {
      std::string raw_name = e->d_name;
      if (raw_name == "." || raw_name == "..") continue;
      struct stat st {};
      if (::fstatat(::dirfd(d), raw_name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT) {
          out.problems.push_back({Join(dir.path, EscapeInvalidUtf8(raw_name)),
                                  false,
                                  Unavailable(std::string("stat: ") + std::strerror(errno)),
                                  {}});
        }
        errno = 0;
        continue;
      }
      bool is_dir = S_ISDIR(st.st_mode);
      if (!is_dir && !S_ISREG(st.st_mode)) continue;  // links, FIFOs, sockets, devices
      if (is_dir && !entry.recursive) continue;
      auto name = names.ToUtf8(raw_name);
      if (!name.ok()) {
        out.problems.push_back({Join(dir.path, EscapeInvalidUtf8(raw_name)), is_dir, name.status(),
                                VersionOfStat(&st)});
        continue;
      }
      std::string path = Join(dir.path, name.value());
      std::string raw_path = Join(dir.raw_path, raw_name);
      if (!is_dir) {
        if (IsIncluded(path, entry.include, entry.exclude)) {
          out.files.push_back({path, raw_path, VersionOfStat(&st)});
        }
        continue;
      }
      if (MatchesAny(entry.exclude, path)) continue;  // nothing below it is taken
      int sub =
          ::openat(::dirfd(d), raw_name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) {
        if (errno != ENOENT) {
          out.problems.push_back(
              {path, true,
               Unavailable(std::string("cannot list the folder: ") + std::strerror(errno)),
               VersionOfStat(&st)});
        }
        continue;
      }
      if (IsIncluded(path, entry.include, entry.exclude)) {
        out.folders.push_back({path, raw_path, false});
      }
      stack.push_back({sub, path, raw_path});
    }
    if (errno != 0 && !dir.path.empty()) {
      out.problems.push_back(
          {dir.path, true, Unavailable(std::string("listing: ") + std::strerror(errno)), {}});
    }
    ::closedir(d);
  }
  auto by_path = [](const auto& a, const auto& b) { return a.path < b.path; };
  std::sort(out.files.begin(), out.files.end(), by_path);
  std::sort(out.folders.begin(), out.folders.end(), by_path);
  // A folder with anything taken below it arrives with that; the others are leaves.
  std::set<std::string> above;
  auto add_parents = [&](const std::string& p) {
    for (size_t slash = p.rfind('/'); slash != std::string::npos && slash > 0;
         slash = p.rfind('/', slash - 1)) {
      if (!above.insert(p.substr(0, slash)).second) break;
    }
  };
  for (const SourceFile& f : out.files) add_parents(f.path);
  for (const SourceFolder& f : out.folders) add_parents(f.path);
  for (SourceFolder& f : out.folders) f.leaf = above.count(f.path) == 0;
  return out;
}

}  // namespace dx::scheduler
