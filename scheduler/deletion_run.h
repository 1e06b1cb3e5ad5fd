// DeletionRun: tells an agent to delete everything it holds for a suspended or terminated
// subscription (附件一 第二条(四), 第九条(三)) — the tables it created for it, the files it
// received for it, its records of them — and records the agent's confirmation
// (Store::RecordDeletionConfirmation). The audit log records the instruction and the answer.
// The dispatcher starts one for each halted subscription whose deletion is not confirmed,
// whenever its agent is online and no run of it is under way, and retries it with back-off, so
// an agent offline at the time, or killed mid-way, deletes on its next connection (the agent's
// side is idempotent).
#pragma once

#include <atomic>

#include "common/clock.h"
#include "scheduler/agent_hub.h"
#include "scheduler/scheduler_config.h"
#include "scheduler/store.h"

namespace dx::scheduler {

class DeletionRun {
 public:
  DeletionRun(Store& store, AgentHub& hub, const ExchangeOptions& options, const Clock& clock);

  // Sends the instruction and waits for the agent's answer (up to exchange.ack_timeout_s).
  // kUnavailable when the agent is offline or went away; the agent's own code when it could
  // not delete (its message says why). Records the confirmation only while the subscription
  // is still halted (one resumed meanwhile reloads from scratch anyway).
  Status Execute(const Subscription& subscription);

 private:
  void AuditEvent(const std::string& actor, const std::string& action, const std::string& target,
                  const std::string& result, const std::string& from);

  Store& store_;
  AgentHub& hub_;
  const ExchangeOptions options_;
  const Clock& clock_;
  std::atomic<uint64_t> attempts_{0};
};

}  // namespace dx::scheduler
