#include "scheduler/agent_hub.h"

#include <malloc.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl.hpp>
#include <csignal>
#include <set>
#include <thread>

#include "common/host_port.h"
#include "common/log.h"
#include "common/wire.h"
#include "scheduler/io_runtime_asio.h"
#include "scheduler/secret.h"
#include "scheduler/tls_socket.h"

namespace dx::scheduler {
namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using asio::ip::tcp;
using std::chrono::milliseconds;
using std::chrono::seconds;
using SteadyClock = std::chrono::steady_clock;

// Until its Hello is accepted a peer may send no frame larger than this.
constexpr size_t kMaxHelloFrameBytes = 64u << 10;
// Longest agent name accepted on the wire (names in manifests are far shorter).
constexpr size_t kMaxAgentNameBytes = 128;
// A session credential: 32 random bytes as hex.
constexpr size_t kSessionTokenChars = 64;
// Once a frame's body has begun, at least this many bytes of it must arrive per heartbeat
// period, measured over three periods (a 2 Mbit/s link moves a hundred times more): a peer
// that trickles a byte at a time is dropped although bytes keep moving.
constexpr size_t kMinBodyBytesPerBeat = 1u << 10;
// A frame's body buffer starts this large and doubles as bytes arrive.
constexpr size_t kFirstBodyBytes = 4u << 10;
// A run's Send blocks while this much waits to be written to its agent.
constexpr size_t kSendQueueBytes = 8u << 20;
// Writes go out in slices so that the progress deadline sees bytes moving.
constexpr size_t kWriteSliceBytes = 64u << 10;
// Replies an agent may have queued that no run has taken yet, per kind and subscription, and
// their bytes in all its mailboxes: beyond that the agent is flooding. The byte bound is one
// largest frame: a reconciliation's answers to its 512 ranges in flight (256 rows each, keys
// and hashes listed when they differ) stay well under it even with long keys.
constexpr size_t kMaxQueuedReplies = 4096;
constexpr size_t kMaxQueuedReplyBytes = kMaxFrameBytes;
// Replies for subscriptions no run opened are dropped; a line is logged at most this often.
constexpr seconds kDroppedReplyLogEvery{60};
// Failed-login back-off: doubles per failure from the first, up to the last.
constexpr milliseconds kBackoffFirst{500};
constexpr milliseconds kBackoffMax{60000};
// An address is backed off for at most this long (agents behind one NAT share it); a name, and
// a name from one address, for up to kBackoffMax.
constexpr milliseconds kAddressBackoffMax{5000};
// While a name backs off (its failures came from elsewhere), a login for it from an address
// that has not failed is still checked for real, at most once per this period: someone who
// knows only the name cannot lock the agent out, and guesses spread over many addresses are
// still slowed down.
constexpr milliseconds kNameCheckEvery{1000};
constexpr size_t kMaxBackoffEntries = 100000;
// Identical refusals are logged once per window, then summarised.
constexpr seconds kRefusalWindow{60};

int64_t UnixSecondsNow() {
  return std::chrono::duration_cast<seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// 32 bytes from OpenSSL's generator (keys, session credentials); aborts if it has none to give
// rather than hand out predictable keys.
std::string RandomKey() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    LOG_ERROR("no random bytes from OpenSSL: " << TlsErrorText());
    std::abort();
  }
  return std::string(reinterpret_cast<char*>(bytes), sizeof(bytes));
}

}  // namespace

std::string EscapeWireText(std::string_view text, size_t max_bytes) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  size_t n = std::min(text.size(), max_bytes);
  size_t i = 0;
  auto escape = [&](unsigned char c) {
    out += "\\x";
    out += kHex[c >> 4];
    out += kHex[c & 15];
  };
  while (i < n) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f || c == '\\') {
        escape(c);
      } else {
        out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    // Whole, well-formed UTF-8 sequences (names are often Chinese) pass; anything else is
    // escaped byte by byte.
    size_t len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
    bool ok = len > 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (static_cast<unsigned char>(text[i + k]) & 0xc0) == 0x80;
    }
    if (ok && len == 3 && c == 0xe0) ok = static_cast<unsigned char>(text[i + 1]) >= 0xa0;
    if (ok && len == 3 && c == 0xed) ok = static_cast<unsigned char>(text[i + 1]) < 0xa0;
    if (ok && len == 4 && c == 0xf0) ok = static_cast<unsigned char>(text[i + 1]) >= 0x90;
    if (ok && len == 4 && c == 0xf4) ok = static_cast<unsigned char>(text[i + 1]) < 0x90;
    if (ok) {
      out.append(text.substr(i, len));
      i += len;
    } else if (len > 0 && i + len > n && n < text.size()) {
      break;  // a character cut by the limit
    } else {
      escape(c);
      ++i;
    }
  }
  if (text.size() > max_bytes) out += "...(" + std::to_string(text.size()) + " bytes)";
  return out;
}

// ---------------------------------------------------------------------------------------------
// The hub's shared state.

