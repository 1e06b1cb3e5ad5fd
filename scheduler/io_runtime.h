// IoRuntime: the scheduler's network threads, shared by the agent port (AgentHub) and the
// admin API (AdminServer): one io_context run by a fixed number of io threads, and a small
// pool of worker threads for the blocking work the servers hand off (secret checks, store
// reads and writes, admin requests), so that no io thread waits on a disk or a database and
// the number of threads does not depend on the number of connections. Boost types stay in
// io_runtime_asio.h, which only the servers' .cc files include.
#pragma once

#include <memory>

namespace dx::scheduler {

class IoRuntime {
 public:
  IoRuntime(int io_threads, int worker_threads);
  ~IoRuntime();
  IoRuntime(const IoRuntime&) = delete;
  IoRuntime& operator=(const IoRuntime&) = delete;

  // Starts the io threads (once; later calls do nothing).
  void Start();
  // Stops the io threads and the workers, after the servers have closed their connections.
  void Stop();
  int io_threads() const;

  struct Impl;  // io_runtime_asio.h
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace dx::scheduler
