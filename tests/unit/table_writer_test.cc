// TableWriter against a real SQLite database through unixODBC and the SQLite ODBC driver.
#include "agent/table_writer.h"

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <chrono>
#include <thread>
#include <tuple>

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
  CHECK(ledger->ledger.batch_seq == 0);
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

TEST_CASE("repeated keys collapse by whole cells, in batches of any size") {
  // Two key columns: ("1", "23") and ("12", "3") are different keys.
  RowBatch b(3);
  for (auto [k1, k2, v] : {std::tuple{"1", "23", "a"}, {"12", "3", "b"}, {"1", "23", "c"}}) {
    b.AddCell(k1);
    b.AddCell(k2);
    b.AddCell(v);
  }
  auto order = CollapseRepeatedKeys(b, {0, 1});
  REQUIRE(order.size() == 2);
  CHECK(b.Cell(order[0], 2) == "b");
  CHECK(b.Cell(order[1], 2) == "c");
  // 20,000 rows, every key three times: each key once, at its last row, in row order.
  RowBatch big(2);
  for (int pass = 0; pass < 3; ++pass) {
    for (int k = 0; k < 20000; ++k) {
      big.AddCell(std::to_string(k));
      big.AddCell(std::to_string(pass));
    }
  }
  order = CollapseRepeatedKeys(big, {0});
  REQUIRE(order.size() == 20000);
  bool last_rows = true;
  for (size_t i = 0; i < order.size(); ++i) last_rows = last_rows && order[i] == 40000 + i;
  CHECK(last_rows);
  CHECK(CollapseRepeatedKeys(RowBatch(2), {0}).empty());
}

TEST_CASE("a target table that conflicts with the catalog is refused and left untouched") {
  TempDir dir;
  const std::string conn = SqliteConnection(dir.File("t.db"));
  auto w = TableWriter::Open(conn);
  REQUIRE(w.ok());
  REQUIRE((*w)->BeginTable(Begin()).ok());
  REQUIRE((*w)->ApplyBatch("s1", 1, "wm1", Rows({{"1", "张三", nullptr}})).ok());
  // The catalog changes the type of 'name'; the table the agent created cannot take it.
  TableBegin changed = Begin();
  changed.spec.columns[1] = {"name", ColumnType::kInteger, 0, 0, true, false};
  auto ready = (*w)->BeginTable(changed);
  REQUIRE_FALSE(ready.ok());
  CHECK(ready.status().code() == StatusCode::kFailedPrecondition);
  CHECK(ready.status().message().find("column 'name' is VARCHAR(30), the catalog says int") !=
        std::string::npos);
  CHECK(Query(conn, "SELECT count(*) || '/' || name FROM student") == "1/张三");
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
  CHECK(reset->ledger.batch_seq == 1);
  CHECK(reset->ledger.watermark.empty());
  CHECK(Query(conn, "SELECT count(*) FROM student") == "0");
  REQUIRE((*w)->ApplyBatch("s1", 2, "wm2", Rows({{"2", "李四", nullptr}})).ok());
}

// ---- Issue 6: defects on the target side (each test failed before its fix) ----

// Watermarks as the scheduler sends them: during the full load, and after it.
constexpr char kLoading[] = R"({"full_load_until":"2026-01-01 00:00:00","key":["2"]})";
constexpr char kDone[] = R"({"after":"2026-01-01 00:00:00","key":[]})";

// Runs one statement on its own connection (autocommit), as a consumer program would.
void Exec(const std::string& conn, const std::string& sql) {
  auto c = OdbcConnection::Open(conn);
  REQUIRE(c.ok());
  Status st = (*c)->Execute(sql);
  INFO(st.message());
  REQUIRE(st.ok());
}

TEST_CASE("a target table the consumer dropped or emptied is reloaded from scratch") {
  TempDir dir;
  const std::string conn = SqliteConnection(dir.File("t.db"));
  auto w = TableWriter::Open(conn);
  REQUIRE(w.ok());
  REQUIRE((*w)->BeginTable(Begin()).ok());
  REQUIRE(
      (*w)->ApplyBatch("s1", 1, kLoading, Rows({{"1", "张三", nullptr}, {"2", "李四", nullptr}}))
          .ok());
  REQUIRE((*w)->ApplyBatch("s1", 2, kDone, Rows({})).ok());
  SUBCASE("dropped") { Exec(conn, "DROP TABLE student"); }
  SUBCASE("emptied") { Exec(conn, "DELETE FROM student"); }
  auto again = (*w)->BeginTable(Begin());
  REQUIRE(again.ok());
  CHECK(again->ledger.watermark.empty());  // the next run is a full load
  CHECK(again->ledger.batch_seq == 2);     // sequences are never reused
  CHECK(again->reloaded);
  CHECK_FALSE(again->damaged);
  CHECK(again->note.find("target table student") != std::string::npos);
  CHECK(again->note.find("reloading from scratch") != std::string::npos);
  CHECK(Query(conn, "SELECT count(*) FROM student") == "0");
}

