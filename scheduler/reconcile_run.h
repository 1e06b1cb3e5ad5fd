// ReconcileRun: one reconciliation (对账) of one table subscription. Streams the source's rows
// in key order through the Extractor (the approved columns and row filter, exactly as runs
// deliver them), cuts them into ranges and sends each range's summary (last key, row count,
// digest of the rows' canonical forms) to the agent, which compares it with its own rows of
// that range; ranges that differ are split by key hash, 16 ways per level, down to rows, and
// only then are keys and rows sent. Missing and changed rows go to the agent as upserts and
// keys it should not hold as deletes, in numbered repair batches committed with its ledger
// (the watermark is never moved). Each source row is read once; memory is bounded by the
// ranges in flight; the unchanged bulk never crosses the wire. docs/RECONCILIATION.md.
#pragma once

#include <atomic>

#include "common/clock.h"
#include "scheduler/agent_hub.h"
#include "scheduler/scheduler_config.h"
#include "scheduler/store.h"

namespace dx::scheduler {

// How reconciliation cuts and paces its work (fixed for now; see docs/RECONCILIATION.md).
struct ReconcileOptions {
  int range_rows = 256;        // source rows per range
  int ranges_per_query = 64;   // ranges compared per message (one local query at the agent)
  int ranges_in_flight = 512;  // ranges read and not yet settled (bounds memory on both sides)
};

// Asks for a reconciliation of `subscription` (with `dry_run`, one that only reports). It stays
// pending until one finishes; the dispatcher starts it when no other run of the subscription is
// due. With `unless_pending`, a reconciliation already pending is left as it is.
Status RequestReconciliation(Store& store, const std::string& subscription, bool dry_run,
                             int64_t now_ms, bool unless_pending = false);

class ReconcileRun {
 public:
  ReconcileRun(Store& store, AgentHub& hub, const ExchangeOptions& options, const Clock& clock,
               ReconcileOptions reconcile = {});

  // Reconciles `subscription` now; a dry run compares and reports, and changes nothing. The
  // run is recorded in the history (trigger "reconcile") with its counts, which are also
  // returned in `*counts` when given; `*retryable` says whether a failure may pass by itself
  // (agent offline or gone, database unreachable).
  RunRecord Execute(const Subscription& subscription, bool dry_run,
                    ReconcileCounts* counts = nullptr, bool* retryable = nullptr);

 private:
  class Pass;
  Status Reconcile(const Subscription& sub, bool dry_run, RunRecord* run, ReconcileCounts* counts);

  Store& store_;
  AgentHub& hub_;
  const ExchangeOptions options_;
  const Clock& clock_;
  const ReconcileOptions reconcile_;
  std::atomic<uint64_t> attempts_{0};
};

}  // namespace dx::scheduler