struct AgentHub::Impl {
  Impl(Store& s, const Clock& c, AgentHubOptions o, std::shared_ptr<TlsContext> t, IoRuntime& rt)
      : store(s),
        clock(c),
        options(o),
        tls(std::move(t)),
        runtime(rt),
        io(rt.impl().io),
        workers(rt.impl().workers),
        store_strand(asio::make_strand(workers.get_executor())),
        acceptor(io),
        cache_key(RandomKey()),
        dummy_hash(HashSecret(RandomKey())) {
    if (tls) {
      SSL_CTX* native = static_cast<SSL_CTX*>(tls->native());
      // Idle connections keep no TLS read/write buffers (most agents idle most of the time).
      SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
      // Agents never resume a TLS session (each connect logs in again): no tickets to make,
      // send and keep, no session cache.
      SSL_CTX_set_num_tickets(native, 0);
      SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
      // A renegotiation is a handshake's CPU at the peer's whim (TLS 1.2); nothing needs one.
      SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION);
      // A record (header and body) in one read from the socket, not two.
      SSL_CTX_set_read_ahead(native, 1);
    }
  }

  struct Backoff {
    int failures = 0;
    SteadyClock::time_point until;
    SteadyClock::time_point next_check;  // a name's: its next real check while backing off
  };
  struct Refusals {
    SteadyClock::time_point logged;
    int64_t suppressed = 0;
    std::string address;
    std::string reason;
  };
  struct Verified {
    std::string stored_hash;  // the store's hash when the secret was checked
    std::string digest;       // HMAC of the secret under cache_key
  };
  struct Verdict {
    bool accepted = false;
    std::string reason;       // what the agent is told
    std::string log_reason;   // what the log and audit say, when more than `reason`
    bool by_session = false;  // accepted on its session credential
    std::string secret_hash;  // the store's, when accepted (keys a new session credential)
  };

  // Runs on a worker: the secret check. Unknown names cost the same PBKDF2 as known ones.
  // With `cache_only` (the name or address is backing off) only a secret verified before
  // passes: no PBKDF2, so a storm costs nothing and the real agent still gets in.
  Verdict Authenticate(const Hello& hello, bool cache_only);
  // The refusal of a disabled agent: the peer hears only "refused", the log says why.
  static Verdict Disabled() {
    Verdict v;
    v.reason = "refused";
    v.log_reason = "the agent is disabled";
    return v;
  }
  // A failed login from `address` for `name`: the address, the name, and the name from that
  // address back off. `by_address` false: the address does not (a disabled agent gave the
  // right secret; other agents behind its address are not held back by its reconnects).
  void NoteFailure(const std::string& address, const std::string& name, bool by_address = true);
  void NoteSuccess(const std::string& address, const std::string& name);
  // True when a login from `address` for `name` may only be checked against the cache of
  // verified secrets: the address, or the name from it, is backing off; or the name is, and
  // it had its real check of this period (which this call otherwise takes).
  bool BackingOff(const std::string& address, const std::string& name);
  // Logs (rate-limited) and audits a refusal.
  // Identical refusals (same name, address and `reason`) are logged once a minute; `detail`
  // only goes into the line that is logged.
  void Refused(const std::string& name, const std::string& address, const std::string& reason,
               const std::string& detail = "");
  void AuditLater(const std::string& agent, const std::string& action, const std::string& result,
                  const std::string& from);
  void StoreLater(std::function<void()> write) { asio::post(store_strand, std::move(write)); }
  asio::awaitable<void> AcceptLoop();
  asio::awaitable<void> FlushLoop();
  void Release(AgentConnection* connection, const std::string& address);

  Store& store;
  const Clock& clock;
  const AgentHubOptions options;
  std::shared_ptr<TlsContext> tls;
  IoRuntime& runtime;
  asio::io_context& io;
  asio::thread_pool& workers;
  asio::strand<asio::thread_pool::executor_type> store_strand;
  tcp::acceptor acceptor;
  int loops = 0;                              // AcceptLoop and FlushLoop running (under mu)
  asio::steady_timer* flush_timer = nullptr;  // FlushLoop's, while it waits (under mu)
  std::atomic<bool> stopping{false};
  bool started = false;
  int port = 0;
  const std::string cache_key;
  const std::string dummy_hash;

  std::mutex mu;
  std::condition_variable idle_cv;
  std::map<std::string, std::shared_ptr<AgentSession>> sessions;
  std::map<AgentConnection*, std::weak_ptr<AgentConnection>> connections;
  std::map<std::string, int> per_address;
  std::map<std::string, Backoff> backoff;  // "a:" address, "n:" name, "p:" name \0 address
  std::map<std::string, Refusals> refusals;
  std::map<std::string, Verified> verified;
  std::map<std::string, int64_t> flushed_seen;
  // Counts Disconnect calls: a login whose secret check overlapped one (it may have read the
  // agent's record before it was disabled, removed or given a new secret) is not registered.
  uint64_t disconnects = 0;
  // Secret checks (PBKDF2) queued or running on the workers. Above kMaxChecksInFlight a login
  // is checked against the cache only (a known agent reconnecting still gets in at once), so
  // no storm of Hellos can queue PBKDF2 work without bound ahead of real agents.
  std::atomic<int> checks_in_flight{0};
  static constexpr int kMaxChecksInFlight = 32;
};

// ---------------------------------------------------------------------------------------------
// One connection, on its own strand.

class AgentConnection : public std::enable_shared_from_this<AgentConnection> {
 public:
  AgentConnection(AgentHub::Impl& hub, tcp::socket socket, std::string address, std::string peer)
      : hub_(hub),
        executor_(socket.get_executor()),
        address_(std::move(address)),
        peer_(std::move(peer)),
        handshake_timer_(executor_),
        watchdog_(executor_),
        write_signal_(executor_) {
    plain_.emplace(std::move(socket));
  }

  void Start() { asio::co_spawn(executor_, Run(shared_from_this()), asio::detached); }
  // Any thread.
  void Close(const Status& why) {
    asio::post(executor_, [self = shared_from_this(), why] { self->DoClose(why); });
  }
  // Any thread: frames wait in the session's queue.
  void Kick() {
    asio::post(executor_, [self = shared_from_this()] { self->write_signal_.cancel(); });
  }

 private:
  tcp::socket& socket() { return tls_ ? tls_->socket() : *plain_; }

  // TLS state (OpenSSL's objects, some 20 KiB) is made only once the peer has sent its first
  // bytes: a connection that stays idle costs a socket and little else.
  asio::awaitable<Status> StartTls() {
    auto [ec] =
        co_await plain_->async_wait(tcp::socket::wait_read, asio::as_tuple(asio::use_awaitable));
    if (ec || closed_) co_return Gone(ec, "waiting for");
    tls_ = std::make_unique<TlsSocket>(std::move(*plain_), hub_.tls->native());
    plain_.reset();
    boost::system::error_code hec = co_await tls_->Handshake();
    if (hec) {
      co_return Unavailable("TLS handshake with " + peer_ + " failed: " + hec.message());
    }
    tls_done_ = true;
    co_return Status::Ok();
  }

  void DoClose(const Status& why) {
    if (closed_) return;
    closed_ = true;
    why_ = why;
    boost::system::error_code ignored;
    socket().shutdown(tcp::socket::shutdown_both, ignored);
    socket().close(ignored);
    handshake_timer_.cancel();
    watchdog_.cancel();
    write_signal_.cancel();
  }

  asio::awaitable<TlsSocket::ErrorAndSize> ReadSome(asio::mutable_buffer buffer) {
    if (tls_) co_return co_await tls_->ReadSome(buffer);
    auto [ec, n] = co_await plain_->async_read_some(buffer, asio::as_tuple(asio::use_awaitable));
    co_return TlsSocket::ErrorAndSize{ec, n};
  }
  asio::awaitable<TlsSocket::ErrorAndSize> WriteSome(asio::const_buffer buffer) {
    if (tls_) co_return co_await tls_->Write(buffer);
    auto [ec, n] = co_await asio::async_write(*plain_, buffer, asio::as_tuple(asio::use_awaitable));
    co_return TlsSocket::ErrorAndSize{ec, n};
  }

  Status Gone(const boost::system::error_code& ec, const char* what) {
    if (closed_ && !why_.ok()) return why_;
    if (ec == asio::error::eof || ec == ssl::error::stream_truncated) {
      return Unavailable("connection closed by " + peer_);
    }
    return Unavailable(std::string(what) + " " + peer_ + ": " + ec.message());
  }

