#include "scheduler/file_run.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <thread>

#include "common/ascii.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/wire.h"

namespace dx::scheduler {
namespace {

using std::chrono::seconds;

// Paces sending to a bandwidth cap (kilobits per second); 0 means no cap.
class RateLimiter {
 public:
  explicit RateLimiter(int64_t kbps) : bytes_per_s_(static_cast<double>(kbps) * 1000.0 / 8.0) {}
  void Wait(size_t bytes) {
    if (bytes_per_s_ <= 0) return;
    sent_ += static_cast<double>(bytes);
    std::this_thread::sleep_until(start_ +
                                  std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                      std::chrono::duration<double>(sent_ / bytes_per_s_)));
  }

 private:
  double bytes_per_s_;
  double sent_ = 0;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

class InputFile {
 public:
  explicit InputFile(const std::string& path)
      : fd_(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) {}
  ~InputFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  // Reads up to buf->size() bytes at `offset`; resizes *buf to what was read.
  Status ReadAt(uint64_t offset, std::string* buf, const std::string& what) {
    size_t want = buf->size();
    size_t got = 0;
    while (got < want) {
      ssize_t n = ::pread(fd_, buf->data() + got, want - got, static_cast<off_t>(offset + got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Unavailable("read " + what + ": " + std::strerror(errno));
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    buf->resize(got);
    return Status::Ok();
  }

 private:
  int fd_;
};

Result<std::string> HashFile(const std::string& path, uint64_t size) {
  InputFile in(path);
  if (!in.ok()) return Unavailable("cannot open " + path + ": " + std::strerror(errno));
  Sha256 hash;
  std::string buf;
  for (uint64_t off = 0; off < size; off += kFileChunkBytes) {
    buf.resize(kFileChunkBytes);
    DX_RETURN_IF_ERROR(in.ReadAt(off, &buf, path));
    if (buf.empty()) break;
    hash.Update(buf);
  }
  return hash.FinishHex();
}

// Compresses `raw` when that pays (at least 10% smaller); sets *compressed.
std::string MaybeCompress(const std::string& raw, bool try_it, int level, bool* compressed) {
  *compressed = false;
  if (!try_it || raw.size() < 512) return raw;
  auto packed = Compress(raw, level);
  if (packed.ok() && packed->size() < raw.size() / 10 * 9) {
    *compressed = true;
    return std::move(packed).value();
  }
  return raw;
}

std::string JoinPath(const std::string& a, const std::string& b) { return a + "/" + b; }

}  // namespace

bool WorthCompressing(const std::string& path) {
  static const char* kPacked[] = {".zip", ".gz",   ".tgz",  ".bz2",  ".xz",  ".zst",  ".7z",
                                  ".rar", ".jpg",  ".jpeg", ".png",  ".gif", ".webp", ".heic",
                                  ".mp3", ".mp4",  ".m4a",  ".mov",  ".avi", ".mkv",  ".webm",
                                  ".pdf", ".docx", ".xlsx", ".pptx", ".odt", ".ods",  ".jar"};
  std::string lower = AsciiLower(path);
  for (const char* ext : kPacked) {
    size_t n = std::strlen(ext);
    if (lower.size() >= n && lower.compare(lower.size() - n, n, ext) == 0) return false;
  }
  return true;
}

bool MatchesPatterns(const std::string& rel, const CatalogEntry& entry) {
  std::string base = rel.substr(rel.rfind('/') == std::string::npos ? 0 : rel.rfind('/') + 1);
  auto match = [&](const std::string& pattern) {
    if (pattern.find('/') == std::string::npos)
      return fnmatch(pattern.c_str(), base.c_str(), 0) == 0;
    return fnmatch(pattern.c_str(), rel.c_str(), FNM_PATHNAME) == 0;
  };
  if (!entry.include.empty() && std::none_of(entry.include.begin(), entry.include.end(), match)) {
    return false;
  }
  return std::none_of(entry.exclude.begin(), entry.exclude.end(), match);
}

Result<std::vector<SourceFile>> ListResourceFiles(const CatalogEntry& entry) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(entry.directory, ec)) {
    return Unavailable("directory " + entry.directory + " of '" + entry.name + "' is not there");
  }
  std::vector<SourceFile> files;
  auto consider = [&](const fs::directory_entry& e) {
    if (e.is_symlink(ec) || !e.is_regular_file(ec)) return;
    std::string rel = fs::relative(e.path(), entry.directory, ec).generic_string();
    if (ec || !MatchesPatterns(rel, entry)) return;
    struct stat st {};
    if (::lstat(e.path().c_str(), &st) != 0) return;
    files.push_back({rel, static_cast<uint64_t>(st.st_size),
                     static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec});
  };
  if (entry.recursive) {
    for (auto it = fs::recursive_directory_iterator(entry.directory, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      consider(*it);
    }
  } else {
    for (auto it = fs::directory_iterator(entry.directory, ec);
         !ec && it != fs::directory_iterator(); it.increment(ec)) {
      consider(*it);
    }
  }
  if (ec) return Unavailable("listing " + entry.directory + ": " + ec.message());
  std::sort(files.begin(), files.end(),
            [](const SourceFile& a, const SourceFile& b) { return a.path < b.path; });
  return files;
}

Status FileRun::Transfer(const Subscription& sub, const CatalogEntry& entry, int64_t bandwidth_kbps,
                         AgentSession& session, uint64_t attempt, bool reset, RunRecord* run,
                         const std::function<Status()>& record_run) {
  const auto timeout = seconds(options_.ack_timeout_s);
  if (reset) DX_RETURN_IF_ERROR(store_.ClearDeliveredFiles(sub.name));
  DX_ASSIGN_OR_RETURN(std::vector<SourceFile> files, ListResourceFiles(entry));
  DX_ASSIGN_OR_RETURN(std::vector<DeliveredFile> delivered_list,
                      store_.ListDeliveredFiles(sub.name));
  std::map<std::string, DeliveredFile> delivered;
  for (DeliveredFile& d : delivered_list) delivered[d.path] = std::move(d);

  RateLimiter limiter(bandwidth_kbps);
  int failed = 0;
  std::string first_error;
  // Records the outcome of one file: the receipt line, and the delivery when it succeeded.
  auto settle = [&](const DeliveredFile& file, const FileResult& result, int64_t bytes) -> Status {
    DX_RETURN_IF_ERROR(record_run());
    FileReceipt receipt{file.path, file.size, file.sha256, result.outcome, result.error, bytes};
    if (result.code == StatusCode::kOk) {
      if (receipt.outcome == "written") receipt.outcome = bytes > 0 ? "sent" : "unchanged";
      if (result.outcome == "deleted") {
        DX_RETURN_IF_ERROR(store_.DeleteDeliveredFile(sub.name, file.path));
      } else {
        DX_RETURN_IF_ERROR(store_.PutDeliveredFile(sub.agent, file));
      }
    } else {
      receipt.outcome = result.outcome == "refused" ? "refused" : "failed";
      ++failed;
      if (first_error.empty()) first_error = file.path + ": " + result.error;
    }
    run->rows += 1;
    return store_.AddReceipt(run->id, receipt);
  };
  auto send = [&](MessageType type, const std::string& payload) -> Status {
    limiter.Wait(payload.size());
    run->bytes += static_cast<int64_t>(payload.size());
    return session.Send(type, payload);
  };

  // Small files travel whole, several in flight; their results come back in order.
  struct Pending {
    DeliveredFile file;
    int64_t bytes;
  };
  std::deque<Pending> pending;
  auto drain_one = [&]() -> Status {
    DX_ASSIGN_OR_RETURN(FileResult result, session.AwaitFileResult(sub.name, timeout));
    Pending p = std::move(pending.front());
    pending.pop_front();
    if (result.path != p.file.agent_path) {
      return DataLoss("agent answered for '" + result.path + "', expected '" + p.file.agent_path +
                      "'");
    }
    return settle(p.file, result, p.bytes);
  };
  // Results are settled in groups, each in one store transaction.
  auto drain = [&](size_t n) -> Status {
    return store_.InTransaction([&]() -> Status {
      for (size_t i = 0; i < n && !pending.empty(); ++i) DX_RETURN_IF_ERROR(drain_one());
      return Status::Ok();
    });
  };
  auto drain_all = [&]() -> Status { return drain(pending.size()); };
  const size_t window = static_cast<size_t>(std::max(options_.window * 32, 32));

  std::string buf;
  for (const SourceFile& f : files) {
    auto known = delivered.find(f.path);
    if (known != delivered.end() && known->second.size == static_cast<int64_t>(f.size) &&
        known->second.mtime_ns == f.mtime_ns) {
      continue;  // delivered and untouched since
    }
    const std::string source_path = JoinPath(entry.directory, f.path);
    DeliveredFile file{
        sub.name,   f.path, JoinPath(sub.target_path, f.path), static_cast<int64_t>(f.size),
        f.mtime_ns, ""};
    FileMeta meta;
    meta.subscription = sub.name;
    meta.run_id = attempt;
    meta.path = file.agent_path;
    meta.size = f.size;
    const bool small = f.size <= kFileChunkBytes;
    std::string content;
    if (small) {
      InputFile in(source_path);
      if (!in.ok()) return Unavailable("cannot open " + source_path + ": " + std::strerror(errno));
      content.resize(f.size);
      DX_RETURN_IF_ERROR(in.ReadAt(0, &content, source_path));
      file.size = static_cast<int64_t>(content.size());
      meta.size = content.size();
      file.sha256 = Sha256::Hex(content);
    } else {
      DX_ASSIGN_OR_RETURN(bool maybe_known,
                          store_.HasDeliveredLike(sub.agent, file.size, f.mtime_ns));
      bool touched = known != delivered.end() && known->second.size == file.size;
      if (maybe_known || touched) {
        DX_ASSIGN_OR_RETURN(file.sha256, HashFile(source_path, f.size));
      }
    }
    meta.sha256 = file.sha256;
    if (known != delivered.end() && !file.sha256.empty() && known->second.sha256 == file.sha256) {
      DX_RETURN_IF_ERROR(store_.PutDeliveredFile(sub.agent, file));  // touched, same content
      continue;
    }
    // The agent may hold this content under another name: copy it there, do not resend it.
    if (!file.sha256.empty()) {
      DX_ASSIGN_OR_RETURN(auto same, store_.FindDeliveredContent(sub.agent, file.sha256));
      if (same && same->agent_path != file.agent_path) {
        DX_RETURN_IF_ERROR(drain_all());
        DX_RETURN_IF_ERROR(send(MessageType::kFileCopy, Encode(FileCopy{meta, same->agent_path})));
        DX_ASSIGN_OR_RETURN(FileResult result, session.AwaitFileResult(sub.name, timeout));
        if (result.outcome != "need_data") {
          DX_RETURN_IF_ERROR(settle(file, result, 0));
          continue;
        }
      }
    }
    if (small) {
      FilePut put;
      put.meta = meta;
      put.data = MaybeCompress(content, WorthCompressing(f.path), options_.compression_level,
                               &put.compressed);
      std::string frame = Encode(put);
      DX_RETURN_IF_ERROR(send(MessageType::kFilePut, frame));
      pending.push_back({file, static_cast<int64_t>(frame.size())});
      if (pending.size() >= window) DX_RETURN_IF_ERROR(drain(window / 4));
      continue;
    }

    // A large file: offer it, then send chunks from where the agent's partial copy ends.
    DX_RETURN_IF_ERROR(drain_all());
    meta.version = file.sha256.empty()
                       ? "size " + std::to_string(f.size) + " mtime " + std::to_string(f.mtime_ns)
                       : file.sha256;
    DX_RETURN_IF_ERROR(send(MessageType::kFileOffer, Encode(meta)));
    DX_ASSIGN_OR_RETURN(FileResume resume, session.AwaitFileResume(sub.name, timeout));
    if (resume.code != StatusCode::kOk) {
      DX_RETURN_IF_ERROR(
          settle(file, FileResult{sub.name, meta.path, resume.code, resume.error, "refused"}, 0));
      continue;
    }
    if (resume.complete) {
      DX_RETURN_IF_ERROR(
          settle(file, FileResult{sub.name, meta.path, StatusCode::kOk, "", "unchanged"}, 0));
      continue;
    }
    InputFile in(source_path);
    if (!in.ok()) return Unavailable("cannot open " + source_path + ": " + std::strerror(errno));
    Sha256 hash;
    bool compress = WorthCompressing(f.path);
    int64_t bytes = 0;
    for (uint64_t off = 0; off < f.size; off += kFileChunkBytes) {
      buf.resize(kFileChunkBytes);
      DX_RETURN_IF_ERROR(in.ReadAt(off, &buf, source_path));
      if (buf.empty()) break;
      if (file.sha256.empty()) hash.Update(buf);
      if (off < resume.offset) continue;  // the agent holds this chunk already
      FileChunk chunk;
      chunk.subscription = sub.name;
      chunk.path = meta.path;
      chunk.offset = off;
      chunk.data = MaybeCompress(buf, compress, options_.compression_level, &chunk.compressed);
      if (!chunk.compressed) compress = false;  // incompressible content: stop trying
      std::string frame = Encode(chunk);
      DX_RETURN_IF_ERROR(send(MessageType::kFileChunk, frame));
      bytes += static_cast<int64_t>(frame.size());
    }
    if (file.sha256.empty()) file.sha256 = hash.FinishHex();
    DX_RETURN_IF_ERROR(
        send(MessageType::kFileCommit, Encode(FileCommit{sub.name, meta.path, file.sha256})));
    DX_ASSIGN_OR_RETURN(FileResult result, session.AwaitFileResult(sub.name, timeout));
    if (resume.offset > 0 && result.outcome == "written") result.outcome = "resumed";
    DX_RETURN_IF_ERROR(settle(file, result, bytes));
  }
  DX_RETURN_IF_ERROR(drain_all());

  if (sub.propagate_deletes) {
    std::map<std::string, bool> present;
    for (const SourceFile& f : files) present[f.path] = true;
    for (const auto& [path, file] : delivered) {
      if (present.count(path)) continue;
      DX_RETURN_IF_ERROR(
          send(MessageType::kFileDelete, Encode(FileDelete{sub.name, attempt, file.agent_path})));
      DX_ASSIGN_OR_RETURN(FileResult result, session.AwaitFileResult(sub.name, timeout));
      DX_RETURN_IF_ERROR(settle(file, result, 0));
    }
  }
  if (failed > 0) {
    return Status(StatusCode::kUnavailable,
                  std::to_string(failed) + " file(s) not delivered; first: " + first_error);
  }
  return Status::Ok();
}

}  // namespace dx::scheduler
