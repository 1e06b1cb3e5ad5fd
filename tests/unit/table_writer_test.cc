// TableWriter against a real SQLite database through unixODBC and the SQLite ODBC driver.
#include "agent/table_writer.h"

#include <doctest/doctest.h>

#include "common/odbc.h"
#include "test_util.h"

namespace dx::agent {
namespace {

using testing::SqliteConnection;
using testing::TempDir;

TableBegin Begin(bool reset = false) {
  TableBegin b;
  b.subscription = "s1";
  b.run_id = 1;
  b.reset = reset;
  b.spec.table = "student";
  b.spec.columns = {{"id", ColumnType::kBigint, 0, 0, true, true},
                    {"name", ColumnType::kVarchar, 30, 0, true, false},
                    {"birth", ColumnType::kDate, 0, 0, false, false}};
  return b;
}

RowBatch Rows(std::initializer_list<std::tuple<const char*, const char*, const char*>> rows) {
  RowBatch b(3);
  for (const auto& [id, name, birth] : rows) {
    b.AddCell(id);
    b.AddCell(name);
    if (birth)
      b.AddCell(birth);
    else
      b.AddNull();
  }
  return b;
}

std::string Query(const std::string& conn, const std::string& sql) {
  auto c = OdbcConnection::Open(conn);
  REQUIRE(c.ok());
  auto v = (*c)->QueryScalar(sql);
  REQUIRE(v.ok());
  return v.value();
}

TEST_CASE("creates the table, upserts, and commits rows with the ledger") {
  TempDir dir;
  const std::string conn = SqliteConnection(dir.File("t.db"));
  auto w = TableWriter::Open(conn);
  REQUIRE(w.ok());
  auto ledger = (*w)->BeginTable(Begin());
  REQUIRE(ledger.ok());
  CHECK(ledger->batch_seq == 0);
  auto r1 =
      (*w)->ApplyBatch("s1", 1, "wm1", Rows({{"1", "张三", "2010-01-01"}, {"2", "李四", nullptr}}));
  REQUIRE(r1.ok());
  CHECK(r1->rows_written == 2);
  auto r2 = (*w)->ApplyBatch("s1", 2, "wm2",
                             Rows({{"2", "李四四", "2011-02-02"}, {"3", "王五", nullptr}}));
  REQUIRE(r2.ok());
  CHECK(Query(conn, "SELECT count(*) FROM student") == "3");
  CHECK(Query(conn, "SELECT name || birth FROM student WHERE id=2") == "李四四2011-02-02");
  CHECK(Query(conn, "SELECT batch_seq || ' ' || watermark FROM dx_ledger") == "2 wm2");

  SUBCASE("a re-sent batch is recognised and skipped") {
    auto again = (*w)->ApplyBatch("s1", 2, "wm2", Rows({{"9", "重复", nullptr}}));
    REQUIRE(again.ok());
    CHECK(again->duplicate);
    CHECK(Query(conn, "SELECT count(*) FROM student WHERE id=9") == "0");
  }
  SUBCASE("a gap in the sequence is refused") {
    auto gap = (*w)->ApplyBatch("s1", 4, "wm4", Rows({{"9", "跳号", nullptr}}));
    CHECK(gap.status().code() == StatusCode::kDataLoss);
  }
  SUBCASE("a failing batch leaves neither rows nor ledger behind") {
    // A NULL name violates NOT NULL: the whole batch is refused.
    RowBatch with_null(3);
    with_null.AddCell("10");
    with_null.AddCell("好");
    with_null.AddNull();
    with_null.AddCell("11");
    with_null.AddNull();
    with_null.AddNull();
    auto refused = (*w)->ApplyBatch("s1", 3, "wm3", with_null);
    CHECK_FALSE(refused.ok());
    CHECK(Query(conn, "SELECT count(*) FROM student WHERE id >= 10") == "0");
    CHECK(Query(conn, "SELECT batch_seq FROM dx_ledger") == "2");
    // The same sequence number applies once the data is fixed.
    CHECK((*w)->ApplyBatch("s1", 3, "wm3", Rows({{"10", "好", nullptr}})).ok());
  }
  SUBCASE("the ledger survives a restart") {
    w.value().reset();
    auto reopened = TableWriter::Open(conn);
    REQUIRE(reopened.ok());
    REQUIRE((*reopened)->Ledger().size() == 1);
    CHECK((*reopened)->Ledger()[0].batch_seq == 2);
  }
}

TEST_CASE("a key repeated within one batch is written once with its last values") {
  RowBatch b(2);
  for (auto [k, v] : {std::pair{"1", "a"}, {"2", "b"}, {"1", "c"}, {"3", "d"}, {"2", "e"}}) {
    b.AddCell(k);
    b.AddCell(v);
  }
  auto order = CollapseRepeatedKeys(b, {0});
  REQUIRE(order.size() == 3);
  CHECK(b.Cell(order[0], 1) == "c");
  CHECK(b.Cell(order[1], 1) == "d");
  CHECK(b.Cell(order[2], 1) == "e");
}

TEST_CASE("a target table that conflicts with the catalog is refused and left untouched") {
  TempDir dir;
  const std::string conn = SqliteConnection(dir.File("t.db"));
  {
    auto c = OdbcConnection::Open(conn);
    REQUIRE(c.ok());
    REQUIRE((*c)->Execute("CREATE TABLE student (id INTEGER PRIMARY KEY, name INTEGER)").ok());
    REQUIRE((*c)->Execute("INSERT INTO student VALUES (1, 5)").ok());
  }
  auto w = TableWriter::Open(conn);
  REQUIRE(w.ok());
  auto ready = (*w)->BeginTable(Begin());
  REQUIRE_FALSE(ready.ok());
  CHECK(ready.status().code() == StatusCode::kFailedPrecondition);
  CHECK(ready.status().message().find("'name'") != std::string::npos);
  CHECK(Query(conn, "SELECT count(*) || '/' || name FROM student") == "1/5");
  CHECK((*w)->ApplyBatch("s1", 1, "w", Rows({{"2", "x", nullptr}})).status().code() ==
        StatusCode::kFailedPrecondition);
}

TEST_CASE("resync clears the table and the watermark but keeps the sequence") {
  TempDir dir;
  const std::string conn = SqliteConnection(dir.File("t.db"));
  auto w = TableWriter::Open(conn);
  REQUIRE(w.ok());
  REQUIRE((*w)->BeginTable(Begin()).ok());
  REQUIRE((*w)->ApplyBatch("s1", 1, "wm1", Rows({{"1", "张三", nullptr}})).ok());
  auto reset = (*w)->BeginTable(Begin(true));
  REQUIRE(reset.ok());
  CHECK(reset->batch_seq == 1);
  CHECK(reset->watermark.empty());
  CHECK(Query(conn, "SELECT count(*) FROM student") == "0");
  REQUIRE((*w)->ApplyBatch("s1", 2, "wm2", Rows({{"2", "李四", nullptr}})).ok());
}

}  // namespace
}  // namespace dx::agent

namespace dx {
namespace {

TEST_CASE("ODBC failures are classified by what the caller does next") {
  struct Case {
    const char* state;
    const char* message;
    StatusCode code;
  };
  const Case cases[] = {
      {"08001", "could not connect to server", StatusCode::kUnavailable},
      {"08S01", "communication link failure", StatusCode::kUnavailable},
      {"HYT00", "timeout expired", StatusCode::kUnavailable},
      {"HY000", "database is locked", StatusCode::kUnavailable},
      {"40P01", "deadlock detected", StatusCode::kUnavailable},
      {"HY000", "CHECK constraint failed: name", StatusCode::kInvalidArgument},
      {"HY000", "NOT NULL constraint failed: student.name", StatusCode::kInvalidArgument},
      {"23505", "duplicate key value violates unique constraint", StatusCode::kInvalidArgument},
      {"22001", "value too long for type character varying(30)", StatusCode::kInvalidArgument},
      {"42P01", "relation does not exist", StatusCode::kInvalidArgument},
  };
  for (const Case& c : cases) {
    CAPTURE(c.message);
    CHECK(CodeForSqlState(c.state, c.message) == c.code);
  }
}

}  // namespace
}  // namespace dx
