#include "agent/scheduler_connection.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace dx::agent {
namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using asio::ip::tcp;
using std::chrono::milliseconds;

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
// A frame's body buffer starts this large and doubles as the bytes arrive.
constexpr size_t kFirstBodyBytes = 4u << 10;
// One write asks for at most this much, so that progress is seen while a large frame goes.
constexpr size_t kWriteSliceBytes = 64u << 10;

void TuneSocket(tcp::socket& socket) {
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  socket.set_option(asio::socket_base::send_buffer_size(4 << 20), ignored);
  socket.set_option(asio::socket_base::receive_buffer_size(4 << 20), ignored);
}

}  // namespace

SchedulerConnection::SchedulerConnection(asio::io_context& io, ssl::context* tls,
                                         std::string server_name)
    : io_(io),
      tls_context_(tls),
      server_name_(std::move(server_name)),
      resolver_(io),
      deadline_(io),
      watchdog_(io),
      write_signal_(io),
      wake_(io) {
  plain_.emplace(io);
}

SchedulerConnection::~SchedulerConnection() = default;

tcp::socket& SchedulerConnection::socket() { return tls_ ? tls_->next_layer() : *plain_; }

asio::awaitable<std::pair<boost::system::error_code, size_t>> SchedulerConnection::ReadSome(
    char* data, size_t len) {
  auto [ec, n] = tls_ ? co_await tls_->async_read_some(asio::buffer(data, len), kAwait)
                      : co_await plain_->async_read_some(asio::buffer(data, len), kAwait);
  co_return std::pair{ec, n};
}

asio::awaitable<std::pair<boost::system::error_code, size_t>> SchedulerConnection::WriteSome(
    const char* data, size_t len) {
  auto [ec, n] = tls_ ? co_await tls_->async_write_some(asio::buffer(data, len), kAwait)
                      : co_await plain_->async_write_some(asio::buffer(data, len), kAwait);
  co_return std::pair{ec, n};
}

Status SchedulerConnection::Gone(const boost::system::error_code& ec, const std::string& what) {
  if (closed_) return why();
  if (ec == asio::error::eof || ec == ssl::error::stream_truncated) {
    return Unavailable("connection closed by " + peer_);
  }
  return Unavailable(what + " " + peer_ + ": " + ec.message());
}

void SchedulerConnection::ArmDeadline(milliseconds timeout, std::string what) {
  deadline_.expires_after(timeout);
  deadline_.async_wait(
      [self = shared_from_this(), what = std::move(what)](const boost::system::error_code& ec) {
        if (!ec) self->CloseNow(Unavailable(what));
      });
}

void SchedulerConnection::DisarmDeadline() { deadline_.cancel(); }

asio::awaitable<Status> SchedulerConnection::Connect(const std::string& host, int port,
                                                     milliseconds connect_timeout,
                                                     milliseconds tls_timeout) {
  peer_ = host + ":" + std::to_string(port);
  // A close (Stop, a deadline) may come before any step or while one waits: checked after
  // each, since async_connect would open a socket the close had already shut, with no
  // deadline left to shut it again.
  if (closed_) co_return why();
  ArmDeadline(connect_timeout, "cannot connect to " + peer_ + ": timed out");
  auto [rec, endpoints] = co_await resolver_.async_resolve(host, std::to_string(port), kAwait);
  if (closed_) co_return why();
  if (rec) co_return Unavailable("cannot resolve " + host + ": " + rec.message());
  auto [cec, endpoint] = co_await asio::async_connect(*plain_, endpoints, kAwait);
  if (closed_) co_return why();
  if (cec) co_return Gone(cec, "cannot connect to");
  DisarmDeadline();
  TuneSocket(*plain_);
  if (tls_context_ != nullptr) {
    ArmDeadline(tls_timeout, "TLS handshake with " + peer_ + " timed out");
    Status st = co_await StartTls();
    if (closed_) co_return why();
    if (!st.ok()) co_return st;
    DisarmDeadline();
  }
  last_tx_ = last_rx_ = Clock::now();
  asio::co_spawn(io_, Writer(shared_from_this()), &Rethrow);
  co_return Status::Ok();
}

