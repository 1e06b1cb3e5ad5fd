#include "scheduler/exchange_run.h"

#include <algorithm>
#include <optional>

#include "common/log.h"
#include "common/watermark.h"
#include "common/wire.h"
#include "scheduler/catalog/delivery_gate.h"
#include "scheduler/extractor.h"
#include "scheduler/file_run.h"
#include "scheduler/manifest.h"
#include "scheduler/reconcile_run.h"
#include "scheduler/table_fanout.h"

namespace dx::scheduler {

TableSpec SubscribedTable(const Subscription& sub, const CatalogEntry& entry) {
  TableSpec spec;
  spec.table = sub.target_table;
  for (const Field& f : entry.fields) {
    if (std::find(sub.columns.begin(), sub.columns.end(), f.column.name) != sub.columns.end()) {
      spec.columns.push_back(f.column);
    }
  }
  return spec;
}

ExchangeRun::ExchangeRun(Store& store, AgentHub& hub, const ExchangeOptions& options,
                         const Clock& clock)
    : store_(store), hub_(hub), options_(options), clock_(clock) {}

RunRecord ExchangeRun::Execute(const Subscription& sub, const std::string& trigger, bool reset) {
  return ExecuteGroup({GroupMember{sub, trigger, reset}}).front();
}

std::vector<RunRecord> ExchangeRun::ExecuteGroup(const std::vector<GroupMember>& group) {
  std::vector<RunRecord> runs(group.size());
  std::vector<TableFanout::Member> members(group.size());
  for (size_t i = 0; i < group.size(); ++i) {
    RunRecord& run = runs[i];
    run.subscription = group[i].subscription.name;
    run.trigger = group[i].trigger;
    run.status = "running";
    run.started_at = ToUnixMillis(clock_.Now());
    members[i].subscription = &group[i].subscription;
    members[i].reset = group[i].reset;
    members[i].poll = group[i].trigger == "schedule";
    members[i].run = &run;
    // A scheduled poll is recorded only once it moves something (realtime subscriptions poll
    // every few seconds).
    if (!members[i].poll) members[i].status = Record(&run);
  }
  Status st;
  std::optional<CatalogEntry> entry;
  if (!group.empty()) {
    auto found = store_.GetCatalogEntry(group[0].subscription.entry);
    st = !found.ok()      ? found.status()
         : !found.value() ? FailedPrecondition("catalog entry '" + group[0].subscription.entry +
                                               "' no longer exists")
                          : Status::Ok();
    if (st.ok()) entry = std::move(found).value();
  }
  for (TableFanout::Member& m : members) {
    if (!st.ok() && m.status.ok()) m.status = st;
    if (m.status.ok() && m.subscription->entry != group[0].subscription.entry) {
      m.status = Internal("a group run mixes catalog entries");
    }
  }
  if (entry && entry->is_file()) {
    for (TableFanout::Member& m : members) {
      if (m.status.ok()) m.status = TransferFiles(*m.subscription, *entry, m.reset, m.run);
    }
  } else if (entry) {
    counters_.group_runs++;
    TableFanout fanout(
        store_, hub_, options_, clock_, pool_, clock_max_age_, attempts_,
        [this](RunRecord* run) { return Record(run); }, &counters_);
    fanout.Transfer(*entry, members);
  }
  for (size_t i = 0; i < group.size(); ++i) {
    if (members[i].detached && members[i].status.ok()) {
      runs[i].status = "partial";
      runs[i].error = runs[i].note;
      runs[i].retry_at_ms = ToUnixMillis(clock_.Now());
    }
    Finish(group[i].subscription, members[i].status, &runs[i]);
  }
  return runs;
}

void ExchangeRun::Finish(const Subscription& sub, const Status& st, RunRecord* run) {
  run->finished_at = ToUnixMillis(clock_.Now());
  // A run where some files (or, of a shared read, some rows) were not delivered says so itself
  // (status and error).
  const bool partial = st.ok() && run->status == "partial";
  run->status = partial ? "partial" : st.ok() ? "succeeded" : "failed";
  if (!partial) run->error = st.ok() ? "" : st.message();
  run->code = st.code();
  if (run->id == 0 && (!st.ok() || run->rows > 0 || partial)) (void)Record(run);
  if (run->id == 0) return;  // an empty scheduled poll: nothing to record
  Status recorded = store_.FinishRun(*run);
  if (!recorded.ok()) LOG_ERROR("run " << run->id << " not recorded: " << recorded.message());
  if (partial) {
    LOG_WARN("run " << run->id << " of " << sub.name << " partly delivered: " << run->error);
  } else if (st.ok()) {
    LOG_INFO("run " << run->id << " of " << sub.name << " (" << run->trigger << "): " << run->rows
                    << " rows, " << run->batches << " batches, " << run->bytes << " bytes in "
                    << (run->finished_at - run->started_at) << " ms");
  } else {
    LOG_WARN("run " << run->id << " of " << sub.name << " failed: " << run->error);
  }
}

Status ExchangeRun::Record(RunRecord* run) {
  if (run->id != 0) return Status::Ok();
  RunRecord started = *run;
  started.status = "running";
  auto id = store_.StartRun(started);
  if (!id.ok()) {
    LOG_ERROR("run of " << run->subscription
                        << " could not be recorded: " << id.status().message());
    return id.status();
  }
  run->id = id.value();
  return Status::Ok();
}

Status ExchangeRun::TransferFiles(const Subscription& sub, const CatalogEntry& entry, bool reset,
                                  RunRecord* run) {
  DX_RETURN_IF_ERROR(CheckSubscriptionAgainstEntry(sub, entry));
  // The sharing workflow's word: active, shared, within its approval (最小够用).
  DX_RETURN_IF_ERROR(CheckDeliveryAllowed(store_, sub, entry));
  std::shared_ptr<AgentSession> session = hub_.Find(sub.agent);
  if (!session) return Unavailable("agent " + sub.agent + " is offline");
  DX_ASSIGN_OR_RETURN(auto agent, store_.GetAgent(sub.agent));
  session->ResetMailbox(sub.name);
  FileRun files(store_, options_);
  return files.Transfer(sub, entry, agent ? agent->bandwidth_kbps : 0, *session, ++attempts_, reset,
                        run, [this, run] { return Record(run); });
}

}  // namespace dx::scheduler
