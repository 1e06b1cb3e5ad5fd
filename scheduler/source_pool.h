// SourcePool: open ODBC connections to the sources, kept between runs so that a realtime poll
// does not connect (twice, with the driver options) every few seconds. At most
// `max_per_source` connections per connection string are open at once (a run waits for one
// to come back, up to a deadline); a connection is dropped instead of returned when its run
// hit an error or left a result unread, and idle ones are closed after `idle_s`. The source's
// clock is read at most once per `clock_max_age` per source for scheduled polls. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/odbc.h"
#include "common/status.h"

namespace dx::scheduler {

class SourcePool;

// One connection taken from the pool (or opened on its own when there is no pool). Returns it
// to the pool when destroyed unless Discard() was called.
class SourceLease {
 public:
  SourceLease() = default;
  SourceLease(SourcePool* pool, std::string key, std::unique_ptr<OdbcConnection> conn, bool reused);
  SourceLease(SourceLease&& other) noexcept;
  SourceLease& operator=(SourceLease&& other) noexcept;
  ~SourceLease();

  OdbcConnection& operator*() const { return *conn_; }
  OdbcConnection* operator->() const { return conn_.get(); }
  // True when the connection served an earlier run (it may have died since).
  bool reused() const { return reused_; }
  // Closes the connection instead of returning it (an error, a result left unread).
  void Discard();

 private:
  void Return();

  SourcePool* pool_ = nullptr;
  std::string key_;
  std::unique_ptr<OdbcConnection> conn_;
  bool reused_ = false;
};

class SourcePool {
 public:
  SourcePool(int max_per_source, int idle_s);
  SourcePool(const SourcePool&) = delete;
  SourcePool& operator=(const SourcePool&) = delete;

  // A connection to `connection_string`: an idle one, or a new one while fewer than
  // max_per_source are open; otherwise waits up to `wait` for one to come back
  // (kUnavailable after that).
  Result<SourceLease> Acquire(const std::string& connection_string, std::chrono::milliseconds wait);
  // The source's current time read through `lease` with `query`, or the value read for the
  // same source less than `max_age` ago.
  Result<std::string> SourceNow(SourceLease& lease, const std::string& connection_string,
                                const std::string& query, std::chrono::milliseconds max_age);

  // Connections opened since the pool was made (for tests and benchmarks).
  int64_t opened() const;

 private:
  friend class SourceLease;
  using SteadyTime = std::chrono::steady_clock::time_point;
  struct Idle {
    std::unique_ptr<OdbcConnection> conn;
    SteadyTime since;
  };
  struct PerSource {
    int open = 0;  // leased and idle
    std::vector<Idle> idle;
    std::string now;  // the source clock, read at now_at
    SteadyTime now_at;
  };
  void Put(const std::string& key, std::unique_ptr<OdbcConnection> conn);
  void Drop(const std::string& key);

  const int max_per_source_;
  const std::chrono::seconds idle_;
  mutable std::mutex mu_;
  std::condition_variable returned_;
  std::map<std::string, PerSource> sources_;
  int64_t opened_ = 0;
};

}  // namespace dx::scheduler
