#include "agent/file_receiver.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/file_path.h"
#include "common/log.h"
#include "common/wire.h"

namespace dx::agent {
namespace {

// Owns a file descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    reset(o.release());
    return *this;
  }
  ~UniqueFd() { reset(); }
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

Status Errno(const std::string& what) {
  int err = errno;
  std::string msg = what + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) return Unavailable(msg);  // retried when space returns
  if (err == EACCES || err == EPERM || err == ELOOP) return PermissionDenied(msg);
  if (err == ENAMETOOLONG || err == EINVAL || err == EILSEQ) return InvalidArgument(msg);
  return Internal(msg);
}

Status WriteAll(int fd, std::string_view data, uint64_t offset, const std::string& what) {
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("write " + what);
    }
    data.remove_prefix(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

// Part files are named by hashes, so their names stay short for every name the filesystem
// accepts (255 bytes), and all parts of one name share a prefix.
std::string PartPrefix(const std::string& name) {
  return ".dx-" + Sha256::Hex(name).substr(0, 16) + "-";
}
std::string PartName(const std::string& name, const std::string& version) {
  return PartPrefix(name) + Sha256::Hex(version).substr(0, 16) + ".dxpart";
}
// Also matches the ".NAME.VERSION.dxpart" files of earlier versions of the agent.
bool IsPartName(const std::string& name) {
  static const std::string kSuffix = ".dxpart";
  return name.size() > kSuffix.size() && name[0] == '.' &&
         name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0;
}

std::string TransferKey(const std::string& sub, const std::string& path) {
  return sub + '\0' + path;
}

constexpr int kOpenDir = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

}  // namespace

struct FileReceiver::Target {
  UniqueFd dir;
  std::string path;              // as given
  std::string name;              // last component
  std::vector<int> new_parents;  // folders created on the way: fsynced with the file
  Target() = default;
  Target(Target&& o) noexcept = default;
  Target& operator=(Target&& o) noexcept = default;
  ~Target() {
    for (int fd : new_parents) ::close(fd);
  }
};

struct FileReceiver::Transfer {
  FileMeta meta;
  std::string part_name;
  Target target;
  UniqueFd part;
  uint64_t next_offset = 0;
  std::shared_ptr<ChunkWriter::Ticket> ticket;  // its writes and their hash
  Status error;                                 // first failure; reported at commit
};

FileReceiver::FileReceiver(std::string shared_root, std::optional<unsigned> mode, Recorder recorder)
    : shared_root_(std::move(shared_root)),
      mode_(mode),
      recorder_(std::move(recorder)),
      syncer_([this] {
        std::lock_guard<std::mutex> lock(wake_mu_);
        if (wake_) wake_();
      }) {
  if (shared_root_.empty()) return;  // a tables-only agent: every file is refused
  root_fd_ = ::open(shared_root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root_fd_ < 0)
    LOG_ERROR("cannot open shared root " << shared_root_ << ": " << std::strerror(errno));
}

FileReceiver::~FileReceiver() {
  AbandonTransfers();
  (void)syncer_.TakeDone(true);
  if (root_fd_ >= 0) ::close(root_fd_);
}

void FileReceiver::SetWakeup(std::function<void()> wake) {
  std::lock_guard<std::mutex> lock(wake_mu_);
  wake_ = std::move(wake);
}

FileResult FileReceiver::Outcome(const std::string& sub, const std::string& path, const Status& st,
                                 const std::string& outcome) {
  FileResult r;
  r.subscription = sub;
  r.path = path;
  r.code = st.code();
  r.error = st.ok() ? "" : st.message();
  r.outcome = outcome;
  if (st.code() == StatusCode::kPermissionDenied || st.code() == StatusCode::kInvalidArgument) {
    LOG_WARN("refused file '" << path << "' of " << sub << ": " << st.message());
  } else if (!st.ok()) {
    LOG_ERROR("file '" << path << "' of " << sub << ": " << st.message());
  }
  return r;
}

void FileReceiver::Answer(const std::string& sub, const std::string& path, const Status& st,
                          const std::string& outcome) {
  ready_.push_back(Outcome(sub, path, st, outcome));
}

