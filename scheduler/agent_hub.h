// AgentHub: where agents dial in. One small pool of io threads (Boost.Asio) serves every
// connection whatever their number: TLS, frames, heartbeats on timers and deadlines that
// measure progress (bytes moving), never whole frames. Before an agent has authenticated it
// gets little: connections are capped in total and per address, a handshake deadline, and a
// 64 KiB frame limit until its Hello is accepted. The secret check (PBKDF2) and every store
// write run on a small worker pool, never on an io thread. One live session per agent name;
// failed logins back off per address, per name from an address, and per name (a name backing
// off still gets a rate-limited real check from an address that has not failed). A frame's
// buffer grows as its bytes arrive, and a body that has begun must keep a minimum pace.
// AgentSession routes an agent's replies (table ready, batch acks, file answers) to the run
// waiting for them, by subscription, only into mailboxes a run opened, bounded in bytes.
// Boost types stay in agent_hub.cc.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/protocol.h"
#include "common/tls_context.h"
#include "scheduler/io_runtime.h"
#include "scheduler/store.h"

namespace dx::scheduler {

// The io side of one connection (defined in agent_hub.cc); AgentSession only asks it to
// write or to close.
class AgentConnection;

class AgentSession {
 public:
  // `send_timeout`: how long Send waits for room while the agent takes no bytes.
  AgentSession(std::string name, std::string peer, std::shared_ptr<AgentConnection> connection,
               std::vector<LedgerEntry> ledger,
               std::chrono::milliseconds send_timeout = std::chrono::seconds(15));
  ~AgentSession();

  const std::string& name() const { return name_; }
  const std::string& peer() const { return peer_; }
  // The agent's committed position for `subscription`, as it reported it (and acks since).
  std::optional<LedgerEntry> Ledger(const std::string& subscription) const;
  void NoteCommitted(const std::string& subscription, uint64_t seq, const std::string& watermark);

  // Opens `subscription`'s mailbox for a run, dropping replies left over from an earlier run.
  // Replies are kept only for subscriptions a run opened; the others are dropped.
  void ResetMailbox(const std::string& subscription);
  // Queues a frame for the agent. Blocks while more than a few MiB wait to be written; when
  // the agent takes no byte for `send_timeout` meanwhile, closes the session and returns
  // kUnavailable (as it does once the session is closed).
  Status Send(MessageType type, std::string_view payload);
  Result<TableReady> AwaitTableReady(const std::string& subscription,
                                     std::chrono::milliseconds timeout);
  Result<BatchAck> AwaitAck(const std::string& subscription, std::chrono::milliseconds timeout);
  Result<FileResume> AwaitFileResume(const std::string& subscription,
                                     std::chrono::milliseconds timeout);
  Result<FileResult> AwaitFileResult(const std::string& subscription,
                                     std::chrono::milliseconds timeout);
  Result<RangeAnswer> AwaitRangeAnswer(const std::string& subscription,
                                       std::chrono::milliseconds timeout);
  // The agent's answer to a DeleteSubscription; a successful one also forgets its ledger.
  Result<DeletionDone> AwaitDeletion(const std::string& subscription,
                                     std::chrono::milliseconds timeout);

  void Close(const Status& why);
  bool closed() const;
  int64_t last_heard() const { return last_heard_.load(); }

  // io side: routes one frame from the agent; an error ends the session.
  Status Receive(MessageType type, std::string_view payload);
  // io side: bytes of a frame went out to the agent (Send's deadline measures this).
  void NoteWritten();
  // io side: the next frame to write, if any (wakes senders waiting for room).
  std::optional<std::string> TakeOutgoing();
  // io side: the connection has ended.
  void Ended(const Status& why);
  // io side: queues a heartbeat unless frames are already waiting; true when it did.
  bool QueueHeartbeatIfIdle();

