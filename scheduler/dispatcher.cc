#include "scheduler/dispatcher.h"

#include <algorithm>

#include "common/log.h"
#include "scheduler/retry_policy.h"
#include "scheduler/schedule.h"

namespace dx::scheduler {

Dispatcher::Dispatcher(Store& store, AgentHub& hub, const SchedulerConfig& config,
                       const Clock& clock)
    : store_(store),
      hub_(hub),
      config_(config),
      clock_(clock),
      exchange_(store, hub, config.exchange, clock),
      reconcile_(store, hub, config.exchange, clock),
      deletion_(store, hub, config.exchange, clock) {}

Dispatcher::~Dispatcher() { Stop(); }

void Dispatcher::Start() {
  loop_ = std::thread([this] { Loop(); });
}

void Dispatcher::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (loop_.joinable()) loop_.join();
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return active_ == 0; });
}

bool Dispatcher::IsRunning(const std::string& subscription) {
  std::lock_guard<std::mutex> lock(mu_);
  return running_.count(subscription) > 0;
}

Result<int64_t> Dispatcher::Trigger(const std::string& subscription, bool resync) {
  DX_ASSIGN_OR_RETURN(auto sub, store_.GetSubscription(subscription));
  if (!sub) return NotFound("no subscription named '" + subscription + "'");
  if (sub->status != "active") {
    return FailedPrecondition("subscription '" + subscription + "' is " + sub->status);
  }
  DX_ASSIGN_OR_RETURN(auto last, store_.LastRun(subscription));
  if (sub->stopped()) {
    // The operator acts: a stopped subscription runs again (and stops again if it must).
    DX_RETURN_IF_ERROR(store_.SetStopped(subscription, "", 0));
    LOG_INFO("subscription " << subscription << " resumed by an operator");
  }
  if (resync) {
    DX_RETURN_IF_ERROR(store_.RequestResync(subscription, true));
  } else {
    DX_RETURN_IF_ERROR(store_.SetPending(subscription, true, sub->resync_pending));
  }
  cv_.notify_all();
  return last ? last->id : 0;
}

void Dispatcher::AllowMassDelete(const std::string& subscription, bool allow) {
  std::lock_guard<std::mutex> lock(mu_);
  if (allow) {
    allow_mass_delete_.insert(subscription);
  } else {
    allow_mass_delete_.erase(subscription);
  }
}

void Dispatcher::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    Tick();
    lock.lock();
    cv_.wait_for(lock, std::chrono::milliseconds(config_.tick_ms), [&] { return stopping_; });
  }
}

void Dispatcher::Tick() {
  auto subs = store_.ListSubscriptions();
  if (!subs.ok()) {
    LOG_ERROR("cannot read subscriptions: " << subs.status().message());
    return;
  }
  const int64_t now = ToUnixSeconds(clock_.Now());
  std::map<std::string, ReconcileState> reconcile_states;
  if (auto states = store_.ListReconcileStates(); states.ok()) {
    for (ReconcileState& st : states.value()) reconcile_states[st.subscription] = st;
  }
  for (Subscription& sub : subs.value()) {
    if (sub.halted()) {
      MaybeDelete(sub, now);
      continue;
    }
    if (sub.status != "active") continue;
    if (sub.stopped() && !sub.manual_pending) continue;  // waits for an operator
    auto schedule = Schedule::Parse(sub.schedule);
    if (!schedule.ok()) {  // validated on apply; an old row stops only itself
      if (!sub.stopped()) StopSubscription(sub.name, "schedule: " + schedule.status().message());
      if (sub.manual_pending) (void)store_.ClearManualPending(sub.name);
      continue;
    }
    // A failed run (a resync too) waits out its back-off before the next attempt.
    const bool backing_off = sub.failures > 0 && sub.next_due > now;
    bool scheduled_due = sub.next_due <= now && (!schedule->manual() || sub.failures > 0);
    bool due = sub.manual_pending || (sub.resync_pending && !backing_off) || scheduled_due;
    if (!due) {
      MaybeReconcile(sub, reconcile_states, now);
      continue;
    }
    // Only an operator's "run now" reports an offline agent at once; everything else waits
    // for the agent to dial in instead of failing over and over.
    if (!sub.manual_pending && !hub_.Find(sub.agent)) continue;
    std::string trigger = sub.resync_pending   ? "resync"
                          : sub.manual_pending ? "manual"
                          : sub.failures > 0   ? "retry"
                                               : "schedule";
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ || running_.count(sub.name) || active_ >= config_.exchange.workers) continue;
      running_.insert(sub.name);
      ++active_;
      sub.allow_mass_delete = allow_mass_delete_.erase(sub.name) > 0;
    }
    bool reset = sub.resync_pending;
    // The resync request stays until a reload succeeds, so a crash cannot lose it (and one
    // made meanwhile is not overwritten).
    Status st = store_.ClearManualPending(sub.name);
    if (!st.ok()) LOG_ERROR("cannot clear pending flags of " << sub.name << ": " << st.message());
    std::thread([this, s = std::move(sub), trigger, reset]() mutable {
      RunOne(std::move(s), trigger, reset);
    }).detach();
  }
}

