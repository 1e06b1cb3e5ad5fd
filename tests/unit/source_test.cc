// The source side: name resolution and type checks against what drivers really report,
// SourceText's UTF-8 guard and conversions, the retry policy, resync ids through the store and
// the agent's TableWriter, and apply-time checks against a real SQLite source.
#include <doctest/doctest.h>

#include <ctime>

#include "agent/table_writer.h"
#include "common/odbc.h"
#include "common/protocol.h"
#include "common/watermark.h"
#include "scheduler/manifest.h"
#include "scheduler/retry_policy.h"
#include "scheduler/source_schema.h"
#include "scheduler/source_text.h"
#include "scheduler/sqlite_store.h"
#include "test_util.h"

namespace dx::scheduler {
namespace {

using testing::SqliteConnection;
using testing::TempDir;

ColumnSpec Want(const std::string& type) {
  ColumnSpec c = ParseColumnType(type).value();
  c.name = "c";
  return c;
}

TEST_CASE("source names resolve exactly, else by the one case-insensitive match") {
  const std::vector<std::string> names = {"student", "xs_jbxx", "Xs_Jbxx", "Teacher"};
  CHECK(ResolveName(names, "student", "table").value() == 0);
  CHECK(ResolveName(names, "STUDENT", "table").value() == 0);
  CHECK(ResolveName(names, "teacher", "table").value() == 3);
  CHECK(ResolveName(names, "xs_jbxx", "table").value() == 1);  // exact beats case-folded
  auto ambiguous = ResolveName(names, "XS_JBXX", "table");
  CHECK(ambiguous.status().code() == StatusCode::kFailedPrecondition);
  CHECK(ambiguous.status().message().find("'xs_jbxx' and 'Xs_Jbxx'") != std::string::npos);
  CHECK(ResolveName(names, "nosuch", "table").status().code() == StatusCode::kNotFound);
}

TEST_CASE("source column types are checked by what each driver reports") {
  // data_type, type_name and size as sqliteodbc, psqlODBC and MariaDB ODBC report them.
  struct Case {
    const char* want;
    SourceColumn have;
    Dbms dbms;
    bool fits;
  };
  const Case cases[] = {
      // SQLite (sqliteodbc): declared types; DECIMAL comes as VARCHAR with the declaration.
      {"varchar(30)", {"c", 12, "VARCHAR(30)", 30, 10, ""}, Dbms::kSqlite, true},
      {"varchar(30)", {"c", 12, "VARCHAR(60)", 60, 10, ""}, Dbms::kSqlite, false},
      {"varchar(30)", {"c", -1, "TEXT", 0, 10, ""}, Dbms::kSqlite, false},
      {"text", {"c", -1, "TEXT", 0, 10, ""}, Dbms::kSqlite, true},
      {"char(18)", {"c", 12, "CHAR(18)", 18, 10, ""}, Dbms::kSqlite, true},
      {"decimal(5,1)", {"c", 12, "DECIMAL(5,1)", 1, 10, ""}, Dbms::kSqlite, true},
      {"decimal(5,1)", {"c", 12, "DECIMAL(7,2)", 2, 10, ""}, Dbms::kSqlite, false},
      {"int", {"c", 4, "INT", 9, 10, ""}, Dbms::kSqlite, true},
      {"int", {"c", -5, "BIGINT", 19, 10, ""}, Dbms::kSqlite, false},
      {"bigint", {"c", 4, "INTEGER", 9, 10, ""}, Dbms::kSqlite, true},
      {"date", {"c", 91, "DATE", 0, 10, ""}, Dbms::kSqlite, true},
      {"datetime", {"c", 93, "DATETIME", 3, 10, ""}, Dbms::kSqlite, true},
      {"datetime", {"c", -1, "TEXT", 0, 10, ""}, Dbms::kSqlite, true},
      // PostgreSQL (psqlODBC).
      {"int", {"c", 4, "int4", 10, 0, ""}, Dbms::kPostgres, true},
      {"int", {"c", -5, "int8", 19, 0, ""}, Dbms::kPostgres, false},
      {"int", {"c", 5, "int2", 5, 0, ""}, Dbms::kPostgres, true},
      {"varchar(30)", {"c", 12, "varchar", 30, -1, ""}, Dbms::kPostgres, true},
      {"varchar(30)", {"c", 12, "varchar", 60, -1, ""}, Dbms::kPostgres, false},
      {"char(18)", {"c", 1, "bpchar", 18, -1, ""}, Dbms::kPostgres, true},
      {"varchar(30)", {"c", -1, "text", 8190, -1, ""}, Dbms::kPostgres, false},
      {"decimal(5,1)", {"c", 2, "numeric", 5, 1, ""}, Dbms::kPostgres, true},
      {"decimal(5,1)", {"c", 2, "numeric", 6, 1, ""}, Dbms::kPostgres, false},
      {"decimal(5,1)", {"c", 2, "numeric", 5, 2, ""}, Dbms::kPostgres, false},
      {"decimal(12,2)", {"c", 4, "int4", 10, 0, ""}, Dbms::kPostgres, true},
      {"datetime", {"c", 93, "timestamp", 26, 6, ""}, Dbms::kPostgres, true},
      {"date", {"c", 93, "timestamp", 26, 6, ""}, Dbms::kPostgres, false},
      {"datetime", {"c", 12, "varchar", 19, -1, ""}, Dbms::kPostgres, false},
      {"varchar(10)", {"c", 4, "int4", 10, 0, ""}, Dbms::kPostgres, false},
      // MariaDB (Unicode driver): wide types; TEXT has no usable character length.
      {"varchar(30)", {"c", -9, "VARCHAR", 30, -1, "gbk"}, Dbms::kMysql, true},
      {"varchar(30)", {"c", -10, "TEXT", 65535, -1, ""}, Dbms::kMysql, false},
      {"int", {"c", -6, "TINYINT", 3, 0, ""}, Dbms::kMysql, true},
      {"datetime", {"c", 93, "DATETIME", 19, -1, ""}, Dbms::kMysql, true},
      {"decimal(5,1)", {"c", 3, "DECIMAL", 5, 1, ""}, Dbms::kMysql, true},
      // A type DX cannot judge is left to the target (e.g. uuid).
      {"varchar(36)", {"c", -11, "uuid", 37, -1, ""}, Dbms::kPostgres, true},
  };
  for (const Case& c : cases) {
    CAPTURE(c.want);
    CAPTURE(c.have.type_name);
    CAPTURE(c.have.size);
    Status st = CheckColumnType(Want(c.want), c.have, c.dbms, false);
    CHECK(st.ok() == c.fits);
    if (!st.ok())
      CHECK(st.message().find("the catalog says " + ColumnTypeName(Want(c.want))) !=
            std::string::npos);
  }
}

TEST_CASE("UPDATETIME must be a date-time the watermark can be compared with") {
  const ColumnSpec ut = Want("datetime");
  CHECK(CheckColumnType(ut, {"u", 93, "timestamp", 26, 6, ""}, Dbms::kPostgres, true).ok());
  CHECK(CheckColumnType(ut, {"u", -1, "TEXT", 0, 10, ""}, Dbms::kSqlite, true).ok());
  Status epoch = CheckColumnType(ut, {"u", 4, "INTEGER", 9, 10, ""}, Dbms::kSqlite, true);
  CHECK(epoch.message().find("cannot be compared") != std::string::npos);
  Status date = CheckColumnType(ut, {"u", 91, "date", 10, -1, ""}, Dbms::kPostgres, true);
  CHECK(date.message().find("within one day") != std::string::npos);
  CHECK_FALSE(CheckColumnType(ut, {"u", 12, "varchar", 19, -1, ""}, Dbms::kPostgres, true).ok());
}

CatalogEntry StudentEntry() {
  CatalogEntry e;
  e.name = "教委-学生";
  e.source = "src";
  e.source_table = "XS_JBXX";
  e.updatetime_column = "updatetime";
  for (const char* spec : {"id bigint", "name varchar(30)", "updatetime datetime"}) {
    std::string s = spec;
    Field f;
    f.column = ParseColumnType(s.substr(s.find(' ') + 1)).value();
    f.column.name = s.substr(0, s.find(' '));
    f.column.primary_key = f.column.name == "id";
    e.fields.push_back(f);
  }
  return e;
}

TEST_CASE("a real SQLite source: names by the catalog functions, '_' is not a wildcard") {
  TempDir dir;
  const std::string conn = SqliteConnection(dir.File("src.db"));
  auto c = OdbcConnection::Open(conn);
  REQUIRE(c.ok());
  // A table whose name matches the pattern XS_JBXX only because '_' matches any character.
  REQUIRE((*c)->Execute("CREATE TABLE xsajbxx (other INT)").ok());
  REQUIRE((*c)->Execute("CREATE TABLE xs_jbxx (id BIGINT PRIMARY KEY, name VARCHAR(30), "
                        "updatetime DATETIME NOT NULL)")
              .ok());
  auto resolved = CheckEntryAgainstSource(**c, Dbms::kSqlite, StudentEntry(), {});
  REQUIRE(resolved.ok());
  CHECK(resolved->table == "xs_jbxx");
  CHECK(resolved->Column("name") == "name");
  CHECK(resolved->columns.size() == 3);

  REQUIRE((*c)->Execute("ALTER TABLE xs_jbxx RENAME COLUMN name TO xm").ok());
  auto drifted = CheckEntryAgainstSource(**c, Dbms::kSqlite, StudentEntry(), {"id", "name"});
  CHECK(drifted.status().code() == StatusCode::kFailedPrecondition);
  CHECK(drifted.status().message() ==
        "catalog entry '教委-学生': source table 'xs_jbxx' has no column 'name' (it has: id, xm, "
        "updatetime)");
  // A subscription that does not read the renamed column is not stopped by it.
  CHECK(CheckEntryAgainstSource(**c, Dbms::kSqlite, StudentEntry(), {"id", "updatetime"}).ok());
}

TEST_CASE("the retry policy: permanent failures stop, transient ones back off") {
  CHECK(IsPermanentFailure(StatusCode::kFailedPrecondition));
  CHECK(IsPermanentFailure(StatusCode::kInvalidArgument));
  CHECK(IsPermanentFailure(StatusCode::kNotFound));
  CHECK(IsPermanentFailure(StatusCode::kPermissionDenied));
  CHECK_FALSE(IsPermanentFailure(StatusCode::kUnavailable));
  CHECK_FALSE(IsPermanentFailure(StatusCode::kDataLoss));
  CHECK_FALSE(IsPermanentFailure(StatusCode::kInternal));
  CHECK(RetryDelaySeconds(1, 1, 60) == 1);
  CHECK(RetryDelaySeconds(2, 1, 60) == 2);
  CHECK(RetryDelaySeconds(5, 1, 60) == 16);
  CHECK(RetryDelaySeconds(30, 1, 60) == 60);
  CHECK(RetryDelaySeconds(3, 5, 12) == 12);
  CHECK(FailuresAfter(0, false) == 1);
  CHECK(FailuresAfter(6, false) == 7);
  CHECK(FailuresAfter(6, true) == 1);  // progress starts the back-off over
  CHECK(FailuresAfter(30, false) == 30);
}

TEST_CASE("UTF-8 is checked strictly") {
  struct Case {
    std::string text;
    bool valid;
  };
  const Case cases[] = {{"", true},
                        {"plain ASCII, long enough for the fast path", true},
                        {"王小明", true},
                        {"𠮷野家", true},
                        {"\xcd\xf5", false},          // GBK 王
                        {"\xc0\xaf", false},          // overlong '/'
                        {"\xed\xa0\x80", false},      // a surrogate
                        {"\xf4\x90\x80\x80", false},  // past U+10FFFF
                        {"abc\xe7\x8e", false},       // cut short
                        {"\xff", false}};
  for (const Case& c : cases) {
    CAPTURE(c.text);
    CHECK(IsValidUtf8(c.text) == c.valid);
  }
  size_t bad = 0;
  CHECK_FALSE(IsValidUtf8("0123456789\xff", &bad));
  CHECK(bad == 10);
}

TextSpec Text(const std::string& encoding) {
  TextSpec t;
  t.dbms = Dbms::kSqlite;
  t.source_table = "xs";
  t.columns = {{"id", ColumnType::kBigint, 0, 0, true, true},
               {"code", ColumnType::kVarchar, 10, 0, true, true},
               {"name", ColumnType::kVarchar, 30, 0, false, false}};
  t.encoding = encoding;
  return t;
}

TEST_CASE("text leaves as UTF-8: converted from the source's encoding, or refused by key") {
  auto plain = SourceText::Make(Text(""));
  REQUIRE(plain.ok());
  RowBatch ok(3);
  for (const char* v : {"1", "A1", "王小明"}) ok.AddCell(v);
  ok.AddNull();
  ok.AddNull();
  ok.AddNull();
  CHECK((*plain)->Normalize(&ok).ok());

  RowBatch gbk(3);
  for (const char* v : {"7", "A7", "\xcd\xf5"}) gbk.AddCell(v);
  Status st = (*plain)->Normalize(&gbk);
  CHECK(st.code() == StatusCode::kInvalidArgument);
  CHECK(st.message() ==
        "source table 'xs': column 'name' of the row with key id=7, code=A7 is not valid UTF-8 "
        "(byte 0xCD at offset 0); if the source holds another encoding, set the source's "
        "encoding (e.g. encoding: gbk)");

  auto gb = SourceText::Make(Text("gb18030"));
  REQUIRE(gb.ok());
  RowBatch rows(3);
  for (const char* v : {"1", "A1", "\xcd\xf5\x95\x34\xb2\x35"}) rows.AddCell(v);  // 王𠮷
  for (const char* v : {"2", "A2", "ASCII"}) rows.AddCell(v);
  REQUIRE((*gb)->Normalize(&rows).ok());
  CHECK(rows.Cell(0, 2) == "王𠮷");
  CHECK(rows.Cell(1, 2) == "ASCII");
  CHECK(rows.Cell(1, 1) == "A2");

  RowBatch bad(3);
  for (const char* v : {"3", "A3", "\x81\x20"}) bad.AddCell(v);
  CHECK((*gb)->Normalize(&bad).message().find("is not valid gb18030 (byte 0x81 at offset 0)") !=
        std::string::npos);
  RowBatch key(3);
  for (const char* v : {"4", "\xcd\xf5", "x"}) key.AddCell(v);
  CHECK((*gb)->Normalize(&key).message().find("is a key that is not plain ASCII") !=
        std::string::npos);

  CHECK(SourceText::Make(Text("no-such-encoding")).status().code() == StatusCode::kInvalidArgument);
  CHECK_FALSE(CheckSourceEncoding("utf-16").ok());  // not ASCII-compatible
  CHECK(CheckSourceEncoding("gbk").ok());
}

TEST_CASE("a resync's id survives in the watermark") {
  Watermark reset;
  reset.resync = "9f3a";
  CHECK(reset.empty());
  CHECK(reset.Encode() == R"({"key":[],"resync":"9f3a"})");
  auto back = Watermark::Decode(reset.Encode());
  REQUIRE(back.ok());
  CHECK(back->empty());
  CHECK(back->resync == "9f3a");
  Watermark loading{"2026-06-01 00:00:00", "", {"42"}, "9f3a"};
  CHECK(Watermark::Decode(loading.Encode()).value() == loading);
  CHECK_FALSE(Watermark::Decode(R"({"key":["1"],"resync":"x"})").ok());
}

TEST_CASE("TableBegin carries the resync id; one without it (an older scheduler) decodes") {
  TableBegin begin;
  begin.subscription = "s1";
  begin.reset = true;
  begin.reset_id = "9f3a";
  begin.spec.table = "student";
  begin.spec.columns = {{"id", ColumnType::kBigint, 0, 0, true, true}};
  TableBegin back;
  REQUIRE(Decode(Encode(begin), &back).ok());
  CHECK(back.reset_id == "9f3a");
  std::string older = Encode(begin);
  older.resize(older.size() - 5);  // varint length 4 + "9f3a"
  REQUIRE(Decode(older, &back).ok());
  CHECK(back.reset_id.empty());
  CHECK(back.reset);
}

TEST_CASE("the store keeps stops and resync ids; a newer resync request is not cleared") {
  TempDir dir;
  {
    auto store = SqliteStore::Open(dir.File("s.db"));
    REQUIRE(store.ok());
    Subscription s;
    s.name = "s1";
    s.agent = "a";
    s.entry = "e";
    REQUIRE((*store)->PutSubscriptionDefinition(s).ok());
    REQUIRE((*store)->SetStopped("s1", "column 'name' is gone", 100).ok());
    REQUIRE((*store)->RequestResync("s1", true).ok());
  }
  auto store = SqliteStore::Open(dir.File("s.db"));  // migrations are idempotent
  REQUIRE(store.ok());
  Subscription s = (*store)->GetSubscription("s1").value().value();
  CHECK(s.stopped());
  CHECK(s.stopped_error == "column 'name' is gone");
  CHECK(s.resync_pending);
  CHECK(s.manual_pending);
  CHECK(s.resync_id.size() == 16);
  const std::string first = s.resync_id;
  REQUIRE((*store)->RequestResync("s1", false).ok());
  const std::string second = (*store)->GetSubscription("s1").value()->resync_id;
  CHECK(second != first);
  REQUIRE((*store)->FinishResync("s1", first).ok());  // an older request's reload finished
  CHECK((*store)->GetSubscription("s1").value()->resync_pending);
  REQUIRE((*store)->FinishResync("s1", second).ok());
  CHECK_FALSE((*store)->GetSubscription("s1").value()->resync_pending);
  REQUIRE((*store)->SetStopped("s1", "", 0).ok());
  CHECK_FALSE((*store)->GetSubscription("s1").value()->stopped());
  REQUIRE((*store)->SetCaughtUp("s1", 2000).ok());
  REQUIRE((*store)->SetCaughtUp("s1", 1000).ok());  // never goes back
  CHECK((*store)->GetSubscription("s1").value()->caught_up_ms == 2000);
}

std::string Manifest(const std::string& source_conn, const std::string& table,
                     const std::string& name_type, const std::string& schedule) {
  return "kind: Source\nname: src\nconnection: \"" + source_conn +
         "\"\n---\nkind: CatalogEntry\nname: 教委-学生\nprovider: 教委\nsummary: 学生\n"
         "share_type: authorised\ntopic: student\nsource: src\nsource_table: " +
         table +
         "\nupdatetime_column: updatetime\nfields:\n"
         "  - {item: 编号, column: id, type: bigint, primary_key: true}\n"
         "  - {item: 姓名, column: name, type: " +
         name_type +
         "}\n"
         "  - {item: 更新时间, column: updatetime, type: datetime, not_null: true}\n"
         "---\nkind: Agent\nname: school\nsecret: school-secret-123\n"
         "---\nkind: Subscription\nname: s1\nagent: school\nentry: 教委-学生\n"
         "columns: [id, name]\ntarget_table: student\nschedule: " +
         schedule + "\n";
}

TEST_CASE("apply checks entries against the real source and refuses as a whole") {
  TempDir dir;
  const std::string src = SqliteConnection(dir.File("src.db"));
  {
    auto c = OdbcConnection::Open(src);
    REQUIRE(c.ok());
    REQUIRE((*c)->Execute("CREATE TABLE student (id BIGINT PRIMARY KEY, name VARCHAR(30), "
                          "updatetime DATETIME NOT NULL)")
                .ok());
  }
  auto store = SqliteStore::Open(dir.File("s.db"));
  REQUIRE(store.ok());
  OdbcSourceReader reader;
  auto typo =
      ApplyManifest(**store, Manifest(src, "studnet", "varchar(30)", "manual"), "m.yaml", &reader);
  CHECK(typo.status().message() ==
        "m.yaml:12: key 'source_table': source 'src': table 'studnet' does not exist at the "
        "source");
  CHECK((*store)->ListCatalogEntries().value().empty());
  CHECK((*store)->ListSources().value().empty());
  auto narrow =
      ApplyManifest(**store, Manifest(src, "student", "varchar(20)", "manual"), "m.yaml", &reader);
  CHECK(narrow.status().message().find("column 'name' of source table 'student' is VARCHAR(30) "
                                       "at the source, the catalog says varchar(20)") !=
        std::string::npos);
  auto never = ApplyManifest(**store, Manifest(src, "student", "varchar(30)", "cron 0 0 31 2 *"),
                             "m.yaml", &reader);
  CHECK(never.status().message().find("never fires") != std::string::npos);
  CHECK((*store)->ListSubscriptions().value().empty());

  auto good =
      ApplyManifest(**store, Manifest(src, "student", "varchar(30)", "manual"), "m.yaml", &reader);
  REQUIRE(good.ok());
  // A stopped subscription is resumed by an apply that concerns it.
  REQUIRE((*store)->SetStopped("s1", "column 'name' is gone", 1).ok());
  auto again =
      ApplyManifest(**store, Manifest(src, "student", "varchar(30)", "manual"), "m.yaml", &reader);
  REQUIRE(again.ok());
  CHECK(again->back().kind == "Subscription");
  CHECK(again->back().note == "resumed (was stopped: column 'name' is gone)");
  CHECK_FALSE((*store)->GetSubscription("s1").value()->stopped());

  // An unreachable source is applied with a note.
  const std::string down =
      "Driver=PostgreSQL Unicode;Server=127.0.0.1;Port=1;Database=x;Uid=x;Pwd=x";
  auto unchecked =
      ApplyManifest(**store, Manifest(down, "student", "varchar(30)", "manual"), "m.yaml", &reader);
  REQUIRE(unchecked.ok());
  CHECK(unchecked->at(1).note.find("not checked: source 'src' is unreachable") == 0);
}

}  // namespace
}  // namespace dx::scheduler

