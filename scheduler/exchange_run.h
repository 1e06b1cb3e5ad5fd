// ExchangeRun: runs of subscriptions — of a table subscription (announces the table to the
// agent, which creates or checks it and reports its ledger; reads rows from the source after
// the agent's watermark; pushes compressed batches with a window of several in flight, so
// that reading, sending and writing overlap), of several table subscriptions of one catalog
// entry at once, sharing one read of the source (TableFanout), or of a file subscription
// (FileRun). Records each run's rows, bytes, duration and outcome.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "common/clock.h"
#include "scheduler/agent_hub.h"
#include "scheduler/scheduler_config.h"
#include "scheduler/source_pool.h"
#include "scheduler/store.h"
#include "scheduler/table_fanout.h"

namespace dx::scheduler {

// One subscription of a group run.
struct GroupMember {
  Subscription subscription;
  std::string trigger;  // schedule | manual | retry | resync
  bool reset = false;   // reload from scratch (resync)
};

class ExchangeRun {
 public:
  ExchangeRun(Store& store, AgentHub& hub, const ExchangeOptions& options, const Clock& clock);

  // Runs `subscription` now; `reset` reloads from scratch (resync). The run is recorded in
  // the history unless it is a scheduled poll that found nothing to move (realtime
  // subscriptions poll every few seconds). The returned record says how it ended.
  RunRecord Execute(const Subscription& subscription, const std::string& trigger, bool reset);
  // Runs table subscriptions of one catalog entry together, one read of the source serving
  // them all (file subscriptions of the group run one after the other). Returns each one's
  // run record, in order; a member that fell behind the others ends "partial", with
  // retry_at_ms now (it catches up on its own).
  std::vector<RunRecord> ExecuteGroup(const std::vector<GroupMember>& group);
  // Takes source connections from `pool` (kept by the caller, outliving this) instead of
  // opening new ones; scheduled polls then share the source clock read within `clock_max_age`.
  const ExchangeCounters& counters() const { return counters_; }
  void UseSourcePool(SourcePool* pool, std::chrono::milliseconds clock_max_age) {
    pool_ = pool;
    clock_max_age_ = clock_max_age;
  }

 private:
  // A file subscription's run.
  Status TransferFiles(const Subscription& sub, const CatalogEntry& entry, bool reset,
                       RunRecord* run);
  // Creates the run's history record if it has none yet.
  Status Record(RunRecord* run);
  // Ends `run` with `st`: its status, history record and log line.
  void Finish(const Subscription& sub, const Status& st, RunRecord* run);

  Store& store_;
  AgentHub& hub_;
  const ExchangeOptions options_;
  const Clock& clock_;
  std::atomic<uint64_t> attempts_{0};
  SourcePool* pool_ = nullptr;
  std::chrono::milliseconds clock_max_age_{0};
  ExchangeCounters counters_;
};

// The table the agent receives for a subscription: the approved columns in catalog order.
TableSpec SubscribedTable(const Subscription& sub, const CatalogEntry& entry);

}  // namespace dx::scheduler
