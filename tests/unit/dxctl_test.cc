// dxctl's parsing of filters and times, and its token files (mode 0600 or refused).
#include <doctest/doctest.h>
#include <sys/stat.h>

#include "scheduler/dxctl/credentials.h"
#include "scheduler/dxctl/governance_commands.h"
#include "test_util.h"

namespace dx::ctl {
namespace {

TEST_CASE("dxctl filters") {
  struct Case {
    const char* text;
    bool ok;
    const char* column;
    const char* op;
    std::vector<std::string> values;
  };
  const Case cases[] = {
      {"district_code=310104", true, "district_code", "=", {"310104"}},
      {"stage!=高中", true, "stage", "!=", {"高中"}},
      {"n<=10", true, "n", "<=", {"10"}},
      {"n>=10", true, "n", ">=", {"10"}},
      {"n<10", true, "n", "<", {"10"}},
      {"t>2024-01-01 00:00:00", true, "t", ">", {"2024-01-01 00:00:00"}},
      {"stage in 小学,初中", true, "stage", "in", {"小学", "初中"}},
      {"=x", false, "", "", {}},
      {"stage", false, "", "", {}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    std::string column, op;
    std::vector<std::string> values;
    CHECK(ParseFilter(c.text, &column, &op, &values) == c.ok);
    if (!c.ok) continue;
    CHECK(column == c.column);
    CHECK(op == c.op);
    CHECK(values == c.values);
  }
}

TEST_CASE("dxctl times: dates, date-times and ago") {
  const int64_t now = 1700000000000;
  int64_t ms = 0;
  CHECK(ParseWhen("90m", now, &ms));
  CHECK(ms == now - 90 * 60000);
  CHECK(ParseWhen("2h", now, &ms));
  CHECK(ms == now - 7200000);
  CHECK(ParseWhen("3d", now, &ms));
  CHECK(ms == now - 3 * 86400000LL);
  CHECK(ParseWhen("2024-05-01", now, &ms));
  int64_t day = ms;
  CHECK(ParseWhen("2024-05-01 08:00:00", now, &ms));
  CHECK(ms - day == 8 * 3600000LL);
  CHECK_FALSE(ParseWhen("yesterday", now, &ms));
  CHECK_FALSE(ParseWhen("2024-05-01T08:00", now, &ms));
  CHECK_FALSE(ParseWhen("", now, &ms));
}

TEST_CASE("token files: written 0600, refused when others may read them") {
  testing::TempDir dir;
  const std::string path = dir.File("t.token");
  REQUIRE(WriteTokenFile(path, "dxt_secret").ok());
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(ReadTokenFile(path).value() == "dxt_secret");
  CHECK_FALSE(WriteTokenFile(path, "again").ok());  // never overwritten
  for (mode_t mode : {0640, 0604, 0660}) {
    chmod(path.c_str(), mode);
    auto read = ReadTokenFile(path);
    CHECK(read.status().code() == StatusCode::kPermissionDenied);
    CHECK(read.status().message().find("chmod 600") != std::string::npos);
  }
  CHECK(ReadTokenFile(dir.File("none")).status().code() == StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dx::ctl
