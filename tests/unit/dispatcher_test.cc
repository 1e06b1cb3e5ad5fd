// The dispatcher's in-memory due queue and worker pool (issue 9): a slot is refilled as soon
// as a run ends (not at the next tick), every due subscription is served, and changes made
// through the store after the first load are seen without a scan of every subscription.
#include "scheduler/dispatcher.h"

#include <doctest/doctest.h>

#include <thread>

#include "scheduler/sqlite_store.h"
#include "test_util.h"

namespace dx::scheduler {
namespace {

using testing::FakeClock;
using testing::TempDir;

Subscription Broken(const std::string& name) {
  Subscription s;
  s.name = name;
  s.agent = "agent-1";
  s.entry = "no-such-entry";  // each run fails at once (and stops its subscription)
  s.target_table = name;
  s.schedule = "manual";
  return s;
}

// Waits (up to a generous deadline) until every subscription in `names` has a run.
bool AllRan(Store& store, int count) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    int ran = 0;
    for (int i = 0; i < count; ++i) {
      auto last = store.LastRun("s" + std::to_string(i));
      if (last.ok() && last.value()) ++ran;
    }
    if (ran == count) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

TEST_CASE("a run that ends frees its slot at once: every requested run is served") {
  TempDir dir;
  FakeClock clock;
  auto store = SqliteStore::Open(dir.File("s.db")).value();
  SchedulerConfig config;
  config.exchange.workers = 1;
  config.tick_ms = 60000;  // a tick a minute: only a run's end can start the next one in time
  AgentHub hub{*store, clock, 5};
  const int kSubs = 30;
  for (int i = 0; i < kSubs; ++i)
    REQUIRE(store->PutSubscriptionDefinition(Broken("s" + std::to_string(i))).ok());
  Dispatcher dispatcher{*store, hub, config, clock};
  for (int i = 0; i < kSubs; ++i) REQUIRE(dispatcher.Trigger("s" + std::to_string(i), false).ok());
  dispatcher.Start();
  // Before: at most `workers` runs were started per tick, so this took 30 minutes.
  CHECK(AllRan(*store, kSubs));
  dispatcher.Stop();
  // Each failed for its own reason and stopped only itself.
  auto s7 = store->GetSubscription("s7").value();
  REQUIRE(s7);
  CHECK(s7->stopped());
  CHECK(s7->stopped_error.find("no-such-entry") != std::string::npos);
}

TEST_CASE("the dispatcher sees changes made through the store after its first load") {
  TempDir dir;
  FakeClock clock;
  auto store = SqliteStore::Open(dir.File("s.db")).value();
  SchedulerConfig config;
  config.exchange.workers = 2;
  AgentHub hub{*store, clock, 5};
  Dispatcher dispatcher{*store, hub, config, clock};
  dispatcher.Tick();  // loads (nothing yet)
  // Defined and flagged after the load, by another writer (as dxctl apply and the admin API do).
  REQUIRE(store->PutSubscriptionDefinition(Broken("s0")).ok());
  REQUIRE(store->SetPending("s0", true, false).ok());
  dispatcher.Tick();
  CHECK(AllRan(*store, 1));
}

TEST_CASE("a schedule that never fires stops its subscription with that error") {
  TempDir dir;
  FakeClock clock;
  auto store = SqliteStore::Open(dir.File("s.db")).value();
  SchedulerConfig config;
  AgentHub hub{*store, clock, 5};
  Dispatcher dispatcher{*store, hub, config, clock};
  Subscription s = Broken("feb31");
  s.schedule = "cron 0 0 31 2 *";  // refused by apply; stored directly as an older row would be
  REQUIRE(store->PutSubscriptionDefinition(s).ok());
  dispatcher.Tick();
  auto got = store->GetSubscription("feb31").value();
  REQUIRE(got);
  CHECK(got->stopped());
  CHECK(got->stopped_error == "schedule 'cron 0 0 31 2 *' never fires");
  CHECK_FALSE(store->LastRun("feb31").value());  // nothing ran
}

TEST_CASE("the store names the subscriptions that changed, once") {
  TempDir dir;
  auto store = SqliteStore::Open(dir.File("s.db")).value();
  bool all = false;
  (void)store->TakeChangedSubscriptions(&all);
  REQUIRE(store->PutSubscriptionDefinition(Broken("a")).ok());
  REQUIRE(store->PutSubscriptionDefinition(Broken("b")).ok());
  REQUIRE(store->SetSchedule("a", 5, 1).ok());
  auto changed = store->TakeChangedSubscriptions(&all);
  CHECK_FALSE(all);
  CHECK(changed == std::vector<std::string>{"a", "b"});
  CHECK(store->TakeChangedSubscriptions(&all).empty());
  ReconcileState st;
  st.subscription = "b";
  st.pending = 1;
  REQUIRE(store->PutReconcileState(st).ok());
  CHECK(store->TakeChangedSubscriptions(&all) == std::vector<std::string>{"b"});
  auto mine = store->ListSubscriptionsOfAgent("agent-1").value();
  CHECK(mine.size() == 2);
  CHECK(store->ListSubscriptionsOfAgent("agent-2").value().empty());
}

TEST_CASE("a transaction's changes are named together at its commit, none after a rollback") {
  TempDir dir;
  auto store = SqliteStore::Open(dir.File("s.db")).value();
  bool all = false;
  (void)store->TakeChangedSubscriptions(&all);
  // Inside the transaction nothing is named yet (a dispatcher would start a group with half
  // a manifest); at the commit, all of it.
  REQUIRE(store
              ->InTransaction([&]() -> Status {
                DX_RETURN_IF_ERROR(store->PutSubscriptionDefinition(Broken("a")));
                bool inner_all = false;
                CHECK(store->TakeChangedSubscriptions(&inner_all).empty());
                return store->PutSubscriptionDefinition(Broken("b"));
              })
              .ok());
  CHECK(store->TakeChangedSubscriptions(&all) == std::vector<std::string>{"a", "b"});
  // A rolled back transaction changed nothing: nothing named.
  CHECK_FALSE(store
                  ->InTransaction([&]() -> Status {
                    DX_RETURN_IF_ERROR(store->SetSchedule("a", 5, 1));
                    return InvalidArgument("refused");
                  })
                  .ok());
  CHECK(store->TakeChangedSubscriptions(&all).empty());
  CHECK_FALSE(all);
}

TEST_CASE("a wake starts the dispatcher's next pass at once, not at its tick") {
  TempDir dir;
  FakeClock clock;
  auto store = SqliteStore::Open(dir.File("s.db")).value();
  SchedulerConfig config;
  config.tick_ms = 60000;  // without a wake, the next pass would come in a minute
  AgentHub hub{*store, clock, 5};
  Dispatcher dispatcher{*store, hub, config, clock};
  // A pass stops a subscription whose schedule never fires: the sign that a pass ran.
  auto add_never_firing = [&](const std::string& name) {
    Subscription s = Broken(name);
    s.schedule = "cron 0 0 31 2 *";
    REQUIRE(store->PutSubscriptionDefinition(s).ok());
  };
  auto stopped_within = [&](const std::string& name, std::chrono::milliseconds limit) {
    for (auto waited = std::chrono::milliseconds(0); waited < limit;
         waited += std::chrono::milliseconds(20)) {
      if (store->GetSubscription(name).value()->stopped()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return store->GetSubscription(name).value()->stopped();
  };
  add_never_firing("first");
  dispatcher.Start();
  // The first pass runs at once (and stops "first"); then the loop waits out its tick.
  REQUIRE(stopped_within("first", std::chrono::seconds(5)));
  add_never_firing("feb31");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK_FALSE(store->GetSubscription("feb31").value()->stopped());  // no pass yet
  dispatcher.Wake();
  CHECK(stopped_within("feb31", std::chrono::seconds(2)));
  dispatcher.Stop();
}

}  // namespace
}  // namespace dx::scheduler
