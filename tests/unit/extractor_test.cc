// Extractor against a real SQLite source through unixODBC.
#include "scheduler/extractor.h"

#include <doctest/doctest.h>

#include "common/odbc.h"
#include "test_util.h"

namespace dx::scheduler {
namespace {

using testing::SqliteConnection;
using testing::TempDir;

ExtractSpec Spec() {
  ExtractSpec s;
  s.source_table = "student";
  s.columns = {{"id", ColumnType::kBigint, 0, 0, true, true},
               {"name", ColumnType::kVarchar, 30, 0, true, false}};
  s.updatetime = {"updatetime", ColumnType::kDatetime, 0, 0, true, false};
  s.bound = "2026-12-31 00:00:00";
  return s;
}

TEST_CASE("the safety-lag bound is computed on the source's clock text") {
  CHECK(ShiftTimestamp("2026-03-01 00:00:01", -2).value() == "2026-02-28 23:59:59");
  CHECK(ShiftTimestamp("2026-11-21 10:00:00", 0).value() == "2026-11-21 10:00:00");
  CHECK_FALSE(ShiftTimestamp("yesterday", -2).ok());
}

TEST_CASE("incremental queries resume strictly after (updatetime, key) and bind every value") {
  ExtractSpec s = Spec();
  s.after = {"", "2026-01-01 00:00:00", {"42"}};
  s.filter = {{"district_code", "in", {"310104", "310115"}}};
  s.filter_columns = {{"district_code", ColumnType::kVarchar, 6, 0, false, false}};
  std::vector<std::string> params;
  std::string sql = Extractor::BuildQuery(SqlDialect(Dbms::kSqlite), s, &params);
  CHECK(sql ==
        "SELECT \"id\", \"name\", \"updatetime\" FROM \"student\" WHERE \"updatetime\" < ? AND "
        "(\"updatetime\" > ? OR (\"updatetime\" = ? AND (\"id\" > ?))) AND \"district_code\" IN "
        "(?, ?) ORDER BY \"updatetime\", \"id\"");
  CHECK(params == std::vector<std::string>{"2026-12-31 00:00:00", "2026-01-01 00:00:00",
                                           "2026-01-01 00:00:00", "42", "310104", "310115"});
}

TEST_CASE("a full load reads in key order up to its own bound, resuming after the key") {
  ExtractSpec s = Spec();
  s.after = {"2026-06-01 00:00:00", "", {"42"}};
  std::vector<std::string> params;
  std::string sql = Extractor::BuildQuery(SqlDialect(Dbms::kPostgres), s, &params);
  CHECK(sql ==
        "SELECT \"id\", \"name\", \"updatetime\" FROM \"student\" WHERE \"updatetime\" < "
        "CAST(? AS TIMESTAMP) AND (\"id\" > CAST(? AS BIGINT)) ORDER BY \"id\"");
  CHECK(params == std::vector<std::string>{"2026-06-01 00:00:00", "42"});
  // After the full load, incremental extraction starts strictly after its bound.
  s.after = {"", "2026-06-01 00:00:00", {}};
  params.clear();
  sql = Extractor::BuildQuery(SqlDialect(Dbms::kSqlite), s, &params);
  CHECK(sql.find("\"updatetime\" >= ? ORDER BY \"updatetime\", \"id\"") != std::string::npos);
}

TEST_CASE("rows stream across runs: full load in key order, then (updatetime, key) order") {
  TempDir dir;
  const std::string conn = SqliteConnection(dir.File("src.db"));
  {
    auto c = OdbcConnection::Open(conn);
    REQUIRE(c.ok());
    REQUIRE(
        (*c)->Execute("CREATE TABLE student (id INTEGER PRIMARY KEY, name TEXT, updatetime TEXT)")
            .ok());
    // Five rows share one timestamp; one is newer than the bound.
    REQUIRE((*c)->Execute("INSERT INTO student VALUES (5,'戊','2026-01-01 00:00:00'),"
                          "(3,'丙','2026-01-01 00:00:00'),(4,'丁','2026-01-01 00:00:00'),"
                          "(1,'甲','2026-01-01 00:00:00'),(2,'乙','2026-01-01 00:00:00'),"
                          "(0,'早','2025-01-01 00:00:00'),(9,'晚','2027-01-01 00:00:00')")
                .ok());
  }
  auto x = Extractor::Open(conn);
  REQUIRE(x.ok());
  ExtractSpec s = Spec();
  std::vector<std::string> seen;
  Watermark last;
  // Read two rows per run, resuming each time from the last watermark, as runs do.
  for (int run = 0; run < 10; ++run) {
    s.after = last;
    REQUIRE((*x)->Start(s).ok());
    RowBatch batch(2);
    auto n = (*x)->Read(2, &batch, &last);
    REQUIRE(n.ok());
    if (n.value() == 0) break;
    for (size_t r = 0; r < batch.rows(); ++r) seen.emplace_back(batch.Cell(r, 0));
  }
  CHECK(seen == std::vector<std::string>{"0", "1", "2", "3", "4", "5"});
  CHECK(last.full_load_until == "2026-12-31 00:00:00");
  CHECK(last.key == std::vector<std::string>{"5"});
  REQUIRE((*x)->full_load());

  // The load is complete; the next run with a later bound reads only what is newer.
  {
    auto c = OdbcConnection::Open(conn);
    REQUIRE(c.ok());
    REQUIRE((*c)->Execute("INSERT INTO student VALUES (7,'新','2026-12-31 00:00:00'),"
                          "(6,'更新','2027-01-01 00:00:00')")
                .ok());
  }
  s.after = (*x)->FinishedWatermark();
  s.bound = "2027-06-01 00:00:00";
  REQUIRE((*x)->Start(s).ok());
  CHECK_FALSE((*x)->full_load());
  RowBatch batch(2);
  auto n = (*x)->Read(100, &batch, &last);
  REQUIRE(n.ok());
  // The full load's bound is exclusive, so id 7, stamped exactly at it, comes now, then the
  // newer rows, in (updatetime, key) order.
  REQUIRE(batch.rows() == 3);
  CHECK(batch.Cell(0, 0) == "7");
  CHECK(batch.Cell(1, 0) == "6");
  CHECK(batch.Cell(2, 0) == "9");
  CHECK(last.updatetime == "2027-01-01 00:00:00");
}

}  // namespace
}  // namespace dx::scheduler
