#include "scheduler/dispatcher.h"

#include <algorithm>

#include "common/log.h"
#include "scheduler/schedule.h"

namespace dx::scheduler {

Dispatcher::Dispatcher(Store& store, AgentHub& hub, const SchedulerConfig& config,
                       const Clock& clock)
    : store_(store),
      hub_(hub),
      config_(config),
      clock_(clock),
      exchange_(store, hub, config.exchange, clock) {}

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
  DX_RETURN_IF_ERROR(store_.SetPending(subscription, true, resync || sub->resync_pending));
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
  for (Subscription& sub : subs.value()) {
    if (sub.status != "active") continue;
    auto schedule = Schedule::Parse(sub.schedule);
    if (!schedule.ok()) continue;  // validated on apply; an old row cannot stop the others
    bool scheduled_due = sub.next_due <= now && (!schedule->manual() || sub.failures > 0);
    bool due = sub.manual_pending || sub.resync_pending || scheduled_due;
    if (!due) continue;
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
    // The resync request stays until a reload succeeds, so a crash cannot lose it.
    Status st = store_.SetPending(sub.name, false, reset);
    if (!st.ok()) LOG_ERROR("cannot clear pending flags of " << sub.name << ": " << st.message());
    std::thread([this, s = std::move(sub), trigger, reset]() mutable {
      RunOne(std::move(s), trigger, reset);
    }).detach();
  }
}

void Dispatcher::RunOne(Subscription sub, std::string trigger, bool reset) {
  RunRecord run = exchange_.Execute(sub, trigger, reset);
  const int64_t now = ToUnixSeconds(clock_.Now());
  auto schedule = Schedule::Parse(sub.schedule);
  Status st;
  if (run.status == "succeeded") {
    int64_t next = schedule.ok() ? schedule->NextAfter(now) : 0;
    st = store_.SetSchedule(sub.name, schedule.ok() && schedule->manual() ? 0 : next, 0);
    if (st.ok()) st = store_.SetLastSuccess(sub.name, now);
    if (st.ok() && reset) {
      auto latest = store_.GetSubscription(sub.name);
      bool manual = latest.ok() && latest.value() && latest.value()->manual_pending;
      st = store_.SetPending(sub.name, manual, false);
    }
  } else if (run.status == "partial") {
    // Some files were not delivered; each waits on its own back-off (FileRun). The
    // subscription keeps its schedule and comes back when the first of them is due.
    int64_t next = (run.retry_at_ms + 999) / 1000;
    if (schedule.ok() && !schedule->manual()) next = std::min(next, schedule->NextAfter(now));
    st = store_.SetSchedule(sub.name, next, std::min(sub.failures + 1, 30));
  } else {
    int failures = std::min(sub.failures + 1, 30);
    int64_t backoff = config_.exchange.retry_min_s;
    for (int i = 1; i < failures && backoff < config_.exchange.retry_max_s; ++i) backoff *= 2;
    backoff = std::min<int64_t>(backoff, config_.exchange.retry_max_s);
    st = store_.SetSchedule(sub.name, now + backoff, failures);
  }
  if (!st.ok()) LOG_ERROR("cannot update schedule of " << sub.name << ": " << st.message());
  std::lock_guard<std::mutex> lock(mu_);
  running_.erase(sub.name);
  --active_;
  cv_.notify_all();
}

}  // namespace dx::scheduler