TEST_CASE("a target table cut short is kept and reported for a reconciliation to repair") {
  TempDir dir;
  const std::string conn = SqliteConnection(dir.File("t.db"));
  auto w = TableWriter::Open(conn);
  REQUIRE(w.ok());
  REQUIRE((*w)->BeginTable(Begin()).ok());
  REQUIRE(
      (*w)->ApplyBatch("s1", 1, kLoading, Rows({{"1", "张三", nullptr}, {"2", "李四", nullptr}}))
          .ok());
  REQUIRE((*w)->ApplyBatch("s1", 2, kDone, Rows({})).ok());
  Exec(conn, "DELETE FROM student WHERE id = 1");
  SUBCASE("a run reports it") {
    auto again = (*w)->BeginTable(Begin());
    REQUIRE(again.ok());
    CHECK(again->damaged);
    CHECK_FALSE(again->reloaded);
    CHECK(again->ledger.watermark == kDone);  // the position stays: nothing is reloaded
    CHECK(again->note.find("held 1 rows at the agent, fewer than the 2 delivered") !=
          std::string::npos);
    CHECK(Query(conn, "SELECT count(*) FROM student") == "1");
  }
  SUBCASE("the reconciliation itself is not told about it again") {
    auto again = (*w)->BeginTable(Begin(), /*for_repair=*/true);
    REQUIRE(again.ok());
    CHECK_FALSE(again->damaged);
    CHECK_FALSE(again->reloaded);
    CHECK(Query(conn, "SELECT count(*) FROM student") == "1");
  }
}

TEST_CASE("a table the consumer still holds in full is not reloaded") {
  TempDir dir;
  const std::string conn = SqliteConnection(dir.File("t.db"));
  auto w = TableWriter::Open(conn);
  REQUIRE(w.ok());
  REQUIRE((*w)->BeginTable(Begin()).ok());
  REQUIRE((*w)->ApplyBatch("s1", 1, kLoading, Rows({{"1", "张三", nullptr}})).ok());
  REQUIRE((*w)->ApplyBatch("s1", 2, kDone, Rows({})).ok());
  REQUIRE((*w)->ApplyBatch("s1", 3, kDone, Rows({{"1", "张三丰", nullptr}})).ok());
  Exec(conn, "INSERT INTO student VALUES (99, '本地', NULL)");  // more rows are no damage
  auto again = (*w)->BeginTable(Begin());
  REQUIRE(again.ok());
  CHECK(again->ledger.watermark == kDone);
  CHECK_FALSE(again->reloaded);
}

TEST_CASE("the agent refuses targets named like its own tables, in any case") {
  TempDir dir;
  const std::string conn = SqliteConnection(dir.File("t.db"));
  auto w = TableWriter::Open(conn);
  REQUIRE(w.ok());
  REQUIRE((*w)->BeginTable(Begin()).ok());
  REQUIRE((*w)->ApplyBatch("s1", 1, "wm1", Rows({{"1", "张三", nullptr}})).ok());
  for (const char* name : {"DX_LEDGER", "Dx_Ledger", "dx_files", "DX_FILES"}) {
    CAPTURE(name);
    TableBegin b = Begin(true);
    b.subscription = "evil";
    b.spec.table = name;
    auto ready = (*w)->BeginTable(b);
    REQUIRE_FALSE(ready.ok());
    CHECK(ready.status().code() == StatusCode::kInvalidArgument);
  }
  CHECK(Query(conn, "SELECT count(*) FROM dx_ledger WHERE subscription = 's1'") == "1");

  // A resync of a subscription whose target is spelt like the agent's file records, with
  // their very columns, must not clear them.
  REQUIRE((*w)->RecordFiles({{"files-a", "课件/第1课.txt", 5, std::string(64, 'a'), false}}).ok());
  TableBegin files = Begin(true);
  files.subscription = "evil";
  files.spec.table = "DX_FILES";
  files.spec.columns = {{"subscription", ColumnType::kVarchar, 150, 0, true, true},
                        {"path", ColumnType::kVarchar, 600, 0, true, true},
                        {"size", ColumnType::kBigint, 0, 0, true, false},
                        {"sha256", ColumnType::kChar, 64, 0, true, false},
                        {"received_at", ColumnType::kVarchar, 32, 0, true, false}};
  auto ready = (*w)->BeginTable(files);
  REQUIRE_FALSE(ready.ok());
  CHECK(ready.status().code() == StatusCode::kInvalidArgument);
  CHECK(Query(conn, "SELECT count(*) FROM dx_files") == "1");
}

