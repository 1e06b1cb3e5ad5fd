#include "scheduler/file_run.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "common/ascii.h"
#include "common/file_path.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/wire.h"
#include "scheduler/catalog/delivery_gate.h"
#include "scheduler/file_listing.h"
#include "scheduler/provider_file.h"

namespace dx::scheduler {
namespace {

using std::chrono::milliseconds;

// Answers outstanding before the scheduler waits for some (small files, and large files
// being made durable), and bytes of small files among them.
constexpr size_t kMaxInFlight = 256;
constexpr int64_t kMaxInFlightBytes = 64 << 20;
// After a run failed, how long answers already on their way are still awaited.
constexpr milliseconds kAbortGrace{5000};

int64_t WallNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
int64_t WallMs() { return WallNs() / 1000000; }

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

// Compresses `raw` when that pays (at least 10% smaller).
bool TryCompress(std::string_view raw, int level, std::string* out) {
  if (raw.size() < 512) return false;
  auto packed = Compress(raw, level);
  if (!packed.ok() || packed->size() >= raw.size() / 10 * 9) return false;
  *out = std::move(packed).value();
  return true;
}

std::string JoinPath(const std::string& a, const std::string& b) {
  return a.empty() ? b : a + "/" + b;
}
std::string Parent(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}
// Delivered folders are recorded under their path with a trailing '/'.
std::string FolderKey(const std::string& path) { return path + "/"; }
bool IsFolderKey(const std::string& key) { return !key.empty() && key.back() == '/'; }

bool SameVersion(const DeliveredFile& d, const FileVersion& v) {
  return d.size == static_cast<int64_t>(v.size) && d.mtime_ns == v.mtime_ns &&
         d.ctime_ns == v.ctime_ns && d.inode == static_cast<int64_t>(v.inode);
}
bool SameVersion(const FileFailure& f, const FileVersion& v) {
  return f.size == static_cast<int64_t>(v.size) && f.mtime_ns == v.mtime_ns &&
         f.ctime_ns == v.ctime_ns && f.inode == static_cast<int64_t>(v.inode);
}

// Names the state a resumable part holds: another state of the file starts over.
std::string VersionToken(const FileVersion& v) {
  return "size " + std::to_string(v.size) + " mtime " + std::to_string(v.mtime_ns) + " ctime " +
         std::to_string(v.ctime_ns) + " inode " + std::to_string(v.inode);
}

// Reads a large file's chunks on its own thread, a few chunks ahead of the sender: each is
// read into a frame (the chunk message's header, then the bytes read in place), checked
// (the file must not have changed) and hashed there, so that reading and hashing overlap with
// encrypting and sending. The file must outlive the reader.
class ChunkReader {
 public:
  struct Chunk {
    uint64_t offset = 0;
    std::string frame;   // an encoded, uncompressed FileChunk
    size_t data_at = 0;  // where its bytes start in `frame`
    size_t size = 0;
    Status status;         // a read error (the file fails) ...
    bool changed = false;  // ... or a change (the file is read again later)
  };

  ChunkReader(const ProviderFile& file, const std::string& subscription, const std::string& path,
              bool hashing)
      : file_(file), subscription_(subscription), path_(path), hashing_(hashing) {
    thread_ = std::thread([this] { Read(); });
  }
  ~ChunkReader() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  // The next chunk, in order; false after the last one (or after a failed one).
  bool Next(Chunk* out) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !ready_.empty() || done_; });
    if (ready_.empty()) return false;
    *out = std::move(ready_.front());
    ready_.pop_front();
    cv_.notify_all();
    return true;
  }
  // The SHA-256 of the whole file, once Next() returned false after the last chunk.
  std::string Hash() { return hash_.FinishHex(); }

 private:
  static constexpr size_t kAhead = 4;

  void Read() {
    const uint64_t size = file_.version().size;
    for (uint64_t off = 0; off < size; off += kFileChunkBytes) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || ready_.size() < kAhead; });
        if (stopping_) break;
      }
      Chunk c;
      c.offset = off;
      c.size = std::min<uint64_t>(kFileChunkBytes, size - off);
      ByteWriter w;
      w.PutString(subscription_);
      w.PutString(path_);
      w.PutVarint(off);
      w.PutU8(0);  // not compressed
      w.PutVarint(c.size);
      c.frame = w.Take();
      c.data_at = c.frame.size();
      c.frame.resize(c.data_at + c.size);
      size_t got = 0;
      c.status = file_.ReadAt(off, c.frame.data() + c.data_at, c.size, &got);
      if (c.status.ok() && got != c.size) {
        c.status = Unavailable(EscapeInvalidUtf8(path_) + " shrank while it was read");
        c.changed = true;
      }
      if (c.status.ok()) {
        c.status = file_.CheckUnchanged();
        c.changed = !c.status.ok();
      }
      const bool failed = !c.status.ok();
      if (!failed && hashing_) hash_.Update(std::string_view(c.frame).substr(c.data_at, c.size));
      std::lock_guard<std::mutex> lock(mu_);
      ready_.push_back(std::move(c));
      cv_.notify_all();
      if (failed) break;
    }
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    cv_.notify_all();
  }

  const ProviderFile& file_;
  const std::string subscription_;
  const std::string path_;
  const bool hashing_;
  Sha256 hash_;  // written by the reading thread until done_
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Chunk> ready_;
  bool done_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