Result<int> FileReceiver::OpenFolder(const std::string& path, std::vector<int>* new_parents) {
  if (shared_root_.empty()) {
    return FailedPrecondition(
        "this agent takes no files: its config has no files.shared_root (add one to deliver "
        "file subscriptions)");
  }
  if (root_fd_ < 0) return Unavailable("shared root " + shared_root_ + " is not available");
  UniqueFd dir(::openat(root_fd_, ".", kOpenDir));
  if (path.empty()) return dir.release();
  std::string walked;
  for (const std::string& part : SplitPath(path)) {
    walked += (walked.empty() ? "" : "/") + part;
    int fd = ::openat(dir.get(), part.c_str(), kOpenDir);
    if (fd < 0 && errno == ENOENT && new_parents != nullptr) {
      if (::mkdirat(dir.get(), part.c_str(), 0750) != 0 && errno != EEXIST) {
        return Errno("create directory " + walked);
      }
      new_parents->push_back(::dup(dir.get()));
      fd = ::openat(dir.get(), part.c_str(), kOpenDir);
    }
    if (fd < 0) {
      int err = errno;
      if (err == ENOENT) return NotFound("'" + walked + "' does not exist");
      struct stat st {};
      if (::fstatat(dir.get(), part.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISLNK(st.st_mode)) {
          return PermissionDenied("'" + walked + "' is a symbolic link inside the shared root");
        }
        if (!S_ISDIR(st.st_mode)) {
          return FailedPrecondition("'" + walked + "' is a file, not a folder");
        }
      }
      errno = err;
      return Errno("open directory " + walked);
    }
    dir.reset(fd);
  }
  return dir.release();
}

Result<FileReceiver::Target> FileReceiver::Resolve(const std::string& path, bool create_dirs) {
  if (!IsSafeRelativePath(path)) {
    return InvalidArgument("path '" + EscapeInvalidUtf8(path) + "' would leave the shared root");
  }
  if (!IsValidUtf8(path)) {
    return InvalidArgument("path '" + EscapeInvalidUtf8(path) + "' is not UTF-8");
  }
  size_t slash = path.rfind('/');
  Target t;
  t.path = path;
  t.name = slash == std::string::npos ? path : path.substr(slash + 1);
  auto dir = OpenFolder(slash == std::string::npos ? "" : path.substr(0, slash),
                        create_dirs ? &t.new_parents : nullptr);
  if (!dir.ok()) return dir.status();
  t.dir = UniqueFd(dir.value());
  struct stat st {};
  if (::fstatat(t.dir.get(), t.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISLNK(st.st_mode)) {
      return PermissionDenied("'" + path + "' is a symbolic link inside the shared root");
    }
    if (S_ISDIR(st.st_mode)) return FailedPrecondition("'" + path + "' is a folder, not a file");
    if (!S_ISREG(st.st_mode)) return FailedPrecondition("'" + path + "' is not a regular file");
  }
  return t;
}

bool FileReceiver::HoldsExactly(const Target& t, uint64_t size, const std::string& sha256) {
  struct stat st {};
  if (::fstatat(t.dir.get(), t.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
      !S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) != size) {
    return false;
  }
  UniqueFd fd(
      ::openat(t.dir.get(), t.name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  Sha256 hash;
  std::string buf(kFileChunkBytes, '\0');
  while (true) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) return false;
    if (n == 0) break;
    hash.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
  }
  return hash.FinishHex() == sha256;
}

Result<int> FileReceiver::CreatePart(const Target& t, const std::string& version, bool fresh) {
  const std::string part = PartName(t.name, version);
  int flags = O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (fresh ? O_TRUNC : 0);
  int fd = ::openat(t.dir.get(), part.c_str(), flags, mode_ ? 0600 : 0666);
  if (fd < 0) return Errno("create " + t.path);
  return fd;
}

int FileReceiver::RemoveParts(const Target& t, const std::string& keep) {
  UniqueFd dup(::openat(t.dir.get(), ".", kOpenDir));
  DIR* d = dup.get() >= 0 ? ::fdopendir(dup.release()) : nullptr;
  if (d == nullptr) return 0;
  const std::string prefix = PartPrefix(t.name);
  std::vector<std::string> doomed;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != keep && name.compare(0, prefix.size(), prefix) == 0 && IsPartName(name)) {
      doomed.push_back(name);
    }
  }
  int removed = 0;
  for (const std::string& name : doomed) {
    if (::unlinkat(::dirfd(d), name.c_str(), 0) == 0) ++removed;
  }
  ::closedir(d);
  return removed;
}

