#include "agent/file_syncer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "common/log.h"

namespace dx::agent {
namespace {

constexpr size_t kSyncThreads = 8;

void Fail(FileSyncer::Item& item, const std::string& what, int err) {
  item.result.code =
      err == ENOSPC || err == EDQUOT ? StatusCode::kUnavailable : StatusCode::kInternal;
  item.result.error = what + ": " + std::strerror(err);
  item.result.outcome = "failed";
  LOG_ERROR("file '" << item.result.path << "' of " << item.result.subscription << ": "
                     << item.result.error);
}

}  // namespace

FileSyncer::FileSyncer(std::function<void()> on_done) : on_done_(std::move(on_done)) {
  for (size_t i = 1; i < kSyncThreads; ++i) helpers_.emplace_back([this] { Helper(); });
  thread_ = std::thread([this] { Loop(); });
}

FileSyncer::~FileSyncer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  {
    std::lock_guard<std::mutex> lock(pool_mu_);
    pool_stopping_ = true;
  }
  pool_cv_.notify_all();
  for (std::thread& t : helpers_) t.join();
  for (Item& item : done_) {
    if (item.part_fd >= 0) ::close(item.part_fd);
    if (item.dir_fd >= 0) ::close(item.dir_fd);
    for (int fd : item.parent_fds) ::close(fd);
  }
}

void FileSyncer::Add(Item item) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return waiting_.size() < kMaxWaiting; });
  waiting_.push_back(std::move(item));
  ++outstanding_;
  cv_.notify_all();
}

std::vector<FileSyncer::Item> FileSyncer::TakeDone(bool wait) {
  std::unique_lock<std::mutex> lock(mu_);
  if (wait) cv_.wait(lock, [&] { return waiting_.empty() && !busy_; });
  std::vector<Item> out;
  out.swap(done_);
  outstanding_ -= out.size();
  return out;
}

size_t FileSyncer::outstanding() const {
  std::lock_guard<std::mutex> lock(mu_);
  return outstanding_;
}

void FileSyncer::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || !waiting_.empty(); });
    if (waiting_.empty()) return;  // stopping, and nothing left to sync
    syncing_.swap(waiting_);
    busy_ = true;
    cv_.notify_all();  // room for the writer again
    lock.unlock();
    SyncGroup(syncing_);
    lock.lock();
    for (Item& item : syncing_) done_.push_back(std::move(item));
    syncing_.clear();
    busy_ = false;
    cv_.notify_all();
    if (on_done_) {
      lock.unlock();
      on_done_();
      lock.lock();
    }
  }
}

void FileSyncer::InParallel(size_t n, const std::function<void(size_t)>& fn) {
  if (n <= 1) {  // no helper to wake for one fsync
    if (n == 1) fn(0);
    return;
  }
  std::unique_lock<std::mutex> lock(pool_mu_);
  pool_fn_ = &fn;
  pool_n_ = n;
  pool_next_ = 0;
  pool_busy_ = 0;
  ++pool_round_;
  // Only as many helpers as there is work for (waking all of them costs more than it saves).
  for (size_t i = 1; i < std::min(n, kSyncThreads); ++i) pool_cv_.notify_one();
  while (pool_next_ < pool_n_) {
    size_t i = pool_next_++;
    lock.unlock();
    fn(i);
    lock.lock();
  }
  pool_done_cv_.wait(lock, [&] { return pool_busy_ == 0; });
  pool_fn_ = nullptr;
}

void FileSyncer::Helper() {
  std::unique_lock<std::mutex> lock(pool_mu_);
  uint64_t seen = 0;
  while (true) {
    pool_cv_.wait(lock, [&] { return pool_stopping_ || (pool_round_ != seen && pool_fn_); });
    if (pool_stopping_) return;
    seen = pool_round_;
    while (pool_fn_ != nullptr && pool_next_ < pool_n_) {
      size_t i = pool_next_++;
      ++pool_busy_;
      const std::function<void(size_t)>* fn = pool_fn_;
      lock.unlock();
      (*fn)(i);
      lock.lock();
      --pool_busy_;
    }
    pool_done_cv_.notify_all();
  }
}

void FileSyncer::SyncGroup(std::vector<Item>& group) {
  // 1. fsync the part files.
  std::vector<int> errors(group.size(), 0);
  InParallel(group.size(), [&](size_t i) {
    if (group[i].part_fd >= 0 && ::fsync(group[i].part_fd) != 0) errors[i] = errno;
  });
  // 2. Rename each durable file into place.
  for (size_t i = 0; i < group.size(); ++i) {
    Item& item = group[i];
    if (item.part_fd < 0) continue;
    ::close(item.part_fd);
    item.part_fd = -1;
    if (errors[i] != 0) {
      ::unlinkat(item.dir_fd, item.part_name.c_str(), 0);
      Fail(item, "fsync " + item.result.path, errors[i]);
    } else if (::renameat(item.dir_fd, item.part_name.c_str(), item.dir_fd,
                          item.final_name.c_str()) != 0) {
      int err = errno;
      ::unlinkat(item.dir_fd, item.part_name.c_str(), 0);
      Fail(item, "rename into " + item.result.path, err);
    }
  }
  // 3. fsync every directory that got a new name (and every folder that got a new
  //    subfolder on the way) once.
  struct Dir {
    std::pair<dev_t, ino_t> id;
    int fd;
    int error = 0;
  };
  std::vector<Dir> dirs;
  std::vector<std::vector<size_t>> dirs_of(group.size());  // item -> indexes into dirs
  for (size_t i = 0; i < group.size(); ++i) {
    std::vector<int> fds = group[i].parent_fds;
    if (group[i].dir_fd >= 0) fds.push_back(group[i].dir_fd);
    for (int fd : fds) {
      struct stat st {};
      ::fstat(fd, &st);
      auto id = std::make_pair(st.st_dev, st.st_ino);
      auto it = std::find_if(dirs.begin(), dirs.end(), [&](const Dir& d) { return d.id == id; });
      if (it == dirs.end()) it = dirs.insert(dirs.end(), Dir{id, fd});
      dirs_of[i].push_back(static_cast<size_t>(it - dirs.begin()));
    }
  }
  InParallel(dirs.size(), [&](size_t i) {
    if (::fsync(dirs[i].fd) != 0) dirs[i].error = errno;
  });
  for (size_t i = 0; i < group.size(); ++i) {
    Item& item = group[i];
    for (size_t d : dirs_of[i]) {
      if (dirs[d].error != 0 && item.result.code == StatusCode::kOk) {
        Fail(item, "fsync the directory of " + item.result.path, dirs[d].error);
      }
    }
    for (int fd : item.parent_fds) ::close(fd);
    item.parent_fds.clear();
    if (item.dir_fd >= 0) ::close(item.dir_fd);
    item.dir_fd = -1;
  }
}

}  // namespace dx::agent