// The state of one run.
class Runner {
 public:
  Runner(Store& store, const ExchangeOptions& options, const Subscription& sub,
         const CatalogEntry& entry, int64_t bandwidth_kbps, AgentSession& session, uint64_t attempt,
         RunRecord* run, const std::function<Status()>& record_run)
      : store_(store),
        options_(options),
        files_(options.files),
        sub_(sub),
        entry_(entry),
        session_(session),
        attempt_(attempt),
        run_(run),
        record_run_(record_run),
        limiter_(bandwidth_kbps),
        timeout_(std::chrono::seconds(options.ack_timeout_s)),
        manual_(run->trigger == "manual" || run->trigger == "resync") {}

  Status Run(bool reset) {
    Status st = Deliver(reset);
    if (!st.ok()) Unconfirmed();
    return st;
  }

 private:
  // What waits for the agent's answer, by agent path.
  struct InFlight {
    enum Kind { kFile, kCopy, kDelete, kFolder, kUnfolder, kSweep } kind = kFile;
    DeliveredFile file;  // recorded when it lands (path "x/" for a folder)
    FileVersion version;
    SourceFile source;  // to send the data when a copy cannot be made
    int64_t bytes = 0;
    bool resumed = false;
  };

  Status Deliver(bool reset) {
    if (reset) {
      DX_RETURN_IF_ERROR(store_.ClearDeliveredFiles(sub_.name));
      DX_RETURN_IF_ERROR(store_.ClearFileFailures(sub_.name));
    }
    DX_ASSIGN_OR_RETURN(listing_, ListResourceFiles(entry_));
    DX_ASSIGN_OR_RETURN(std::vector<DeliveredFile> delivered, store_.ListDeliveredFiles(sub_.name));
    for (DeliveredFile& d : delivered) delivered_[d.path] = std::move(d);
    DX_ASSIGN_OR_RETURN(std::vector<FileFailure> failures, store_.ListFileFailures(sub_.name));
    for (FileFailure& f : failures) failures_[f.path] = std::move(f);

    PlanDeletions();
    if (sub_.propagate_deletes && !mass_delete_) DX_RETURN_IF_ERROR(ResolveConflicts());
    for (const SourceFile& f : listing_.files) DX_RETURN_IF_ERROR(Consider(f, false, false));
    DX_RETURN_IF_ERROR(SendOffered());  // the last large file
    for (const SourceFolder& f : listing_.folders) {
      if (f.leaf && !delivered_.count(FolderKey(f.path))) DX_RETURN_IF_ERROR(CreateFolder(f));
    }
    for (const ListingProblem& p : listing_.problems) DX_RETURN_IF_ERROR(Problem(p));
    DX_RETURN_IF_ERROR(SecondPass());
    DX_RETURN_IF_ERROR(AwaitAll());
    if (sub_.propagate_deletes && !mass_delete_) DX_RETURN_IF_ERROR(Delete());
    DX_RETURN_IF_ERROR(ForgetOldFailures());
    if (mass_delete_) return MassDeleteRefused();
    if (failed_ + waiting_ > 0) {
      run_->status = "partial";
      run_->retry_at_ms = retry_at_ms_;
      run_->error = std::to_string(failed_ + waiting_) + " of " +
                    std::to_string(listing_.files.size() + listing_.problems.size()) +
                    " file(s) not delivered (" + std::to_string(failed_) + " failed in this run, " +
                    std::to_string(waiting_) + " waiting to be retried); first: " + first_error_;
      return Status::Ok();
    }
    // Part files no transfer can resume any more are removed after a complete run that did
    // something, or that follows a failure or an operator's request (not after empty polls).
    if (run_->rows > 0 || forgot_failures_ || run_->trigger != "schedule") {
      DX_RETURN_IF_ERROR(Sweep());
    }
    return Status::Ok();
  }

  // --- what the run will delete, and the guard against deleting too much ----------------