asio::awaitable<Status> SchedulerConnection::StartTls() {
  tls_ = std::make_unique<ssl::stream<tcp::socket>>(std::move(*plain_), *tls_context_);
  plain_.reset();
  // The certificate must carry the scheduler's name: an IP address, or else a DNS name (also
  // sent as SNI).
  SSL* ssl = tls_->native_handle();
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  if (X509_VERIFY_PARAM_set1_ip_asc(param, server_name_.c_str()) != 1) {
    SSL_set_tlsext_host_name(ssl, server_name_.c_str());
    SSL_set1_host(ssl, server_name_.c_str());
  }
  auto [ec] = co_await tls_->async_handshake(ssl::stream_base::client, kAwait);
  if (!ec) co_return Status::Ok();
  const long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) {
    co_return PermissionDenied("TLS: the scheduler's certificate does not verify: " +
                               std::string(X509_verify_cert_error_string(verify)));
  }
  co_return Gone(ec, "TLS handshake with");
}

asio::awaitable<Status> SchedulerConnection::ReadFrame(size_t max_payload, MessageType* type,
                                                       std::string* payload) {
  char header[kFrameHeaderBytes];
  for (size_t got = 0; got < sizeof(header);) {
    auto [ec, n] = co_await ReadSome(header + got, sizeof(header) - got);
    if (ec) co_return Gone(ec, "receive from");
    last_rx_ = Clock::now();
    got += n;
  }
  const uint32_t len = FrameLength(header);
  if (len == 0 || len - 1 > std::min(max_payload, kMaxFrameBytes - 1)) {
    co_return DataLoss("frame of " + std::to_string(len) + " bytes from " + peer_);
  }
  *type = static_cast<MessageType>(header[4]);
  // The buffer grows as the bytes arrive (doubling from kFirstBodyBytes, each step asking for
  // no more bytes than have come): a claim of 64 MiB with 10 bytes behind it costs a few KiB.
  const size_t want = len - 1;
  payload->clear();
  in_body_ = want > 0;
  body_mark_ = Clock::now();
  body_mark_bytes_ = body_bytes_ = 0;
  size_t have = 0;
  while (have < want) {
    if (have == payload->size())
      payload->resize(std::min(want, std::max(kFirstBodyBytes, 2 * have)));
    auto [ec, n] = co_await ReadSome(payload->data() + have, payload->size() - have);
    if (ec) {
      in_body_ = false;
      co_return Gone(ec, "receive from");
    }
    last_rx_ = Clock::now();
    have += n;
    body_bytes_ = have;
  }
  in_body_ = false;
  co_return Status::Ok();
}

asio::awaitable<void> SchedulerConnection::Pause() {
  if (closed_) co_return;
  paused_ = true;
  wake_.expires_at(Clock::time_point::max());
  co_await wake_.async_wait(kAwait);
  paused_ = false;
  last_rx_ = Clock::now();  // the bytes waiting in the socket were not read, not missing
}

void SchedulerConnection::Wake() {
  asio::post(io_, [self = shared_from_this()] { self->wake_.cancel(); });
}

void SchedulerConnection::Close(const Status& why) {
  asio::post(io_, [self = shared_from_this(), why] { self->CloseNow(why); });
}

void SchedulerConnection::CloseNow(const Status& why) {
  if (closed_) return;
  closed_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    why_ = why.ok() ? Unavailable("connection to " + peer_ + " closed") : why;
    outgoing_.clear();
    outgoing_bytes_ = 0;
  }
  room_cv_.notify_all();
  boost::system::error_code ignored;
  resolver_.cancel();
  socket().shutdown(tcp::socket::shutdown_both, ignored);
  socket().close(ignored);
  deadline_.cancel();
  watchdog_.cancel();
  write_signal_.cancel();
  wake_.cancel();
}

Status SchedulerConnection::why() const {
  std::lock_guard<std::mutex> lock(mu_);
  return why_;
}

