#include "agent/file_receiver.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

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

// The hidden file beside the target that receives the bytes; `version` tells apart transfers
// of different content to one path.
std::string PartName(const std::string& name, const std::string& version) {
  return "." + name + "." + Sha256::Hex(version).substr(0, 16) + ".dxpart";
}

}  // namespace

struct FileReceiver::Target {
  UniqueFd dir;
  std::string path;  // as given
  std::string name;  // last component
};

struct FileReceiver::Transfer {
  FileMeta meta;
  std::string part_name;
  Target target;
  UniqueFd part;
  Sha256 hash;
  uint64_t next_offset = 0;
  Status error;  // first failure; reported at commit
};

FileReceiver::FileReceiver(std::string shared_root, unsigned mode, Recorder recorder)
    : shared_root_(std::move(shared_root)), mode_(mode), recorder_(std::move(recorder)) {
  if (shared_root_.empty()) return;  // a tables-only agent: every file is refused
  root_fd_ = ::open(shared_root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root_fd_ < 0)
    LOG_ERROR("cannot open shared root " << shared_root_ << ": " << std::strerror(errno));
}

FileReceiver::~FileReceiver() {
  for (Deferred& d : deferred_) {
    if (d.part_fd >= 0) ::close(d.part_fd);
    if (d.dir_fd >= 0) ::close(d.dir_fd);
  }
  transfer_.reset();
  if (root_fd_ >= 0) ::close(root_fd_);
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

Result<FileReceiver::Target> FileReceiver::Resolve(const std::string& path, bool create_dirs) {
  if (shared_root_.empty()) {
    return FailedPrecondition(
        "this agent takes no files: its config has no files.shared_root (add one to deliver "
        "file subscriptions)");
  }
  if (root_fd_ < 0) return Unavailable("shared root " + shared_root_ + " is not available");
  if (!IsSafeRelativePath(path)) {
    return InvalidArgument("path '" + path + "' would leave the shared root");
  }
  std::vector<std::string> parts = SplitPath(path);
  Target t;
  t.path = path;
  t.name = parts.back();
  t.dir = UniqueFd(::openat(root_fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  std::string walked;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    walked += (walked.empty() ? "" : "/") + parts[i];
    int fd =
        ::openat(t.dir.get(), parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create_dirs) {
      if (::mkdirat(t.dir.get(), parts[i].c_str(), 0750) != 0 && errno != EEXIST) {
        return Errno("create directory " + walked);
      }
      fd = ::openat(t.dir.get(), parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) {
      if (errno == ENOENT) return NotFound("'" + walked + "' does not exist");
      struct stat st {};
      if (::fstatat(t.dir.get(), parts[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISLNK(st.st_mode)) {
        return PermissionDenied("'" + walked + "' is a symbolic link inside the shared root");
      }
      return Errno("open directory " + walked);
    }
    t.dir = UniqueFd(fd);
  }
  struct stat st {};
  if (::fstatat(t.dir.get(), t.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISLNK(st.st_mode)) {
      return PermissionDenied("'" + path + "' is a symbolic link inside the shared root");
    }
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
  UniqueFd fd(::openat(t.dir.get(), t.name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) return false;
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

Status FileReceiver::Finish(Target& t, int fd, const std::string& part, const std::string& expected,
                            Sha256& hash, bool sync_dir) {
  std::string got = hash.FinishHex();
  if (got != expected) {
    ::unlinkat(t.dir.get(), part.c_str(), 0);
    return DataLoss("SHA-256 of '" + t.path + "' is " + got + ", expected " + expected);
  }
  if (::fchmod(fd, mode_) != 0) return Errno("chmod " + t.path);
  if (::fsync(fd) != 0) return Errno("fsync " + t.path);
  if (::renameat(t.dir.get(), part.c_str(), t.dir.get(), t.name.c_str()) != 0) {
    return Errno("rename into " + t.path);
  }
  if (sync_dir && ::fsync(t.dir.get()) != 0) return Errno("fsync directory of " + t.path);
  return Status::Ok();
}

FileResult FileReceiver::Put(const FilePut& put) {
  PutDeferred(put);
  std::vector<FileResult> results = FlushDeferred();
  return results.back();
}

void FileReceiver::PutDeferred(const FilePut& put) {
  const FileMeta& m = put.meta;
  Deferred d;
  d.record = {m.subscription, m.path, m.size, m.sha256, false};
  auto done = [&](FileResult r) {
    d.result = std::move(r);
    deferred_.push_back(std::move(d));
  };
  auto target = Resolve(m.path, true);
  if (!target.ok()) return done(Outcome(m.subscription, m.path, target.status(), "refused"));
  std::string decoded;
  std::string_view data = put.data;
  if (put.compressed) {
    auto raw = Decompress(put.data, m.size);
    if (!raw.ok()) return done(Outcome(m.subscription, m.path, raw.status(), "failed"));
    decoded = std::move(raw).value();
    data = decoded;
  }
  if (data.size() != m.size) {
    return done(Outcome(m.subscription, m.path,
                        DataLoss("file holds " + std::to_string(data.size()) + " bytes, " +
                                 std::to_string(m.size) + " announced"),
                        "failed"));
  }
  if (HoldsExactly(*target, m.size, m.sha256)) {
    return done(Outcome(m.subscription, m.path, Status::Ok(), "unchanged"));
  }
  const std::string part = PartName(target->name, m.sha256);
  UniqueFd fd(::openat(target->dir.get(), part.c_str(),
                       O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (fd.get() < 0)
    return done(Outcome(m.subscription, m.path, Errno("create " + m.path), "failed"));
  Sha256 hash;
  hash.Update(data);
  Status st = WriteAll(fd.get(), data, 0, m.path);
  if (st.ok() && hash.FinishHex() != m.sha256) {
    st = DataLoss("SHA-256 of '" + m.path + "' does not match");
  }
  if (st.ok() && ::fchmod(fd.get(), mode_) != 0) st = Errno("chmod " + m.path);
  if (!st.ok()) {
    ::unlinkat(target->dir.get(), part.c_str(), 0);  // a small file is sent whole next time
    return done(Outcome(m.subscription, m.path, st, "failed"));
  }
  // fsync, rename and the directory fsync happen at FlushDeferred, for the whole group.
  d.part_fd = fd.release();
  d.part_name = part;
  d.final_name = target->name;
  d.dir_fd = target->dir.release();
  done(Outcome(m.subscription, m.path, Status::Ok(), "written"));
}

std::vector<FileResult> FileReceiver::FlushDeferred() {
  // 1. fsync the group's files in parallel: the filesystem journal commits concurrent fsyncs
  //    together, which a one-at-a-time loop cannot get.
  std::vector<int> errors(deferred_.size(), 0);
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i = next++; i < deferred_.size(); i = next++) {
      if (deferred_[i].part_fd >= 0 && ::fsync(deferred_[i].part_fd) != 0) errors[i] = errno;
    }
  };
  size_t parallel = std::min<size_t>(8, deferred_.size());
  std::vector<std::thread> threads;
  for (size_t t = 1; t < parallel; ++t) threads.emplace_back(worker);
  worker();
  for (std::thread& t : threads) t.join();
  // 2. Rename each durable file into place, 3. fsync each directory once, 4. record them.
  std::vector<FileResult> results;
  std::vector<ReceivedFile> records;
  std::vector<std::pair<dev_t, ino_t>> synced;
  for (size_t i = 0; i < deferred_.size(); ++i) {
    Deferred& d = deferred_[i];
    if (d.part_fd >= 0) {
      ::close(d.part_fd);
      d.part_fd = -1;
      errno = errors[i];
      if (errors[i] != 0) {
        ::unlinkat(d.dir_fd, d.part_name.c_str(), 0);
        d.result = Outcome(d.result.subscription, d.result.path, Errno("fsync " + d.result.path),
                           "failed");
      } else if (::renameat(d.dir_fd, d.part_name.c_str(), d.dir_fd, d.final_name.c_str()) != 0) {
        d.result = Outcome(d.result.subscription, d.result.path,
                           Errno("rename into " + d.result.path), "failed");
      }
    }
    if (d.dir_fd >= 0) {
      struct stat st {};
      ::fstat(d.dir_fd, &st);
      auto id = std::make_pair(st.st_dev, st.st_ino);
      bool done = std::find(synced.begin(), synced.end(), id) != synced.end();
      if (!done && ::fsync(d.dir_fd) != 0) {
        d.result = Outcome(d.result.subscription, d.result.path,
                           Errno("fsync directory of " + d.result.path), "failed");
      } else {
        synced.push_back(id);
      }
      ::close(d.dir_fd);
      d.dir_fd = -1;
    }
    if (d.result.code == StatusCode::kOk) records.push_back(d.record);
  }
  Status recorded = records.empty() ? Status::Ok() : recorder_(records);
  for (Deferred& d : deferred_) {
    if (!recorded.ok() && d.result.code == StatusCode::kOk) {
      d.result = Outcome(d.result.subscription, d.result.path, recorded, "failed");
    }
    results.push_back(std::move(d.result));
  }
  deferred_.clear();
  return results;
}

void FileReceiver::AbandonTransfer() { transfer_.reset(); }

FileResume FileReceiver::Offer(const FileMeta& m) {
  AbandonTransfer();
  FileResume r;
  r.subscription = m.subscription;
  r.path = m.path;
  auto target = Resolve(m.path, true);
  if (!target.ok()) {
    FileResult refused = Outcome(m.subscription, m.path, target.status(), "refused");
    r.code = refused.code;
    r.error = refused.error;
    return r;
  }
  if (!m.sha256.empty() && HoldsExactly(*target, m.size, m.sha256)) {
    Status st = recorder_({{m.subscription, m.path, m.size, m.sha256, false}});
    r.code = st.code();
    r.error = st.ok() ? "" : st.message();
    r.complete = true;
    return r;
  }
  auto t = std::make_unique<Transfer>();
  t->meta = m;
  t->part_name = PartName(target->name, m.version.empty() ? m.sha256 : m.version);
  const std::string& part = t->part_name;
  t->part = UniqueFd(
      ::openat(target->dir.get(), part.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (t->part.get() < 0) {
    Status st = Errno("create " + m.path);
    r.code = st.code();
    r.error = st.message();
    return r;
  }
  struct stat st {};
  ::fstat(t->part.get(), &st);
  // Resume at the last whole chunk: a chunk cut off by a crash is sent again.
  uint64_t have = std::min<uint64_t>(static_cast<uint64_t>(st.st_size), m.size);
  uint64_t offset = have / kFileChunkBytes * kFileChunkBytes;
  if (::ftruncate(t->part.get(), static_cast<off_t>(offset)) != 0) offset = 0;
  std::string buf(kFileChunkBytes, '\0');
  for (uint64_t pos = 0; pos < offset;) {
    ssize_t n = ::pread(t->part.get(), buf.data(), buf.size(), static_cast<off_t>(pos));
    if (n <= 0) {  // unreadable part: start over
      offset = 0;
      t->hash.FinishHex();
      (void)::ftruncate(t->part.get(), 0);
      break;
    }
    t->hash.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
    pos += static_cast<uint64_t>(n);
  }
  if (offset > 0) LOG_INFO("resuming '" << m.path << "' at byte " << offset << " of " << m.size);
  t->next_offset = offset;
  t->target = std::move(target).value();
  transfer_ = std::move(t);
  r.offset = offset;
  return r;
}

void FileReceiver::Chunk(const FileChunk& c) {
  Transfer* t = transfer_.get();
  if (t == nullptr || c.path != t->meta.path || !t->error.ok()) return;
  if (c.offset != t->next_offset) {
    t->error = DataLoss("chunk at byte " + std::to_string(c.offset) + " of '" + c.path +
                        "', expected byte " + std::to_string(t->next_offset));
    return;
  }
  std::string decoded;
  std::string_view data = c.data;
  if (c.compressed) {
    auto raw = Decompress(c.data, kFileChunkBytes);
    if (!raw.ok()) {
      t->error = raw.status();
      return;
    }
    decoded = std::move(raw).value();
    data = decoded;
  }
  if (t->next_offset + data.size() > t->meta.size) {
    t->error = DataLoss("'" + c.path + "' grows past its announced size");
    return;
  }
  Status st = WriteAll(t->part.get(), data, c.offset, c.path);
  if (!st.ok()) {
    t->error = st;  // the .dxpart file keeps what was written; the next offer resumes
    return;
  }
  t->hash.Update(data);
  t->next_offset += data.size();
}

FileResult FileReceiver::Commit(const FileCommit& c) {
  Transfer* t = transfer_.get();
  if (t == nullptr || c.path != t->meta.path) {
    return Outcome(c.subscription, c.path,
                   FailedPrecondition("no transfer of '" + c.path + "' under way"), "failed");
  }
  Status st = t->error;
  if (st.ok() && t->next_offset != t->meta.size) {
    st = DataLoss("'" + c.path + "' ended at byte " + std::to_string(t->next_offset) + " of " +
                  std::to_string(t->meta.size));
  }
  const std::string expected = t->meta.sha256.empty() ? c.sha256 : t->meta.sha256;
  if (st.ok() && expected != c.sha256)
    st = DataLoss("'" + c.path + "' changed during the transfer");
  if (st.ok()) st = Finish(t->target, t->part.get(), t->part_name, expected, t->hash, true);
  FileMeta meta = t->meta;
  AbandonTransfer();
  if (!st.ok()) return Outcome(c.subscription, c.path, st, "failed");
  st = recorder_({{meta.subscription, meta.path, meta.size, expected, false}});
  return Outcome(c.subscription, c.path, st, "written");
}

FileResult FileReceiver::Copy(const FileCopy& c) {
  const FileMeta& m = c.meta;
  auto target = Resolve(m.path, true);
  if (!target.ok()) return Outcome(m.subscription, m.path, target.status(), "refused");
  if (HoldsExactly(*target, m.size, m.sha256)) {
    Status st = recorder_({{m.subscription, m.path, m.size, m.sha256, false}});
    return Outcome(m.subscription, m.path, st, "unchanged");
  }
  auto need_data = [&](const std::string& why) {
    FileResult r = Outcome(m.subscription, m.path, Status::Ok(), "need_data");
    r.code = StatusCode::kFailedPrecondition;
    r.error = why;
    return r;
  };
  auto source = Resolve(c.from_path, false);
  if (!source.ok()) return need_data(source.status().message());
  UniqueFd in(::openat(source->dir.get(), source->name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (in.get() < 0) return need_data("cannot open '" + c.from_path + "'");
  const std::string part = PartName(target->name, m.sha256);
  UniqueFd out(::openat(target->dir.get(), part.c_str(),
                        O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (out.get() < 0) return Outcome(m.subscription, m.path, Errno("create " + m.path), "failed");
  Sha256 hash;
  std::string buf(kFileChunkBytes, '\0');
  uint64_t copied = 0;
  Status st;
  while (st.ok()) {
    ssize_t n = ::read(in.get(), buf.data(), buf.size());
    if (n < 0) st = Errno("read " + c.from_path);
    if (n <= 0) break;
    std::string_view data(buf.data(), static_cast<size_t>(n));
    hash.Update(data);
    st = WriteAll(out.get(), data, copied, m.path);
    copied += static_cast<uint64_t>(n);
  }
  if (st.ok() && copied != m.size) {
    ::unlinkat(target->dir.get(), part.c_str(), 0);
    return need_data("'" + c.from_path + "' no longer holds that content");
  }
  if (st.ok()) {
    st = Finish(*target, out.get(), part, m.sha256, hash, true);
    if (st.code() == StatusCode::kDataLoss) return need_data("'" + c.from_path + "' changed");
  }
  if (!st.ok()) {
    ::unlinkat(target->dir.get(), part.c_str(), 0);
    return Outcome(m.subscription, m.path, st, "failed");
  }
  st = recorder_({{m.subscription, m.path, m.size, m.sha256, false}});
  return Outcome(m.subscription, m.path, st, "copied");
}

FileResult FileReceiver::Delete(const FileDelete& d) {
  auto target = Resolve(d.path, false);
  if (!target.ok()) {
    if (target.status().code() != StatusCode::kNotFound) {
      return Outcome(d.subscription, d.path, target.status(), "refused");
    }
  } else if (::unlinkat(target->dir.get(), target->name.c_str(), 0) == 0) {
    if (::fsync(target->dir.get()) != 0) {
      return Outcome(d.subscription, d.path, Errno("fsync directory of " + d.path), "failed");
    }
  } else if (errno != ENOENT) {
    return Outcome(d.subscription, d.path, Errno("delete " + d.path), "failed");
  }
  Status st = recorder_({{d.subscription, d.path, 0, "", true}});
  return Outcome(d.subscription, d.path, st, "deleted");
}

}  // namespace dx::agent