  void PlanDeletions() {
    std::set<std::string> listed_files;
    for (const SourceFile& f : listing_.files) listed_files.insert(f.path);
    auto add_with_parents = [](std::set<std::string>& set, std::string path) {
      while (!path.empty() && set.insert(path).second) path = Parent(path);
    };
    for (const SourceFile& f : listing_.files) add_with_parents(present_folders_, Parent(f.path));
    for (const SourceFolder& f : listing_.folders) add_with_parents(present_folders_, f.path);
    for (const ListingProblem& p : listing_.problems) {
      if (p.folder) unlisted_.push_back(p.path);
      add_with_parents(present_folders_, p.folder ? p.path : Parent(p.path));
    }
    auto protected_path = [&](const std::string& path) {
      for (const std::string& u : unlisted_) {
        if (IsSameOrUnder(path, u)) return true;
      }
      return false;
    };
    std::set<std::string> held_folders;  // folders the consumer has from this subscription
    size_t delivered_files = 0;
    for (const auto& [key, d] : delivered_) {
      if (IsFolderKey(key)) {
        add_with_parents(held_folders, key.substr(0, key.size() - 1));
        continue;
      }
      ++delivered_files;
      add_with_parents(held_folders, Parent(key));
      if (!listed_files.count(key) && !protected_path(key)) doomed_files_.push_back(key);
    }
    for (const std::string& folder : held_folders) {
      if (!present_folders_.count(folder) && !protected_path(folder)) {
        doomed_folders_.push_back(folder);
      }
    }
    // Deepest first, so that each folder is empty when its turn comes.
    std::sort(doomed_folders_.begin(), doomed_folders_.end(),
              [](const std::string& a, const std::string& b) {
                return std::count(a.begin(), a.end(), '/') > std::count(b.begin(), b.end(), '/');
              });
    int limit = sub_.max_delete_percent >= 0 ? sub_.max_delete_percent : files_.max_delete_percent;
    size_t doomed = doomed_files_.size();
    if (sub_.propagate_deletes && doomed > 0 && doomed * 100 > delivered_files * limit) {
      if (sub_.allow_mass_delete) {
        LOG_WARN(sub_.name << ": deleting " << doomed << " of " << delivered_files
                           << " files at the consumer, as confirmed by an operator");
      } else {
        mass_delete_ = true;
        mass_delete_text_ =
            "refusing to delete " + std::to_string(doomed) + " of " +
            std::to_string(delivered_files) + " files at the consumer (more than " +
            std::to_string(limit) + "%): " +
            (listing_.files.empty() ? "the provider directory " + entry_.directory +
                                          " is empty - is its share mounted?"
                                    : "check the provider directory " + entry_.directory) +
            "; if the deletions are meant, run `dxctl run " + sub_.name + " --allow-mass-delete`";
      }
    }
  }

  Status MassDeleteRefused() {
    LOG_WARN(sub_.name << ": " << mass_delete_text_);
    return FailedPrecondition(mass_delete_text_);
  }

  // A file where the consumer has a folder from this subscription (or the reverse): the old
  // one is deleted first, so the new one can take its place.
  Status ResolveConflicts() {
    std::set<std::string> listed_files;
    for (const SourceFile& f : listing_.files) listed_files.insert(f.path);
    std::vector<std::string> files;
    std::vector<std::string> folders;
    for (const std::string& key : doomed_files_) {
      bool in_the_way = present_folders_.count(key) > 0;
      for (std::string p = Parent(key); !in_the_way && !p.empty(); p = Parent(p)) {
        in_the_way = listed_files.count(p) > 0;
      }
      if (in_the_way) files.push_back(key);
    }
    for (const std::string& folder : doomed_folders_) {
      bool in_the_way = false;
      for (std::string p = folder; !in_the_way && !p.empty(); p = Parent(p)) {
        in_the_way = listed_files.count(p) > 0;
      }
      if (in_the_way) folders.push_back(folder);
    }
    if (files.empty() && folders.empty()) return Status::Ok();
    for (const std::string& key : files) DX_RETURN_IF_ERROR(SendDelete(key));
    DX_RETURN_IF_ERROR(AwaitAll());
    for (const std::string& folder : folders) DX_RETURN_IF_ERROR(SendUnfolder(folder));
    DX_RETURN_IF_ERROR(AwaitAll());
    auto done = [](std::vector<std::string>& list, const std::vector<std::string>& gone) {
      list.erase(std::remove_if(list.begin(), list.end(),
                                [&](const std::string& p) {
                                  return std::find(gone.begin(), gone.end(), p) != gone.end();
                                }),
                 list.end());
    };
    done(doomed_files_, files);
    done(doomed_folders_, folders);
    return Status::Ok();
  }

  Status Delete() {
    for (const std::string& key : doomed_files_) DX_RETURN_IF_ERROR(SendDelete(key));
    DX_RETURN_IF_ERROR(AwaitAll());
    for (const std::string& folder : doomed_folders_) DX_RETURN_IF_ERROR(SendUnfolder(folder));
    return AwaitAll();
  }

  // --- sending ------------------------------------------------------------------------

  Status Send(MessageType type, const std::string& payload) {
    if (!begun_) {
      begun_ = true;
      DX_RETURN_IF_ERROR(
          session_.Send(MessageType::kFileRunBegin, Encode(FileRunBegin{sub_.name, attempt_})));
      while (true) {  // answers left over from an earlier run come first
        DX_ASSIGN_OR_RETURN(FileResult r, session_.AwaitFileResult(sub_.name, timeout_));
        if (r.outcome == "begun" && r.path.empty()) break;
      }
    }
    limiter_.Wait(payload.size());
    // The run's bytes are what its files put on the wire (the sweep's few bytes are not).
    if (type != MessageType::kFileSweep) run_->bytes += static_cast<int64_t>(payload.size());
    return session_.Send(type, payload);
  }

  std::string AgentPath(const std::string& path) const { return JoinPath(sub_.target_path, path); }

  DeliveredFile Record(const SourceFile& f, const FileVersion& v, const std::string& sha) const {
    DeliveredFile d;
    d.subscription = sub_.name;
    d.path = f.path;
    d.agent_path = AgentPath(f.path);
    d.size = static_cast<int64_t>(v.size);
    d.mtime_ns = v.mtime_ns;
    d.sha256 = sha;
    d.ctime_ns = v.ctime_ns;
    d.inode = static_cast<int64_t>(v.inode);
    return d;
  }

