// What the sharing workflow's delivery gate costs a run: the time of CheckStillActive (before
// every batch) and of CheckDeliveryAllowed (before every run, with an approved application and
// masking) on a store holding many subscriptions. gate_bench.sh sets it against the time of a
// batch measured in the same run.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>

#include "scheduler/catalog/delivery_gate.h"
#include "scheduler/sqlite_store.h"

using namespace dx;
using namespace dx::scheduler;

int main(int argc, char** argv) {
  CLI::App app{"gate_cost: microseconds per delivery-gate check"};
  std::string path;
  int calls = 20000;
  int subscriptions = 1000;
  app.add_option("--store", path, "store file to create")->required();
  app.add_option("--calls", calls, "checks to time");
  app.add_option("--subscriptions", subscriptions, "subscriptions in the store");
  CLI11_PARSE(app, argc, argv);

  auto store = SqliteStore::Open(path);
  if (!store.ok()) return std::fprintf(stderr, "%s\n", store.status().message().c_str()), 1;
  Store& s = **store;
  CatalogEntry entry;
  entry.name = "市教委-学生基本信息";
  entry.provider = "市教委基础教育处";
  entry.share_type = "authorised";
  for (const char* c : {"id", "name", "id_card", "district_code", "updatetime"}) {
    Field f;
    f.column = ParseColumnType(std::string(c) == "id" ? "bigint" : "varchar(18)").value();
    f.column.name = c;
    f.column.primary_key = std::string(c) == "id";
    entry.fields.push_back(f);
  }
  AgentRecord agent;
  agent.name = "agent";
  agent.secret_hash = "x";
  agent.organisation = "徐汇区教育局";
  Application a;
  a.entry = entry.name;
  a.organisation = agent.organisation;
  a.state = "approved";
  a.approved.columns = {"id", "name", "id_card"};
  a.approved.filter = {{"district_code", "=", {"310104"}}};
  a.approved.masking = {{"id_card", "partial", 3, 4}};
  auto app_id = s.AddApplication(a);
  if (!s.PutCatalogEntry(entry).ok() || !s.PutAgent(agent).ok() || !app_id.ok()) return 1;
  Subscription sub;
  for (int i = 0; i < subscriptions; ++i) {
    sub.name = "sub-" + std::to_string(i);
    sub.agent = agent.name;
    sub.entry = entry.name;
    sub.organisation = agent.organisation;
    sub.application_id = app_id.value();
    sub.columns = {"id", "name", "id_card"};
    sub.filter = a.approved.filter;
    sub.masking = a.approved.masking;
    sub.target_table = "t" + std::to_string(i);
    if (!s.PutSubscriptionDefinition(sub).ok()) return 1;
  }
  auto time = [&](auto&& check) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) {
      Status st = check();
      if (!st.ok()) {
        std::fprintf(stderr, "check failed: %s\n", st.message().c_str());
        std::exit(1);
      }
    }
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
               .count() /
           calls;
  };
  const double active_us = time([&] { return CheckStillActive(s, sub.name); });
  const double allowed_us = time([&] { return CheckDeliveryAllowed(s, sub, entry); });
  std::printf("still_active_us=%.1f delivery_allowed_us=%.1f\n", active_us, allowed_us);
  return 0;
}