void FileReceiver::Finish(Target t, int part_fd, const std::string& part_name, ReceivedFile record,
                          const std::string& outcome) {
  UniqueFd fd(part_fd);
  const std::string& sub = record.subscription;
  if (mode_ && ::fchmod(fd.get(), *mode_) != 0) {
    Status st = Errno("chmod " + t.path);
    ::unlinkat(t.dir.get(), part_name.c_str(), 0);
    return Answer(sub, t.path,
                  st.Annotate("the shared root may not keep file modes (set files.mode: keep)"),
                  "failed");
  }
  FileSyncer::Item item;
  item.result = Outcome(sub, t.path, Status::Ok(), outcome);
  item.record = std::move(record);
  item.part_fd = fd.release();
  item.dir_fd = t.dir.release();
  item.parent_fds = std::move(t.new_parents);
  t.new_parents.clear();
  item.part_name = part_name;
  item.final_name = t.name;
  syncer_.Add(std::move(item));
}

void FileReceiver::Settle(bool wait, bool record_all) {
  constexpr size_t kRecordGroup = 64;
  std::vector<FileSyncer::Item> done = syncer_.TakeDone(wait);
  std::vector<ReceivedFile> records;
  std::vector<FileResult> results;
  if (record_all || !done.empty() || to_record_.size() >= kRecordGroup) {
    records.swap(to_record_);
    results.swap(to_record_results_);
  }
  for (FileSyncer::Item& item : done) {
    if (item.result.code == StatusCode::kOk) {
      records.push_back(std::move(item.record));
      results.push_back(std::move(item.result));
    } else {
      ready_.push_back(std::move(item.result));
    }
  }
  if (results.empty()) return;
  Status recorded = recorder_(records);
  for (FileResult& r : results) {
    if (!recorded.ok()) r = Outcome(r.subscription, r.path, recorded, "failed");
    ready_.push_back(std::move(r));
  }
}

std::vector<FileResult> FileReceiver::TakeResults(bool idle) {
  Settle(false, idle);
  std::vector<FileResult> out;
  out.swap(ready_);
  return out;
}

void FileReceiver::Put(const FilePut& put) {
  const FileMeta& m = put.meta;
  if (m.size > kFileChunkBytes) {
    return Answer(m.subscription, m.path,
                  DataLoss("a whole file of " + std::to_string(m.size) +
                           " bytes announced; files over one chunk are offered"),
                  "failed");
  }
  auto target = Resolve(m.path, true);
  if (!target.ok()) return Answer(m.subscription, m.path, target.status(), "refused");
  std::string decoded;
  std::string_view data = put.data;
  if (put.compressed) {
    auto raw = Decompress(put.data, m.size);
    if (!raw.ok()) return Answer(m.subscription, m.path, raw.status(), "failed");
    decoded = std::move(raw).value();
    data = decoded;
  }
  if (data.size() != m.size) {
    return Answer(m.subscription, m.path,
                  DataLoss("file holds " + std::to_string(data.size()) + " bytes, " +
                           std::to_string(m.size) + " announced"),
                  "failed");
  }
  if (Sha256::Hex(data) != m.sha256) {
    return Answer(m.subscription, m.path,
                  DataLoss("SHA-256 of '" + m.path + "' does not match its content"), "failed");
  }
  ReceivedFile record{m.subscription, m.path, m.size, m.sha256, false};
  if (HoldsExactly(*target, m.size, m.sha256)) {
    to_record_.push_back(record);
    to_record_results_.push_back(Outcome(m.subscription, m.path, Status::Ok(), "unchanged"));
    return;
  }
  auto fd = CreatePart(*target, m.sha256, true);
  if (!fd.ok()) return Answer(m.subscription, m.path, fd.status(), "failed");
  const std::string part = PartName(target->name, m.sha256);
  Status st = WriteAll(fd.value(), data, 0, m.path);
  if (!st.ok()) {
    ::close(fd.value());
    ::unlinkat(target->dir.get(), part.c_str(), 0);  // a small file is sent whole next time
    return Answer(m.subscription, m.path, st, "failed");
  }
  Finish(std::move(target).value(), fd.value(), part, std::move(record), "written");
}