void Dispatcher::StopSubscription(const std::string& name, const std::string& error) {
  const int64_t now = ToUnixSeconds(clock_.Now());
  Status st = store_.SetStopped(name, error, now);
  if (!st.ok()) {
    LOG_ERROR("cannot stop " << name << ": " << st.message());
    return;
  }
  LOG_ERROR("subscription " << name << " stopped until an operator acts: " << error);
  (void)store_.Audit(
      {ToUnixMillis(clock_.Now()), "scheduler", "stop", name, "stopped: " + error, ""});
}

void Dispatcher::RunOne(Subscription sub, std::string trigger, bool reset) {
  RunRecord run = exchange_.Execute(sub, trigger, reset);
  const int64_t now = ToUnixSeconds(clock_.Now());
  auto schedule = Schedule::Parse(sub.schedule);
  Status st;
  if (run.status == "succeeded") {
    int64_t next = 0;
    if (schedule.ok() && !schedule->manual()) {
      next = schedule->NextAfter(now);
      if (next == 0) StopSubscription(sub.name, "schedule '" + sub.schedule + "' never fires");
    }
    st = store_.SetSchedule(sub.name, next, 0);
    if (st.ok()) st = store_.SetLastSuccess(sub.name, now);
    if (st.ok()) st = store_.SetCaughtUp(sub.name, run.started_at);
    if (st.ok() && reset) st = store_.FinishResync(sub.name, sub.resync_id);
  } else if (IsPermanentFailure(run.code)) {
    StopSubscription(sub.name, run.error);
    st = store_.SetSchedule(sub.name, now, 0);
  } else if (run.status == "partial") {
    // Some files were not delivered; each waits on its own back-off (FileRun). The
    // subscription keeps its schedule and comes back when the first of them is due.
    int64_t next = (run.retry_at_ms + 999) / 1000;
    if (schedule.ok() && !schedule->manual()) next = std::min(next, schedule->NextAfter(now));
    st = store_.SetSchedule(sub.name, next, std::min(sub.failures + 1, 30));
  } else {
    auto latest = store_.GetSubscription(sub.name);
    bool progressed = latest.ok() && latest.value() && latest.value()->acked_seq > sub.acked_seq;
    int failures = FailuresAfter(sub.failures, progressed);
    int64_t backoff =
        RetryDelaySeconds(failures, config_.exchange.retry_min_s, config_.exchange.retry_max_s);
    // Due times are whole seconds: round up so that the wait is never shorter than the back-off.
    const int64_t now_ms = ToUnixMillis(clock_.Now());
    st = store_.SetSchedule(sub.name, (now_ms + backoff * 1000 + 999) / 1000, failures);
  }
  if (!st.ok()) LOG_ERROR("cannot update schedule of " << sub.name << ": " << st.message());
  std::lock_guard<std::mutex> lock(mu_);
  running_.erase(sub.name);
  --active_;
  cv_.notify_all();
}

Result<int64_t> Dispatcher::TriggerReconcile(const std::string& subscription, bool dry_run) {
  DX_ASSIGN_OR_RETURN(auto sub, store_.GetSubscription(subscription));
  if (!sub) return NotFound("no subscription named '" + subscription + "'");
  if (sub->status != "active") {
    return FailedPrecondition("subscription '" + subscription + "' is " + sub->status);
  }
  DX_ASSIGN_OR_RETURN(auto entry, store_.GetCatalogEntry(sub->entry));
  if (entry && entry->is_file()) {
    return FailedPrecondition("reconciliation is for table subscriptions; '" + subscription +
                              "' delivers files");
  }
  if (!hub_.Find(sub->agent)) return Unavailable("agent " + sub->agent + " is offline");
  DX_ASSIGN_OR_RETURN(auto last, store_.LastRun(subscription));
  DX_RETURN_IF_ERROR(
      RequestReconciliation(store_, subscription, dry_run, ToUnixMillis(clock_.Now())));
  cv_.notify_all();
  return last ? last->id : 0;
}