  // Reads exactly `len` bytes; every chunk that arrives counts as progress.
  asio::awaitable<Status> ReadExact(char* data, size_t len) {
    while (len > 0) {
      auto [ec, n] = co_await ReadSome(asio::buffer(data, len));
      if (ec) co_return Gone(ec, "receive from");
      last_rx_ = SteadyClock::now();
      data += n;
      len -= n;
    }
    co_return Status::Ok();
  }

  // One frame; its length is checked against `max_payload` before anything is allocated.
  asio::awaitable<Status> ReadFrame(size_t max_payload, MessageType* type, std::string* payload) {
    char header[kFrameHeaderBytes];
    Status st = co_await ReadExact(header, sizeof(header));
    if (!st.ok()) co_return st;
    const uint32_t len = FrameLength(header);
    if (len == 0 || len - 1 > max_payload) {
      co_return DataLoss("frame of " + std::to_string(len) + " bytes from " + peer_ + " (at most " +
                         std::to_string(max_payload + 1) + " here)");
    }
    *type = static_cast<MessageType>(header[4]);
    // The buffer grows as the bytes arrive (doubling from kFirstBodyBytes), never ahead of
    // them to the length the header claims: a peer that claims 64 MiB and sends 10 bytes
    // costs a few KiB.
    const size_t want = len - 1;
    payload->clear();
    size_t have = 0;
    in_body_ = want > 0;
    body_mark_ = SteadyClock::now();
    body_mark_bytes_ = 0;
    body_bytes_ = 0;
    while (have < want) {
      if (have == payload->size()) {
        payload->resize(std::min(want, std::max(kFirstBodyBytes, 2 * have)));
      }
      auto [ec, n] =
          co_await ReadSome(asio::buffer(payload->data() + have, payload->size() - have));
      if (ec) co_return Gone(ec, "receive from");
      last_rx_ = SteadyClock::now();
      have += n;
      body_bytes_ = have;
    }
    in_body_ = false;
    co_return Status::Ok();
  }

  asio::awaitable<Status> WriteFrame(const std::string& frame) {
    size_t at = 0;
    writing_ = true;
    last_tx_ = SteadyClock::now();
    while (at < frame.size()) {
      size_t n = std::min(kWriteSliceBytes, frame.size() - at);
      auto [ec, written] = co_await WriteSome(asio::buffer(frame.data() + at, n));
      if (ec) {
        writing_ = false;
        co_return Gone(ec, "send to");
      }
      last_tx_ = SteadyClock::now();
      if (session_) session_->NoteWritten();
      at += written;
    }
    writing_ = false;
    co_return Status::Ok();
  }

  asio::awaitable<void> Writer(std::shared_ptr<AgentConnection> /*keep alive*/) {
    while (!closed_) {
      std::optional<std::string> frame = session_->TakeOutgoing();
      if (!frame) {
        write_signal_.expires_at(SteadyClock::time_point::max());
        co_await write_signal_.async_wait(asio::as_tuple(asio::use_awaitable));
        continue;
      }
      Status st = co_await WriteFrame(*frame);
      if (!st.ok()) DoClose(st);
    }
  }

  // An agent's heartbeat is answered at once with one of ours unless we sent something in the
  // last one and a half periods: the agent paces both directions, hears from us every second
  // heartbeat (two periods, inside its three), and an idle link costs one wake-up per
  // heartbeat here and one send per two.
  void AnswerHeartbeat() {
    const auto quiet = milliseconds(1500 * hub_.options.heartbeat_s);
    if (SteadyClock::now() - last_tx_ < quiet) return;
    if (session_->QueueHeartbeatIfIdle()) write_signal_.cancel();
  }

  // Drops a link that has been silent, or has not taken a byte of a pending write, for three
  // heartbeats; sends a heartbeat of its own when nothing was sent for two (an agent that does
  // not send its own still hears from us within its three).
  asio::awaitable<void> Watchdog(std::shared_ptr<AgentConnection> /*keep alive*/) {
    const auto beat = seconds(hub_.options.heartbeat_s);
    const auto dead = 3 * beat;
    auto last_beat = SteadyClock::now();  // our last heartbeat, queued or not
    // Our own heartbeats are due on a grid (a quarter period, at most 1 s): the idle agents'
    // timers then fall due together, one wake-up of the io thread and one re-arm of its
    // timerfd for all of them instead of one each. Still well inside the agent's three periods.
    const auto grid = std::min<SteadyClock::duration>(milliseconds(beat) / 4, seconds(1));
    auto on_grid = [grid](SteadyClock::time_point t) {
      const auto since = t.time_since_epoch();
      return SteadyClock::time_point((since + grid - SteadyClock::duration(1)) / grid * grid);
    };
    while (!closed_) {
      // Wakes for the next heartbeat of ours, or sooner when a deadline falls before it, so
      // that a silent link is dropped three heartbeats after its last byte, not later.
      const auto next_beat = on_grid(std::max(last_tx_, last_beat) + 2 * beat);
      auto wake = std::min(next_beat, last_rx_ + dead + milliseconds(1));
      if (writing_) wake = std::min(wake, last_tx_ + dead + milliseconds(1));
      if (in_body_) wake = std::min(wake, body_mark_ + dead + milliseconds(1));
      watchdog_.expires_at(wake);
      co_await watchdog_.async_wait(asio::as_tuple(asio::use_awaitable));
      if (closed_) break;
      auto now = SteadyClock::now();
      if (now - last_rx_ > dead) {
        DoClose(Unavailable("nothing heard from " + peer_ + " for " +
                            std::to_string(3 * hub_.options.heartbeat_s) + " s"));
        break;
      }
      if (writing_ && now - last_tx_ > dead) {
        DoClose(Unavailable(peer_ + " took no bytes for " +
                            std::to_string(3 * hub_.options.heartbeat_s) + " s"));
        break;
      }
      if (in_body_ && now - body_mark_ > dead) {
        // A frame's body over the last three periods (or since it began): enough bytes?
        const size_t got = body_bytes_ - body_mark_bytes_;
        if (got < 3 * kMinBodyBytesPerBeat) {
          DoClose(Unavailable(peer_ + " sent " + std::to_string(got) + " bytes of a frame in " +
                              std::to_string(3 * hub_.options.heartbeat_s) + " s (at least " +
                              std::to_string(kMinBodyBytesPerBeat) + " per heartbeat period)"));
          break;
        }
        body_mark_ = now;
        body_mark_bytes_ = body_bytes_;
      }
      if (now < std::max(last_tx_, last_beat) + 2 * beat) continue;
      last_beat = now;
      if (session_->QueueHeartbeatIfIdle()) write_signal_.cancel();
    }
  }

  // Refuses the Hello: tells the agent why (briefly), then ends.
  asio::awaitable<Status> Refuse(const std::string& reason) {
    HelloReply reply;
    reply.accepted = false;
    reply.reason = reason;
    reply.heartbeat_s = static_cast<uint32_t>(hub_.options.heartbeat_s);
    (void)co_await WriteFrame(EncodeFrame(MessageType::kHelloReply, Encode(reply)));
    co_return PermissionDenied(reason);
  }