TEST_CASE("a table DX did not create is refused untouched, also for a resync") {
  TempDir dir;
  const std::string conn = SqliteConnection(dir.File("t.db"));
  Exec(conn, "CREATE TABLE student (id INTEGER PRIMARY KEY, name VARCHAR(30), birth DATE)");
  Exec(conn, "INSERT INTO student VALUES (7, '原有', NULL)");
  auto w = TableWriter::Open(conn);
  REQUIRE(w.ok());
  for (bool reset : {false, true}) {
    CAPTURE(reset);
    auto ready = (*w)->BeginTable(Begin(reset));
    REQUIRE_FALSE(ready.ok());
    CHECK(ready.status().code() == StatusCode::kFailedPrecondition);
    CHECK(ready.status().message().find("not created by DX") != std::string::npos);
  }
  CHECK(Query(conn, "SELECT count(*) || name FROM student") == "1原有");
}

TEST_CASE("one subscription's refused statement does not stop the others") {
  TempDir dir;
  const std::string conn = SqliteConnection(dir.File("t.db"));
  auto w = TableWriter::Open(conn);
  REQUIRE(w.ok());
  TableBegin a = Begin();
  TableBegin b = Begin();
  b.subscription = "s2";
  b.spec.table = "student_b";
  REQUIRE((*w)->BeginTable(a).ok());
  REQUIRE((*w)->BeginTable(b).ok());
  // The consumer's own rule refuses some of s1's rows with an error no classifier knows.
  Exec(conn,
       "CREATE TRIGGER consumer_rule BEFORE INSERT ON student WHEN NEW.name = '坏' "
       "BEGIN SELECT RAISE(ABORT, 'consumer rule 42'); END");
  auto refused = (*w)->ApplyBatch("s1", 1, "wm1", Rows({{"1", "坏", nullptr}}));
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().message().find("consumer rule 42") != std::string::npos);
  auto other = (*w)->ApplyBatch("s2", 1, "wm1", Rows({{"1", "好", nullptr}}));
  INFO(other.status().message());
  CHECK(other.ok());
  CHECK(Query(conn, "SELECT count(*) FROM student_b") == "1");
}

TEST_CASE("decimal columns on SQLite pass the check on later runs and resyncs") {
  TempDir dir;
  const std::string conn = SqliteConnection(dir.File("t.db"));
  TableBegin b = Begin();
  b.spec.columns.push_back({"CJ", ColumnType::kDecimal, 5, 1, false, false});
  auto w = TableWriter::Open(conn);
  REQUIRE(w.ok());
  REQUIRE((*w)->BeginTable(b).ok());
  RowBatch rows(4);
  for (const char* v : {"1", "张三", "2010-01-01", "98.5"}) rows.AddCell(v);
  REQUIRE((*w)->ApplyBatch("s1", 1, "wm1", rows).ok());
  auto later = (*w)->BeginTable(b);
  INFO(later.status().message());
  CHECK(later.ok());
  b.reset = true;
  auto resync = (*w)->BeginTable(b);
  INFO(resync.status().message());
  CHECK(resync.ok());
}

TEST_CASE("another program writing the SQLite target does not stall the next batch") {
  TempDir dir;
  const std::string conn = SqliteConnection(dir.File("t.db"));
  auto w = TableWriter::Open(conn);
  REQUIRE(w.ok());
  REQUIRE((*w)->BeginTable(Begin()).ok());
  REQUIRE((*w)->ApplyBatch("s1", 1, "wm1", Rows({{"1", "张三", nullptr}})).ok());
  REQUIRE((*w)->BeginTable(Begin()).ok());  // a later run: the table is checked, not created
  // The consumer writes its own table in the same file (native SQLite, as its programs do).
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(dir.File("t.db").c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "CREATE TABLE mine (x INTEGER); INSERT INTO mine VALUES (1);", nullptr,
                       nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  auto start = std::chrono::steady_clock::now();
  auto applied = (*w)->ApplyBatch("s1", 2, "wm2", Rows({{"2", "李四", nullptr}}));
  auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - start)
                    .count();
  MESSAGE("the batch after the consumer's write took " << waited << " ms");
  INFO(applied.status().message());
  CHECK(applied.ok());
  CHECK(Query(conn, "SELECT count(*) FROM student") == "2");
}

