#include "scheduler/agent_hub.h"

#include "common/log.h"
#include "common/wire.h"
#include "scheduler/secret.h"

namespace dx::scheduler {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr milliseconds kSendTimeout{30000};

}  // namespace

AgentSession::AgentSession(std::string name, std::unique_ptr<FrameLink> link,
                           std::vector<LedgerEntry> ledger)
    : name_(std::move(name)), link_(std::move(link)) {
  for (LedgerEntry& e : ledger) ledger_[e.subscription] = std::move(e);
}

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
  mailboxes_.erase(subscription);
}

Status AgentSession::Send(MessageType type, std::string_view payload) {
  if (closed()) return Unavailable("agent " + name_ + " disconnected");
  Status st = link_->Send(type, payload, kSendTimeout);
  if (!st.ok()) Close(st);
  return st;
}

template <typename T>
Result<T> AgentSession::Await(const std::string& subscription, std::deque<T> Mailbox::*queue,
                              milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  bool got = cv_.wait_for(lock, timeout,
                          [&] { return closed_ || !(mailboxes_[subscription].*queue).empty(); });
  auto& q = mailboxes_[subscription].*queue;
  if (!q.empty()) {
    T item = std::move(q.front());
    q.pop_front();
    return item;
  }
  if (closed_) return Unavailable("agent " + name_ + " disconnected: " + why_closed_.message());
  (void)got;
  return Unavailable("agent " + name_ + " did not answer in time");
}

Result<TableReady> AgentSession::AwaitTableReady(const std::string& subscription,
                                                 milliseconds timeout) {
  return Await(subscription, &Mailbox::ready, timeout);
}

Result<BatchAck> AgentSession::AwaitAck(const std::string& subscription, milliseconds timeout) {
  return Await(subscription, &Mailbox::acks, timeout);
}

void AgentSession::Close(const Status& why) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    closed_ = true;
    why_closed_ = why;
  }
  link_->Close();
  cv_.notify_all();
}

bool AgentSession::closed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
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

template <typename T>
Status AgentSession::Deliver(std::string_view payload, std::deque<T> Mailbox::*queue) {
  T message;
  DX_RETURN_IF_ERROR(Decode(payload, &message));
  std::lock_guard<std::mutex> lock(mu_);
  (mailboxes_[message.subscription].*queue).push_back(std::move(message));
  return Status::Ok();
}

Status AgentSession::ReadLoop(milliseconds idle_timeout) {
  while (true) {
    auto frame = link_->Receive(idle_timeout);
    if (!frame.ok()) {
      Close(frame.status());
      return frame.status();
    }
    last_heard_ = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    Status st;
    switch (frame->type) {
      case MessageType::kHeartbeat:
        break;
      case MessageType::kTableReady: {
        TableReady ready;
        st = Decode(frame->payload, &ready);
        if (st.ok()) {
          std::lock_guard<std::mutex> lock(mu_);
          if (ready.code == StatusCode::kOk) ledger_[ready.subscription] = ready.ledger;
          mailboxes_[ready.subscription].ready.push_back(std::move(ready));
        }
        break;
      }
      case MessageType::kBatchAck:
        st = Deliver(frame->payload, &Mailbox::acks);
        break;
      case MessageType::kFileResume:
        st = Deliver(frame->payload, &Mailbox::resumes);
        break;
      case MessageType::kFileResult:
        st = Deliver(frame->payload, &Mailbox::file_results);
        break;
      case MessageType::kRangeAnswer:
        st = Deliver(frame->payload, &Mailbox::range_answers);
        break;
      case MessageType::kDeletionDone: {
        DeletionDone done;
        st = Decode(frame->payload, &done);
        if (st.ok()) {
          std::lock_guard<std::mutex> lock(mu_);
          if (done.code == StatusCode::kOk) ledger_.erase(done.subscription);
          mailboxes_[done.subscription].deletions.push_back(std::move(done));
        }
        break;
      }
      default:
        st = DataLoss("unexpected message type " + std::to_string(static_cast<int>(frame->type)));
    }
    if (!st.ok()) {
      Close(st);
      return st;
    }
    cv_.notify_all();
  }
}

AgentHub::AgentHub(Store& store, const Clock& clock, int heartbeat_s,
                   std::shared_ptr<TlsContext> tls)
    : store_(store), clock_(clock), heartbeat_s_(heartbeat_s), tls_(std::move(tls)) {}

AgentHub::~AgentHub() { Stop(); }

Status AgentHub::Start(const std::string& listen) {
  std::string host;
  int port = 0;
  DX_RETURN_IF_ERROR(ParseHostPort(listen, &host, &port));
  DX_ASSIGN_OR_RETURN(listener_, FrameListener::Listen(host, port));
  port_ = listener_->port();
  DX_RETURN_IF_ERROR(store_.MarkAllAgentsOffline());
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  heartbeat_thread_ = std::thread([this] { HeartbeatLoop(); });
  LOG_INFO("listening for agents on " << host << ":" << port_
                                      << (tls_ ? " (TLS)" : " (plain TCP)"));
  return Status::Ok();
}

void AgentHub::Stop() {
  if (stopping_.exchange(true)) return;
  stop_cv_.notify_all();
  if (accept_thread_.joinable()) accept_thread_.join();
  if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
  std::unique_lock<std::mutex> lock(mu_);
  for (auto& [name, session] : sessions_) session->Close(Unavailable("scheduler stopping"));
  stop_cv_.wait(lock, [&] { return active_serves_ == 0; });
}