Status SchedulerConnection::Send(MessageType type, std::string_view payload) {
  if (payload.size() + 1 > kMaxFrameBytes) return Internal("frame too large");
  std::string frame = EncodeFrame(type, payload);
  {
    std::unique_lock<std::mutex> lock(mu_);
    room_cv_.wait(lock, [&] { return !why_.ok() || outgoing_bytes_ < kSendQueueBytes; });
    if (!why_.ok()) return why_;
    outgoing_bytes_ += frame.size();
    outgoing_.push_back(std::move(frame));
  }
  asio::post(io_, [self = shared_from_this()] { self->write_signal_.cancel(); });
  return Status::Ok();
}

std::optional<std::string> SchedulerConnection::TakeOutgoing() {
  std::optional<std::string> frame;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (outgoing_.empty()) return std::nullopt;
    frame = std::move(outgoing_.front());
    outgoing_.pop_front();
    outgoing_bytes_ -= frame->size();
  }
  room_cv_.notify_all();
  return frame;
}

bool SchedulerConnection::QueueHeartbeatIfIdle() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!why_.ok() || !outgoing_.empty()) return false;
  outgoing_.push_back(EncodeFrame(MessageType::kHeartbeat, ""));
  outgoing_bytes_ += 5;
  return true;
}

asio::awaitable<void> SchedulerConnection::Writer(std::shared_ptr<SchedulerConnection> /*alive*/) {
  while (!closed_) {
    std::optional<std::string> frame = TakeOutgoing();
    if (!frame) {
      write_signal_.expires_at(Clock::time_point::max());
      co_await write_signal_.async_wait(kAwait);
      continue;
    }
    writing_ = true;
    last_tx_ = Clock::now();
    for (size_t at = 0; at < frame->size() && !closed_;) {
      auto [ec, n] =
          co_await WriteSome(frame->data() + at, std::min(kWriteSliceBytes, frame->size() - at));
      if (ec) {
        CloseNow(Gone(ec, "send to"));
        break;
      }
      last_tx_ = Clock::now();
      at += n;
    }
    writing_ = false;
  }
}

void SchedulerConnection::StartHeartbeats(std::chrono::seconds heartbeat) {
  last_rx_ = Clock::now();
  asio::co_spawn(io_, Watchdog(shared_from_this(), heartbeat), &Rethrow);
}

asio::awaitable<void> SchedulerConnection::Watchdog(std::shared_ptr<SchedulerConnection> /*alive*/,
                                                    std::chrono::seconds heartbeat) {
  const auto dead = 3 * heartbeat;
  const std::string period = std::to_string(dead.count()) + " s";
  const auto late = milliseconds(1);
  while (!closed_) {
    // The next heartbeat falls a period after the last write; each deadline three periods
    // after the last progress it measures (never in the past: the writer may not have run).
    auto now = Clock::now();
    auto wake = std::max(last_tx_ + heartbeat, now + milliseconds(100));
    if (!paused_) wake = std::min(wake, last_rx_ + dead + late);
    if (writing_) wake = std::min(wake, last_tx_ + dead + late);
    if (in_body_) wake = std::min(wake, body_mark_ + dead + late);
    watchdog_.expires_at(wake);
    co_await watchdog_.async_wait(kAwait);
    if (closed_) break;
    now = Clock::now();
    if (!paused_ && now - last_rx_ > dead) {
      CloseNow(Unavailable("nothing heard from " + peer_ + " for " + period));
      break;
    }
    if (writing_ && now - last_tx_ > dead) {
      CloseNow(Unavailable(peer_ + " took no bytes for " + period));
      break;
    }
    if (in_body_ && now - body_mark_ > dead) {
      const size_t got = body_bytes_ - body_mark_bytes_;
      if (got < kMinBodyBytes) {
        CloseNow(Unavailable(peer_ + " sent " + std::to_string(got) + " bytes of a frame in " +
                             period + " (at least " + std::to_string(kMinBodyBytes) + " wanted)"));
        break;
      }
      body_mark_ = now;
      body_mark_bytes_ = body_bytes_;
    }
    if (!writing_ && now - last_tx_ >= heartbeat && QueueHeartbeatIfIdle()) {
      last_tx_ = now;
      write_signal_.cancel();
    }
  }
}

}  // namespace dx::agent
