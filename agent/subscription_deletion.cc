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

// Deletes the recorded files of the subscription and then the folders their removal left empty
// (deepest first). A recorded path that is no longer a regular file DX could have written (the
// consumer replaced it by a folder or a link) is left alone and its record dropped.
Status RemoveFiles(const DeleteSubscription& order, const std::vector<std::string>& paths,
                   FileReceiver& files, const std::string& shared_root, DeletionDone* done) {
  std::vector<std::string> folders;
  uint64_t left = 0;
  for (const std::string& path : paths) {
    FileDelete del;
    del.subscription = order.subscription;
    del.run_id = order.run_id;
    del.path = path;
    FileResult result = files.Delete(del);
    if (result.code != StatusCode::kOk) {
      if (result.outcome != "refused") {
        return Status(result.code, "delete file " + path + ": " + result.error);
      }
      LOG_WARN("subscription " << order.subscription << ": left " << path
                               << " alone: " << result.error);
      ++left;
      continue;
    }
    ++done->files;
    for (std::string& f : ParentFolders(path)) folders.push_back(std::move(f));
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
  if (left > 0) {
    done->detail +=
        "; left " + std::to_string(left) + " recorded path(s) that are no longer files DX wrote";
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
    // the list for the next attempt.
    DX_ASSIGN_OR_RETURN(std::vector<std::string> paths, writer.FilesOf(order.subscription));
    if (!paths.empty()) {
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
    if (!paths.empty()) {
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