TEST_CASE("a lock another program holds for a while is waited out, not failed") {
  TempDir dir;
  const std::string conn = SqliteConnection(dir.File("t.db"));
  TableWriterOptions options;
  options.lock_timeout_ms = 200;
  options.lock_retry_ms = 10000;
  auto w = TableWriter::Open(conn, options);
  REQUIRE(w.ok());
  REQUIRE((*w)->BeginTable(Begin()).ok());
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(dir.File("t.db").c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db,
                       "CREATE TABLE mine (x INTEGER); BEGIN IMMEDIATE; INSERT INTO mine "
                       "VALUES (1);",
                       nullptr, nullptr, nullptr) == SQLITE_OK);
  std::thread consumer([db] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // a slow consumer commit
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  });
  auto applied = (*w)->ApplyBatch("s1", 1, kLoading, Rows({{"1", "张三", nullptr}}));
  consumer.join();
  sqlite3_close(db);
  INFO(applied.status().message());
  CHECK(applied.ok());
  CHECK(Query(conn, "SELECT count(*) FROM student") == "1");
}

TEST_CASE("a lock held past the retry budget fails the batch as retryable, nothing written") {
  TempDir dir;
  const std::string conn = SqliteConnection(dir.File("t.db"));
  TableWriterOptions options;
  options.lock_timeout_ms = 100;
  options.lock_retry_ms = 400;
  auto w = TableWriter::Open(conn, options);
  REQUIRE(w.ok());
  REQUIRE((*w)->BeginTable(Begin()).ok());
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(dir.File("t.db").c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "BEGIN IMMEDIATE; CREATE TABLE mine (x INTEGER);", nullptr, nullptr,
                       nullptr) == SQLITE_OK);
  auto applied = (*w)->ApplyBatch("s1", 1, kLoading, Rows({{"1", "张三", nullptr}}));
  REQUIRE_FALSE(applied.ok());
  CHECK(IsRetryable(applied.status()));
  CHECK(applied.status().message().find("database is locked") != std::string::npos);
  sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  // Once the lock is gone the same batch applies: nothing of it was left behind.
  REQUIRE((*w)->ApplyBatch("s1", 1, kLoading, Rows({{"1", "张三", nullptr}})).ok());
  CHECK(Query(conn, "SELECT count(*) FROM student") == "1");
}

TEST_CASE("tables of subscriptions delivered by an older agent are adopted, others refused") {
  TempDir dir;
  const std::string conn = SqliteConnection(dir.File("t.db"));
  {
    auto w = TableWriter::Open(conn);
    REQUIRE(w.ok());
    REQUIRE((*w)->BeginTable(Begin()).ok());
    REQUIRE((*w)->ApplyBatch("s1", 1, kLoading, Rows({{"1", "张三", nullptr}})).ok());
    REQUIRE((*w)->ApplyBatch("s1", 2, kDone, Rows({})).ok());
  }
  // What an agent before dx_tables left behind: its ledger, no record of tables, no floor.
  Exec(conn, "DROP TABLE dx_tables");
  Exec(conn, "ALTER TABLE dx_ledger DROP COLUMN rows_floor");
  Exec(conn, "CREATE TABLE teacher (id INTEGER PRIMARY KEY, name VARCHAR(30), birth DATE)");
  auto w = TableWriter::Open(conn);
  REQUIRE(w.ok());
  auto adopted = (*w)->BeginTable(Begin());
  INFO(adopted.status().message());
  REQUIRE(adopted.ok());
  CHECK(adopted->ledger.watermark == kDone);
  CHECK_FALSE(adopted->reloaded);
  CHECK(Query(conn, "SELECT origin FROM dx_tables WHERE table_name = 'student'") == "adopted");
  CHECK(Query(conn, "SELECT rows_floor FROM dx_ledger") == "1");
  // A subscription the old agent never delivered does not get the consumer's table.
  TableBegin other = Begin();
  other.subscription = "s2";
  other.spec.table = "teacher";
  auto refused = (*w)->BeginTable(other);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().message().find("not created by DX") != std::string::npos);
  // And another subscription cannot take over s1's table either.
  other.spec.table = "student";
  refused = (*w)->BeginTable(other);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().message().find("belongs to subscription 's1'") != std::string::npos);
}

