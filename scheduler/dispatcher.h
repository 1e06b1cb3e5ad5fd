// Dispatcher: decides when subscriptions run. It keeps every subscription in memory (loaded
// once, then only the rows the store reports changed are re-read) with a queue ordered by the
// time each is next due, and starts the due runs (schedule, manual trigger, resync) on a
// bounded pool of worker threads, oldest due first, never two runs of one subscription at
// once; a run that ends wakes the loop so that its slot is refilled at once. A missed schedule
// after downtime runs once; a transient failure is retried with exponential back-off (resyncs too);
// a permanent one stops the subscription until an operator acts (RetryPolicy); a scheduled run
// waits while its agent is offline. A suspended or terminated subscription runs nothing; its
// agent is told to delete what it holds (DeletionRun) until it confirms. Table subscriptions
// of one catalog entry due together (in the same second) run as one group in one slot, served
// by one read of the source (ExchangeRun::ExecuteGroup, 共享抽取).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
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
#include "scheduler/source_pool.h"
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

  // What runs did since the start (GET /api/v1/stats), and what is under way now.
  const ExchangeCounters& counters() const { return exchange_.counters(); }
  int active_runs();

  // One pass over the due subscriptions (exposed for tests with a fake clock).
  void Tick();
  // Makes the next pass start now (a change was made through the admin API).
  void Wake();

 private:
  void Loop();
  // Brings the in-memory view up to date with what changed in the store; changed ones are
  // queued to be looked at now.
  void Refresh(int64_t now);
  // Where a subscription just read enters the due queue.
  static int64_t LookAt(const Subscription& sub, int64_t now);
  // Puts `name` in the due queue at `due` (replacing its place); kNever takes it out.
  void Queue(const std::string& name, int64_t due);
  enum class Outcome { kStarted, kNoSlot, kWaiting };
  // Looks at one subscription that is due (or changed): starts its run, a reconciliation, or
  // queues it again for when it is next due.
  Outcome Consider(Subscription& sub, int64_t now);
  // Hands `job` to the worker pool (a slot was reserved: active_ counts it).
  void Submit(std::function<void()> job);
  void Work();
  // The end of a run (of a group) or reconciliation: frees its slot, queues the subscriptions
  // to be looked at again, wakes the loop.
  void Finished(const std::vector<std::string>& names);
  // The trigger a run of `sub` starts with.
  static std::string TriggerOf(const Subscription& sub);
  // Claims a subscription of the same entry as a run starting now, when it is due too (or
  // asked for) and may run: marks it running and returns its member.
  std::optional<GroupMember> Join(Subscription& sub, int64_t now);
  // True when `entry` is a table entry (cached; file entries run alone).
  bool IsTableEntry(const std::string& entry);
  void RunGroup(std::vector<GroupMember> group);
  // Schedules `sub`'s next run from how `run` ended.
  void AfterRun(const Subscription& sub, const RunRecord& run, bool reset);
  // Records a permanent failure: the subscription waits for an operator.
  void StopSubscription(const std::string& name, const std::string& error);
  // Starts a reconciliation of `sub` when one is requested or its `reconcile` schedule is due
  // (and no run of it is under way); `states` are the reconciliation states by subscription.
  // Returns when to look again (kNever: not until something changes).
  int64_t MaybeReconcile(const Subscription& sub, std::map<std::string, ReconcileState>& states,
                         int64_t now);
  void RunReconcile(Subscription sub, ReconcileState state);
  // A halted (suspended or terminated) subscription: tells its agent to delete what it holds
  // until the agent confirms (with back-off while it fails; each second while it is offline).
  Outcome ConsiderDeletion(const Subscription& sub, int64_t now);
  void RunDeletion(Subscription sub);

  Store& store_;
  AgentHub& hub_;
  const SchedulerConfig& config_;
  const Clock& clock_;
  SourcePool sources_;  // source connections shared by the runs
  ExchangeRun exchange_;
  ReconcileRun reconcile_;
  DeletionRun deletion_;
  static constexpr int64_t kNever = INT64_MAX;

  // The in-memory view, used by the loop (Tick) only.
  bool loaded_ = false;
  std::chrono::steady_clock::time_point last_full_load_;
  std::map<std::string, Subscription> subs_;
  std::map<std::string, ReconcileState> reconcile_states_;
  std::set<std::pair<int64_t, std::string>> due_;  // (due unix seconds, subscription)
  std::map<std::string, int64_t> due_at_;          // each queued subscription's place in due_
  std::map<std::string, std::set<std::string>> by_entry_;  // subscriptions by catalog entry
  std::map<std::string, bool> table_entries_;              // entry kinds seen (reset each reload)

  std::mutex mu_;
  std::condition_variable cv_;       // the loop: stop, wake
  std::condition_variable work_cv_;  // the workers: a job or stop
  std::set<std::string> running_;
  std::set<std::string> allow_mass_delete_;
  struct DeletionRetry {
    int failures = 0;
    int64_t next_at = 0;  // unix seconds
  };
  std::map<std::string, DeletionRetry> deletion_retry_;  // by subscription
  // Runs ended since the last Refresh: looked at again (their view in subs_ is stale till then).
  std::set<std::string> finished_;
  std::deque<std::function<void()>> jobs_;
  int active_ = 0;  // runs reserved or under way (at most config workers)
  bool stopping_ = false;
  bool wake_ = false;
  bool workers_stop_ = false;
  std::thread loop_;
  std::vector<std::thread> workers_;
};

}  // namespace dx::scheduler
