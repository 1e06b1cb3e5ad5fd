// ExchangeRun: one run of one table subscription. Announces the table to the agent (which
// creates or checks it and reports its ledger), reads rows from the source after the agent's
// watermark, and pushes compressed batches with a window of several in flight, so that
// reading, sending and writing overlap. Records rows, bytes, duration and outcome.
#pragma once

#include <string>

#include "common/clock.h"
#include "scheduler/agent_hub.h"
#include "scheduler/scheduler_config.h"
#include "scheduler/store.h"

namespace dx::scheduler {

class ExchangeRun {
 public:
  ExchangeRun(Store& store, AgentHub& hub, const ExchangeOptions& options, const Clock& clock);

  // Runs `subscription` now and records the run; `reset` reloads from scratch (resync).
  // The returned record says how it ended.
  RunRecord Execute(const Subscription& subscription, const std::string& trigger, bool reset);

 private:
  Status Transfer(const Subscription& sub, bool reset, RunRecord* run);

  Store& store_;
  AgentHub& hub_;
  const ExchangeOptions options_;
  const Clock& clock_;
};

// The table the agent receives for a subscription: the approved columns in catalog order.
TableSpec SubscribedTable(const Subscription& sub, const CatalogEntry& entry);

}  // namespace dx::scheduler
