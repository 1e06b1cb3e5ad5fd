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
      sources_(config.exchange.source_connections, config.exchange.source_idle_s),
      exchange_(store, hub, config.exchange, clock),
      reconcile_(store, hub, config.exchange, clock),
      deletion_(store, hub, config.exchange, clock) {
  exchange_.UseSourcePool(&sources_, std::chrono::milliseconds(config_.tick_ms));
  // The pool exists from the start so that tests driving Tick() by hand run their runs too.
  const int workers = std::max(1, config_.exchange.workers);
  for (int i = 0; i < workers; ++i) workers_.emplace_back([this] { Work(); });
}

Dispatcher::~Dispatcher() { Stop(); }

void Dispatcher::Start() {
  loop_ = std::thread([this] { Loop(); });
}

void Dispatcher::Wake() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    wake_ = true;
  }
  cv_.notify_all();
}

void Dispatcher::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (loop_.joinable()) loop_.join();
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return active_ == 0; });
    workers_stop_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
  workers_.clear();
}

int Dispatcher::active_runs() {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(running_.size());
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
  {
    std::lock_guard<std::mutex> lock(mu_);
    wake_ = true;
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
    wake_ = false;
    lock.unlock();
    Tick();
    lock.lock();
    cv_.wait_for(lock, std::chrono::milliseconds(config_.tick_ms),
                 [&] { return stopping_ || wake_; });
  }
}

void Dispatcher::Work() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    work_cv_.wait(lock, [&] { return workers_stop_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stopping, nothing left
    std::function<void()> job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    job();
    lock.lock();
  }
}

void Dispatcher::Submit(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(std::move(job));
  }
  work_cv_.notify_one();
}

void Dispatcher::Finished(const std::vector<std::string>& names) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const std::string& name : names) {
      running_.erase(name);
      finished_.insert(name);
    }
    --active_;
    wake_ = true;
  }
  cv_.notify_all();
}

void Dispatcher::Queue(const std::string& name, int64_t due) {
  auto it = due_at_.find(name);
  if (it != due_at_.end()) {
    if (it->second == due) return;
    due_.erase({it->second, name});
    due_at_.erase(it);
  }
  if (due == kNever) return;
  due_.insert({due, name});
  due_at_[name] = due;
}

void Dispatcher::Refresh(int64_t now) {
  bool all = false;
  std::vector<std::string> changed = store_.TakeChangedSubscriptions(&all);
  {
    std::lock_guard<std::mutex> lock(mu_);
    changed.insert(changed.end(), finished_.begin(), finished_.end());
    finished_.clear();
  }
  // A full reload now and then as well: a change made behind the store's back (by hand, in
  // the database file) is seen within ten seconds. (2,000 subscriptions take a few ms.)
  const auto steady_now = std::chrono::steady_clock::now();
  bool full = false;
  if (!loaded_ || all || steady_now - last_full_load_ > std::chrono::seconds(10)) {
    last_full_load_ = steady_now;
    auto subs = store_.ListSubscriptions();
    if (!subs.ok()) {
      LOG_ERROR("cannot read subscriptions: " << subs.status().message());
      std::lock_guard<std::mutex> lock(mu_);  // looked at on the next pass instead
      finished_.insert(changed.begin(), changed.end());
      return;
    }
    subs_.clear();
    due_.clear();
    due_at_.clear();
    by_entry_.clear();
    table_entries_.clear();
    for (Subscription& sub : subs.value()) {
      Queue(sub.name, LookAt(sub, now));
      by_entry_[sub.entry].insert(sub.name);
      subs_[sub.name] = std::move(sub);
    }
    changed.clear();
    loaded_ = true;
    full = true;
  }
  // Reconciliation states are re-read with any change (a full reload included): a stale
  // pending request would start a second reconciliation after the first one ended.
  if (full || !changed.empty() || reconcile_states_.empty()) {
    if (auto states = store_.ListReconcileStates(); states.ok()) {
      reconcile_states_.clear();
      for (ReconcileState& st : states.value()) reconcile_states_[st.subscription] = st;
    }
  }
  std::sort(changed.begin(), changed.end());
  changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
  for (const std::string& name : changed) {
    auto sub = store_.GetSubscription(name);
    if (!sub.ok()) {
      LOG_ERROR("cannot read subscription " << name << ": " << sub.status().message());
      Queue(name, now + 1);  // read again on the next pass
      continue;
    }
    if (auto old = subs_.find(name); old != subs_.end()) by_entry_[old->second.entry].erase(name);
    if (!sub.value()) {  // removed: forgotten with whatever the dispatcher kept for it
      subs_.erase(name);
      Queue(name, kNever);
      std::lock_guard<std::mutex> lock(mu_);
      deletion_retry_.erase(name);
      allow_mass_delete_.erase(name);
      continue;
    }
    by_entry_[sub.value()->entry].insert(name);
    if (!sub.value()->halted()) {
      // Resumed (a change of the row): its next suspension starts without an old back-off.
      std::lock_guard<std::mutex> lock(mu_);
      deletion_retry_.erase(name);
    }
    Queue(name, LookAt(*sub.value(), now));
    subs_[name] = std::move(*sub.value());
  }
}