namespace dx::agent {
namespace {

using testing::SqliteConnection;
using testing::TempDir;

TEST_CASE("the agent clears a table once per resync id and resumes the load after") {
  TempDir dir;
  const std::string conn = SqliteConnection(dir.File("t.db"));
  auto w = TableWriter::Open(conn);
  REQUIRE(w.ok());
  TableBegin begin;
  begin.subscription = "s1";
  begin.spec.table = "student";
  begin.spec.columns = {{"id", ColumnType::kBigint, 0, 0, true, true},
                        {"name", ColumnType::kVarchar, 30, 0, true, false}};
  REQUIRE((*w)->BeginTable(begin).ok());
  RowBatch rows(2);
  for (const char* v : {"1", "张三", "2", "李四"}) rows.AddCell(v);
  REQUIRE((*w)->ApplyBatch("s1", 1, "", rows).ok());

  begin.reset = true;
  begin.reset_id = "r1";
  auto cleared = (*w)->BeginTable(begin);
  REQUIRE(cleared.ok());
  CHECK(Watermark::Decode(cleared->ledger.watermark).value().resync == "r1");
  RowBatch first(2);
  for (const char* v : {"1", "张三"}) first.AddCell(v);
  Watermark loading{"2026-06-01 00:00:00", "", {"1"}, "r1"};
  REQUIRE((*w)->ApplyBatch("s1", 2, loading.Encode(), first).ok());

  // The same request again (a crash in between): nothing is cleared, the load resumes.
  auto resumed = (*w)->BeginTable(begin);
  REQUIRE(resumed.ok());
  CHECK(resumed->ledger.batch_seq == 2);
  CHECK(resumed->ledger.watermark == loading.Encode());
  auto c = OdbcConnection::Open(conn);
  REQUIRE(c.ok());
  CHECK((*c)->QueryScalar("SELECT count(*) FROM student").value() == "1");

  // A new request clears again.
  begin.reset_id = "r2";
  auto again = (*w)->BeginTable(begin);
  REQUIRE(again.ok());
  CHECK(Watermark::Decode(again->ledger.watermark).value().resync == "r2");
  CHECK((*c)->QueryScalar("SELECT count(*) FROM student").value() == "0");
}

}  // namespace
}  // namespace dx::agent