  FileMeta Meta(const DeliveredFile& d) const {
    FileMeta m;
    m.subscription = sub_.name;
    m.run_id = attempt_;
    m.path = d.agent_path;
    m.size = static_cast<uint64_t>(d.size);
    m.sha256 = d.sha256;
    return m;
  }

  // Decides what one listed file needs, and sends it. `second_pass`: the file changed or was
  // too fresh the first time; `no_copy`: the agent could not copy it from another name.
  Status Consider(const SourceFile& f, bool second_pass, bool no_copy) {
    auto known = delivered_.find(f.path);
    auto failure = failures_.find(f.path);
    if (known != delivered_.end() && SameVersion(known->second, f.version) && !no_copy) {
      if (failure != failures_.end()) DX_RETURN_IF_ERROR(Forget(f.path));
      return Status::Ok();  // delivered and untouched since
    }
    if (failure != failures_.end() && !manual_ && !second_pass &&
        SameVersion(failure->second, f.version) && failure->second.next_try_ms > WallMs()) {
      return Waiting(failure->second);
    }
    DX_RETURN_IF_ERROR(StillActive());
    auto opened = ProviderFile::Open(entry_.directory, f.raw_path);
    if (!opened.ok()) {
      if (opened.status().code() == StatusCode::kNotFound) return Vanished(f);
      return Fail(f.path, f.version, opened.status(), "failed");
    }
    ProviderFile& file = opened.value();
    const FileVersion& v = file.version();
    if (MaybeBeingWritten(v)) {
      if (!second_pass) {
        later_.push_back({f, no_copy});
        return Status::Ok();
      }
      return Fail(f.path, v, Unavailable(EscapeInvalidUtf8(f.path) + " is still being written"),
                  "failed");
    }
    const bool touched =
        known != delivered_.end() && known->second.size == static_cast<int64_t>(v.size);
    if (v.size <= kFileChunkBytes) {
      std::string content(v.size, '\0');
      size_t got = 0;
      Status read = file.ReadAt(0, content.data(), content.size(), &got);
      if (!read.ok()) return Fail(f.path, v, read, "failed");
      Status same = got == content.size()
                        ? file.CheckUnchanged()
                        : Unavailable(EscapeInvalidUtf8(f.path) + " shrank while it was read");
      if (!same.ok()) return Changed(f, v, same, second_pass, no_copy);
      std::string sha = Sha256::Hex(content);
      DX_ASSIGN_OR_RETURN(bool settled, SettledWithoutData(f, v, sha, known, no_copy));
      if (settled) return Status::Ok();
      return SendSmall(f, v, sha, content);
    }
    bool maybe_known = false;
    if (!no_copy) {
      DX_ASSIGN_OR_RETURN(maybe_known, store_.HasDeliveredLike(
                                           sub_.agent, static_cast<int64_t>(v.size), v.mtime_ns));
    }
    std::string sha;
    if (maybe_known || touched) {
      // Hash first: the agent may hold this content already (here, or under another name).
      Sha256 hash;
      std::string buf(kFileChunkBytes, '\0');
      for (uint64_t off = 0; off < v.size; off += kFileChunkBytes) {
        size_t want = std::min<uint64_t>(kFileChunkBytes, v.size - off);
        size_t got = 0;
        Status read = file.ReadAt(off, buf.data(), want, &got);
        if (!read.ok()) return Fail(f.path, v, read, "failed");
        if (got != want) {
          return Changed(f, v, Unavailable(EscapeInvalidUtf8(f.path) + " shrank while it was read"),
                         second_pass, no_copy);
        }
        hash.Update(std::string_view(buf.data(), got));
      }
      Status same = file.CheckUnchanged();
      if (!same.ok()) return Changed(f, v, same, second_pass, no_copy);
      sha = hash.FinishHex();
      DX_ASSIGN_OR_RETURN(bool settled, SettledWithoutData(f, v, sha, known, no_copy));
      if (settled) return Status::Ok();
    }
    return OfferLarge(f, std::move(file), sha, second_pass, no_copy);
  }

  // A change made in the same tick of the filesystem's clock as the last one would not show
  // in the mtime: a file stamped within settle_ms of now is read once it is older. (A stamp
  // further in the future is no write of now, and does not wait.)
  bool MaybeBeingWritten(const FileVersion& v) const {
    const int64_t now = WallNs();
    const int64_t settle = static_cast<int64_t>(files_.settle_ms) * 1000000;
    return v.mtime_ns > now - settle && v.mtime_ns <= now + settle;
  }

  // True when nothing needs to travel: the agent holds this content already, here (the file
  // was only touched) or under another name (a copy is then sent).
  Result<bool> SettledWithoutData(const SourceFile& f, const FileVersion& v, const std::string& sha,
                                  std::map<std::string, DeliveredFile>::iterator known,
                                  bool no_copy) {
    if (no_copy) return false;
    DeliveredFile record = Record(f, v, sha);
    if (known != delivered_.end() && known->second.sha256 == sha) {
      DX_RETURN_IF_ERROR(store_.PutDeliveredFile(sub_.agent, record));
      known->second = record;
      if (failures_.count(f.path)) DX_RETURN_IF_ERROR(Forget(f.path));
      return true;
    }
    DX_ASSIGN_OR_RETURN(auto same, store_.FindDeliveredContent(sub_.agent, sha));
    if (!same || same->agent_path == record.agent_path) return false;
    InFlight p;
    p.kind = InFlight::kCopy;
    p.file = record;
    p.version = v;
    p.source = f;
    DX_RETURN_IF_ERROR(
        Send(MessageType::kFileCopy, Encode(FileCopy{Meta(record), same->agent_path})));
    DX_RETURN_IF_ERROR(Track(std::move(p)));
    return true;
  }

