// Masking (脱敏): the keyed hash, partial masks on ASCII and UTF-8, dropped columns, the shape
// the agent receives, what cannot be masked, and a subscription read from a real SQLite source
// (the row filter runs on the raw values at the source; what leaves is masked).
#include "scheduler/masking.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include "common/odbc.h"
#include "scheduler/access/audit_key.h"
#include "scheduler/catalog/approval_scope.h"
#include "scheduler/scheduler_config.h"
#include "scheduler/secret.h"
#include "scheduler/subscription_reader.h"
#include "test_util.h"

namespace dx::scheduler {
namespace {

using dx::testing::SqliteConnection;
using dx::testing::TempDir;

TEST_CASE("the keyed hash is HMAC-SHA256: deterministic, and different under another key") {
  // RFC 4231, test case 2.
  CHECK(KeyedHash("Jefe").Hex("what do ya want for nothing?") ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // A key longer than a block is hashed first (RFC 4231, test case 6).
  CHECK(KeyedHash(std::string(131, '\xaa'))
            .Hex("Test Using Larger Than Block-Size Key - Hash Key First") ==
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  struct Case {
    std::string key;
    std::string value;
  };
  const Case cases[] = {{"k1", "310104200001011234"},
                        {"k1", "张三"},
                        {"k1", ""},
                        {"k2", "310104200001011234"},
                        {std::string(64, 'f'), "x"}};
  for (const Case& c : cases) {
    CAPTURE(c.value);
    KeyedHash h(c.key);
    const std::string once = h.Hex(c.value);
    CHECK(once.size() == static_cast<size_t>(kMaskedHashChars));
    CHECK(h.Hex(c.value) == once);  // the same value masks alike, every time
    CHECK(once == HmacSha256Hex(c.key, c.value));
    CHECK(KeyedHash(c.key + "x").Hex(c.value) != once);  // another key, another digest
  }
  CHECK(KeyedHash("k1").Hex("a") != KeyedHash("k1").Hex("b"));
  // One key per consumer organisation, derived from the master key.
  const std::string xuhui = MaskingKeyFor("master", "徐汇区教育局");
  CHECK(xuhui == MaskingKeyFor("master", "徐汇区教育局"));
  CHECK(xuhui != MaskingKeyFor("master", "浦东新区教育局"));
  CHECK(xuhui != MaskingKeyFor("master2", "徐汇区教育局"));
  CHECK(KeyedHash(xuhui).Hex("310104200001011234") !=
        KeyedHash(MaskingKeyFor("master", "浦东新区教育局")).Hex("310104200001011234"));
}

TEST_CASE("partial masks count characters, ASCII and UTF-8 alike, and always hide one") {
  struct Case {
    const char* value;
    int first;
    int last;
    const char* masked;
  };
  const Case cases[] = {
      {"310104200001011234", 3, 4, "310***********1234"},  // an ID number
      {"31010420000101123X", 6, 0, "310104************"},
      {"13812345678", 3, 4, "138****5678"},  // a phone number
      {"张三丰", 1, 1, "张*丰"},
      {"张三", 1, 1, "张*"},  // too short for both ends: the first shows, one hides
      {"张三", 0, 1, "*三"},
      {"欧阳娜娜", 1, 1, "欧**娜"},
      {"欧阳娜娜", 2, 0, "欧阳**"},
      {"张", 1, 0, "*"},  // one character is never shown
      {"张", 0, 1, "*"},
      {"", 3, 4, ""},
      {"ab", 3, 4, "a*"},
      {"上海市徐汇区某路100号", 6, 0, "上海市徐汇区******"},
      {"Zoë Müller", 2, 2, "Zo******er"},
      {"a😀b", 1, 1, "a*b"},  // four-byte characters count once
      {"\xff\xfe"
       "ab",
       1, 1, "\xff**b"},            // bytes that are not UTF-8: one character each
      {"\xe5\xbc", 1, 0, "\xe5*"},  // a cut-off character does not overrun
  };
  for (const Case& c : cases) {
    CAPTURE(c.value);
    CHECK(PartialMask(c.value, c.first, c.last) == c.masked);
  }
}

TableSpec Student() {
  TableSpec t;
  t.table = "student";
  t.columns = {{"id", ColumnType::kBigint, 0, 0, true, true},
               {"name", ColumnType::kVarchar, 30, 0, true, false},
               {"id_card", ColumnType::kChar, 18, 0, false, false},
               {"phone", ColumnType::kVarchar, 20, 0, false, false},
               {"birth", ColumnType::kDate, 0, 0, false, false}};
  return t;
}

MaskingRule Rule(const std::string& text) { return ParseMaskingRule(text).value(); }

TEST_CASE("masking shapes the table the agent receives: drop removes, hash is char(64)") {
  auto m = TableMasking::Make(
      Student(),
      {Rule("name=hash"), Rule("id_card=partial:3:4"), Rule("phone=drop"), Rule("other=hash")},
      "key");
  REQUIRE(m.ok());
  const TableMasking& masking = *m.value();
  CHECK_FALSE(masking.passthrough());
  std::vector<std::string> read;
  for (const ColumnSpec& c : masking.read().columns) read.push_back(c.name);
  CHECK(read == std::vector<std::string>{"id", "name", "id_card", "birth"});
  const TableSpec& out = masking.delivered();
  REQUIRE(out.columns.size() == 4);
  CHECK(out.table == "student");
  CHECK(ColumnTypeName(out.columns[0]) == "bigint");
  CHECK(out.columns[0].primary_key);
  CHECK(ColumnTypeName(out.columns[1]) == "char(64)");
  CHECK(out.columns[1].not_null);
  CHECK_FALSE(out.columns[1].primary_key);
  CHECK(ColumnTypeName(out.columns[2]) == "char(18)");
  CHECK(ColumnTypeName(out.columns[3]) == "date");

  // Keep-only rules pass rows through untouched.
  auto kept = TableMasking::Make(Student(), {Rule("name=keep")}, "");
  REQUIRE(kept.ok());
  CHECK(kept.value()->passthrough());
  CHECK(kept.value()->delivered().columns.size() == 5);
}

TEST_CASE("masked rows: hashed, partial and kept cells; NULL stays NULL; char padding ignored") {
  auto m = TableMasking::Make(
      Student(), {Rule("name=hash"), Rule("id_card=partial:3:4"), Rule("phone=drop")}, "key");
  REQUIRE(m.ok());
  RowBatch raw(4);  // id, name, id_card, birth (phone is not read)
  for (const char* v : {"1", "张三", "310104200001011234", "2000-01-01"}) raw.AddCell(v);
  raw.AddCell("2");
  raw.AddCell("李四");
  raw.AddCell("310104200002021234");  // a char(18) value as PostgreSQL pads it
  raw.AddNull();
  raw.AddCell("3");
  raw.AddCell("");
  raw.AddNull();
  raw.AddCell("2001-01-01");
  RowBatch out(4);
  m.value()->Apply(raw, &out);
  REQUIRE(out.rows() == 3);
  KeyedHash h("key");
  CHECK(out.Cell(0, 0) == "1");
  CHECK(out.Cell(0, 1) == h.Hex("张三"));
  CHECK(out.Cell(0, 2) == "310***********1234");
  CHECK(out.Cell(0, 3) == "2000-01-01");
  CHECK(out.Cell(1, 1) == h.Hex("李四"));
  CHECK(out.IsNull(1, 3));
  CHECK(out.Cell(2, 1) == h.Hex(""));  // the empty string is a value, hashed like any
  CHECK(out.IsNull(2, 2));

  // char(n) padding is not part of the value: a padded and an unpadded source mask alike.
  TableSpec padded;
  padded.table = "t";
  padded.columns = {{"id", ColumnType::kBigint, 0, 0, true, true},
                    {"code", ColumnType::kChar, 10, 0, false, false},
                    {"tag", ColumnType::kChar, 10, 0, false, false}};
  auto p = TableMasking::Make(padded, {Rule("code=hash"), Rule("tag=partial:1:1")}, "key");
  REQUIRE(p.ok());
  RowBatch rows(3);
  for (const char* v : {"1", "abc", "abcd", "2", "abc       ", "abcd      "}) rows.AddCell(v);
  RowBatch masked(3);
  p.value()->Apply(rows, &masked);
  CHECK(masked.Cell(0, 1) == masked.Cell(1, 1));
  CHECK(masked.Cell(0, 2) == "a**d");
  CHECK(masked.Cell(1, 2) == "a**d");
}

TEST_CASE("what cannot be masked is refused, naming the column") {
  struct Case {
    const char* rule;
    const char* error;
  };
  const Case cases[] = {
      {"id=hash", "delivered as it is"},
      {"id=partial:1:1", "delivered as it is"},
      {"id=drop", "cannot be dropped"},
      {"birth=hash", "applies to text columns, not date"},
      {"birth=partial:1:1", "applies to text columns"},
      {"name=partial:0:0", "characters to show"},
      {"name=scramble", "unknown method 'scramble'"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.rule);
    auto m = TableMasking::Make(Student(), {Rule(c.rule)}, "key");
    REQUIRE_FALSE(m.ok());
    CHECK(m.status().code() == StatusCode::kFailedPrecondition);
    CHECK(m.status().message().find(c.error) != std::string::npos);
  }
  auto keyless = TableMasking::Make(Student(), {Rule("name=hash")}, "");
  REQUIRE_FALSE(keyless.ok());
  CHECK(keyless.status().message().find("needs the masking key") != std::string::npos);
}

CatalogEntry TextKeyEntry() {
  CatalogEntry e;
  e.name = "市教委人事处-教职工基本信息";
  auto field = [](const char* name, const char* type, bool key) {
    Field f;
    f.column = ParseColumnType(type).value();
    f.column.name = name;
    f.column.primary_key = key;
    return f;
  };
  e.fields = {field("jzgh", "varchar(20)", true), field("xm", "varchar(30)", false),
              field("updatetime", "datetime", false)};
  return e;
}

TEST_CASE("approvals may not mask a primary key, not even a text one") {
  const CatalogEntry e = TextKeyEntry();
  for (const char* rule : {"jzgh=hash", "jzgh=partial:2:2", "jzgh=drop"}) {
    CAPTURE(rule);
    Status st = ValidateMasking({Rule(rule)}, e);
    CHECK(st.code() == StatusCode::kInvalidArgument);
    CHECK(st.message().find("the primary key is delivered as it is") != std::string::npos);
    CHECK(st.message().find("reconciliation") != std::string::npos);
  }
  CHECK(ValidateMasking({Rule("jzgh=keep"), Rule("xm=hash")}, e).ok());
}

// A real SQLite source through unixODBC: the filter selects by the raw values of columns that
// leave masked, and the rows that leave are masked.
TEST_CASE("a subscription is read masked, and its filter runs on the raw source values") {
  TempDir dir;
  const std::string conn = SqliteConnection(dir.File("src.db"));
  {
    auto c = OdbcConnection::Open(conn);
    REQUIRE(c.ok());
    REQUIRE((*c)->Execute("CREATE TABLE student (id BIGINT PRIMARY KEY, name VARCHAR(30) NOT NULL,"
                          " id_card CHAR(18), phone VARCHAR(20), updatetime DATETIME NOT NULL)")
                .ok());
    REQUIRE((*c)->Execute("INSERT INTO student VALUES "
                          "(1,'张三','310104200001011234','13800000001','2026-01-01 00:00:00'),"
                          "(2,'李四','310115200002021234','13800000002','2026-01-01 00:00:00'),"
                          "(3,'王五','310104200003031234','13800000003','2026-01-01 00:00:00')")
                .ok());
    REQUIRE((*c)->Commit().ok());
  }
  Source source;
  source.name = "src";
  source.connection = conn;
  CatalogEntry entry;
  entry.name = "市教委-学生";
  entry.source = "src";
  entry.source_table = "student";
  entry.updatetime_column = "updatetime";
  for (const char* f : {"id bigint", "name varchar(30)", "id_card char(18)", "phone varchar(20)",
                        "updatetime datetime"}) {
    std::string text = f;
    Field field;
    field.column = ParseColumnType(text.substr(text.find(' ') + 1)).value();
    field.column.name = text.substr(0, text.find(' '));
    field.column.primary_key = field.column.name == "id";
    field.column.not_null = field.column.name == "name" || field.column.name == "updatetime";
    entry.fields.push_back(field);
  }
  Subscription sub;
  sub.name = "s";
  sub.entry = entry.name;
  sub.organisation = "徐汇区教育局";
  sub.target_table = "student";
  sub.columns = {"id", "name", "id_card", "phone", "updatetime"};
  sub.masking = {Rule("name=hash"), Rule("id_card=partial:3:4"), Rule("phone=drop")};
  // By raw values of masked and dropped columns: these select rows 1 and 3 at the source.
  sub.filter = {{"id_card", "in", {"310104200001011234", "310104200003031234"}},
                {"phone", "!=", {"13800000002"}},
                {"name", "in", {"张三", "王五", "李四"}}};
  auto reader = SubscriptionReader::Open(source, entry, sub, "master");
  REQUIRE(reader.ok());
  const TableSpec& table = reader.value()->table();
  std::vector<std::string> names;
  for (const ColumnSpec& c : table.columns) names.push_back(c.name + " " + ColumnTypeName(c));
  CHECK(names == std::vector<std::string>{"id bigint", "name char(64)", "id_card char(18)",
                                          "updatetime datetime"});
  REQUIRE(reader.value()->Start(Watermark(), "", /*whole_table=*/true).ok());
  RowBatch rows(table.columns.size());
  Watermark last;
  auto n = reader.value()->Read(100, &rows, &last);
  REQUIRE(n.ok());
  REQUIRE(rows.rows() == 2);
  KeyedHash h(MaskingKeyFor("master", "徐汇区教育局"));
  CHECK(rows.Cell(0, 0) == "1");
  CHECK(rows.Cell(0, 1) == h.Hex("张三"));
  CHECK(rows.Cell(0, 2) == "310***********1234");
  CHECK(rows.Cell(1, 0) == "3");
  CHECK(rows.Cell(1, 1) == h.Hex("王五"));

  // A masked primary key is refused before the source is read.
  sub.masking = {Rule("id=hash")};
  auto refused = SubscriptionReader::Open(source, entry, sub, "master");
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == StatusCode::kFailedPrecondition);
}

TEST_CASE("the masking key lives in a file of its own: created 0600, refused when others read it") {
  TempDir dir;
  auto defaults = LoadSchedulerConfig(dir.Write(
      "scheduler.yaml", "store: {path: /var/db/s.db}\nadmin: {token: long-enough-token-123}\n"));
  REQUIRE(defaults.ok());
  CHECK(defaults->masking_key_file == "/var/db/s.db.masking-key");
  auto conf = LoadSchedulerConfig(std::string(DX_SOURCE_DIR) + "/conf/scheduler.yaml");
  REQUIRE(conf.ok());
  CHECK(conf->masking_key_file == "/etc/dx/masking.key");
  auto typo = LoadSchedulerConfig(
      dir.Write("bad.yaml", "admin: {token: long-enough-token-123}\nmasking: {keyfile: x}\n"));
  REQUIRE_FALSE(typo.ok());
  CHECK(typo.status().message().find("masking.keyfile") != std::string::npos);

  const std::string path = dir.File("masking.key");
  auto key = LoadOrCreateKeyFile(path, "masking key");
  REQUIRE(key.ok());
  CHECK(key.value().size() == 64);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(LoadOrCreateKeyFile(path, "masking key").value() == key.value());  // kept
  ::chmod(path.c_str(), 0640);
  auto open = LoadOrCreateKeyFile(path, "masking key");
  REQUIRE_FALSE(open.ok());
  CHECK(open.status().message() == "masking key file " + path +
                                       " has mode 0640: others could read or replace the key; "
                                       "chmod 600 " +
                                       path);
}

}  // namespace
}  // namespace dx::scheduler