  // TLS, Hello, secret check, registration. Ok: session_ is set and registered.
  asio::awaitable<Status> Handshake() {
    if (hub_.tls) {
      Status tls = co_await StartTls();
      if (!tls.ok()) co_return tls;
    }
    MessageType type;
    std::string payload;
    Status st = co_await ReadFrame(kMaxHelloFrameBytes, &type, &payload);
    if (!st.ok()) co_return st;
    if (type != MessageType::kHello) co_return DataLoss("first message was not a hello");
    // Who it is now; its ledger (raw, at most the frame's 64 KiB) is decoded only once the
    // agent is accepted: an unauthenticated peer's entries cost nothing more.
    Hello hello;
    std::string_view ledger_view;
    st = DecodeHelloIdentity(payload, &hello, &ledger_view);
    if (!st.ok()) co_return st;
    std::string ledger_bytes(ledger_view);
    payload = std::string();
    hello.secret.shrink_to_fit();
    if (hello.protocol_version != kProtocolVersion) {
      co_return co_await Refuse("agent speaks protocol version " +
                                std::to_string(hello.protocol_version) + ", scheduler speaks " +
                                std::to_string(kProtocolVersion));
    }
    if (hello.agent.empty() || hello.agent.size() > kMaxAgentNameBytes ||
        EscapeWireText(hello.agent, kMaxAgentNameBytes) != hello.agent) {
      hub_.Refused(hello.agent, address_, "malformed agent name");
      co_return co_await Refuse("malformed agent name");
    }
    const bool backing_off = hub_.BackingOff(address_, hello.agent);
    const bool busy =
        !backing_off && hub_.checks_in_flight.load() >= AgentHub::Impl::kMaxChecksInFlight;
    uint64_t disconnects_before = 0;
    {
      std::lock_guard<std::mutex> lock(hub_.mu);
      disconnects_before = hub_.disconnects;
    }
    AgentHub::Impl* hub = &hub_;
    AgentHub::Impl::Verdict verdict = co_await asio::co_spawn(
        hub_.workers,
        [hub, &hello,
         cache_only = backing_off || busy]() -> asio::awaitable<AgentHub::Impl::Verdict> {
          if (cache_only) co_return hub->Authenticate(hello, true);
          ++hub->checks_in_flight;
          AgentHub::Impl::Verdict v = hub->Authenticate(hello, false);
          --hub->checks_in_flight;
          co_return v;
        },
        asio::use_awaitable);
    if (closed_) co_return why_;
    if (!verdict.accepted && busy) {
      hub_.Refused(hello.agent, address_, "too many logins being checked; retry later");
      co_return co_await Refuse("scheduler busy checking other logins; retry later");
    }
    if (!verdict.accepted && backing_off) {
      hub_.Refused(hello.agent, address_, "too many failed logins; backing off");
      co_return co_await Refuse(verdict.reason);
    }
    if (!verdict.accepted) {
      hub_.NoteFailure(address_, hello.agent, verdict.log_reason.empty());
      hub_.Refused(hello.agent, address_,
                   verdict.log_reason.empty() ? verdict.reason : verdict.log_reason);
      co_return co_await Refuse(verdict.reason);
    }
    st = DecodeHelloLedger(ledger_bytes, &hello.ledger);
    if (!st.ok()) co_return st;
    ledger_bytes = std::string();
    hub_.NoteSuccess(address_, hello.agent);
    auto session = std::make_shared<AgentSession>(hello.agent, peer_, shared_from_this(),
                                                  std::move(hello.ledger),
                                                  seconds(3 * hub_.options.heartbeat_s));
    std::string first;
    {
      std::lock_guard<std::mutex> lock(hub_.mu);
      auto it = hub_.sessions.find(hello.agent);
      if (it != hub_.sessions.end() && !it->second->closed()) {
        first = it->second->peer();
      } else if (hub_.stopping) {
        co_return Unavailable("scheduler stopping");
      } else if (hub_.disconnects != disconnects_before) {
        co_return Unavailable("an agent's record changed during this login; the agent retries");
      } else {
        hub_.sessions[hello.agent] = session;
      }
    }
    if (!first.empty()) {
      // One live session per agent: the first is kept.
      hub_.Refused(hello.agent, address_, "already connected from " + first);
      co_return co_await Refuse("agent " + hello.agent + " is already connected");
    }
    session_ = session;
    authenticated_ = true;
    handshake_timer_.cancel();
    HelloReply reply;
    reply.accepted = true;
    reply.heartbeat_s = static_cast<uint32_t>(hub_.options.heartbeat_s);
    if (hello.offers_session && !verdict.by_session) {
      // A new credential for its next logins (the store has only its keyed hash).
      reply.session_token = Sha256Hex(RandomKey());
      std::string credential = HmacSha256Hex(verdict.secret_hash, reply.session_token);
      hub_.StoreLater([hub, name = hello.agent, secret_hash = verdict.secret_hash, credential] {
        Status saved = hub->store.SetAgentSessionCredential(name, secret_hash, credential);
        if (!saved.ok()) LOG_WARN("recording agent " << name << "'s session: " << saved.message());
      });
    }
    st = co_await WriteFrame(EncodeFrame(MessageType::kHelloReply, Encode(reply)));
    if (!st.ok()) co_return st;
    std::string name = hello.agent;
    std::string version = EscapeWireText(hello.agent_version);
    std::string dbms = EscapeWireText(hello.target_dbms);
    std::string peer = peer_;
    hub_.StoreLater([hub, name, peer, version, dbms] {
      (void)hub->store.SetAgentOnline(name, true, UnixSecondsNow(), peer, version, dbms);
    });
    hub_.AuditLater(name, "agent.connect", "ok", peer_);
    LOG_INFO("agent " << name << " connected from " << peer_ << " (" << dbms << "; "
                      << (verdict.by_session ? "session credential" : "secret") << ")");
    co_return Status::Ok();
  }