  Status SendSmall(const SourceFile& f, const FileVersion& v, const std::string& sha,
                   const std::string& content) {
    FilePut put;
    put.meta = Meta(Record(f, v, sha));
    std::string packed;
    put.compressed =
        WorthCompressing(f.path) && TryCompress(content, options_.compression_level, &packed);
    put.data = put.compressed ? std::move(packed) : content;
    std::string frame = Encode(put);
    DX_RETURN_IF_ERROR(Send(MessageType::kFilePut, frame));
    InFlight p;
    p.file = Record(f, v, sha);
    p.version = v;
    p.bytes = static_cast<int64_t>(frame.size());
    return Track(std::move(p));
  }

  // A large file offered to the agent, waiting for its turn to be sent.
  struct Offered {
    SourceFile source;
    ProviderFile file;
    std::string sha;
    bool second_pass;
    bool no_copy;
  };

  // A large file is offered one large file ahead of its chunks: the agent's answer (where its
  // partial copy ends) is back by the time the previous file has been sent, so neither side
  // waits for the other at file boundaries.
  Status OfferLarge(const SourceFile& f, ProviderFile file, const std::string& sha,
                    bool second_pass, bool no_copy) {
    FileMeta meta = Meta(Record(f, file.version(), sha));
    meta.version = sha.empty() ? VersionToken(file.version()) : sha;
    DX_RETURN_IF_ERROR(Send(MessageType::kFileOffer, Encode(meta)));
    std::optional<Offered> previous(std::move(offered_));
    offered_.reset();
    offered_.emplace(Offered{f, std::move(file), sha, second_pass, no_copy});
    return previous ? SendLarge(*previous) : Status::Ok();
  }

  Status SendOffered() {
    std::optional<Offered> previous(std::move(offered_));
    offered_.reset();
    return previous ? SendLarge(*previous) : Status::Ok();
  }

  // Sends an offered large file in chunks from where the agent's partial copy ends; hashed as
  // it is read (when not hashed already) and checked after every chunk.
  Status SendLarge(Offered& o) {
    const SourceFile& f = o.source;
    ProviderFile& file = o.file;
    const bool second_pass = o.second_pass;
    const bool no_copy = o.no_copy;
    const FileVersion v = file.version();
    DeliveredFile record = Record(f, v, o.sha);
    FileMeta meta = Meta(record);
    DX_ASSIGN_OR_RETURN(FileResume resume, session_.AwaitFileResume(sub_.name, timeout_));
    if (resume.path != meta.path) {
      return DataLoss("agent answered the offer of '" + resume.path + "', expected '" + meta.path +
                      "'");
    }
    if (resume.code != StatusCode::kOk) {
      return Fail(f.path, v, Status(resume.code, "agent: " + resume.error),
                  resume.code == StatusCode::kPermissionDenied ||
                          resume.code == StatusCode::kInvalidArgument
                      ? "refused"
                      : "failed");
    }
    if (resume.complete) {
      DX_RETURN_IF_ERROR(Receipt(record, "unchanged", "", 0));
      DX_RETURN_IF_ERROR(store_.PutDeliveredFile(sub_.agent, record));
      if (failures_.count(f.path)) DX_RETURN_IF_ERROR(Forget(f.path));
      return Status::Ok();
    }
    const bool hashing = o.sha.empty();
    bool compress = WorthCompressing(f.path);
    int64_t sent = 0;
    std::string packed;
    auto withdraw = [&](const Status& why) -> Status {
      DX_RETURN_IF_ERROR(
          Send(MessageType::kFileAbort, Encode(FileAbort{sub_.name, meta.path, why.message()})));
      return Changed(f, v, why, second_pass, no_copy);
    };
    ChunkReader reader(file, sub_.name, meta.path, hashing);
    ChunkReader::Chunk chunk;
    uint64_t next = 0;
    while (reader.Next(&chunk)) {
      if (!chunk.status.ok()) {
        if (chunk.changed) return withdraw(chunk.status);
        DX_RETURN_IF_ERROR(Send(MessageType::kFileAbort,
                                Encode(FileAbort{sub_.name, meta.path, chunk.status.message()})));
        return Fail(f.path, v, chunk.status, "failed");
      }
      next = chunk.offset + chunk.size;
      if (chunk.offset < resume.offset) continue;  // the agent holds this chunk already
      std::string_view data = std::string_view(chunk.frame).substr(chunk.data_at, chunk.size);
      if (compress && TryCompress(data, options_.compression_level, &packed)) {
        FileChunk c;
        c.subscription = sub_.name;
        c.path = meta.path;
        c.offset = chunk.offset;
        c.compressed = true;
        c.data = std::move(packed);
        chunk.frame = Encode(c);
      } else {
        compress = false;  // incompressible content: stop trying
      }
      DX_RETURN_IF_ERROR(Send(MessageType::kFileChunk, chunk.frame));
      sent += static_cast<int64_t>(chunk.frame.size());
    }
    if (next != v.size)
      return Internal("reading " + f.path + " stopped at byte " + std::to_string(next));
    if (hashing) record.sha256 = reader.Hash();
    DX_RETURN_IF_ERROR(
        Send(MessageType::kFileCommit, Encode(FileCommit{sub_.name, meta.path, record.sha256})));
    InFlight p;
    p.file = record;
    p.version = v;
    p.bytes = 0;  // not held by the window: the agent has written it already
    p.resumed = resume.offset > 0;
    p.source = f;
    sent_bytes_[meta.path] = sent;
    return Track(std::move(p));
  }