 private:
  // A queued reply and the bytes it arrived as (counted against the session's bound).
  template <typename T>
  struct Reply {
    T message;
    size_t bytes = 0;
  };
  template <typename T>
  using Queue = std::deque<Reply<T>>;
  struct Mailbox {
    Queue<TableReady> ready;
    Queue<BatchAck> acks;
    Queue<FileResume> resumes;
    Queue<FileResult> file_results;
    Queue<RangeAnswer> range_answers;
    Queue<DeletionDone> deletions;
    size_t bytes = 0;  // of all its queued replies
  };
  // Decodes an agent's reply and queues it in its subscription's mailbox, when a run opened
  // it; `on_queue` (under the lock) sees the reply before it is queued.
  template <typename T>
  Status Deliver(std::string_view payload, Queue<T> Mailbox::*queue,
                 void (AgentSession::*on_queue)(const T&) = nullptr);
  template <typename T>
  Result<T> Await(const std::string& subscription, Queue<T> Mailbox::*queue,
                  std::chrono::milliseconds timeout);
  void NoteReady(const TableReady& ready);
  void NoteDeletion(const DeletionDone& done);

  const std::string name_;
  const std::string peer_;
  std::weak_ptr<AgentConnection> connection_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Mailbox> mailboxes_;  // opened by runs (ResetMailbox)
  size_t queued_reply_bytes_ = 0;             // in all mailboxes
  uint64_t dropped_replies_ = 0;              // for subscriptions no run opened
  std::chrono::steady_clock::time_point dropped_logged_;
  std::map<std::string, LedgerEntry> ledger_;
  std::deque<std::string> outgoing_;
  size_t outgoing_bytes_ = 0;
  bool closed_ = false;
  Status why_closed_;
  std::atomic<int64_t> last_heard_{0};
  const std::chrono::milliseconds send_timeout_;
  // When the io side last wrote bytes to the agent or took a frame (steady clock ticks).
  std::atomic<int64_t> last_written_{0};
};

struct AgentHubOptions {
  int heartbeat_s = 5;
  int io_threads = 2;                    // io threads, whatever the number of agents (own runtime)
  int worker_threads = 2;                // secret checks and store writes (own runtime)
  int max_connections = 20000;           // all connections, authenticated or not
  int max_connections_per_address = 64;  // from one IP address
  int handshake_timeout_s = 10;          // TCP accept to accepted Hello (TLS included)
  int last_seen_flush_s = 15;            // how often last-seen times reach the store
};

class AgentHub {
 public:
  // With `tls`, every agent connection starts with a TLS handshake. The hub runs on its own
  // IoRuntime (options.io_threads, options.worker_threads).
  AgentHub(Store& store, const Clock& clock, AgentHubOptions options,
           std::shared_ptr<TlsContext> tls = nullptr);
  // Runs on `runtime`, shared with other servers (the admin API): its owner starts it, and
  // stops it after this hub's Stop and before the hub is destroyed.
  AgentHub(Store& store, const Clock& clock, AgentHubOptions options, IoRuntime& runtime,
           std::shared_ptr<TlsContext> tls = nullptr);
  AgentHub(Store& store, const Clock& clock, int heartbeat_s,
           std::shared_ptr<TlsContext> tls = nullptr);
  ~AgentHub();

  // Listens on `listen` ("host:port"; port 0 picks one) and starts accepting.
  Status Start(const std::string& listen);
  void Stop();
  int port() const;
  // The connected session of `agent`, or nullptr when it is offline.
  std::shared_ptr<AgentSession> Find(const std::string& agent);
  // Ends `agent`'s session at once, if it has one (secret changed, disabled, removed).
  void Disconnect(const std::string& agent, const std::string& why);
  // After the store's record of `agent` changed: disconnects it when it is gone or its secret
  // is no longer the one its session was accepted with. Blocking (reads the store).
  void Revalidate(const std::string& agent);

  struct Impl;

 private:
  std::unique_ptr<IoRuntime> own_runtime_;  // when not given one
  std::unique_ptr<Impl> impl_;
};

// `text` made safe for one log line or audit field: at most `max_bytes` of it, control and
// non-ASCII bytes as \xNN, and a note of how long it really was when cut.
std::string EscapeWireText(std::string_view text, size_t max_bytes = 64);

}  // namespace dx::scheduler