  asio::awaitable<void> Run(std::shared_ptr<AgentConnection> self) {
    last_rx_ = SteadyClock::now();
    handshake_timer_.expires_after(seconds(hub_.options.handshake_timeout_s));
    handshake_timer_.async_wait([self](const boost::system::error_code& ec) {
      if (!ec && !self->authenticated_) {
        self->DoClose(Unavailable("no accepted hello from " + self->peer_ + " within " +
                                  std::to_string(self->hub_.options.handshake_timeout_s) + " s"));
      }
    });
    Status why = co_await Handshake();
    if (why.ok()) {
      asio::co_spawn(executor_, Writer(self), asio::detached);
      asio::co_spawn(executor_, Watchdog(self), asio::detached);
      MessageType type;
      std::string payload;
      while (why.ok()) {
        why = co_await ReadFrame(kMaxFrameBytes, &type, &payload);
        if (why.ok()) why = session_->Receive(type, payload);
        if (why.ok() && type == MessageType::kHeartbeat) AnswerHeartbeat();
        payload = std::string();
      }
    } else if (why.code() != StatusCode::kPermissionDenied && !hub_.stopping) {
      // A peer that is not speaking TLS (or not trusting us) is its own kind of refusal.
      hub_.Refused("", address_,
                   hub_.tls && !tls_done_ ? "TLS handshake failed" : "no accepted hello",
                   why.message());
    }
    DoClose(why);
    if (session_) {
      session_->Ended(why_);
      bool current = false;
      {
        std::lock_guard<std::mutex> lock(hub_.mu);
        auto it = hub_.sessions.find(session_->name());
        if (it != hub_.sessions.end() && it->second == session_) {
          hub_.sessions.erase(it);
          current = true;
        }
      }
      if (current && !hub_.stopping) {
        std::string name = session_->name();
        std::string peer = peer_;
        std::string message = why_.message();
        LOG_WARN("agent " << name << " disconnected: " << message);
        AgentHub::Impl* hub = &hub_;
        hub_.StoreLater([hub, name, peer] {
          (void)hub->store.SetAgentOnline(name, false, UnixSecondsNow(), peer, "", "");
        });
        hub_.AuditLater(name, "agent.disconnect", message, peer);
      }
      session_.reset();  // the session keeps only a weak reference back
    }
    hub_.Release(this, address_);
  }

  AgentHub::Impl& hub_;
  asio::any_io_executor executor_;
  std::unique_ptr<TlsSocket> tls_;
  std::optional<tcp::socket> plain_;
  const std::string address_;
  const std::string peer_;
  asio::steady_timer handshake_timer_;
  asio::steady_timer watchdog_;
  asio::steady_timer write_signal_;
  SteadyClock::time_point last_rx_;
  SteadyClock::time_point last_tx_;
  bool writing_ = false;
  // The frame body being read: since when it is measured, and its bytes then and now.
  bool in_body_ = false;
  SteadyClock::time_point body_mark_;
  size_t body_mark_bytes_ = 0;
  size_t body_bytes_ = 0;
  bool tls_done_ = false;
  bool authenticated_ = false;
  bool closed_ = false;
  Status why_;
  std::shared_ptr<AgentSession> session_;
};

// ---------------------------------------------------------------------------------------------
// AgentSession

AgentSession::AgentSession(std::string name, std::string peer,
                           std::shared_ptr<AgentConnection> connection,
                           std::vector<LedgerEntry> ledger, milliseconds send_timeout)
    : name_(std::move(name)),
      peer_(std::move(peer)),
      connection_(std::move(connection)),
      send_timeout_(send_timeout) {
  for (LedgerEntry& e : ledger) ledger_[e.subscription] = std::move(e);
}

AgentSession::~AgentSession() = default;

std::optional<LedgerEntry> AgentSession::Ledger(const std::string& subscription) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = ledger_.find(subscription);
  if (it == ledger_.end()) return std::nullopt;
  return it->second;
}

void AgentSession::NoteCommitted(const std::string& subscription, uint64_t seq,
                                 const std::string& watermark) {
  std::lock_guard<std::mutex> lock(mu_);
  LedgerEntry& e = ledger_[subscription];
  e.subscription = subscription;
  if (seq >= e.batch_seq) {
    e.batch_seq = seq;
    e.watermark = watermark;
  }
}

void AgentSession::ResetMailbox(const std::string& subscription) {
  std::lock_guard<std::mutex> lock(mu_);
  Mailbox& box = mailboxes_[subscription];
  queued_reply_bytes_ -= box.bytes;
  box = Mailbox{};
}

Status AgentSession::Send(MessageType type, std::string_view payload) {
  if (payload.size() + 1 > kMaxFrameBytes) return Internal("frame too large");
  std::string frame = EncodeFrame(type, payload);
  std::shared_ptr<AgentConnection> connection;
  Status gave_up;
  {
    std::unique_lock<std::mutex> lock(mu_);
    // Waits for room while the agent takes bytes; the deadline restarts with each write.
    auto waited_since = SteadyClock::now();
    while (!closed_ && outgoing_bytes_ >= kSendQueueBytes) {
      auto progress = std::max(
          waited_since, SteadyClock::time_point(SteadyClock::duration(last_written_.load())));
      auto deadline = progress + send_timeout_;
      if (SteadyClock::now() >= deadline) {
        gave_up = Unavailable("agent " + name_ + " took no bytes for " +
                              std::to_string(send_timeout_.count()) + " ms with " +
                              std::to_string(outgoing_bytes_) + " bytes waiting to be sent");
        break;
      }
      cv_.wait_until(lock, deadline);
    }
    if (closed_) return Unavailable("agent " + name_ + " disconnected: " + why_closed_.message());
    if (gave_up.ok()) {
      outgoing_bytes_ += frame.size();
      outgoing_.push_back(std::move(frame));
      connection = connection_.lock();
    }
  }
  if (!gave_up.ok()) {
    LOG_WARN(gave_up.message() << "; closing its session");
    Close(gave_up);
    return gave_up;
  }
  if (connection) connection->Kick();
  return Status::Ok();
}

void AgentSession::NoteWritten() { last_written_ = SteadyClock::now().time_since_epoch().count(); }

bool AgentSession::QueueHeartbeatIfIdle() {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_ || !outgoing_.empty()) return false;
  outgoing_.push_back(EncodeFrame(MessageType::kHeartbeat, ""));
  outgoing_bytes_ += kFrameHeaderBytes;
  return true;
}

std::optional<std::string> AgentSession::TakeOutgoing() {
  std::lock_guard<std::mutex> lock(mu_);
  if (outgoing_.empty()) return std::nullopt;
  std::string frame = std::move(outgoing_.front());
  outgoing_.pop_front();
  outgoing_bytes_ -= frame.size();
  last_written_ = SteadyClock::now().time_since_epoch().count();
  cv_.notify_all();
  return frame;
}

template <typename T>
Result<T> AgentSession::Await(const std::string& subscription, Queue<T> Mailbox::*queue,
                              milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  // The run opened the mailbox (ResetMailbox) before it asked the agent anything.
  Mailbox& box = mailboxes_[subscription];
  cv_.wait_for(lock, timeout, [&] { return closed_ || !(box.*queue).empty(); });
  auto& q = box.*queue;
  if (!q.empty()) {
    Reply<T> reply = std::move(q.front());
    q.pop_front();
    box.bytes -= reply.bytes;
    queued_reply_bytes_ -= reply.bytes;
    return std::move(reply.message);
  }
  if (closed_) return Unavailable("agent " + name_ + " disconnected: " + why_closed_.message());
  return Unavailable("agent " + name_ + " did not answer in time");
}

