// FileReceiver: writes subscribed files into the agent's shared directory, whole or not at
// all. Bytes go to a hidden part file beside the target (".dx-<name hash>-<version hash>.dxpart",
// short whatever the name's length), hashed as they are written; the SHA-256 is checked, then
// the FileSyncer fsyncs the file, renames it into place and fsyncs the directory, and only
// then is the file recorded and answered. Chunks of large files are written by the
// ChunkWriter (O_DIRECT where possible) on its own thread. Several large transfers may be in
// progress at once (keyed by subscription and path). A path from the wire never leaves the shared
// root: absolute paths, "..", names that are not UTF-8 and symbolic links anywhere in the target
// tree are refused. A transfer cut off (disconnect, kill -9, full disk) resumes from the last whole
// chunk of its part file; part files no transfer can resume are removed (other versions of a
// file when it is offered or deleted, the rest by a sweep after a complete run).
// Not thread-safe: owned by the agent's writer thread (syncer and chunk writer have their own).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/chunk_writer.h"
#include "agent/file_syncer.h"
#include "common/protocol.h"
#include "common/sha256.h"
#include "common/status.h"

namespace dx::agent {

class FileReceiver {
 public:
  // Records received files in the agent's own ledger, all in one transaction.
  using Recorder = std::function<Status(const std::vector<ReceivedFile>&)>;
  // `shared_root` must exist (empty: no files are taken, each is refused). `mode` is applied to
  // every delivered file; without one (files.mode: keep) files keep what the filesystem gives them
  // (FAT, SMB mounts).
  FileReceiver(std::string shared_root, std::optional<unsigned> mode, Recorder recorder);
  ~FileReceiver();

  // Called from the syncing thread when durable files wait to be answered (TakeResults).
  // May be reset to nullptr; thread-safe.
  void SetWakeup(std::function<void()> wake);

  // One call per message from the scheduler. Offers are answered at once; every other
  // message that expects an answer gets it through TakeResults(): at once when refused or
  // failed, after the file is durable and recorded otherwise. Chunks and aborts get none.
  FileResume Offer(const FileMeta& meta);
  void Put(const FilePut& put);
  void Chunk(const FileChunk& chunk) { Chunk(chunk, chunk.data); }
  // A chunk whose bytes are `data` (e.g. a view into the frame it arrived in).
  void Chunk(const FileChunk& header, std::string_view data);
  void Commit(const FileCommit& commit);
  void Abort(const FileAbort& abort);
  void Copy(const FileCopy& copy);
  void Delete(const FileDelete& del);
  void Folder(const FileFolder& folder);
  void Sweep(const FileSweep& sweep);
  void BeginRun(const FileRunBegin& begin);
  // The session ended: drops transfers in progress (their part files stay for a resume).
  void AbandonTransfers();

  // Suspension and termination (agent/subscription_deletion.h), answered by the caller, never
  // through TakeResults. ForgetTransfers: makes every file handed over durable and recorded
  // first (so that dx_files lists all of the subscription's files), then drops the
  // subscription's transfers in progress and removes their part files.
  void ForgetTransfers(const std::string& subscription);
  // Removes the delivered file `path` and the part files of its name; Ok when it is gone
  // already. `*refused` (with the reason) when `path` is not a regular file reached without a
  // link inside the shared root: nothing is removed then.
  Status RemoveFile(const std::string& path, bool* refused);
  // Removes the part files (".dx-*.dxpart") anywhere under the folder `path` (empty: the whole
  // shared root), except those of transfers in progress; returns how many went (0 when the
  // folder is missing).
  int SweepParts(const std::string& path);

  // Answers ready to send. Records the files the syncer made durable (one transaction)
  // first; files found already in place are recorded in groups, or all when `idle`.
  std::vector<FileResult> TakeResults(bool idle);
  // Waits until every file handed over is durable and recorded (its answer then waits in
  // TakeResults).
  void FinishPending() { Settle(true, true); }
  size_t transfers_in_progress() const { return transfers_.size(); }

  // Transfers in progress at once (several subscriptions, one file each).
  static constexpr size_t kMaxTransfers = 32;

 private:
  struct Target;    // an opened directory and the name in it
  struct Transfer;  // a large file being received
  using TransferMap = std::map<std::string, std::unique_ptr<Transfer>>;
  // Waits for the transfer's writes (its part file keeps them for a resume), then forgets it.
  TransferMap::iterator DropTransfer(TransferMap::iterator it);
  Result<Target> Resolve(const std::string& path, bool create_dirs);
  // Opens every folder of `path`, creating missing ones when `new_parents` is given; it then
  // receives the folders that got a new entry (to be fsynced before anything is answered).
  Result<int> OpenFolder(const std::string& path, std::vector<int>* new_parents);
  // True when `target` already holds exactly `size` bytes hashing to `sha256`.
  bool HoldsExactly(const Target& target, uint64_t size, const std::string& sha256);
  // Creates the part file for `version` of the target (truncated when `fresh`).
  Result<int> CreatePart(const Target& target, const std::string& version, bool fresh);
  // Removes the part files of the target's name except `keep`; returns how many.
  int RemoveParts(const Target& target, const std::string& keep);
  // Sets the mode and hands the part to the syncer (answered when durable).
  void Finish(Target target, int part_fd, const std::string& part_name, ReceivedFile record,
              const std::string& outcome);
  // Records durable files and moves their answers to ready_. `wait`: first waits until the
  // syncer holds nothing; `record_all`: also records small groups of files already in place.
  void Settle(bool wait, bool record_all);
  void Answer(const std::string& sub, const std::string& path, const Status& st,
              const std::string& outcome);
  FileResult Outcome(const std::string& sub, const std::string& path, const Status& st,
                     const std::string& outcome);

  const std::string shared_root_;
  const std::optional<unsigned> mode_;
  Recorder recorder_;
  int root_fd_ = -1;

  std::mutex wake_mu_;
  std::function<void()> wake_;
  ChunkWriter chunks_;
  TransferMap transfers_;  // by subscription '\0' path
  std::vector<FileResult> ready_;
  std::vector<ReceivedFile> to_record_;  // files already in place (unchanged) to record
  std::vector<FileResult> to_record_results_;
  FileSyncer syncer_;
};

}  // namespace dx::agent
