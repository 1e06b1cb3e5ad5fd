#include <doctest/doctest.h>

#include "agent/agent_config.h"
#include "scheduler/scheduler_config.h"
#include "test_util.h"

namespace dx {
namespace {

using testing::TempDir;

TEST_CASE("a good agent config loads with defaults") {
  TempDir dir;
  auto path = dir.Write("agent.yaml",
                        "name: a\nsecret: s3cret-0123456\nscheduler: 127.0.0.1:7800\n"
                        "target: {connection: \"Driver=SQLite3;Database=/tmp/x.db\"}\n");
  auto c = agent::LoadAgentConfig(path);
  REQUIRE(c.ok());
  CHECK(c->scheduler_port == 7800);
  CHECK(c->reconnect_max_ms == 30000);
  CHECK_FALSE(c->target.name_case.has_value());  // the DBMS's natural case
  CHECK(c->target.lock_timeout_ms == 1000);
  CHECK(c->target.lock_retry_ms == 15000);
  CHECK(c->target.row_check_interval_s == 300);
}

TEST_CASE("the target's name case, lock waits and row checks are configurable") {
  TempDir dir;
  auto path = dir.Write("agent.yaml",
                        "name: a\nsecret: s3cret-0123456\nscheduler: 127.0.0.1:7800\n"
                        "target:\n  connection: \"DSN=edu\"\n  name_case: upper\n"
                        "  lock_timeout_ms: 250\n  lock_retry_ms: 5000\n  row_check_s: 0\n");
  auto c = agent::LoadAgentConfig(path);
  REQUIRE(c.ok());
  CHECK(c->target.name_case == NameCase::kUpper);
  CHECK(c->target.lock_timeout_ms == 250);
  CHECK(c->target.lock_retry_ms == 5000);
  CHECK(c->target.row_check_interval_s == 0);
}

struct BadConfig {
  const char* text;
  const char* expected;  // the message must contain this (file:line: key '...')
};

TEST_CASE("bad agent configs name the file, line and key") {
  TempDir dir;
  const std::string base = "name: a\nsecret: s3cret-0123456\n";
  const BadConfig cases[] = {
      {"name: a\nsecret: x\nscheduler: nowhere\ntarget: {connection: c}\n",
       "agent.yaml:3: key 'scheduler': 'nowhere' is not host:port"},
      {"name: a\nsecret: x\nscheduler: h:1\ntarget: {connection: c}\nreconnect: {min_ms: fast}\n",
       "agent.yaml:5: key 'reconnect.min_ms': expected a whole number"},
      {"name: a\nsecret: x\nscheduler: h:1\ntarget: {conection: c}\n",
       "agent.yaml:4: key 'target.conection': unknown key"},
      {"name: a\nscheduler: h:1\ntarget: {connection: c}\n", "key 'secret': is required"},
      {"name: a\nsecret: x\nscheduler: h:1\n  bad: [\n", "agent.yaml:4: YAML syntax"},
      {"name: a\nsecret: x\nscheduler: h:1\ntarget: {connection: c}\nlog: {level: loud}\n",
       "agent.yaml:5: key 'log.level': expected debug, info, warn or error"},
      {"name: a\nsecret: x\nscheduler: h:1\ntarget:\n  connection: c\n  name_case: camel\n",
       "agent.yaml:6: key 'target.name_case': expected auto, lower, upper or preserve"},
      {"name: a\nsecret: x\nscheduler: h:1\ntarget: {connection: c, lock_timeout_ms: 0}\n",
       "key 'target.lock_timeout_ms'"},
  };
  for (const BadConfig& c : cases) {
    CAPTURE(c.text);
    auto loaded = agent::LoadAgentConfig(dir.Write("agent.yaml", c.text));
    REQUIRE_FALSE(loaded.ok());
    CHECK(loaded.status().code() == StatusCode::kInvalidArgument);
    CHECK(loaded.status().message().find(c.expected) != std::string::npos);
  }
  CHECK_FALSE(agent::LoadAgentConfig(dir.File("missing.yaml")).ok());
}

TEST_CASE("bad scheduler configs name the file, line and key") {
  TempDir dir;
  const BadConfig cases[] = {
      {"admin: {token: short}\n", "scheduler.yaml:1: key 'admin.token': an operator token"},
      {"admin: {token: long-enough-token-123}\nexchange:\n  window: 0\n",
       "scheduler.yaml:3: key 'exchange.window': must be between 1 and 64"},
      {"admin: {token: long-enough-token-123}\nexchange: {batch_rowz: 5}\n",
       "key 'exchange.batch_rowz': unknown key"},
      {"admin: {token: long-enough-token-123}\nlisten: {agents: \"0.0.0.0:x\"}\n",
       "scheduler.yaml:2: key 'listen.agents'"},
  };
  for (const BadConfig& c : cases) {
    CAPTURE(c.text);
    auto loaded = scheduler::LoadSchedulerConfig(dir.Write("scheduler.yaml", c.text));
    REQUIRE_FALSE(loaded.ok());
    CHECK(loaded.status().message().find(c.expected) != std::string::npos);
  }
  auto good = scheduler::LoadSchedulerConfig(
      dir.Write("scheduler.yaml", "admin: {token: long-enough-token-123}\n"));
  REQUIRE(good.ok());
  CHECK(good->exchange.batch_rows == 5000);
}

}  // namespace
}  // namespace dx
