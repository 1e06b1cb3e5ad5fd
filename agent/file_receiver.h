// FileReceiver: writes subscribed files into the agent's shared directory, whole or not at
// all. Bytes go to a hidden ".NAME.VERSION.dxpart" file beside the target, hashed as they are
// written; on commit the SHA-256 is checked, the file fsynced and renamed into place, and the
// directory fsynced. A path from the wire never leaves the shared root: absolute paths, "..",
// and symbolic links anywhere in the target tree are refused. A transfer cut off (disconnect,
// kill -9, full disk) resumes from the last whole chunk in the .dxpart file.
// Not thread-safe: owned by the agent's writer thread.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/protocol.h"
#include "common/sha256.h"
#include "common/status.h"

namespace dx::agent {

// What the agent records about a file it holds (its own receipt).
struct ReceivedFile {
  std::string subscription;
  std::string path;
  uint64_t size = 0;
  std::string sha256;
  bool deleted = false;
};

class FileReceiver {
 public:
  // Records received files in the agent's own ledger, all in one transaction.
  using Recorder = std::function<Status(const std::vector<ReceivedFile>&)>;
  // `shared_root` must exist (empty: no files are taken, each is refused); `mode` is applied to
  // every delivered file.
  FileReceiver(std::string shared_root, unsigned mode, Recorder recorder);
  ~FileReceiver();

  FileResult Put(const FilePut& put);
  // Like Put, but the directory fsync and the record wait for FlushDeferred(), so that a group
  // of small files costs one fsync per directory and one transaction. Nothing is acknowledged
  // before FlushDeferred() returns its result.
  void PutDeferred(const FilePut& put);
  size_t deferred() const { return deferred_.size(); }
  std::vector<FileResult> FlushDeferred();
  FileResume Offer(const FileMeta& meta);
  // Chunks of the offered file; a failure is remembered and reported by Commit.
  void Chunk(const FileChunk& chunk);
  FileResult Commit(const FileCommit& commit);
  FileResult Copy(const FileCopy& copy);
  FileResult Delete(const FileDelete& del);

 private:
  struct Target;  // an opened directory and the names in it
  Result<Target> Resolve(const std::string& path, bool create_dirs);
  // True when `target` already holds exactly `size` bytes hashing to `sha256`.
  bool HoldsExactly(const Target& target, uint64_t size, const std::string& sha256);
  // Checks the hash, fsyncs and renames `part` into place, fsyncs the directory.
  Status Finish(Target& target, int fd, const std::string& part, const std::string& sha256_expected,
                Sha256& hash, bool sync_dir);
  void AbandonTransfer();
  FileResult Outcome(const std::string& sub, const std::string& path, const Status& st,
                     const std::string& outcome);

  const std::string shared_root_;
  const unsigned mode_;
  Recorder recorder_;
  int root_fd_ = -1;

  // A small file written to its part file, waiting for the group's fsync and rename.
  struct Deferred {
    FileResult result;
    ReceivedFile record;
    int part_fd = -1;  // owned; fsynced, then the part is renamed to final_name
    std::string part_name;
    std::string final_name;
    int dir_fd = -1;  // owned; fsynced once per directory at flush
  };
  std::vector<Deferred> deferred_;

  // The large file being received, if any.
  struct Transfer;
  std::unique_ptr<Transfer> transfer_;
};

}  // namespace dx::agent