  Status CreateFolder(const SourceFolder& f) {
    FileFolder folder{sub_.name, attempt_, AgentPath(f.path), false};
    DX_RETURN_IF_ERROR(Send(MessageType::kFileFolder, Encode(folder)));
    InFlight p;
    p.kind = InFlight::kFolder;
    p.file.subscription = sub_.name;
    p.file.path = FolderKey(f.path);
    p.file.agent_path = folder.path;
    return Track(std::move(p));
  }

  Status SendDelete(const std::string& key) {
    const DeliveredFile& d = delivered_.at(key);
    DX_RETURN_IF_ERROR(
        Send(MessageType::kFileDelete, Encode(FileDelete{sub_.name, attempt_, d.agent_path})));
    InFlight p;
    p.kind = InFlight::kDelete;
    p.file = d;
    return Track(std::move(p));
  }

  Status SendUnfolder(const std::string& folder) {
    FileFolder f{sub_.name, attempt_, AgentPath(folder), true};
    DX_RETURN_IF_ERROR(Send(MessageType::kFileFolder, Encode(f)));
    InFlight p;
    p.kind = InFlight::kUnfolder;
    p.file.subscription = sub_.name;
    p.file.path = FolderKey(folder);
    p.file.agent_path = f.path;
    return Track(std::move(p));
  }

  Status Sweep() {
    FileSweep sweep{sub_.name, attempt_, sub_.target_path};
    DX_RETURN_IF_ERROR(Send(MessageType::kFileSweep, Encode(sweep)));
    InFlight p;
    p.kind = InFlight::kSweep;
    p.file.agent_path = sub_.target_path;
    DX_RETURN_IF_ERROR(Track(std::move(p)));
    return AwaitAll();
  }

  // --- answers ------------------------------------------------------------------------

  Status Track(InFlight p) {
    in_flight_bytes_ += p.bytes;
    std::string key = p.file.agent_path;
    in_flight_[key] = std::move(p);
    while (in_flight_.size() >= kMaxInFlight || in_flight_bytes_ > kMaxInFlightBytes) {
      DX_RETURN_IF_ERROR(AwaitSome(timeout_));
    }
    return Status::Ok();
  }

  // Waits for one answer, then takes every other one already there; settles them together.
  Status AwaitSome(milliseconds timeout) {
    DX_ASSIGN_OR_RETURN(FileResult first, session_.AwaitFileResult(sub_.name, timeout));
    std::vector<FileResult> results{std::move(first)};
    while (true) {
      auto more = session_.AwaitFileResult(sub_.name, milliseconds(0));
      if (!more.ok()) break;
      results.push_back(std::move(more).value());
    }
    return store_.InTransaction([&]() -> Status {
      for (const FileResult& r : results) DX_RETURN_IF_ERROR(Settle(r));
      return Status::Ok();
    });
  }

  Status AwaitAll() {
    // A large file offered and not sent yet would be lost for this run: sent first. (Every
    // place that ends a phase sends it already; this is the last guard.)
    DX_RETURN_IF_ERROR(SendOffered());
    while (!in_flight_.empty()) DX_RETURN_IF_ERROR(AwaitSome(timeout_));
    return Status::Ok();
  }