int64_t Dispatcher::LookAt(const Subscription& sub, int64_t now) {
  // An operator's request goes first; anything else keeps the place its due time gives it
  // (one due long ago stays ahead of one that just changed), and is looked at now at the
  // latest (Consider then queues it for when it is really due).
  return sub.manual_pending ? 0 : std::min(sub.next_due, now);
}

void Dispatcher::Tick() {
  const int64_t now = ToUnixSeconds(clock_.Now());
  Refresh(now);
  // Oldest due first: when the slots run out, the rest keep their place at the front.
  while (!due_.empty() && due_.begin()->first <= now) {
    const std::string name = due_.begin()->second;
    auto it = subs_.find(name);
    if (it == subs_.end()) {
      Queue(name, kNever);
      continue;
    }
    if (Consider(it->second, now) == Outcome::kNoSlot) break;
  }
}

Dispatcher::Outcome Dispatcher::Consider(Subscription& sub, int64_t now) {
  if (sub.halted()) return ConsiderDeletion(sub, now);
  if (sub.status != "active" || (sub.stopped() && !sub.manual_pending)) {
    Queue(sub.name, kNever);  // waits for an operator (who changes the row)
    return Outcome::kWaiting;
  }
  auto schedule = Schedule::Parse(sub.schedule);
  if (!schedule.ok()) {  // validated on apply; an old row stops only itself
    if (!sub.stopped()) StopSubscription(sub.name, "schedule: " + schedule.status().message());
    if (sub.manual_pending) (void)store_.ClearManualPending(sub.name);
    Queue(sub.name, kNever);  // the writes above bring it back to be looked at
    return Outcome::kWaiting;
  }
  // A schedule that never fires (cron 0 0 31 2 *; refused on apply, but a row may predate
  // that check) stops its subscription before anything runs.
  if (!schedule->manual() && !sub.stopped() && sub.next_due == 0 && schedule->NextAfter(now) == 0) {
    StopSubscription(sub.name, "schedule '" + sub.schedule + "' never fires");
    Queue(sub.name, kNever);
    return Outcome::kWaiting;
  }
  // A failed run (a resync too) waits out its back-off before the next attempt.
  const bool backing_off = sub.failures > 0 && sub.next_due > now;
  bool scheduled_due = sub.next_due <= now && (!schedule->manual() || sub.failures > 0);
  bool due = sub.manual_pending || (sub.resync_pending && !backing_off) || scheduled_due;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return Outcome::kNoSlot;
    // Running, or its run has just ended: this view of it may predate that run (a Refresh
    // can read the store just before the run's schedule is written). It is read again on the
    // next pass, which Finished asked for; started now, it would poll twice.
    if (running_.count(sub.name) || finished_.count(sub.name)) {
      Queue(sub.name, kNever);
      return Outcome::kWaiting;
    }
  }
  if (!due) {
    int64_t next = MaybeReconcile(sub, reconcile_states_, now);
    if (!schedule->manual() || sub.failures > 0 || sub.resync_pending) {
      next = std::min(next, std::max(sub.next_due, now + 1));
    }
    bool running = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      running = running_.count(sub.name) > 0;
    }
    Queue(sub.name, running ? kNever : next);
    return Outcome::kWaiting;
  }
  // Only an operator's "run now" reports an offline agent at once; everything else waits
  // for the agent to dial in instead of failing over and over (looked at again each second).
  if (!sub.manual_pending && !hub_.Find(sub.agent)) {
    Queue(sub.name, now + 1);
    return Outcome::kWaiting;
  }
  std::string trigger = TriggerOf(sub);
  Subscription run_sub = sub;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (active_ >= config_.exchange.workers) return Outcome::kNoSlot;
    running_.insert(sub.name);
    ++active_;
    run_sub.allow_mass_delete = allow_mass_delete_.erase(sub.name) > 0;
  }
  Queue(sub.name, kNever);  // looked at again when the run ends
  bool reset = sub.resync_pending;
  // The resync request stays until a reload succeeds, so a crash cannot lose it (and one
  // made meanwhile is not overwritten).
  Status st = store_.ClearManualPending(sub.name);
  if (!st.ok()) LOG_ERROR("cannot clear pending flags of " << sub.name << ": " << st.message());
  sub.manual_pending = false;
  std::vector<GroupMember> group;
  group.push_back({std::move(run_sub), trigger, reset});
  // The entry's other subscriptions due now share the run's read of the source.
  auto peers = by_entry_.find(sub.entry);
  if (peers != by_entry_.end() && IsTableEntry(sub.entry)) {
    for (const std::string& name : peers->second) {
      if (group.size() >= static_cast<size_t>(config_.exchange.shared_read_max)) break;
      auto peer = subs_.find(name);
      if (name == sub.name || peer == subs_.end()) continue;
      if (auto member = Join(peer->second, now)) group.push_back(std::move(*member));
    }
  }
  Submit([this, g = std::move(group)]() mutable { RunGroup(std::move(g)); });
  return Outcome::kStarted;
}