Result<TableReady> AgentSession::AwaitTableReady(const std::string& subscription,
                                                 milliseconds timeout) {
  return Await(subscription, &Mailbox::ready, timeout);
}

Result<BatchAck> AgentSession::AwaitAck(const std::string& subscription, milliseconds timeout) {
  return Await(subscription, &Mailbox::acks, timeout);
}

Result<FileResume> AgentSession::AwaitFileResume(const std::string& subscription,
                                                 milliseconds timeout) {
  return Await(subscription, &Mailbox::resumes, timeout);
}

Result<FileResult> AgentSession::AwaitFileResult(const std::string& subscription,
                                                 milliseconds timeout) {
  return Await(subscription, &Mailbox::file_results, timeout);
}

Result<RangeAnswer> AgentSession::AwaitRangeAnswer(const std::string& subscription,
                                                   milliseconds timeout) {
  return Await(subscription, &Mailbox::range_answers, timeout);
}

Result<DeletionDone> AgentSession::AwaitDeletion(const std::string& subscription,
                                                 milliseconds timeout) {
  return Await(subscription, &Mailbox::deletions, timeout);
}

void AgentSession::Close(const Status& why) {
  std::shared_ptr<AgentConnection> connection;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    closed_ = true;
    why_closed_ = why;
    connection = connection_.lock();
  }
  cv_.notify_all();
  if (connection) connection->Close(why);
}

void AgentSession::Ended(const Status& why) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!closed_) {
      closed_ = true;
      why_closed_ = why.ok() ? Unavailable("session ended") : why;
    }
  }
  cv_.notify_all();
}

bool AgentSession::closed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

void AgentSession::NoteReady(const TableReady& ready) {
  if (ready.code == StatusCode::kOk) ledger_[ready.subscription] = ready.ledger;
}

void AgentSession::NoteDeletion(const DeletionDone& done) {
  if (done.code == StatusCode::kOk) ledger_.erase(done.subscription);
}

template <typename T>
Status AgentSession::Deliver(std::string_view payload, Queue<T> Mailbox::*queue,
                             void (AgentSession::*on_queue)(const T&)) {
  T message;
  DX_RETURN_IF_ERROR(Decode(payload, &message));
  std::lock_guard<std::mutex> lock(mu_);
  auto it = mailboxes_.find(message.subscription);
  if (it == mailboxes_.end()) {
    // No run of this subscription talked to the agent on this session: nobody will take it.
    ++dropped_replies_;
    auto now = SteadyClock::now();
    if (now - dropped_logged_ >= kDroppedReplyLogEvery) {
      dropped_logged_ = now;
      LOG_WARN("agent " << name_ << " sent a reply for subscription '"
                        << EscapeWireText(message.subscription) << "' that no run opened; dropped ("
                        << dropped_replies_ << " such replies on this session)");
    }
    return Status::Ok();
  }
  Mailbox& box = it->second;
  if ((box.*queue).size() >= kMaxQueuedReplies) {
    return DataLoss("agent " + name_ + " sent more replies than any run asked for");
  }
  const size_t bytes = payload.size();
  if (queued_reply_bytes_ + bytes > kMaxQueuedReplyBytes) {
    return DataLoss("agent " + name_ + " has " + std::to_string(queued_reply_bytes_ + bytes) +
                    " bytes of replies queued that no run took (at most " +
                    std::to_string(kMaxQueuedReplyBytes >> 20) + " MiB)");
  }
  if (on_queue != nullptr) (this->*on_queue)(message);
  (box.*queue).push_back(Reply<T>{std::move(message), bytes});
  box.bytes += bytes;
  queued_reply_bytes_ += bytes;
  return Status::Ok();
}

Status AgentSession::Receive(MessageType type, std::string_view payload) {
  last_heard_ = UnixSecondsNow();
  Status st;
  switch (type) {
    case MessageType::kHeartbeat:
      return Status::Ok();
    case MessageType::kTableReady:
      st = Deliver(payload, &Mailbox::ready, &AgentSession::NoteReady);
      break;
    case MessageType::kBatchAck:
      st = Deliver(payload, &Mailbox::acks);
      break;
    case MessageType::kFileResume:
      st = Deliver(payload, &Mailbox::resumes);
      break;
    case MessageType::kFileResult:
      st = Deliver(payload, &Mailbox::file_results);
      break;
    case MessageType::kRangeAnswer:
      st = Deliver(payload, &Mailbox::range_answers);
      break;
    case MessageType::kDeletionDone:
      st = Deliver(payload, &Mailbox::deletions, &AgentSession::NoteDeletion);
      break;
    default:
      st = DataLoss("unexpected message type " + std::to_string(static_cast<int>(type)));
  }
  if (st.ok()) cv_.notify_all();
  return st;
}

// ---------------------------------------------------------------------------------------------
// AgentHub::Impl

AgentHub::Impl::Verdict AgentHub::Impl::Authenticate(const Hello& hello, bool cache_only) {
  Verdict v;
  auto agent = store.GetAgent(hello.agent);
  if (!agent.ok()) {
    v.reason = "store: " + agent.status().message();
    return v;
  }
  const std::optional<AgentRecord>& record = agent.value();
  if (record) v.secret_hash = record->secret_hash;
  // A session credential (given at an earlier login, kept in the store across restarts): a
  // keyed hash instead of PBKDF2. Keyed by the secret's hash, so a new secret voids it.
  if (record && hello.session_token.size() == kSessionTokenChars) {
    auto credential = store.GetAgentSessionCredential(hello.agent);
    const std::string got = HmacSha256Hex(record->secret_hash, hello.session_token);
    if (credential.ok() && credential.value().size() == got.size() &&
        CRYPTO_memcmp(got.data(), credential.value().data(), got.size()) == 0) {
      if (record->disabled) return Disabled();
      v.accepted = true;
      v.by_session = true;
      return v;
    }
  }
  std::string digest = HmacSha256Hex(cache_key, hello.secret);
  if (record) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = verified.find(hello.agent);
    if (it != verified.end() && it->second.stored_hash == record->secret_hash &&
        it->second.digest == digest) {
      if (record->disabled) return Disabled();
      v.accepted = true;
      return v;
    }
  }
  if (cache_only) {
    v.reason = "too many failed logins; retry later";
    return v;
  }
  // Always one PBKDF2, known name or not: the time taken tells nothing.
  bool ok = VerifySecret(hello.secret, record ? record->secret_hash : dummy_hash);
  if (!record || !ok) {
    v.reason = "unknown agent or wrong secret";
    return v;
  }
  // Checked after the secret, so the time taken and the answer to a wrong secret are the same
  // for a disabled agent as for any other; only the right secret learns "refused".
  if (record->disabled) return Disabled();
  std::lock_guard<std::mutex> lock(mu);
  verified[hello.agent] = Verified{record->secret_hash, digest};
  v.accepted = true;
  return v;
}