  Status Settle(const FileResult& r) {
    auto it = in_flight_.find(r.path);
    if (it == in_flight_.end()) {
      LOG_DEBUG(sub_.name << ": answer for '" << r.path << "' that no file waits for");
      return Status::Ok();
    }
    InFlight p = std::move(it->second);
    in_flight_.erase(it);
    in_flight_bytes_ -= p.bytes;
    const bool ok = r.code == StatusCode::kOk;
    switch (p.kind) {
      case InFlight::kSweep:
        return Status::Ok();
      case InFlight::kFolder:
        if (!ok) return Fail(p.file.path, {}, Status(r.code, "agent: " + r.error), r.outcome);
        if (r.outcome == "created") DX_RETURN_IF_ERROR(Receipt(p.file, "created", "", 0));
        return store_.PutDeliveredFile(sub_.agent, p.file);
      case InFlight::kUnfolder:
        if (!ok) return Fail(p.file.path, {}, Status(r.code, "agent: " + r.error), r.outcome);
        DX_RETURN_IF_ERROR(Receipt(p.file, r.outcome, r.error, 0));
        return store_.DeleteDeliveredFile(sub_.name, p.file.path);
      case InFlight::kDelete:
        if (!ok) return Fail(p.file.path, {}, Status(r.code, "agent: " + r.error), r.outcome);
        DX_RETURN_IF_ERROR(Receipt(p.file, "deleted", "", 0));
        return store_.DeleteDeliveredFile(sub_.name, p.file.path);
      case InFlight::kCopy:
        if (r.outcome == "need_data") {
          need_data_.push_back(p.source);
          return Status::Ok();
        }
        break;
      case InFlight::kFile:
        break;
    }
    if (!ok) {
      std::string outcome = r.outcome == "refused" ? "refused" : "failed";
      return Fail(p.file.path, p.version, Status(r.code, "agent: " + r.error), outcome);
    }
    int64_t bytes = p.bytes;
    if (auto s = sent_bytes_.find(p.file.agent_path); s != sent_bytes_.end()) {
      bytes = s->second;
      sent_bytes_.erase(s);
    }
    std::string outcome = r.outcome;
    if (outcome == "written") outcome = p.resumed ? "resumed" : bytes > 0 ? "sent" : "unchanged";
    DX_RETURN_IF_ERROR(Receipt(p.file, outcome, "", bytes));
    DX_RETURN_IF_ERROR(store_.PutDeliveredFile(sub_.agent, p.file));
    delivered_[p.file.path] = p.file;
    if (failures_.count(p.file.path)) DX_RETURN_IF_ERROR(Forget(p.file.path));
    return Status::Ok();
  }

  Status Receipt(const DeliveredFile& file, const std::string& outcome, const std::string& error,
                 int64_t bytes) {
    DX_RETURN_IF_ERROR(record_run_());
    run_->rows += 1;
    return store_.AddReceipt(run_->id,
                             FileReceipt{file.path, file.size, file.sha256, outcome, error, bytes});
  }

  // --- files that fail, change, vanish or wait ------------------------------------------

  // A file that changed while it was read is read again at the end of the run; a second
  // change fails it.
  Status Changed(const SourceFile& f, const FileVersion& v, const Status& why, bool second_pass,
                 bool no_copy) {
    if (!second_pass) {
      LOG_INFO(sub_.name << ": " << why.message() << "; reading it again at the end of the run");
      later_.push_back({f, no_copy});
      return Status::Ok();
    }
    return Fail(f.path, v, why, "failed");
  }

  // The file-boundary check of the sharing workflow: a suspension or termination stops the
  // run before its next file. Asked at most every kActiveCheckInterval (a check reads the
  // subscription from the store; 10,000 small files would otherwise pay it 10,000 times).
  Status StillActive() {
    const auto now = std::chrono::steady_clock::now();
    if (now < next_active_check_) return Status::Ok();
    next_active_check_ = now + kActiveCheckInterval;
    return CheckStillActive(store_, sub_.name);
  }

  Status SecondPass() {
    std::vector<std::pair<SourceFile, bool>> later;
    later.swap(later_);
    if (!later.empty()) {
      // Let the freshest of them age past the settle time, so a change shows in its mtime.
      int64_t newest = 0;
      for (const auto& [f, no_copy] : later) {
        struct stat st {};
        if (::lstat((entry_.directory + "/" + f.raw_path).c_str(), &st) == 0) {
          newest = std::max(newest, VersionOfStat(&st).mtime_ns);
        }
      }
      int64_t wait_ns = newest + static_cast<int64_t>(files_.settle_ms) * 1000000 - WallNs();
      wait_ns = std::clamp<int64_t>(wait_ns, 0, static_cast<int64_t>(files_.settle_ms) * 1000000);
      std::this_thread::sleep_for(std::chrono::nanoseconds(wait_ns));
      for (const auto& [f, no_copy] : later) DX_RETURN_IF_ERROR(Consider(f, true, no_copy));
      DX_RETURN_IF_ERROR(SendOffered());
    }
    // Copies the agent could not make: send the data.
    while (!need_data_.empty() || !in_flight_.empty()) {
      std::vector<SourceFile> need;
      need.swap(need_data_);
      for (const SourceFile& f : need) DX_RETURN_IF_ERROR(Consider(f, true, true));
      DX_RETURN_IF_ERROR(SendOffered());
      if (need_data_.empty() && in_flight_.empty()) break;
      DX_RETURN_IF_ERROR(AwaitSome(timeout_));
    }
    return Status::Ok();
  }

  Status Vanished(const SourceFile& f) {
    if (failures_.count(f.path)) DX_RETURN_IF_ERROR(Forget(f.path));
    DeliveredFile d;
    d.path = f.path;
    return Receipt(d, "vanished", "deleted at the provider after it was listed", 0);
  }

  Status Waiting(const FileFailure& failure) {
    ++waiting_;
    retry_at_ms_ =
        retry_at_ms_ == 0 ? failure.next_try_ms : std::min(retry_at_ms_, failure.next_try_ms);
    if (first_error_.empty()) first_error_ = failure.path + ": " + failure.error;
    return Status::Ok();
  }

