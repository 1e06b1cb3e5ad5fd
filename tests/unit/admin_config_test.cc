// The scheduler's governance settings: the admin API beyond loopback needs TLS, the audit key
// file's default, the bootstrap admin's direct path; conf/scheduler.yaml itself loads.
#include <doctest/doctest.h>

#include "scheduler/scheduler_config.h"
#include "test_util.h"

namespace dx::scheduler {
namespace {

TEST_CASE("admin settings: TLS beyond loopback, the audit key, the bootstrap admin") {
  testing::TempDir dir;
  struct Case {
    const char* text;
    const char* error;  // "" : valid
  };
  const Case cases[] = {
      {"admin: {token: long-enough-token-123}\n", ""},
      {"listen: {admin: \"0.0.0.0:7880\"}\nadmin: {token: long-enough-token-123}\n",
       "scheduler.yaml:1: key 'listen.admin': '0.0.0.0:7880' is reachable beyond this machine"},
      {"listen: {admin: \"10.0.0.5:7880\"}\nadmin: {token: long-enough-token-123}\n",
       "needs HTTPS (admin.tls.cert and admin.tls.key)"},
      {"listen: {admin: \"10.0.0.5:7880\"}\n"
       "admin: {token: long-enough-token-123, tls: {cert: /c.pem, key: /k.pem}}\n",
       ""},
      {"listen: {admin: \"localhost:7880\"}\nadmin: {token: long-enough-token-123}\n", ""},
      {"listen: {admin: \"127.0.0.2:7880\"}\nadmin: {token: long-enough-token-123}\n", ""},
      {"admin: {token: long-enough-token-123, tls: {cert: /c.pem}}\n", "give both cert and key"},
      {"admin: {token: long-enough-token-123, bootstrap_direct: maybe}\n",
       "expected true or false"},
      {"admin: {token: long-enough-token-123, organisation: \"\"}\n", "may not be empty"},
      {"admin: {token: long-enough-token-123}\naudit: {keyfile: /x}\n", "unknown key"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    auto loaded = LoadSchedulerConfig(dir.Write("scheduler.yaml", c.text));
    CHECK(loaded.ok() == (*c.error == '\0'));
    if (!loaded.ok()) CHECK(loaded.status().message().find(c.error) != std::string::npos);
  }
  auto defaults = LoadSchedulerConfig(dir.Write(
      "scheduler.yaml", "store: {path: /var/db/s.db}\nadmin: {token: long-enough-token-123}\n"));
  REQUIRE(defaults.ok());
  CHECK(defaults->audit_key_file == "/var/db/s.db.audit-key");
  CHECK(defaults->bootstrap_direct);
  CHECK(defaults->admin_organisation == "数据技术管理部门");
}

TEST_CASE("conf/scheduler.yaml loads and names every governance key") {
  auto c = LoadSchedulerConfig(std::string(DX_SOURCE_DIR) + "/conf/scheduler.yaml");
  REQUIRE(c.ok());
  CHECK(c->audit_key_file == "/etc/dx/audit.key");
  CHECK(c->bootstrap_direct);
}

}  // namespace
}  // namespace dx::scheduler
