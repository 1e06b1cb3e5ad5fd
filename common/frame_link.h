// FrameLink: one TCP connection carrying protocol frames ([u32 length][u8 type][payload]),
// with a deadline on every read and write that measures progress: it runs out only when no
// byte has moved for that long (a slow link that keeps delivering is never cut). The agent's
// side of the link (the scheduler serves its agents with Boost.Asio, scheduler/agent_hub.cc). Send
// may be called from several threads; Receive from one reader thread only. Close() from any thread
// unblocks the reader.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "common/protocol.h"
#include "common/status.h"
#include "common/tls_context.h"

namespace dx {

struct Frame {
  MessageType type = MessageType::kHeartbeat;
  std::string payload;
};

class FrameLink {
 public:
  // Connects to host:port; `timeout` bounds the connect.
  static Result<std::unique_ptr<FrameLink>> Dial(const std::string& host, int port,
                                                 std::chrono::milliseconds timeout);
  explicit FrameLink(int fd, std::string peer);
  ~FrameLink();
  FrameLink(const FrameLink&) = delete;
  FrameLink& operator=(const FrameLink&) = delete;

  // Runs the TLS handshake (as client or server, by `tls`); afterwards every frame is
  // encrypted. A certificate the client cannot verify is kPermissionDenied.
  Status StartTls(const TlsContext& tls, std::chrono::milliseconds timeout);
  // kUnavailable when the peer is gone or takes no byte for `timeout`.
  Status Send(MessageType type, std::string_view payload, std::chrono::milliseconds timeout);
  // Waits for a whole frame; kUnavailable when no byte arrives for `timeout` or on close, or
  // when a frame's body, once begun, brings less than kMinBodyBytes in a `timeout` (a peer
  // trickling a byte at a time). A frame longer than `max_payload` is refused (kDataLoss)
  // before anything is allocated; the buffer grows as the bytes arrive.
  static constexpr size_t kMinBodyBytes = 3u << 10;
  Result<Frame> Receive(std::chrono::milliseconds timeout, size_t max_payload = kMaxFrameBytes);
  void Close();
  const std::string& peer() const { return peer_; }
  // Bytes sent and received so far (frames included).
  uint64_t bytes_sent() const { return bytes_sent_; }

 private:
  Status WriteAll(const char* data, size_t len, std::chrono::milliseconds idle);
  // The pace of a frame body: bytes read since `mark`; every `idle` at least kMinBodyBytes.
  struct Pace {
    std::chrono::steady_clock::time_point mark;
    size_t bytes = 0;
  };
  Status ReadAll(char* data, size_t len, std::chrono::milliseconds idle, Pace* pace = nullptr);
  // With `pace`: at the end of its period, whether the body kept up (then a new period starts).
  Status CheckPace(Pace* pace, std::chrono::milliseconds idle);

  // One TLS record layer call at a time: OpenSSL objects are not safe across threads.
  template <typename Op>
  Status TlsIo(Op op, const char* what, std::chrono::steady_clock::time_point deadline);

  int fd_;
  std::string peer_;
  std::mutex send_mu_;
  void* ssl_ = nullptr;  // SSL*, once StartTls succeeded
  std::mutex ssl_mu_;
  uint64_t bytes_sent_ = 0;
};

// Listens on host:port for agent connections.
class FrameListener {
 public:
  // Port 0 picks a free port; port() tells which.
  static Result<std::unique_ptr<FrameListener>> Listen(const std::string& host, int port);
  ~FrameListener();
  int port() const { return port_; }
  // Waits up to `timeout` for a connection; nullptr on timeout.
  Result<std::unique_ptr<FrameLink>> Accept(std::chrono::milliseconds timeout);
  void Close();

 private:
  FrameListener(int fd, int port) : fd_(fd), port_(port) {}
  int fd_;
  int port_;
};

// Splits "host:port"; InvalidArgument names the text when it is malformed.
Status ParseHostPort(const std::string& text, std::string* host, int* port);

}  // namespace dx