std::shared_ptr<AgentSession> AgentHub::Find(const std::string& agent) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sessions_.find(agent);
  if (it == sessions_.end() || it->second->closed()) return nullptr;
  return it->second;
}

void AgentHub::AcceptLoop() {
  while (!stopping_) {
    auto link = listener_->Accept(milliseconds(200));
    if (!link.ok() || !link.value()) continue;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++active_serves_;
    }
    std::thread([this, l = std::move(link).value()]() mutable {
      Serve(std::move(l));
      std::lock_guard<std::mutex> lock(mu_);
      --active_serves_;
      stop_cv_.notify_all();
    }).detach();
  }
}

void AgentHub::HeartbeatLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_cv_.wait_for(lock, seconds(heartbeat_s_), [&] { return stopping_.load(); })) {
    auto sessions = sessions_;
    lock.unlock();
    for (auto& [name, session] : sessions) {
      if (session->Send(MessageType::kHeartbeat, "").ok()) {
        (void)store_.TouchAgent(name, session->last_heard());
      }
    }
    lock.lock();
  }
}

void AgentHub::AuditEvent(const std::string& agent, const std::string& action,
                          const std::string& result, const std::string& from) {
  Status st = store_.Audit({ToUnixMillis(clock_.Now()), agent, action, agent, result, from});
  if (!st.ok()) LOG_ERROR("audit: " << st.message());
}

Result<std::shared_ptr<AgentSession>> AgentHub::Handshake(std::unique_ptr<FrameLink>& link) {
  DX_ASSIGN_OR_RETURN(Frame frame, link->Receive(seconds(10)));
  if (frame.type != MessageType::kHello) return DataLoss("first message was not a hello");
  Hello hello;
  DX_RETURN_IF_ERROR(Decode(frame.payload, &hello));
  HelloReply reply;
  reply.heartbeat_s = static_cast<uint32_t>(heartbeat_s_);
  auto refuse = [&](const std::string& why) -> Status {
    reply.accepted = false;
    reply.reason = why;
    (void)link->Send(MessageType::kHelloReply, Encode(reply), kSendTimeout);
    return PermissionDenied(why);
  };
  if (hello.protocol_version != kProtocolVersion) {
    return refuse("agent speaks protocol version " + std::to_string(hello.protocol_version) +
                  ", scheduler speaks " + std::to_string(kProtocolVersion));
  }
  DX_ASSIGN_OR_RETURN(auto agent, store_.GetAgent(hello.agent));
  if (!agent || !VerifySecret(hello.secret, agent->secret_hash)) {
    AuditEvent(hello.agent, "agent.auth", "refused: unknown agent or wrong secret", link->peer());
    LOG_WARN("refused agent '" << hello.agent << "' from " << link->peer()
                               << ": unknown agent or wrong secret");
    return refuse("unknown agent or wrong secret");
  }
  reply.accepted = true;
  DX_RETURN_IF_ERROR(link->Send(MessageType::kHelloReply, Encode(reply), kSendTimeout));
  auto session = std::make_shared<AgentSession>(hello.agent, std::move(link), hello.ledger);
  DX_RETURN_IF_ERROR(store_.SetAgentOnline(hello.agent, true, ToUnixSeconds(clock_.Now()),
                                           session->peer(), hello.agent_version,
                                           hello.target_dbms));
  AuditEvent(hello.agent, "agent.connect", "ok", session->peer());
  LOG_INFO("agent " << hello.agent << " connected from " << session->peer() << " ("
                    << hello.target_dbms << ", " << hello.ledger.size() << " ledger entries)");
  return session;
}

void AgentHub::Serve(std::unique_ptr<FrameLink> link) {
  std::string peer = link->peer();
  if (tls_) {
    Status st = link->StartTls(*tls_, seconds(10));
    if (!st.ok()) {
      LOG_WARN("TLS handshake with " << peer << " failed: " << st.message());
      AuditEvent("", "agent.tls", "refused: " + st.message(), peer);
      return;
    }
  }
  auto session = Handshake(link);
  if (!session.ok()) {
    if (session.status().code() != StatusCode::kPermissionDenied) {
      LOG_WARN("agent handshake from " << peer << " failed: " << session.status().message());
    }
    return;
  }
  std::shared_ptr<AgentSession> s = session.value();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto old = sessions_.find(s->name());
    if (old != sessions_.end()) old->second->Close(Unavailable("replaced by a new connection"));
    sessions_[s->name()] = s;
    if (stopping_) s->Close(Unavailable("scheduler stopping"));
  }
  Status why = s->ReadLoop(seconds(3 * heartbeat_s_));
  bool current = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sessions_.find(s->name());
    if (it != sessions_.end() && it->second == s) {
      sessions_.erase(it);
      current = true;
    }
  }
  if (current && !stopping_) {
    LOG_WARN("agent " << s->name() << " disconnected: " << why.message());
    (void)store_.SetAgentOnline(s->name(), false, ToUnixSeconds(clock_.Now()), peer, "", "");
    AuditEvent(s->name(), "agent.disconnect", why.message(), peer);
  }
}

}  // namespace dx::scheduler