FileResume FileReceiver::Offer(const FileMeta& m) {
  FileResume r;
  r.subscription = m.subscription;
  r.path = m.path;
  auto refuse = [&](const Status& st, const std::string& outcome) {
    FileResult refused = Outcome(m.subscription, m.path, st, outcome);
    r.code = refused.code;
    r.error = refused.error;
    return r;
  };
  const std::string key = TransferKey(m.subscription, m.path);
  if (auto old = transfers_.find(key); old != transfers_.end()) {
    DropTransfer(old);  // an earlier offer of the same file that never committed
  }
  if (transfers_.size() >= kMaxTransfers) {
    return refuse(Unavailable(std::to_string(transfers_.size()) +
                              " transfers already in progress at this agent"),
                  "failed");
  }
  auto target = Resolve(m.path, true);
  if (!target.ok()) return refuse(target.status(), "refused");
  if (!m.sha256.empty() && HoldsExactly(*target, m.size, m.sha256)) {
    Status st = recorder_({{m.subscription, m.path, m.size, m.sha256, false}});
    r.code = st.code();
    r.error = st.ok() ? "" : st.message();
    r.complete = true;
    return r;
  }
  auto t = std::make_unique<Transfer>();
  t->meta = m;
  const std::string version = m.version.empty() ? m.sha256 : m.version;
  t->part_name = PartName(target->name, version);
  int removed = RemoveParts(*target, t->part_name);
  if (removed > 0) LOG_INFO("removed " << removed << " stale part file(s) of '" << m.path << "'");
  auto fd = CreatePart(*target, version, false);
  if (!fd.ok()) return refuse(fd.status(), "failed");
  t->part = UniqueFd(fd.value());
  struct stat st {};
  ::fstat(t->part.get(), &st);
  // Resume at the last whole chunk: a chunk cut off by a crash is sent again.
  uint64_t have = std::min<uint64_t>(static_cast<uint64_t>(st.st_size), m.size);
  uint64_t offset = have / kFileChunkBytes * kFileChunkBytes;
  if (::ftruncate(t->part.get(), static_cast<off_t>(offset)) != 0) offset = 0;
  t->ticket = std::make_shared<ChunkWriter::Ticket>();
  std::string buf(kFileChunkBytes, '\0');
  for (uint64_t pos = 0; pos < offset;) {
    ssize_t n = ::pread(t->part.get(), buf.data(), buf.size(), static_cast<off_t>(pos));
    if (n <= 0) {  // unreadable part: start over
      offset = 0;
      t->ticket->hash.FinishHex();
      (void)::ftruncate(t->part.get(), 0);
      break;
    }
    t->ticket->hash.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
    pos += static_cast<uint64_t>(n);
  }
  if (offset > 0) LOG_INFO("resuming '" << m.path << "' at byte " << offset << " of " << m.size);
  t->next_offset = offset;
  chunks_.Attach(t->ticket, t->part.get(), m.path);
  t->target = std::move(target).value();
  transfers_[key] = std::move(t);
  r.offset = offset;
  return r;
}

void FileReceiver::Chunk(const FileChunk& c, std::string_view bytes) {
  auto it = transfers_.find(TransferKey(c.subscription, c.path));
  if (it == transfers_.end()) return;  // answered by the commit: no transfer under way
  Transfer* t = it->second.get();
  if (!t->error.ok()) return;
  if (c.offset != t->next_offset) {
    t->error = DataLoss("chunk at byte " + std::to_string(c.offset) + " of '" + c.path +
                        "', expected byte " + std::to_string(t->next_offset));
    return;
  }
  std::string decoded;
  std::string_view data = bytes;
  if (c.compressed) {
    auto raw = Decompress(bytes, kFileChunkBytes);
    if (!raw.ok()) {
      t->error = raw.status();
      return;
    }
    decoded = std::move(raw).value();
    data = decoded;
  }
  if (data.size() > kFileChunkBytes || t->next_offset + data.size() > t->meta.size) {
    t->error = DataLoss("'" + c.path + "' grows past its announced size");
    return;
  }
  chunks_.Write(t->ticket, data, c.offset);  // hashed there; a failure is reported at the commit
  t->next_offset += data.size();
}