namespace {
std::string PairKey(const std::string& address, const std::string& name) {
  return "p:" + name + std::string(1, '\0') + address;
}
}  // namespace

bool AgentHub::Impl::BackingOff(const std::string& address, const std::string& name) {
  std::lock_guard<std::mutex> lock(mu);
  auto now = SteadyClock::now();
  for (const std::string& key : {"a:" + address, PairKey(address, name)}) {
    auto it = backoff.find(key);
    if (it != backoff.end() && it->second.until > now) return true;
  }
  auto it = backoff.find("n:" + name);
  if (it == backoff.end() || it->second.until <= now) return false;
  if (it->second.next_check > now) return true;
  it->second.next_check = now + kNameCheckEvery;
  return false;
}

void AgentHub::Impl::NoteFailure(const std::string& address, const std::string& name,
                                 bool by_address) {
  std::lock_guard<std::mutex> lock(mu);
  auto now = SteadyClock::now();
  if (backoff.size() >= kMaxBackoffEntries) {
    for (auto it = backoff.begin(); it != backoff.end();) {
      it = it->second.until < now - kBackoffMax ? backoff.erase(it) : std::next(it);
    }
  }
  for (const std::string& key : {"a:" + address, "n:" + name, PairKey(address, name)}) {
    if (!by_address && key[0] == 'a') continue;
    if (backoff.size() >= kMaxBackoffEntries && !backoff.count(key)) continue;
    Backoff& b = backoff[key];
    b.failures = std::min(b.failures + 1, 30);
    auto wait = kBackoffFirst * (int64_t{1} << std::min(b.failures - 1, 10));
    b.until = now + std::min<milliseconds>(wait, key[0] == 'a' ? kAddressBackoffMax : kBackoffMax);
  }
}

void AgentHub::Impl::NoteSuccess(const std::string& address, const std::string& name) {
  std::lock_guard<std::mutex> lock(mu);
  backoff.erase("a:" + address);
  backoff.erase("n:" + name);
  backoff.erase(PairKey(address, name));
}

void AgentHub::Impl::Refused(const std::string& name, const std::string& address,
                             const std::string& reason, const std::string& detail) {
  std::string shown = EscapeWireText(name);
  std::string key = reason + "|" + address + "|" + shown;
  auto now = SteadyClock::now();
  {
    std::lock_guard<std::mutex> lock(mu);
    auto [it, fresh] = refusals.try_emplace(key);
    if (!fresh && now - it->second.logged < kRefusalWindow) {
      ++it->second.suppressed;
      return;
    }
    if (refusals.size() > 10000) {
      refusals.clear();  // a flood of distinct names: forget, the summaries went out already
      refusals[key] = Refusals{};
    }
    Refusals& r = refusals[key];
    r.logged = now;
    r.address = address;
    r.reason = reason;
  }
  std::string why = reason + (detail.empty() ? "" : " (" + detail + ")");
  LOG_WARN("refused agent '" << shown << "' from " << address << ": " << why);
  AuditLater(shown, "agent.auth", "refused: " + why, address);
}

void AgentHub::Impl::AuditLater(const std::string& agent, const std::string& action,
                                const std::string& result, const std::string& from) {
  AuditEvent entry{ToUnixMillis(clock.Now()), EscapeWireText(agent),       action,
                   EscapeWireText(agent),     EscapeWireText(result, 512), from};
  StoreLater([this, entry] {
    Status st = store.Audit(entry);
    if (!st.ok()) LOG_ERROR("audit: " << st.message());
  });
}

void AgentHub::Impl::Release(AgentConnection* connection, const std::string& address) {
  std::lock_guard<std::mutex> lock(mu);
  connections.erase(connection);
  if (--per_address[address] <= 0) per_address.erase(address);
  idle_cv.notify_all();
}

// Counts a hub coroutine while it runs: Stop waits for them to end.
struct LoopRunning {
  explicit LoopRunning(AgentHub::Impl& impl) : hub(impl) {
    std::lock_guard<std::mutex> lock(hub.mu);
    ++hub.loops;
  }
  ~LoopRunning() {
    std::lock_guard<std::mutex> lock(hub.mu);
    --hub.loops;
    hub.idle_cv.notify_all();
  }
  AgentHub::Impl& hub;
};

asio::awaitable<void> AgentHub::Impl::AcceptLoop() {
  LoopRunning running(*this);
  asio::steady_timer pause(io);
  while (!stopping) {
    auto [ec, socket] =
        co_await acceptor.async_accept(asio::make_strand(io), asio::as_tuple(asio::use_awaitable));
    if (stopping) break;
    if (ec) {
      // Out of descriptors (or memory): let connections end before taking more.
      if (ec != asio::error::operation_aborted) {
        LOG_WARN("accepting agents: " << ec.message());
        pause.expires_after(milliseconds(100));
        co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
        continue;
      }
      break;
    }
    boost::system::error_code ep_ec;
    tcp::endpoint remote = socket.remote_endpoint(ep_ec);
    if (ep_ec) continue;
    std::string address = remote.address().to_string();
    std::string peer = address + ":" + std::to_string(remote.port());
    std::string refused;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (static_cast<int>(connections.size()) >= options.max_connections) {
        refused = "too many connections (" + std::to_string(options.max_connections) + ")";
      } else if (per_address[address] >= options.max_connections_per_address) {
        refused = "too many connections from one address (" +
                  std::to_string(options.max_connections_per_address) + ")";
      } else {
        ++per_address[address];
      }
      if (per_address[address] == 0) per_address.erase(address);
    }
    if (!refused.empty()) {
      socket.close(ep_ec);
      Refused("", address, refused);
      continue;
    }
    socket.set_option(tcp::no_delay(true), ep_ec);
    auto connection =
        std::make_shared<AgentConnection>(*this, std::move(socket), address, std::move(peer));
    {
      std::lock_guard<std::mutex> lock(mu);
      connections[connection.get()] = connection;
    }
    connection->Start();
  }
}