void Dispatcher::MaybeReconcile(const Subscription& sub,
                                std::map<std::string, ReconcileState>& states, int64_t now) {
  ReconcileState& state = states[sub.name];
  state.subscription = sub.name;
  auto when = Schedule::Parse(sub.reconcile.empty() ? "manual" : sub.reconcile);
  const bool scheduled = when.ok() && !when->manual();
  if (state.pending == 0) {
    if (!scheduled) return;
    if (state.next_due == 0) {  // a new schedule: first due at its next time, not now
      state.next_due = when->NextAfter(now);
      Status st = store_.PutReconcileState(state);
      if (!st.ok()) {
        LOG_ERROR("cannot schedule reconciliation of " << sub.name << ": " << st.message());
      }
      return;
    }
    // A schedule made more frequent takes effect now, not after the time the old one set.
    if (state.failures == 0 && state.next_due > when->NextAfter(now)) {
      state.next_due = when->NextAfter(now);
      Status st = store_.PutReconcileState(state);
      if (!st.ok()) {
        LOG_ERROR("cannot schedule reconciliation of " << sub.name << ": " << st.message());
      }
    }
    if (state.next_due > now) return;
  } else if (state.failures > 0 && state.next_due > now) {
    return;  // a request that failed for a passing reason: retried after its back-off
  }
  // Reconciliations wait for their agent (a request for an offline agent is refused at once;
  // one left pending by a crash or a lost agent runs when the agent is back).
  if (!hub_.Find(sub.agent)) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || running_.count(sub.name) || active_ >= config_.exchange.workers) return;
    running_.insert(sub.name);
    ++active_;
  }
  ReconcileState claimed = state;
  if (claimed.pending == 0) claimed.pending = 1;
  // The request stays recorded until the reconciliation ends, so a crash cannot lose it.
  Status st = store_.PutReconcileState(claimed);
  if (!st.ok()) LOG_ERROR("cannot record reconciliation of " << sub.name << ": " << st.message());
  std::thread([this, s = sub, claimed]() mutable { RunReconcile(std::move(s), claimed); }).detach();
}

void Dispatcher::RunReconcile(Subscription sub, ReconcileState state) {
  const int64_t started_ms = ToUnixMillis(clock_.Now());
  bool retryable = false;
  RunRecord run = reconcile_.Execute(sub, state.pending == 2, nullptr, &retryable);
  const int64_t now = ToUnixSeconds(clock_.Now());
  auto when = Schedule::Parse(sub.reconcile.empty() ? "manual" : sub.reconcile);
  const bool scheduled = when.ok() && !when->manual();
  if (run.status == "succeeded") {
    state.pending = 0;
    state.failures = 0;
    state.next_due = scheduled ? when->NextAfter(now) : 0;
  } else {
    // A failure that may pass (agent gone, database down) keeps the request, retried with
    // back-off once the agent is back; any other ends it.
    if (!retryable) state.pending = 0;
    state.failures = std::min(state.failures + 1, 30);
    int64_t backoff = config_.exchange.retry_min_s;
    for (int i = 1; i < state.failures && backoff < config_.exchange.retry_max_s; ++i) backoff *= 2;
    state.next_due = scheduled || state.pending != 0
                         ? now + std::min<int64_t>(backoff, config_.exchange.retry_max_s)
                         : 0;
  }
  // An operator's request made while this one ran is still to be answered.
  if (auto latest = store_.ListReconcileStates(); latest.ok()) {
    for (const ReconcileState& l : latest.value()) {
      if (l.subscription != sub.name || l.requested_at < started_ms || l.pending == 0) continue;
      state.pending = l.pending;
      state.failures = 0;
      state.requested_at = l.requested_at;
    }
  }
  Status st = store_.PutReconcileState(state);
  if (!st.ok()) LOG_ERROR("cannot update reconciliation of " << sub.name << ": " << st.message());
  std::lock_guard<std::mutex> lock(mu_);
  running_.erase(sub.name);
  --active_;
  cv_.notify_all();
}

void Dispatcher::MaybeDelete(const Subscription& sub, int64_t now) {
  if (sub.deletion_confirmed_at != 0) return;
  if (!hub_.Find(sub.agent)) return;  // told when it connects
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || running_.count(sub.name) || active_ >= config_.exchange.workers) return;
    auto retry = deletion_retry_.find(sub.name);
    if (retry != deletion_retry_.end() && retry->second.next_at > now) return;
    running_.insert(sub.name);
    ++active_;
  }
  std::thread([this, s = sub]() mutable { RunDeletion(std::move(s)); }).detach();
}

void Dispatcher::RunDeletion(Subscription sub) {
  Status st = deletion_.Execute(sub);
  if (!st.ok()) LOG_WARN("deletion at the agent of " << sub.name << ": " << st.message());
  const int64_t now = ToUnixSeconds(clock_.Now());
  std::lock_guard<std::mutex> lock(mu_);
  if (st.ok()) {
    deletion_retry_.erase(sub.name);
  } else {
    DeletionRetry& retry = deletion_retry_[sub.name];
    retry.failures = std::min(retry.failures + 1, 30);
    retry.next_at = now + RetryDelaySeconds(retry.failures, config_.exchange.retry_min_s,
                                            config_.exchange.retry_max_s);
  }
  running_.erase(sub.name);
  --active_;
  cv_.notify_all();
}

}  // namespace dx::scheduler
