#include "scheduler/deletion_run.h"

#include "common/log.h"

namespace dx::scheduler {
namespace {

using std::chrono::seconds;

// Instruction ids never collide with the run ids of exchange runs and reconciliations.
constexpr uint64_t kRunIdTag = 1ULL << 61;

std::string HaltedBy(const Subscription& sub) {
  std::string who = sub.halted_by.empty() ? ""
                                          : " by " + sub.halted_by + " (" + sub.halted_role + ", " +
                                                sub.halted_org + ")";
  return sub.status + who + (sub.halt_reason.empty() ? "" : ": " + sub.halt_reason);
}

}  // namespace

DeletionRun::DeletionRun(Store& store, AgentHub& hub, const ExchangeOptions& options,
                         const Clock& clock)
    : store_(store), hub_(hub), options_(options), clock_(clock) {}

void DeletionRun::AuditEvent(const std::string& actor, const std::string& action,
                             const std::string& target, const std::string& result,
                             const std::string& from) {
  Status st = store_.Audit({ToUnixMillis(clock_.Now()), actor, action, target, result, from});
  if (!st.ok()) LOG_ERROR("audit: " << st.message());
}

Status DeletionRun::Execute(const Subscription& sub) {
  std::shared_ptr<AgentSession> session = hub_.Find(sub.agent);
  if (!session) return Unavailable("agent " + sub.agent + " is offline");
  DeleteSubscription order;
  order.subscription = sub.name;
  order.run_id = kRunIdTag | ++attempts_;
  order.reason = HaltedBy(sub);
  DX_ASSIGN_OR_RETURN(auto entry, store_.GetCatalogEntry(sub.entry));
  if (entry && entry->is_file()) {
    order.target_path = sub.target_path;
    // The folders its runs created (recorded as "path/"): the agent does not record folders.
    // Beyond the bounds, the rest are left (still removed when a deleted file emptied them).
    DX_ASSIGN_OR_RETURN(std::vector<DeliveredFile> delivered, store_.ListDeliveredFiles(sub.name));
    size_t bytes = 0;
    for (const DeliveredFile& d : delivered) {
      if (d.path.empty() || d.path.back() != '/') continue;
      if (order.folders.size() == kMaxDeletionFolders || bytes > kMaxFrameBytes / 4) break;
      bytes += d.agent_path.size() + 2;
      order.folders.push_back(d.agent_path);
    }
  }
  const std::string target = "subscription/" + sub.name;

  session->ResetMailbox(sub.name);
  AuditEvent("scheduler", "subscription.delete", target,
             "sent: agent " + sub.agent + " is to delete the subscription's rows and files (" +
                 order.reason + ")",
             session->peer());
  LOG_INFO("subscription " << sub.name << " is " << order.reason << ": telling agent " << sub.agent
                           << " to delete its rows and files");
  DX_RETURN_IF_ERROR(session->Send(MessageType::kDeleteSubscription, Encode(order)));
  DeletionDone done;
  do {
    DX_ASSIGN_OR_RETURN(done, session->AwaitDeletion(sub.name, seconds(options_.ack_timeout_s)));
  } while (done.run_id != order.run_id);  // a late answer to an earlier instruction
  if (done.code != StatusCode::kOk) {
    AuditEvent(sub.agent, "subscription.deletion", target, "failed: " + done.error,
               session->peer());
    return Status(done.code, "agent " + sub.agent + " could not delete: " + done.error);
  }

  const int64_t now_ms = ToUnixMillis(clock_.Now());
  DX_ASSIGN_OR_RETURN(auto latest, store_.GetSubscription(sub.name));
  if (latest && latest->halted()) {
    Status recorded = store_.InTransaction([&]() -> Status {
      DX_RETURN_IF_ERROR(store_.RecordDeletionConfirmation(sub.name, now_ms, done.detail));
      // The agent holds nothing now: the scheduler's view of its position says so, and a
      // resumed file subscription sends every file (and folder) again, failed ones included.
      DX_RETURN_IF_ERROR(store_.SetProgress(sub.name, 0, ""));
      DX_RETURN_IF_ERROR(store_.ClearFileFailures(sub.name));  // no back-off holds a file back
      return store_.ClearDeliveredFiles(sub.name);
    });
    DX_RETURN_IF_ERROR(recorded);
  }
  AuditEvent(sub.agent, "subscription.deletion", target, "ok: confirmed: " + done.detail,
             session->peer());
  LOG_INFO("agent " << sub.agent << " confirmed the deletion of " << sub.name << ": "
                    << done.detail);
  return Status::Ok();
}

}  // namespace dx::scheduler
