#include "agent/subscription_deletion.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/file_path.h"
#include "common/log.h"

namespace dx::agent {
namespace {

// The folders above `path` (relative to the shared root), deepest first: "a/b/c.txt" gives
// "a/b", "a".
std::vector<std::string> ParentFolders(const std::string& path) {
  std::vector<std::string> out;
  std::string p = path;
  for (size_t slash = p.rfind('/'); slash != std::string::npos && slash > 0; slash = p.rfind('/')) {
    p.resize(slash);
    out.push_back(p);
  }
  return out;
}

// True when `path` (relative to the shared root) lies in the subscription's folder `target`
// (empty: the whole shared root, which such a subscription has to itself).
bool InTarget(const std::string& path, const std::string& target) {
  return target.empty() || IsSameOrUnder(path, target);
}

// Deletes the subscription's files: the part files of its transfers in progress, the files
// recorded for it, the part files left anywhere in its folder, then the folders its runs
// created and those its deletions left empty (deepest first, only when empty: the consumer's
// own files keep a folder). A recorded path that is no longer a regular file DX could have
// written (the consumer replaced it by a folder or a link), or that lies outside the
// subscription's folder, is left alone and its record dropped.
Status RemoveFiles(const DeleteSubscription& order, const std::vector<std::string>& paths,
                   FileReceiver& files, const std::string& shared_root, DeletionDone* done) {
  const std::string& target = order.target_path;
  std::vector<std::string> folders;
  uint64_t left = 0;
  auto add_folder = [&](const std::string& folder) {
    if (InTarget(folder, target)) folders.push_back(folder);
  };
  for (const std::string& path : paths) {
    bool refused = true;
    Status st = InTarget(path, target) ? files.RemoveFile(path, &refused)
                                       : FailedPrecondition("outside the folder '" + target + "'");
    if (!st.ok()) {
      if (!refused) return st.Annotate("delete file " + path);
      LOG_WARN("subscription " << order.subscription << ": left " << path
                               << " alone: " << st.message());
      ++left;
      continue;
    }
    ++done->files;
    for (const std::string& f : ParentFolders(path)) add_folder(f);
  }
  int parts = files.SweepParts(target);
  for (const std::string& folder : order.folders) {
    if (!IsSafeRelativePath(folder)) continue;
    add_folder(folder);
    for (const std::string& f : ParentFolders(folder)) add_folder(f);
  }
  // Deepest first, each once: a folder is removed only when nothing is left in it.
  std::sort(folders.begin(), folders.end(), [](const std::string& a, const std::string& b) {
    const auto depth = [](const std::string& s) { return std::count(s.begin(), s.end(), '/'); };
    return depth(a) != depth(b) ? depth(a) > depth(b) : a < b;
  });
  folders.erase(std::unique(folders.begin(), folders.end()), folders.end());
  for (const std::string& folder : folders) {
    DX_ASSIGN_OR_RETURN(bool removed, RemoveEmptyFolder(shared_root, folder));
    if (removed) ++done->folders;
  }
  if (parts > 0) done->detail += "; removed " + std::to_string(parts) + " part file(s)";
  if (left > 0) {
    done->detail += "; left " + std::to_string(left) +
                    " recorded path(s) that are no longer files DX wrote in the subscription's "
                    "folder";
  }
  return Status::Ok();
}

// Closes a descriptor when it goes out of scope.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

Result<bool> RemoveEmptyFolder(const std::string& shared_root, const std::string& path) {
  if (shared_root.empty() || !IsSafeRelativePath(path)) {
    return InvalidArgument("folder '" + path + "' is not inside the shared root");
  }
  std::vector<std::string> parts = SplitPath(path);
  Fd dir;
  dir.fd = ::open(shared_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir.fd < 0) {
    return Unavailable("open shared root " + shared_root + ": " + std::strerror(errno));
  }
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    int next = ::openat(dir.fd, parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) return false;  // gone, or a link: nothing of ours to remove there
    ::close(dir.fd);
    dir.fd = next;
  }
  // AT_REMOVEDIR removes a directory only, and only an empty one; a link is not followed.
  if (::unlinkat(dir.fd, parts.back().c_str(), AT_REMOVEDIR) == 0) {
    (void)::fsync(dir.fd);
    return true;
  }
  if (errno == ENOENT || errno == ENOTEMPTY || errno == EEXIST || errno == ENOTDIR) return false;
  return Internal("remove folder " + path + ": " + std::strerror(errno));
}

DeletionDone DeleteHoldings(const DeleteSubscription& order, TableWriter& writer,
                            FileReceiver* files, const std::string& shared_root) {
  DeletionDone done;
  done.subscription = order.subscription;
  done.run_id = order.run_id;
  LOG_INFO("subscription " << order.subscription << " " << order.reason
                           << ": deleting what this agent holds for it");
  Status st = [&]() -> Status {
    // Files first: their records stay until the files are gone, so a crash in between leaves
    // the list for the next attempt. Files on their way into place are recorded first.
    if (files != nullptr) files->ForgetTransfers(order.subscription);
    DX_ASSIGN_OR_RETURN(std::vector<std::string> paths, writer.FilesOf(order.subscription));
    const bool file_subscription =
        !paths.empty() ||
        (files != nullptr && (!order.folders.empty() || !order.target_path.empty()));
    if (file_subscription) {
      if (files == nullptr) {
        return FailedPrecondition("this agent takes no files, yet records " +
                                  std::to_string(paths.size()) + " file(s) of " +
                                  order.subscription);
      }
      DX_RETURN_IF_ERROR(RemoveFiles(order, paths, *files, shared_root, &done));
    }
    DX_ASSIGN_OR_RETURN(ForgottenTables tables, writer.ForgetSubscription(order.subscription));
    done.tables = tables.tables;
    done.rows = static_cast<uint64_t>(tables.rows);
    std::string detail = tables.tables.empty() ? "" : tables.detail;
    if (file_subscription) {
      detail += (detail.empty() ? "" : "; ") + std::string("deleted ") +
                std::to_string(done.files) + " file(s) and " + std::to_string(done.folders) +
                " emptied folder(s)";
    }
    if (detail.empty()) detail = "nothing held";
    done.detail = detail + done.detail;
    return Status::Ok();
  }();
  if (!st.ok()) {
    done.code = st.code();
    done.error = st.message();
    LOG_ERROR("subscription " << order.subscription << ": deletion failed: " << st.message());
  } else {
    LOG_INFO("subscription " << order.subscription << ": deleted: " << done.detail);
  }
  return done;
}

}  // namespace dx::agent
