// Dispatcher: decides when subscriptions run. Every tick it starts the runs that are due
// (schedule, manual trigger, resync) on a bounded pool of workers, never two runs of one
// subscription at once. A missed schedule after downtime runs once; a transient failure is
// retried with exponential back-off (resyncs too); a permanent one stops the subscription
// until an operator acts (RetryPolicy); a scheduled run waits while its agent is offline. A
// suspended or terminated subscription runs nothing; its agent is told to delete what it holds
// (DeletionRun) until it confirms.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "scheduler/agent_hub.h"
#include "scheduler/deletion_run.h"
#include "scheduler/exchange_run.h"
#include "scheduler/reconcile_run.h"
#include "scheduler/scheduler_config.h"
#include "scheduler/store.h"

namespace dx::scheduler {

class Dispatcher {
 public:
  Dispatcher(Store& store, AgentHub& hub, const SchedulerConfig& config, const Clock& clock);
  ~Dispatcher();

  void Start();
  // Stops starting runs and waits for those under way to end.
  void Stop();
  // Marks `subscription` for a run now (or a reload from scratch with `resync`); returns
  // the id of its latest run before the request, so callers can wait for a newer one.
  Result<int64_t> Trigger(const std::string& subscription, bool resync);
  // Lets the next run of `subscription` delete more than its max_delete_percent of the
  // files delivered (an operator confirmed the deletions are meant), or takes that back.
  // Kept in memory only.
  void AllowMassDelete(const std::string& subscription, bool allow);
  bool IsRunning(const std::string& subscription);
  // Marks `subscription` for a reconciliation (对账) now; a dry run only reports. Returns the
  // id of its latest run before the request.
  Result<int64_t> TriggerReconcile(const std::string& subscription, bool dry_run);

  // One pass over the subscriptions (exposed for tests with a fake clock).
  void Tick();

 private:
  void Loop();
  void RunOne(Subscription sub, std::string trigger, bool reset);
  // Records a permanent failure: the subscription waits for an operator.
  void StopSubscription(const std::string& name, const std::string& error);
  // Starts a reconciliation of `sub` when one is requested or its `reconcile` schedule is due
  // (and no run of it is under way); `states` are the reconciliation states by subscription.
  void MaybeReconcile(const Subscription& sub, std::map<std::string, ReconcileState>& states,
                      int64_t now);
  void RunReconcile(Subscription sub, ReconcileState state);
  // Tells the agent of a halted subscription to delete what it holds, unless it confirmed
  // already, no run of it is under way and its agent is online (retried with back-off).
  void MaybeDelete(const Subscription& sub, int64_t now);
  void RunDeletion(Subscription sub);

  Store& store_;
  AgentHub& hub_;
  const SchedulerConfig& config_;
  const Clock& clock_;
  ExchangeRun exchange_;
  ReconcileRun reconcile_;
  DeletionRun deletion_;
  struct DeletionRetry {
    int failures = 0;
    int64_t next_at = 0;  // unix seconds
  };
  std::map<std::string, DeletionRetry> deletion_retry_;  // by subscription; guarded by mu_
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> running_;
  std::set<std::string> allow_mass_delete_;
  int active_ = 0;
  bool stopping_ = false;
  std::thread loop_;
};

}  // namespace dx::scheduler