  Status Fail(const std::string& path, const FileVersion& v, const Status& why,
              const std::string& outcome) {
    ++failed_;
    FileFailure& f = failures_[path];
    f.subscription = sub_.name;
    f.path = path;
    f.size = static_cast<int64_t>(v.size);
    f.mtime_ns = v.mtime_ns;
    f.ctime_ns = v.ctime_ns;
    f.inode = static_cast<int64_t>(v.inode);
    f.error = why.message();
    f.attempts += 1;
    int64_t backoff_s = files_.retry_min_s;
    for (int i = 1; i < f.attempts && backoff_s < files_.retry_max_s; ++i) backoff_s *= 2;
    backoff_s = std::min<int64_t>(backoff_s, files_.retry_max_s);
    f.next_try_ms = WallMs() + backoff_s * 1000;
    retry_at_ms_ = retry_at_ms_ == 0 ? f.next_try_ms : std::min(retry_at_ms_, f.next_try_ms);
    if (first_error_.empty()) first_error_ = path + ": " + why.message();
    LOG_WARN(sub_.name << ": " << path << " not delivered (" << outcome << "): " << why.message()
                       << "; next try in " << backoff_s << " s or when it changes");
    DX_RETURN_IF_ERROR(store_.PutFileFailure(f));
    DeliveredFile d;
    d.path = path;
    d.size = static_cast<int64_t>(v.size);
    return Receipt(d, outcome, why.message(), 0);
  }

  Status Problem(const ListingProblem& p) {
    const std::string key = p.folder ? FolderKey(p.path) : p.path;
    auto failure = failures_.find(key);
    if (failure != failures_.end() && !manual_ && SameVersion(failure->second, p.version) &&
        failure->second.next_try_ms > WallMs()) {
      return Waiting(failure->second);
    }
    std::string outcome = p.error.code() == StatusCode::kInvalidArgument ? "refused" : "failed";
    return Fail(key, p.version, p.error, outcome);
  }

  Status Forget(const std::string& path) {
    failures_.erase(path);
    forgot_failures_ = true;
    return store_.DeleteFileFailure(sub_.name, path);
  }

  // Failures of entries that are no longer there are forgotten.
  Status ForgetOldFailures() {
    std::set<std::string> listed;
    for (const SourceFile& f : listing_.files) listed.insert(f.path);
    for (const ListingProblem& p : listing_.problems) {
      listed.insert(p.folder ? FolderKey(p.path) : p.path);
    }
    std::vector<std::string> old;
    for (const auto& [path, f] : failures_) {
      if (!listed.count(path)) old.push_back(path);
    }
    for (const std::string& path : old) DX_RETURN_IF_ERROR(Forget(path));
    return Status::Ok();
  }

  // The run failed: answers already on their way are still taken for a moment; files sent
  // and never answered are listed in the receipt as unconfirmed (the next run checks them).
  void Unconfirmed() {
    auto deadline = std::chrono::steady_clock::now() + kAbortGrace;
    while (!in_flight_.empty() && !session_.closed() &&
           std::chrono::steady_clock::now() < deadline) {
      if (!AwaitSome(kAbortGrace).ok()) break;
    }
    for (const auto& [path, p] : in_flight_) {
      if (p.kind != InFlight::kFile && p.kind != InFlight::kCopy) continue;
      (void)Receipt(p.file, "unconfirmed",
                    "the run ended before the agent confirmed this file; the next run checks it",
                    p.bytes);
    }
    in_flight_.clear();
  }

  Store& store_;
  const ExchangeOptions& options_;
  const FileOptions& files_;
  const Subscription& sub_;
  const CatalogEntry& entry_;
  AgentSession& session_;
  const uint64_t attempt_;
  RunRecord* run_;
  const std::function<Status()>& record_run_;
  RateLimiter limiter_;
  const milliseconds timeout_;
  const bool manual_;  // an operator asked: files waiting to be retried are tried now

  Listing listing_;
  std::map<std::string, DeliveredFile> delivered_;  // by path (folders: "path/")
  std::map<std::string, FileFailure> failures_;
  std::set<std::string> present_folders_;
  std::vector<std::string> unlisted_;  // folders that could not be listed
  std::vector<std::string> doomed_files_;
  std::vector<std::string> doomed_folders_;
  bool mass_delete_ = false;
  std::string mass_delete_text_;

  bool begun_ = false;
  std::optional<Offered> offered_;
  std::map<std::string, InFlight> in_flight_;
  int64_t in_flight_bytes_ = 0;
  std::map<std::string, int64_t> sent_bytes_;       // large files: chunk bytes sent
  std::vector<std::pair<SourceFile, bool>> later_;  // (file, no_copy) for the second pass
  std::vector<SourceFile> need_data_;

  int failed_ = 0;
  int waiting_ = 0;
  int64_t retry_at_ms_ = 0;
  bool forgot_failures_ = false;
  std::string first_error_;
  static constexpr auto kActiveCheckInterval = std::chrono::milliseconds(200);
  std::chrono::steady_clock::time_point next_active_check_{};
};

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

Status FileRun::Transfer(const Subscription& sub, const CatalogEntry& entry, int64_t bandwidth_kbps,
                         AgentSession& session, uint64_t attempt, bool reset, RunRecord* run,
                         const std::function<Status()>& record_run) {
  Runner runner(store_, options_, sub, entry, bandwidth_kbps, session, attempt, run, record_run);
  return runner.Run(reset);
}

}  // namespace dx::scheduler