TEST_CASE("the target's name case applies to every name the agent creates and writes") {
  TempDir dir;
  const std::string conn = SqliteConnection(dir.File("t.db"));
  TableWriterOptions options;
  options.name_case = NameCase::kUpper;
  auto w = TableWriter::Open(conn, options);
  REQUIRE(w.ok());
  REQUIRE((*w)->BeginTable(Begin()).ok());
  REQUIRE((*w)->ApplyBatch("s1", 1, kLoading, Rows({{"1", "张三", "2010-01-01"}})).ok());
  CHECK(Query(conn, "SELECT sql FROM sqlite_master WHERE name = 'STUDENT'") ==
        "CREATE TABLE \"STUDENT\" (\"ID\" INTEGER NOT NULL, \"NAME\" VARCHAR(30) NOT NULL, "
        "\"BIRTH\" DATE, PRIMARY KEY (\"ID\"))");
  CHECK(Query(conn, "SELECT table_name FROM dx_tables") == "STUDENT");
  REQUIRE((*w)->TargetTable("s1") != nullptr);
  CHECK((*w)->TargetTable("s1")->columns[1].name == "NAME");
  // Columns that differ only in case cannot both exist in a folded target.
  TableBegin twice = Begin();
  twice.subscription = "s2";
  twice.spec.table = "other";
  twice.spec.columns.push_back({"Name", ColumnType::kText, 0, 0, false, false});
  CHECK((*w)->BeginTable(twice).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("awkward values and binary cells reach a SQLite target exactly") {
  TempDir dir;
  const std::string conn = SqliteConnection(dir.File("t.db"));
  TableBegin b = Begin();
  b.spec.columns = {{"id", ColumnType::kBigint, 0, 0, true, true},
                    {"txt", ColumnType::kText, 0, 0, false, false},
                    {"pad", ColumnType::kChar, 10, 0, false, false},
                    {"bin", ColumnType::kBlob, 0, 0, false, false},
                    {"vb", ColumnType::kVarbinary, 8, 0, false, false}};
  auto w = TableWriter::Open(conn);
  REQUIRE(w.ok());
  REQUIRE((*w)->BeginTable(b).ok());
  const std::string bytes("\x00\x01\xff'\"\\\t\n\x00", 9);
  const std::string text = "𠮷野家 😀👍🏽 '\"\\ \t\n\r end " + std::string(5000, 'x');
  RowBatch rows(5);
  for (std::string_view cell :
       {std::string_view("1"), std::string_view(text), std::string_view("ab  "),
        std::string_view(bytes), std::string_view("")}) {
    rows.AddCell(cell);
  }
  rows.AddCell("2");
  rows.AddCell("");  // empty, not NULL
  rows.AddNull();
  rows.AddNull();
  rows.AddCell(std::string_view("\x00", 1));
  // Text with a NUL inside travels with its length, the rest as terminated strings.
  rows.AddCell("3");
  rows.AddCell(std::string_view("a\x00b", 3));
  rows.AddNull();
  rows.AddNull();
  rows.AddNull();
  REQUIRE((*w)->ApplyBatch("s1", 1, kLoading, rows).ok());
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(dir.File("t.db").c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db,
                             "SELECT txt, typeof(txt), pad, bin, typeof(bin), vb, typeof(vb) "
                             "FROM student ORDER BY id",
                             -1, &st, nullptr) == SQLITE_OK);
  auto text_of = [&](int col) {
    const void* p = sqlite3_column_blob(st, col);
    return std::string(static_cast<const char*>(p ? p : ""),
                       static_cast<size_t>(sqlite3_column_bytes(st, col)));
  };
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  CHECK(text_of(0) == text);
  CHECK(text_of(2) == "ab  ");
  CHECK(text_of(3) == bytes);
  CHECK(text_of(4) == "blob");
  CHECK(text_of(5).empty());
  CHECK(text_of(6) == "blob");  // an empty binary value, not NULL
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  CHECK(text_of(0).empty());
  CHECK(text_of(1) == "text");  // the empty string, not NULL
  CHECK(text_of(4) == "null");
  CHECK(text_of(5) == std::string("\x00", 1));
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  CHECK(text_of(0) == std::string("a\x00b", 3));
  sqlite3_finalize(st);
  sqlite3_close(db);
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