// Last-seen times go to the store in one batch per period; refusal summaries likewise.
asio::awaitable<void> AgentHub::Impl::FlushLoop() {
  LoopRunning running(*this);
  asio::steady_timer timer(io);
  {
    std::lock_guard<std::mutex> lock(mu);
    flush_timer = &timer;
  }
  struct Forget {
    ~Forget() {
      std::lock_guard<std::mutex> lock(hub.mu);
      hub.flush_timer = nullptr;
    }
    AgentHub::Impl& hub;
  } forget{*this};
  auto last_summary = SteadyClock::now();
  while (!stopping) {
    timer.expires_after(seconds(options.last_seen_flush_s));
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec || stopping) break;
    std::vector<std::pair<std::string, int64_t>> seen;
    std::vector<Refusals> summaries;
    {
      std::lock_guard<std::mutex> lock(mu);
      for (auto& [name, session] : sessions) {
        int64_t at = session->last_heard();
        int64_t& flushed = flushed_seen[name];
        if (at > flushed) {
          flushed = at;
          seen.emplace_back(name, at);
        }
      }
      if (SteadyClock::now() - last_summary >= kRefusalWindow) {
        last_summary = SteadyClock::now();
        for (auto it = refusals.begin(); it != refusals.end();) {
          if (it->second.suppressed > 0) summaries.push_back(it->second);
          it = SteadyClock::now() - it->second.logged >= kRefusalWindow ? refusals.erase(it)
                                                                        : std::next(it);
        }
      }
    }
    for (const Refusals& r : summaries) {
      LOG_WARN(r.suppressed << " more refusals from " << r.address
                            << " in the last minute: " << r.reason);
      AuditLater("", "agent.auth",
                 "refused " + std::to_string(r.suppressed) + " more times: " + r.reason, r.address);
    }
    // TLS handshakes leave freed memory behind that the process keeps (main.cc raises the trim
    // threshold for file buffers); hand it back once a period, off the io threads.
    StoreLater([] { malloc_trim(0); });
    if (!seen.empty()) {
      StoreLater([this, seen = std::move(seen)] {
        Status st = store.TouchAgents(seen);
        if (!st.ok()) LOG_WARN("recording agents' last-seen times: " << st.message());
      });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// AgentHub

AgentHub::AgentHub(Store& store, const Clock& clock, AgentHubOptions options,
                   std::shared_ptr<TlsContext> tls)
    : own_runtime_(std::make_unique<IoRuntime>(options.io_threads, options.worker_threads)),
      impl_(std::make_unique<Impl>(store, clock, options, std::move(tls), *own_runtime_)) {}

AgentHub::AgentHub(Store& store, const Clock& clock, AgentHubOptions options, IoRuntime& runtime,
                   std::shared_ptr<TlsContext> tls)
    : impl_(std::make_unique<Impl>(store, clock, options, std::move(tls), runtime)) {}

AgentHub::AgentHub(Store& store, const Clock& clock, int heartbeat_s,
                   std::shared_ptr<TlsContext> tls)
    : AgentHub(
          store, clock,
          [&] {
            AgentHubOptions o;
            o.heartbeat_s = heartbeat_s;
            return o;
          }(),
          std::move(tls)) {}

AgentHub::~AgentHub() { Stop(); }

int AgentHub::port() const { return impl_->port; }

Status AgentHub::Start(const std::string& listen) {
  std::string host;
  int port = 0;
  DX_RETURN_IF_ERROR(ParseHostPort(listen, &host, &port));
  // TlsSocket's OpenSSL writes with write(2): a peer gone mid-write must not end the process.
  std::signal(SIGPIPE, SIG_IGN);
  boost::system::error_code ec;
  tcp::resolver resolver(impl_->io);
  auto endpoints = resolver.resolve(host, std::to_string(port), tcp::resolver::passive, ec);
  if (ec || endpoints.empty()) {
    return InvalidArgument("cannot resolve listen address " + host + ": " + ec.message());
  }
  tcp::endpoint endpoint = *endpoints.begin();
  tcp::acceptor& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(4096, ec);
  if (ec) return Unavailable("cannot listen on " + listen + ": " + ec.message());
  impl_->port = acceptor.local_endpoint().port();
  DX_RETURN_IF_ERROR(impl_->store.MarkAllAgentsOffline());
  asio::co_spawn(impl_->io, impl_->AcceptLoop(), asio::detached);
  asio::co_spawn(impl_->io, impl_->FlushLoop(), asio::detached);
  impl_->started = true;
  if (own_runtime_) own_runtime_->Start();
  LOG_INFO("listening for agents on " << host << ":" << impl_->port
                                      << (impl_->tls ? " (TLS)" : " (plain TCP)") << ", "
                                      << impl_->runtime.io_threads() << " io threads");
  return Status::Ok();
}

void AgentHub::Stop() {
  if (impl_->stopping.exchange(true)) return;
  if (impl_->started) {
    asio::post(impl_->io, [this] {
      boost::system::error_code ignored;
      impl_->acceptor.close(ignored);
      std::lock_guard<std::mutex> lock(impl_->mu);
      if (impl_->flush_timer) impl_->flush_timer->cancel();
    });
    std::vector<std::shared_ptr<AgentConnection>> live;
    {
      std::lock_guard<std::mutex> lock(impl_->mu);
      for (auto& [ptr, weak] : impl_->connections) {
        if (auto c = weak.lock()) live.push_back(std::move(c));
      }
    }
    for (auto& c : live) c->Close(Unavailable("scheduler stopping"));
    live.clear();
    std::unique_lock<std::mutex> lock(impl_->mu);
    // Every connection and the hub's own loops end before the hub may go (on a shared
    // runtime, nothing of it may be left in the io_context).
    impl_->idle_cv.wait_for(lock, seconds(10),
                            [&] { return impl_->connections.empty() && impl_->loops == 0; });
    for (auto& [name, session] : impl_->sessions) session->Ended(Unavailable("scheduler stopping"));
    impl_->sessions.clear();
  }
  if (own_runtime_) own_runtime_->Stop();
}

std::shared_ptr<AgentSession> AgentHub::Find(const std::string& agent) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->sessions.find(agent);
  if (it == impl_->sessions.end() || it->second->closed()) return nullptr;
  return it->second;
}

void AgentHub::Disconnect(const std::string& agent, const std::string& why) {
  std::shared_ptr<AgentSession> session;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    ++impl_->disconnects;
    impl_->verified.erase(agent);
    auto it = impl_->sessions.find(agent);
    if (it != impl_->sessions.end()) session = it->second;
  }
  if (session) {
    LOG_WARN("disconnecting agent " << agent << ": " << why);
    session->Close(PermissionDenied(why));
  }
}

void AgentHub::Revalidate(const std::string& agent) {
  auto record = impl_->store.GetAgent(agent);
  if (!record.ok()) return;
  std::string why;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    // A login in flight may have read the record before this change: it is not registered
    // (also when the agent has no session now).
    ++impl_->disconnects;
    auto v = impl_->verified.find(agent);
    const bool had_verified = v != impl_->verified.end();
    bool stale = !record.value() || record.value()->disabled ||
                 (had_verified && v->second.stored_hash != record.value()->secret_hash);
    if (stale && had_verified) impl_->verified.erase(v);  // never accept it again
    auto it = impl_->sessions.find(agent);
    if (it == impl_->sessions.end()) return;
    if (!record.value()) {
      why = "the agent was removed";
    } else if (record.value()->disabled) {
      why = "the agent was disabled";
    } else if (stale || !had_verified) {
      why = "its secret changed";
    }
  }
  if (!why.empty()) Disconnect(agent, why);
}

}  // namespace dx::scheduler
