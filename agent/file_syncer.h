// FileSyncer: makes received files durable off the agent's writer thread. A file handed over
// has its bytes in a part file; the syncer fsyncs it, renames it into place and fsyncs the
// directory. It works in groups: the part files of a group are fsynced in parallel (the
// filesystem journal commits concurrent fsyncs together), each directory once per group, and
// whatever arrives while a group is being synced forms the next one, so a sync's cost is
// shared by every file that came meanwhile and the writer keeps writing during it.
// Add() and TakeDone() are called from one thread (the writer); the syncing thread is owned.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/protocol.h"

namespace dx::agent {

// What the agent records about a file it holds (its own receipt).
struct ReceivedFile {
  std::string subscription;
  std::string path;
  uint64_t size = 0;
  std::string sha256;
  bool deleted = false;
};

class FileSyncer {
 public:
  struct Item {
    FileResult result;  // the answer once durable; replaced by a failure if syncing fails
    ReceivedFile record;
    int part_fd = -1;             // owned; closed by the syncer
    int dir_fd = -1;              // owned; the directory holding the part and the final name
    std::vector<int> parent_fds;  // owned; folders whose new entries must be made durable too
    std::string part_name;
    std::string final_name;
  };

  // `on_done` is called from the syncing thread after each group (e.g. to wake the writer).
  explicit FileSyncer(std::function<void()> on_done);
  // Syncs what it still holds, then stops.
  ~FileSyncer();
  FileSyncer(const FileSyncer&) = delete;
  FileSyncer& operator=(const FileSyncer&) = delete;

  // Hands over a file written to its part file; blocks while kMaxWaiting items wait.
  void Add(Item item);
  // Files made durable (or failed) so far; with `wait`, first waits for everything added.
  std::vector<Item> TakeDone(bool wait);
  // Files handed over and not yet taken back.
  size_t outstanding() const;

  static constexpr size_t kMaxWaiting = 128;

 private:
  // Runs fn(i) for i in [0, n) on the sync threads and this one; returns when all are done.
  // Concurrent fsyncs are committed together by the filesystem, where one after the other
  // each waits for its own.
  void InParallel(size_t n, const std::function<void(size_t)>& fn);
  void Helper();
  void Loop();
  void SyncGroup(std::vector<Item>& group);

  std::function<void()> on_done_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Item> waiting_;  // the next group
  std::vector<Item> syncing_;  // the group being synced
  std::vector<Item> done_;
  size_t outstanding_ = 0;
  bool busy_ = false;
  bool stopping_ = false;
  std::thread thread_;

  // The helper threads of InParallel (kept for the syncer's life, not started per group).
  std::mutex pool_mu_;
  std::condition_variable pool_cv_;       // helpers wait here for work
  std::condition_variable pool_done_cv_;  // InParallel waits here for the helpers
  const std::function<void(size_t)>* pool_fn_ = nullptr;
  size_t pool_n_ = 0;
  size_t pool_next_ = 0;
  size_t pool_busy_ = 0;
  uint64_t pool_round_ = 0;
  bool pool_stopping_ = false;
  std::vector<std::thread> helpers_;
};

}  // namespace dx::agent
