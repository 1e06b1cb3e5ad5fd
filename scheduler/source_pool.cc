#include "scheduler/source_pool.h"

#include <utility>

namespace dx::scheduler {

SourceLease::SourceLease(SourcePool* pool, std::string key, std::unique_ptr<OdbcConnection> conn,
                         bool reused)
    : pool_(pool), key_(std::move(key)), conn_(std::move(conn)), reused_(reused) {}

SourceLease::SourceLease(SourceLease&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)),
      key_(std::move(other.key_)),
      conn_(std::move(other.conn_)),
      reused_(other.reused_) {}

SourceLease& SourceLease::operator=(SourceLease&& other) noexcept {
  if (this != &other) {
    Return();
    pool_ = std::exchange(other.pool_, nullptr);
    key_ = std::move(other.key_);
    conn_ = std::move(other.conn_);
    reused_ = other.reused_;
  }
  return *this;
}

SourceLease::~SourceLease() { Return(); }

void SourceLease::Discard() {
  conn_.reset();
  if (pool_ != nullptr) pool_->Drop(key_);
  pool_ = nullptr;
}

void SourceLease::Return() {
  if (pool_ == nullptr) {
    conn_.reset();
    return;
  }
  if (conn_ && conn_->DriverSaysAlive()) {
    pool_->Put(key_, std::move(conn_));
  } else {
    conn_.reset();
    pool_->Drop(key_);
  }
  pool_ = nullptr;
}

SourcePool::SourcePool(int max_per_source, int idle_s)
    : max_per_source_(std::max(1, max_per_source)), idle_(std::max(1, idle_s)) {}

Result<SourceLease> SourcePool::Acquire(const std::string& connection_string,
                                        std::chrono::milliseconds wait) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  std::vector<std::unique_ptr<OdbcConnection>> expired;  // closed outside the lock
  {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      PerSource& s = sources_[connection_string];
      const auto now = std::chrono::steady_clock::now();
      // Idle too long: the server or a firewall may have dropped it; close it.
      while (!s.idle.empty() && now - s.idle.front().since > idle_) {
        expired.push_back(std::move(s.idle.front().conn));
        s.idle.erase(s.idle.begin());
        --s.open;
      }
      if (!s.idle.empty()) {
        std::unique_ptr<OdbcConnection> conn = std::move(s.idle.back().conn);
        s.idle.pop_back();
        return SourceLease(this, connection_string, std::move(conn), /*reused=*/true);
      }
      if (s.open < max_per_source_) {
        ++s.open;
        ++opened_;
        break;  // open a new one outside the lock
      }
      if (returned_.wait_until(lock, deadline) == std::cv_status::timeout &&
          std::chrono::steady_clock::now() >= deadline) {
        return Unavailable("every connection to the source is busy (" +
                           std::to_string(max_per_source_) + " at most)");
      }
    }
  }
  expired.clear();
  auto conn = OdbcConnection::Open(connection_string);
  if (!conn.ok()) {
    Drop(connection_string);
    return conn.status();
  }
  return SourceLease(this, connection_string, std::move(conn).value(), /*reused=*/false);
}

Result<std::string> SourcePool::SourceNow(SourceLease& lease, const std::string& connection_string,
                                          const std::string& query,
                                          std::chrono::milliseconds max_age) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    PerSource& s = sources_[connection_string];
    if (!s.now.empty() && std::chrono::steady_clock::now() - s.now_at < max_age) return s.now;
  }
  const auto asked = std::chrono::steady_clock::now();
  DX_ASSIGN_OR_RETURN(std::string now, lease->QueryScalar(query));
  if (now.size() > 19) now.resize(19);  // drop fractional seconds
  std::lock_guard<std::mutex> lock(mu_);
  PerSource& s = sources_[connection_string];
  // Two reads finishing out of order must not move the cached clock back.
  if (s.now.empty() || now >= s.now) {
    s.now = now;
    s.now_at = asked;  // the value is at least as old as the question
  }
  return now;
}

int64_t SourcePool::opened() const {
  std::lock_guard<std::mutex> lock(mu_);
  return opened_;
}

void SourcePool::Put(const std::string& key, std::unique_ptr<OdbcConnection> conn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    sources_[key].idle.push_back({std::move(conn), std::chrono::steady_clock::now()});
  }
  returned_.notify_one();
}

void SourcePool::Drop(const std::string& key) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    --sources_[key].open;
  }
  returned_.notify_one();
}

}  // namespace dx::scheduler
