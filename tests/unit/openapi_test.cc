// docs/openapi.yaml documents the admin API: every route the scheduler serves is documented,
// and every documented path and method is served.
#include <doctest/doctest.h>
#include <yaml-cpp/yaml.h>

#include <set>

#include "scheduler/admin_api.h"
#include "scheduler/sqlite_store.h"
#include "test_util.h"

namespace dx::scheduler {
namespace {

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

TEST_CASE("docs/openapi.yaml and the admin API's routes match, both ways") {
  YAML::Node doc = YAML::LoadFile(std::string(DX_SOURCE_DIR) + "/docs/openapi.yaml");
  REQUIRE(doc["openapi"]);
  std::set<std::string> documented;
  for (const auto& path : doc["paths"]) {
    for (const auto& op : path.second) {
      const std::string method = op.first.as<std::string>();
      if (method == "parameters") continue;
      documented.insert(Upper(method) + " " + path.first.as<std::string>());
      // Every operation says what it does and who may call it.
      CAPTURE(path.first.as<std::string>());
      CHECK(op.second["summary"]);
      CHECK(op.second["description"]);
    }
  }
  testing::TempDir dir;
  testing::FakeClock clock;
  auto store = SqliteStore::Open(dir.File("s.db")).value();
  SchedulerConfig config;
  AgentHub hub(*store, clock, 5);
  Dispatcher dispatcher(*store, hub, config, clock);
  AdminApi api(*store, hub, dispatcher, clock, "unit-operator-token-0123456789");
  std::set<std::string> served = {"GET /healthz"};  // answered before routing
  for (const Route& r : api.router().routes()) served.insert(r.method + " " + r.pattern);
  for (const std::string& s : served) {
    CAPTURE(s);
    CHECK(documented.count(s) == 1);
  }
  for (const std::string& d : documented) {
    CAPTURE(d);
    CHECK(served.count(d) == 1);
  }
}

}  // namespace
}  // namespace dx::scheduler