void FileReceiver::Commit(const FileCommit& c) {
  auto it = transfers_.find(TransferKey(c.subscription, c.path));
  if (it == transfers_.end()) {
    return Answer(c.subscription, c.path,
                  FailedPrecondition("no transfer of '" + c.path + "' under way"), "failed");
  }
  std::unique_ptr<Transfer> t = std::move(it->second);
  transfers_.erase(it);
  // The part file keeps what was written when writing failed: the next offer resumes.
  Status written = chunks_.Wait(t->ticket);
  Status st = t->error.ok() ? written : t->error;
  if (st.ok() && t->next_offset != t->meta.size) {
    st = DataLoss("'" + c.path + "' ended at byte " + std::to_string(t->next_offset) + " of " +
                  std::to_string(t->meta.size));
  }
  const std::string expected = t->meta.sha256.empty() ? c.sha256 : t->meta.sha256;
  if (st.ok() && expected != c.sha256)
    st = DataLoss("'" + c.path + "' changed during the transfer");
  if (!st.ok()) {
    // A part that cannot be right is removed; one cut short by the disk stays for a resume.
    if (st.code() == StatusCode::kDataLoss) {
      ::unlinkat(t->target.dir.get(), t->part_name.c_str(), 0);
    }
    return Answer(c.subscription, c.path, st, "failed");
  }
  std::string got = t->ticket->hash.FinishHex();
  if (got != expected) {
    ::unlinkat(t->target.dir.get(), t->part_name.c_str(), 0);
    return Answer(c.subscription, c.path,
                  DataLoss("SHA-256 of '" + c.path + "' is " + got + ", expected " + expected),
                  "failed");
  }
  // Direct writes pad the last chunk to the block size: the file is cut to its size.
  if (::ftruncate(t->part.get(), static_cast<off_t>(t->meta.size)) != 0) {
    return Answer(c.subscription, c.path, Errno("truncate " + c.path), "failed");
  }
  ReceivedFile record{t->meta.subscription, t->meta.path, t->meta.size, expected, false};
  Finish(std::move(t->target), t->part.release(), t->part_name, std::move(record), "written");
}

void FileReceiver::Abort(const FileAbort& a) {
  auto it = transfers_.find(TransferKey(a.subscription, a.path));
  if (it == transfers_.end()) return;
  Transfer* t = it->second.get();
  (void)chunks_.Wait(t->ticket);
  ::unlinkat(t->target.dir.get(), t->part_name.c_str(), 0);
  LOG_WARN("transfer of '" << a.path << "' of " << a.subscription << " withdrawn: " << a.reason);
  transfers_.erase(it);
}

