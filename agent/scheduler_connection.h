// SchedulerConnection: the agent's one connection to the scheduler on Boost.Asio, carrying
// protocol frames ([u32 length][u8 type][payload]), in clear or in TLS. Its coroutines (the
// caller's reader, the writer draining the send queue, the heartbeat watchdog) run on one io
// thread; Send, Wake and Close may be called from any thread.
//
// Deadlines measure progress, not whole frames: once heartbeats started, the link is dropped
// when nothing has been heard for three heartbeats (the reader's pauses for back-pressure
// excepted), when a pending write has taken no byte for three heartbeats, or when a frame's
// body, once begun, brings less than kMinBodyBytes per three heartbeats (a peer trickling a
// byte at a time). Before that, Connect and the hello exchange run under a deadline
// (ArmDeadline).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "common/protocol.h"
#include "common/status.h"

namespace dx::agent {

class SchedulerConnection : public std::enable_shared_from_this<SchedulerConnection> {
 public:
  // Of a frame's body once begun, at least this many bytes per three heartbeats.
  static constexpr size_t kMinBodyBytes = 3u << 10;
  // Send() waits while this much waits to be written.
  static constexpr size_t kSendQueueBytes = 8u << 20;

  // With `tls` (a client context that verifies its peer), the connection is verified and
  // encrypted; `server_name` is the DNS name or IP address the certificate must carry.
  SchedulerConnection(boost::asio::io_context& io, boost::asio::ssl::context* tls,
                      std::string server_name);
  ~SchedulerConnection();
  SchedulerConnection(const SchedulerConnection&) = delete;
  SchedulerConnection& operator=(const SchedulerConnection&) = delete;

  // --- On the io thread. ---
  // Resolves and connects within `connect_timeout`, then runs the TLS handshake within
  // `tls_timeout`; starts the writer. A certificate the agent cannot verify is
  // kPermissionDenied; anything else kUnavailable.
  boost::asio::awaitable<Status> Connect(const std::string& host, int port,
                                         std::chrono::milliseconds connect_timeout,
                                         std::chrono::milliseconds tls_timeout);
  // Reads one frame. A length above `max_payload` is refused (kDataLoss) before anything is
  // allocated; the buffer grows as the bytes arrive, never ahead of them.
  boost::asio::awaitable<Status> ReadFrame(size_t max_payload, MessageType* type,
                                           std::string* payload);
  // Suspends the reader until Wake() or the close; its pause is not silence.
  boost::asio::awaitable<void> Pause();
  // Closes the connection with `what` when it has not disarmed within `timeout`.
  void ArmDeadline(std::chrono::milliseconds timeout, std::string what);
  void DisarmDeadline();
  // Starts the watchdog: a heartbeat goes out whenever nothing else was sent for `heartbeat`,
  // and the progress deadlines above apply.
  void StartHeartbeats(std::chrono::seconds heartbeat);
  // Closes at once; the first reason is kept.
  void CloseNow(const Status& why);
  bool closed() const { return closed_; }
  // The completion of the link's coroutines: an exception escapes io_context::run() (and ends
  // the process) rather than leave the link half-alive.
  static void Rethrow(std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  }

  // --- On any thread. ---
  // Queues a frame for the writer; waits while kSendQueueBytes are queued (the watchdog drops
  // a link that takes nothing). Unavailable, with the reason, once the connection is closed.
  Status Send(MessageType type, std::string_view payload);
  // Resumes a paused reader.
  void Wake();
  void Close(const Status& why);
  // Why it closed (Ok while open).
  Status why() const;
  const std::string& peer() const { return peer_; }

 private:
  boost::asio::ip::tcp::socket& socket();
  boost::asio::awaitable<std::pair<boost::system::error_code, size_t>> ReadSome(char* data,
                                                                                size_t len);
  boost::asio::awaitable<std::pair<boost::system::error_code, size_t>> WriteSome(const char* data,
                                                                                 size_t len);
  // The reason an operation failed with `ec`: the close's when it closed the connection.
  Status Gone(const boost::system::error_code& ec, const std::string& what);
  boost::asio::awaitable<Status> StartTls();
  boost::asio::awaitable<void> Writer(std::shared_ptr<SchedulerConnection> self);
  boost::asio::awaitable<void> Watchdog(std::shared_ptr<SchedulerConnection> self,
                                        std::chrono::seconds heartbeat);
  std::optional<std::string> TakeOutgoing();
  bool QueueHeartbeatIfIdle();

  using Clock = std::chrono::steady_clock;
  boost::asio::io_context& io_;
  boost::asio::ssl::context* tls_context_;
  const std::string server_name_;
  std::string peer_;
  boost::asio::ip::tcp::resolver resolver_;
  std::optional<boost::asio::ip::tcp::socket> plain_;
  std::unique_ptr<boost::asio::ssl::stream<boost::asio::ip::tcp::socket>> tls_;
  boost::asio::steady_timer deadline_;
  boost::asio::steady_timer watchdog_;
  boost::asio::steady_timer write_signal_;
  boost::asio::steady_timer wake_;

  // Io thread only.
  bool closed_ = false;
  Clock::time_point last_rx_;
  Clock::time_point last_tx_;
  bool writing_ = false;
  bool paused_ = false;
  // The frame body being read: since when its pace is measured, its bytes then and now.
  bool in_body_ = false;
  Clock::time_point body_mark_;
  size_t body_mark_bytes_ = 0;
  size_t body_bytes_ = 0;

  // Shared with the senders.
  mutable std::mutex mu_;
  std::condition_variable room_cv_;
  std::deque<std::string> outgoing_;
  size_t outgoing_bytes_ = 0;
  Status why_;  // set once, at the close
};

}  // namespace dx::agent
