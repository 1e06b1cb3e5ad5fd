// AgentHub: where agents dial in. Authenticates each agent by its secret (refusals are logged
// and audited), keeps one AgentSession per connected agent, sends heartbeats and records
// online/last-seen in the store. AgentSession routes an agent's replies (table ready, batch
// acks) to the run waiting for them, by subscription.
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
#include <thread>

#include "common/clock.h"
#include "common/frame_link.h"
#include "scheduler/store.h"

namespace dx::scheduler {

class AgentSession {
 public:
  AgentSession(std::string name, std::unique_ptr<FrameLink> link, std::vector<LedgerEntry> ledger);

  const std::string& name() const { return name_; }
  const std::string& peer() const { return link_->peer(); }
  // The agent's committed position for `subscription`, as it reported it (and acks since).
  std::optional<LedgerEntry> Ledger(const std::string& subscription) const;
  void NoteCommitted(const std::string& subscription, uint64_t seq, const std::string& watermark);

  // Drops replies left over from an earlier run of `subscription`.
  void ResetMailbox(const std::string& subscription);
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

  // Reads replies until the link fails or Close(); returns why it ended.
  Status ReadLoop(std::chrono::milliseconds idle_timeout);
  void Close(const Status& why);
  bool closed() const;
  int64_t last_heard() const { return last_heard_.load(); }

 private:
  struct Mailbox {
    std::deque<TableReady> ready;
    std::deque<BatchAck> acks;
    std::deque<FileResume> resumes;
    std::deque<FileResult> file_results;
    std::deque<RangeAnswer> range_answers;
    std::deque<DeletionDone> deletions;
  };
  // Decodes an agent's reply and queues it in its subscription's mailbox.
  template <typename T>
  Status Deliver(std::string_view payload, std::deque<T> Mailbox::*queue);
  template <typename T>
  Result<T> Await(const std::string& subscription, std::deque<T> Mailbox::*queue,
                  std::chrono::milliseconds timeout);

  const std::string name_;
  std::unique_ptr<FrameLink> link_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Mailbox> mailboxes_;
  std::map<std::string, LedgerEntry> ledger_;
  bool closed_ = false;
  Status why_closed_;
  std::atomic<int64_t> last_heard_{0};
};

class AgentHub {
 public:
  // With `tls`, every agent connection starts with a TLS handshake.
  AgentHub(Store& store, const Clock& clock, int heartbeat_s,
           std::shared_ptr<TlsContext> tls = nullptr);
  ~AgentHub();

  // Listens on `listen` ("host:port"; port 0 picks one) and starts accepting.
  Status Start(const std::string& listen);
  void Stop();
  int port() const { return port_; }
  // The connected session of `agent`, or nullptr when it is offline.
  std::shared_ptr<AgentSession> Find(const std::string& agent);

 private:
  void AcceptLoop();
  void HeartbeatLoop();
  void Serve(std::unique_ptr<FrameLink> link);
  Result<std::shared_ptr<AgentSession>> Handshake(std::unique_ptr<FrameLink>& link);
  void AuditEvent(const std::string& agent, const std::string& action, const std::string& result,
                  const std::string& from);

  Store& store_;
  const Clock& clock_;
  const int heartbeat_s_;
  std::shared_ptr<TlsContext> tls_;
  std::unique_ptr<FrameListener> listener_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
  std::thread heartbeat_thread_;
  std::mutex mu_;
  std::condition_variable stop_cv_;
  std::map<std::string, std::shared_ptr<AgentSession>> sessions_;
  int active_serves_ = 0;  // Serve threads still running (detached; Stop waits for them)
};

}  // namespace dx::scheduler