std::string Dispatcher::TriggerOf(const Subscription& sub) {
  return sub.resync_pending   ? "resync"
         : sub.manual_pending ? "manual"
         : sub.failures > 0   ? "retry"
                              : "schedule";
}

bool Dispatcher::IsTableEntry(const std::string& entry) {
  auto it = table_entries_.find(entry);
  if (it != table_entries_.end()) return it->second;
  auto found = store_.GetCatalogEntry(entry);
  if (!found.ok() || !found.value()) return false;  // the run itself reports why
  return table_entries_[entry] = !found.value()->is_file();
}

std::optional<GroupMember> Dispatcher::Join(Subscription& sub, int64_t now) {
  if (sub.halted() || sub.status != "active" || (sub.stopped() && !sub.manual_pending)) {
    return std::nullopt;
  }
  // The cheap test first: most of an entry's subscriptions are not due now.
  if (!sub.manual_pending && !sub.resync_pending && sub.next_due > now) return std::nullopt;
  auto schedule = Schedule::Parse(sub.schedule);
  if (!schedule.ok()) return std::nullopt;  // Consider stops it on its own
  const bool backing_off = sub.failures > 0 && sub.next_due > now;
  const bool due =
      sub.manual_pending || (sub.resync_pending && !backing_off) ||
      (!backing_off && sub.next_due <= now && (!schedule->manual() || sub.failures > 0));
  if (!due || !hub_.Find(sub.agent)) return std::nullopt;
  GroupMember member{sub, TriggerOf(sub), sub.resync_pending};
  {
    std::lock_guard<std::mutex> lock(mu_);
    // A run of it just ended: this view of it is stale until the next Refresh.
    if (running_.count(sub.name) || finished_.count(sub.name)) return std::nullopt;
    running_.insert(sub.name);
    member.subscription.allow_mass_delete = allow_mass_delete_.erase(sub.name) > 0;
  }
  Queue(sub.name, kNever);  // looked at again when the run ends
  Status st = store_.ClearManualPending(sub.name);
  if (!st.ok()) LOG_ERROR("cannot clear pending flags of " << sub.name << ": " << st.message());
  sub.manual_pending = false;
  return member;
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

void Dispatcher::RunGroup(std::vector<GroupMember> group) {
  std::vector<RunRecord> runs = exchange_.ExecuteGroup(group);
  std::vector<std::string> names;
  for (const GroupMember& m : group) names.push_back(m.subscription.name);
  // One commit for the group's schedules: 2,000 realtime subscriptions end a poll each second.
  // (Each member's writes are its own; one that fails is logged and retried by its next run.)
  Status st = store_.InTransaction([&]() -> Status {
    for (size_t i = 0; i < group.size(); ++i)
      AfterRun(group[i].subscription, runs[i], group[i].reset);
    return Status::Ok();
  });
  if (!st.ok()) {
    LOG_ERROR("cannot record the schedules of a group run: " << st.message() << "; one by one");
    for (size_t i = 0; i < group.size(); ++i)
      AfterRun(group[i].subscription, runs[i], group[i].reset);
  }
  Finished(names);
}

void Dispatcher::AfterRun(const Subscription& sub, const RunRecord& run, bool reset) {
  const int64_t now = ToUnixSeconds(clock_.Now());
  auto schedule = Schedule::Parse(sub.schedule);
  Status st;
  if (run.status == "succeeded") {
    int64_t next = 0;
    if (schedule.ok() && !schedule->manual()) {
      next = schedule->NextAfter(now);
      if (next == 0) StopSubscription(sub.name, "schedule '" + sub.schedule + "' never fires");
    }
    // One commit for the lot: a realtime poll ends here every few seconds.
    st = store_.InTransaction([&]() -> Status {
      DX_RETURN_IF_ERROR(store_.SetSchedule(sub.name, next, 0));
      DX_RETURN_IF_ERROR(store_.SetLastSuccess(sub.name, now));
      DX_RETURN_IF_ERROR(store_.SetCaughtUp(sub.name, run.started_at));
      if (reset) DX_RETURN_IF_ERROR(store_.FinishResync(sub.name, sub.resync_id));
      return Status::Ok();
    });
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
  {
    std::lock_guard<std::mutex> lock(mu_);
    wake_ = true;
  }
  cv_.notify_all();
  return last ? last->id : 0;
}

int64_t Dispatcher::MaybeReconcile(const Subscription& sub,
                                   std::map<std::string, ReconcileState>& states, int64_t now) {
  ReconcileState& state = states[sub.name];
  state.subscription = sub.name;
  auto when = Schedule::Parse(sub.reconcile.empty() ? "manual" : sub.reconcile);
  const bool scheduled = when.ok() && !when->manual();
  if (state.pending == 0) {
    if (!scheduled) return kNever;
    if (state.next_due == 0) {  // a new schedule: first due at its next time, not now
      state.next_due = when->NextAfter(now);
      Status st = store_.PutReconcileState(state);
      if (!st.ok()) {
        LOG_ERROR("cannot schedule reconciliation of " << sub.name << ": " << st.message());
      }
      return std::max(state.next_due, now + 1);
    }
    // A schedule made more frequent takes effect now, not after the time the old one set.
    if (state.failures == 0 && state.next_due > when->NextAfter(now)) {
      state.next_due = when->NextAfter(now);
      Status st = store_.PutReconcileState(state);
      if (!st.ok()) {
        LOG_ERROR("cannot schedule reconciliation of " << sub.name << ": " << st.message());
      }
    }
    if (state.next_due > now) return state.next_due;
  } else if (state.failures > 0 && state.next_due > now) {
    return state.next_due;  // a request that failed for a passing reason: retried after back-off
  }
  // Reconciliations wait for their agent (a request for an offline agent is refused at once;
  // one left pending by a crash or a lost agent runs when the agent is back).
  if (!hub_.Find(sub.agent)) return now + 1;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || running_.count(sub.name)) return kNever;
    if (active_ >= config_.exchange.workers) return now + 1;  // the next free slot
    running_.insert(sub.name);
    ++active_;
  }
  ReconcileState claimed = state;
  if (claimed.pending == 0) claimed.pending = 1;
  // The request stays recorded until the reconciliation ends, so a crash cannot lose it.
  Status st = store_.PutReconcileState(claimed);
  if (!st.ok()) LOG_ERROR("cannot record reconciliation of " << sub.name << ": " << st.message());
  state = claimed;
  Submit([this, s = sub, claimed]() mutable { RunReconcile(std::move(s), claimed); });
  return kNever;  // looked at again when it ends
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
  // An operator's request made while this one ran is still to be answered (one made in the
  // millisecond it started, e.g. by the run that found the damage, is answered by it: it reads
  // both sides after that).
  if (auto latest = store_.ListReconcileStates(); latest.ok()) {
    for (const ReconcileState& l : latest.value()) {
      if (l.subscription != sub.name || l.requested_at <= started_ms || l.pending == 0) continue;
      state.pending = l.pending;
      state.failures = 0;
      state.requested_at = l.requested_at;
    }
  }
  Status st = store_.PutReconcileState(state);
  if (!st.ok()) LOG_ERROR("cannot update reconciliation of " << sub.name << ": " << st.message());
  Finished({sub.name});
}