void FileReceiver::Copy(const FileCopy& c) {
  const FileMeta& m = c.meta;
  auto target = Resolve(m.path, true);
  if (!target.ok()) return Answer(m.subscription, m.path, target.status(), "refused");
  ReceivedFile record{m.subscription, m.path, m.size, m.sha256, false};
  if (HoldsExactly(*target, m.size, m.sha256)) {
    to_record_.push_back(record);
    to_record_results_.push_back(Outcome(m.subscription, m.path, Status::Ok(), "unchanged"));
    return;
  }
  auto need_data = [&](const std::string& why) {
    FileResult r = Outcome(m.subscription, m.path, Status::Ok(), "need_data");
    r.code = StatusCode::kFailedPrecondition;
    r.error = why;
    ready_.push_back(r);
  };
  auto source = Resolve(c.from_path, false);
  if (!source.ok()) return need_data(source.status().message());
  UniqueFd in(::openat(source->dir.get(), source->name.c_str(),
                       O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  struct stat st {};
  if (in.get() < 0 || ::fstat(in.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return need_data("cannot open '" + c.from_path + "'");
  }
  auto fd = CreatePart(*target, m.sha256, true);
  if (!fd.ok()) return Answer(m.subscription, m.path, fd.status(), "failed");
  UniqueFd out(fd.value());
  const std::string part = PartName(target->name, m.sha256);
  Sha256 hash;
  std::string buf(kFileChunkBytes, '\0');
  uint64_t copied = 0;
  Status status;
  while (status.ok()) {
    ssize_t n = ::read(in.get(), buf.data(), buf.size());
    if (n < 0) status = Errno("read " + c.from_path);
    if (n <= 0) break;
    std::string_view data(buf.data(), static_cast<size_t>(n));
    hash.Update(data);
    status = WriteAll(out.get(), data, copied, m.path);
    copied += static_cast<uint64_t>(n);
  }
  std::string got = hash.FinishHex();
  if (!status.ok()) {
    ::unlinkat(target->dir.get(), part.c_str(), 0);
    return Answer(m.subscription, m.path, status, "failed");
  }
  if (copied != m.size || got != m.sha256) {
    ::unlinkat(target->dir.get(), part.c_str(), 0);
    return need_data("'" + c.from_path + "' no longer holds that content");
  }
  Finish(std::move(target).value(), out.release(), part, std::move(record), "copied");
}

void FileReceiver::Delete(const FileDelete& d) {
  Settle(true, true);  // nothing of this path may still be on its way into place
  auto target = Resolve(d.path, false);
  if (!target.ok()) {
    if (target.status().code() != StatusCode::kNotFound) {
      return Answer(d.subscription, d.path, target.status(), "refused");
    }
  } else {
    RemoveParts(*target, "");
    if (::unlinkat(target->dir.get(), target->name.c_str(), 0) == 0) {
      if (::fsync(target->dir.get()) != 0) {
        return Answer(d.subscription, d.path, Errno("fsync directory of " + d.path), "failed");
      }
    } else if (errno != ENOENT) {
      return Answer(d.subscription, d.path, Errno("delete " + d.path), "failed");
    }
  }
  Status st = recorder_({{d.subscription, d.path, 0, "", true}});
  Answer(d.subscription, d.path, st, "deleted");
}

void FileReceiver::Folder(const FileFolder& f) {
  Settle(true, true);
  if (!IsSafeRelativePath(f.path) || !IsValidUtf8(f.path)) {
    return Answer(f.subscription, f.path,
                  InvalidArgument("folder '" + EscapeInvalidUtf8(f.path) +
                                  "' would leave the shared root or is not UTF-8"),
                  "refused");
  }
  if (!f.remove) {
    std::vector<int> new_parents;
    auto dir = OpenFolder(f.path, &new_parents);
    Status st = dir.status();
    for (int fd : new_parents) {
      if (st.ok() && ::fsync(fd) != 0) st = Errno("fsync the folder above " + f.path);
      ::close(fd);
    }
    if (dir.ok()) ::close(dir.value());
    if (!st.ok()) return Answer(f.subscription, f.path, st, dir.ok() ? "failed" : "refused");
    return Answer(f.subscription, f.path, Status::Ok(),
                  new_parents.empty() ? "unchanged" : "created");
  }
  size_t slash = f.path.rfind('/');
  std::string name = slash == std::string::npos ? f.path : f.path.substr(slash + 1);
  auto parent = OpenFolder(slash == std::string::npos ? "" : f.path.substr(0, slash), nullptr);
  if (!parent.ok()) {
    if (parent.status().code() == StatusCode::kNotFound) {
      return Answer(f.subscription, f.path, Status::Ok(), "deleted");
    }
    return Answer(f.subscription, f.path, parent.status(), "refused");
  }
  UniqueFd parent_fd(parent.value());
  // Part files left in the folder are ours; anything else is the consumer's and keeps it.
  if (int fd = ::openat(parent_fd.get(), name.c_str(), kOpenDir); fd >= 0) {
    if (DIR* d = ::fdopendir(fd)) {
      std::vector<std::string> parts;
      while (dirent* e = ::readdir(d)) {
        if (IsPartName(e->d_name)) parts.emplace_back(e->d_name);
      }
      for (const std::string& p : parts) ::unlinkat(::dirfd(d), p.c_str(), 0);
      ::closedir(d);
    } else {
      ::close(fd);
    }
  }
  if (::unlinkat(parent_fd.get(), name.c_str(), AT_REMOVEDIR) != 0) {
    if (errno == ENOENT) return Answer(f.subscription, f.path, Status::Ok(), "deleted");
    if (errno == ENOTEMPTY || errno == EEXIST) {
      FileResult r = Outcome(f.subscription, f.path, Status::Ok(), "kept");
      r.error = "not empty: it holds files that were not delivered by this subscription";
      ready_.push_back(r);
      return;
    }
    return Answer(f.subscription, f.path, Errno("remove folder " + f.path), "failed");
  }
  if (::fsync(parent_fd.get()) != 0) {
    return Answer(f.subscription, f.path, Errno("fsync directory of " + f.path), "failed");
  }
  Answer(f.subscription, f.path, Status::Ok(), "deleted");
}

void FileReceiver::Sweep(const FileSweep& s) {
  Settle(true, true);
  int removed = IsSafeRelativePath(s.path) ? SweepParts(s.path) : 0;
  if (removed > 0) {
    LOG_INFO("removed " << removed << " stale part file(s) under '" << s.path << "' ("
                        << s.subscription << ")");
  }
  Answer(s.subscription, s.path, Status::Ok(), "swept");
}

int FileReceiver::SweepParts(const std::string& path) {
  // Part files of transfers in progress (other subscriptions) stay.
  std::vector<std::pair<std::pair<dev_t, ino_t>, std::string>> active;
  for (const auto& [key, t] : transfers_) {
    struct stat st {};
    if (::fstat(t->target.dir.get(), &st) == 0) {
      active.push_back({{st.st_dev, st.st_ino}, t->part_name});
    }
  }
  auto top = path.empty() || IsSafeRelativePath(path)
                 ? OpenFolder(path, nullptr)
                 : Result<int>(InvalidArgument("bad sweep path"));
  int removed = 0;
  if (!top.ok()) return removed;
  std::vector<int> stack{top.value()};
  while (!stack.empty()) {
    int fd = stack.back();
    stack.pop_back();
    DIR* d = ::fdopendir(fd);
    if (d == nullptr) {
      ::close(fd);
      continue;
    }
    struct stat dir_st {};
    ::fstat(fd, &dir_st);
    std::vector<std::string> parts;
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      if (IsPartName(name)) {
        auto id = std::make_pair(std::make_pair(dir_st.st_dev, dir_st.st_ino), name);
        if (std::find(active.begin(), active.end(), id) == active.end()) parts.push_back(name);
        continue;
      }
      if (e->d_type == DT_DIR || e->d_type == DT_UNKNOWN) {
        int sub = ::openat(::dirfd(d), name.c_str(), kOpenDir);
        if (sub >= 0) stack.push_back(sub);
      }
    }
    for (const std::string& p : parts) {
      if (::unlinkat(::dirfd(d), p.c_str(), 0) == 0) ++removed;
    }
    ::closedir(d);
  }
  return removed;
}

void FileReceiver::BeginRun(const FileRunBegin& b) {
  Settle(true, true);  // answers of earlier runs go out before "begun"
  for (auto it = transfers_.begin(); it != transfers_.end();) {
    if (it->second->meta.subscription == b.subscription) {
      it = DropTransfer(it);
    } else {
      ++it;
    }
  }
  Answer(b.subscription, "", Status::Ok(), "begun");
}

void FileReceiver::AbandonTransfers() {
  for (auto it = transfers_.begin(); it != transfers_.end();) it = DropTransfer(it);
}

void FileReceiver::ForgetTransfers(const std::string& subscription) {
  Settle(true, true);
  for (auto it = transfers_.begin(); it != transfers_.end();) {
    if (it->second->meta.subscription != subscription) {
      ++it;
      continue;
    }
    Transfer* t = it->second.get();
    if (t->ticket) (void)chunks_.Wait(t->ticket);
    ::unlinkat(t->target.dir.get(), t->part_name.c_str(), 0);
    it = transfers_.erase(it);
  }
}

Status FileReceiver::RemoveFile(const std::string& path, bool* refused) {
  *refused = false;
  auto target = Resolve(path, false);
  if (!target.ok()) {
    if (target.status().code() == StatusCode::kNotFound) return Status::Ok();
    *refused = true;
    return target.status();
  }
  RemoveParts(*target, "");
  if (::unlinkat(target->dir.get(), target->name.c_str(), 0) == 0) {
    if (::fsync(target->dir.get()) != 0) return Errno("fsync directory of " + path);
  } else if (errno != ENOENT) {
    return Errno("delete " + path);
  }
  return Status::Ok();
}

FileReceiver::TransferMap::iterator FileReceiver::DropTransfer(TransferMap::iterator it) {
  if (it->second->ticket) (void)chunks_.Wait(it->second->ticket);  // its part file keeps them
  return transfers_.erase(it);
}

}  // namespace dx::agent