Dispatcher::Outcome Dispatcher::ConsiderDeletion(const Subscription& sub, int64_t now) {
  if (sub.deletion_confirmed_at != 0) {
    Queue(sub.name, kNever);  // done; a resumption changes the row
    return Outcome::kWaiting;
  }
  if (!hub_.Find(sub.agent)) {
    Queue(sub.name, now + 1);  // told once it connects
    return Outcome::kWaiting;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return Outcome::kNoSlot;
    if (running_.count(sub.name) || finished_.count(sub.name)) {
      Queue(sub.name, kNever);  // looked at again when that ends (Finished), or read again
      return Outcome::kWaiting;
    }
    auto retry = deletion_retry_.find(sub.name);
    if (retry != deletion_retry_.end() && retry->second.next_at > now) {
      Queue(sub.name, retry->second.next_at);
      return Outcome::kWaiting;
    }
    if (active_ >= config_.exchange.workers) return Outcome::kNoSlot;
    running_.insert(sub.name);
    ++active_;
  }
  Queue(sub.name, kNever);
  Submit([this, s = sub]() mutable { RunDeletion(std::move(s)); });
  return Outcome::kStarted;
}

void Dispatcher::RunDeletion(Subscription sub) {
  Status st = deletion_.Execute(sub);
  if (!st.ok()) LOG_WARN("deletion at the agent of " << sub.name << ": " << st.message());
  const int64_t now = ToUnixSeconds(clock_.Now());
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (st.ok()) {
      deletion_retry_.erase(sub.name);
    } else {
      DeletionRetry& retry = deletion_retry_[sub.name];
      retry.failures = std::min(retry.failures + 1, 30);
      retry.next_at = now + RetryDelaySeconds(retry.failures, config_.exchange.retry_min_s,
                                              config_.exchange.retry_max_s);
    }
  }
  Finished({sub.name});
}

}  // namespace dx::scheduler
