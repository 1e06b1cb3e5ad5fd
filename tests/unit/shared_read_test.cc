// Shared extraction (共享抽取): one read of a real SQLite source (through unixODBC) serving
// subscribers with different filters, columns and masking; the source says which filter each
// row passes; a subscriber further on takes rows from its own UPDATETIME only; a subscriber
// whose masking cannot apply is refused alone.
#include "scheduler/shared_read.h"

#include <doctest/doctest.h>

#include <set>

#include "common/odbc.h"
#include "common/wire.h"
#include "scheduler/extractor.h"
#include "scheduler/masking.h"
#include "scheduler/table_fanout.h"
#include "test_util.h"

namespace dx::scheduler {
namespace {

using dx::testing::SqliteConnection;
using dx::testing::TempDir;

MaskingRule MaskRule(const std::string& column, const std::string& method, int first = 0,
                     int last = 0) {
  MaskingRule r;
  r.column = column;
  r.method = method;
  r.keep_first = first;
  r.keep_last = last;
  return r;
}

struct Fixture {
  TempDir dir;
  Source source;
  CatalogEntry entry;

  Fixture() {
    const std::string conn = SqliteConnection(dir.File("src.db"));
    auto c = OdbcConnection::Open(conn);
    REQUIRE(c.ok());
    REQUIRE((*c)->Execute("CREATE TABLE pupil (id BIGINT PRIMARY KEY, name VARCHAR(30) NOT NULL,"
                          " district VARCHAR(6), updatetime DATETIME NOT NULL)")
                .ok());
    // 30 pupils in three districts; UPDATETIME one second apart from 10:00:00.
    std::string values;
    for (int i = 1; i <= 30; ++i) {
      char row[128];
      std::snprintf(row, sizeof(row), "%s(%d,'学生%d','31010%d','2026-11-21 10:00:%02d')",
                    values.empty() ? "" : ",", i, i, i % 3, i);
      values += row;
    }
    REQUIRE((*c)->Execute("INSERT INTO pupil VALUES " + values).ok());
    REQUIRE((*c)->Commit().ok());
    source.name = "src";
    source.connection = conn;
    entry.name = "市教委-学生";
    entry.source = "src";
    entry.source_table = "pupil";
    entry.updatetime_column = "updatetime";
    for (const char* f :
         {"id bigint", "name varchar(30)", "district varchar(6)", "updatetime datetime"}) {
      std::string text = f;
      Field field;
      field.column = ParseColumnType(text.substr(text.find(' ') + 1)).value();
      field.column.name = text.substr(0, text.find(' '));
      field.column.primary_key = field.column.name == "id";
      field.column.not_null = field.column.name != "district";
      entry.fields.push_back(field);
    }
  }

  Subscription Sub(const std::string& name, std::vector<std::string> columns,
                   std::vector<RowCondition> filter) {
    Subscription s;
    s.name = name;
    s.entry = entry.name;
    s.organisation = "徐汇区教育局";
    s.target_table = name;
    s.columns = std::move(columns);
    s.filter = std::move(filter);
    return s;
  }
};

// Every row the reader gives each subscriber, read to the end in small reads.
std::vector<std::vector<std::string>> ReadAll(SharedReader& reader, size_t subscribers,
                                              const std::vector<size_t>& columns) {
  std::vector<RowBatch> batches;
  for (size_t k = 0; k < subscribers; ++k) batches.emplace_back(columns[k]);
  std::vector<std::vector<std::string>> out(subscribers);
  Watermark last;
  while (true) {
    auto n = reader.Read(7, &batches, &last);
    REQUIRE(n.ok());
    if (n.value() == 0) break;
    for (size_t k = 0; k < subscribers; ++k) {
      const RowBatch& batch = batches[reader.batch_of(k)];
      for (size_t r = 0; r < batch.rows(); ++r) {
        std::string row;
        for (size_t c = 0; c < batch.columns(); ++c) {
          row += (c ? "|" : "") + std::string(batch.Cell(r, c));
        }
        out[k].push_back(row);
      }
    }
    for (RowBatch& batch : batches) batch.Clear();
  }
  return out;
}

TEST_CASE("one read serves subscribers with their own filters, columns and masking") {
  Fixture f;
  Subscription a =
      f.Sub("a", {"id", "name", "district", "updatetime"}, {{"district", "=", {"310101"}}});
  Subscription b = f.Sub("b", {"id", "district", "updatetime"},
                         {{"district", "in", {"310102", "310100"}}, {"id", ">", {"20"}}});
  Subscription c = f.Sub("c", {"id", "name", "updatetime"}, {});  // every row
  c.masking = {MaskRule("name", "partial", 1, 0)};
  Subscription d = f.Sub("d", {"id", "name", "updatetime"}, {});
  d.masking = {MaskRule("id", "hash")};  // a masked primary key: refused, alone
  std::vector<Status> refused;
  auto reader =
      SharedReader::Open(f.source, f.entry, {&a, &b, &c, &d}, "master", nullptr, &refused);
  REQUIRE(reader.ok());
  CHECK(refused[0].ok());
  CHECK(refused[1].ok());
  CHECK(refused[2].ok());
  CHECK(refused[3].code() == StatusCode::kFailedPrecondition);
  CHECK((*reader)->table(1).columns.size() == 3);
  // Two distinct filters among the three (c takes every row).
  CHECK(!(*reader)->filter_key(0).empty());
  CHECK(!(*reader)->filter_key(1).empty());
  CHECK((*reader)->filter_key(0) != (*reader)->filter_key(1));
  CHECK((*reader)->filter_key(2).empty());
  // Full load: every row before the bound, in key order.
  REQUIRE((*reader)->Start({0, 1, 2}, Watermark(), "2026-11-21 11:00:00", false).ok());
  auto rows = ReadAll(**reader, 3, {4, 3, 3});
  REQUIRE(rows[0].size() == 10);  // ids 1, 4, ..., 28
  CHECK(rows[0][0] == "1|学生1|310101|2026-11-21 10:00:01");
  for (const std::string& r : rows[0]) CHECK(r.find("|310101|") != std::string::npos);
  // b: districts 310102 and 310100 (ids 2 mod 3 and 0 mod 3) above 20.
  std::vector<std::string> want_b;
  for (int i = 21; i <= 30; ++i) {
    if (i % 3 != 1)
      want_b.push_back(std::to_string(i) + "|31010" + std::to_string(i % 3) +
                       "|2026-11-21 10:00:" + std::to_string(i));
  }
  CHECK(rows[1] == want_b);
  REQUIRE(rows[2].size() == 30);
  CHECK(rows[2][4] == "5|学**|2026-11-21 10:00:05");
  CHECK((*reader)->full_load());
}

TEST_CASE("a read whose every subscriber is refused says so instead of reading") {
  Fixture f;
  Subscription a = f.Sub("a", {"id", "name", "updatetime"}, {});
  a.masking = {MaskRule("name", "hash")};  // no masking key: refused
  std::vector<Status> refused;
  auto reader = SharedReader::Open(f.source, f.entry, {&a}, "", nullptr, &refused);
  REQUIRE(reader.ok());
  CHECK(refused[0].code() == StatusCode::kFailedPrecondition);
  CHECK((*reader)->SourceNow(std::chrono::milliseconds(0)).status().code() ==
        StatusCode::kFailedPrecondition);
  CHECK((*reader)->Start({0}, Watermark(), "2026-11-21 11:00:00", false).code() ==
        StatusCode::kInternal);
}

TEST_CASE("only date-times spelt to the second compare as text") {
  CHECK(SpelledToTheSecond("2026-11-21 10:00:00"));
  CHECK(SpelledToTheSecond("2026-11-21 10:00:00.123456"));
  CHECK_FALSE(SpelledToTheSecond("2026-11-21"));
  CHECK_FALSE(SpelledToTheSecond("2026/11/21 10:00:00"));
  CHECK_FALSE(SpelledToTheSecond("21.11.2026 10:00:00"));
  CHECK_FALSE(SpelledToTheSecond("2026-11-21T10:00:00"));
}

TEST_CASE("a subscriber further on takes rows from its own UPDATETIME; the others from theirs") {
  Fixture f;
  Subscription a = f.Sub("a", {"id", "updatetime"}, {});
  Subscription b = f.Sub("b", {"id", "updatetime"}, {{"district", "!=", {"310100"}}});
  std::vector<Status> refused;
  auto reader = SharedReader::Open(f.source, f.entry, {&a, &b}, "", nullptr, &refused);
  REQUIRE(reader.ok());
  // Both at boundaries: a has every row before 10:00:10, b every row before 10:00:20.
  Watermark after{"", "2026-11-21 10:00:10", {}};
  REQUIRE((*reader)
              ->Start({0, 1}, after, "2026-11-21 10:00:25", false, {"", "2026-11-21 10:00:20"})
              .ok());
  auto rows = ReadAll(**reader, 2, {2, 2});
  std::vector<std::string> want_a, want_b;
  for (int i = 10; i < 25; ++i) {
    want_a.push_back(std::to_string(i) + "|2026-11-21 10:00:" + std::to_string(i));
    if (i >= 20 && i % 3 != 0) want_b.push_back(want_a.back());
  }
  CHECK(rows[0] == want_a);
  CHECK(rows[1] == want_b);
}

TEST_CASE("subscribers taking the same rows the same way share one batch; any difference not") {
  Fixture f;
  const std::vector<RowCondition> d1 = {{"district", "=", {"310101"}}};
  Subscription a = f.Sub("a", {"id", "district", "updatetime"}, d1);
  Subscription twin = f.Sub("twin", {"id", "district", "updatetime"}, d1);
  Subscription columns = f.Sub("columns", {"id", "updatetime"}, d1);
  Subscription other =
      f.Sub("other", {"id", "district", "updatetime"}, {{"district", "=", {"310102"}}});
  Subscription masked = f.Sub("masked", {"id", "district", "updatetime"}, d1);
  masked.masking = {MaskRule("district", "partial", 1, 0)};
  Subscription later = f.Sub("later", {"id", "district", "updatetime"}, d1);
  Subscription twin_after_masked = f.Sub("twin2", {"id", "district", "updatetime"}, d1);
  Subscription every = f.Sub("every", {"id", "district", "updatetime"}, {});
  std::vector<Status> refused;
  auto reader = SharedReader::Open(
      f.source, f.entry, {&a, &twin, &columns, &other, &masked, &later, &twin_after_masked, &every},
      "", nullptr, &refused);
  REQUIRE(reader.ok());
  const std::vector<size_t> readers = {0, 1, 2, 3, 4, 5, 6, 7};
  const std::vector<std::string> starts = {"", "", "", "", "", "2026-11-21 10:00:20", "", ""};
  REQUIRE((*reader)->Start(readers, Watermark(), "2026-11-21 11:00:00", false, starts).ok());
  // The twins take a's batch (the one after the masked subscriber too: masked rows are its
  // own); a different column list, filter, masking, start, or no filter, each its own.
  const std::vector<size_t> want_batch = {0, 0, 2, 3, 4, 5, 0, 7};
  for (size_t k = 0; k < readers.size(); ++k) {
    CAPTURE(k);
    CHECK((*reader)->batch_of(k) == want_batch[k]);
  }
  auto rows = ReadAll(**reader, readers.size(), {3, 3, 2, 3, 3, 3, 3, 3});
  std::vector<std::string> want_a, want_columns, want_other, want_masked, want_later, want_every;
  auto updatetime = [](int id) {
    return "2026-11-21 10:00:" + std::string(id < 10 ? "0" : "") + std::to_string(id);
  };
  for (int id = 1; id <= 30; ++id) {
    const std::string at = std::to_string(id) + "|";
    want_every.push_back(at + "31010" + std::to_string(id % 3) + "|" + updatetime(id));
    if (id % 3 == 1) {
      want_a.push_back(at + "310101|" + updatetime(id));
      want_columns.push_back(at + updatetime(id));
      want_masked.push_back(at + "3*****|" + updatetime(id));
      if (id >= 20) want_later.push_back(want_a.back());
    } else if (id % 3 == 2) {
      want_other.push_back(at + "310102|" + updatetime(id));
    }
  }
  CHECK(rows[0] == want_a);
  CHECK(rows[1] == want_a);
  CHECK(rows[2] == want_columns);
  CHECK(rows[3] == want_other);
  CHECK(rows[4] == want_masked);
  CHECK(rows[5] == want_later);
  CHECK(rows[6] == want_a);
  CHECK(rows[7] == want_every);
  // A read fills the shared batch only: the twins' own batches stay as they were.
  REQUIRE((*reader)->Start(readers, Watermark(), "2026-11-21 11:00:00", false, starts).ok());
  std::vector<RowBatch> batches;
  for (size_t columns_of : {3, 3, 2, 3, 3, 3, 3, 3}) batches.emplace_back(columns_of);
  Watermark last;
  REQUIRE((*reader)->Read(100, &batches, &last).ok());
  CHECK(batches[0].rows() == 10);
  CHECK(batches[1].rows() == 0);
  CHECK(batches[6].rows() == 0);
}

TEST_CASE("a subscriber without masking never takes a masked subscriber's batch") {
  Fixture f;
  const std::vector<RowCondition> d1 = {{"district", "=", {"310101"}}};
  Subscription masked = f.Sub("masked", {"id", "district", "updatetime"}, d1);
  masked.masking = {MaskRule("district", "partial", 1, 0)};
  Subscription plain = f.Sub("plain", {"id", "district", "updatetime"}, d1);
  std::vector<Status> refused;
  auto reader = SharedReader::Open(f.source, f.entry, {&masked, &plain}, "", nullptr, &refused);
  REQUIRE(reader.ok());
  REQUIRE((*reader)->Start({0, 1}, Watermark(), "2026-11-21 11:00:00", false).ok());
  CHECK((*reader)->batch_of(1) == 1);
  auto rows = ReadAll(**reader, 2, {3, 3});
  REQUIRE(rows[1].size() == 10);
  CHECK(rows[0][0] == "1|3*****|2026-11-21 10:00:01");
  CHECK(rows[1][0] == "1|310101|2026-11-21 10:00:01");
}

TEST_CASE("64 filters in one read: each subscriber gets exactly its rows across the words") {
  Fixture f;
  // Subscriber k takes the pupils with id = k + 1, or (from k = 30, the second word) id <= 1;
  // subscriber 63 (the last bit of the third word) takes district 310100: ids 3, 6, ..., 30.
  std::vector<Subscription> subs;
  for (int k = 0; k < 63; ++k) {
    std::vector<RowCondition> filter = {{"id", "=", {std::to_string(k % 30 + 1)}}};
    if (k >= 30) filter = {{"id", "in", {std::to_string(k % 30 + 1), "1"}}};
    subs.push_back(f.Sub("s" + std::to_string(k), {"id", "updatetime"}, filter));
  }
  subs.push_back(f.Sub("s63", {"id", "updatetime"}, {{"district", "=", {"310100"}}}));
  std::vector<const Subscription*> all;
  std::vector<size_t> readers;
  for (size_t k = 0; k < subs.size(); ++k) {
    all.push_back(&subs[k]);
    readers.push_back(k);
  }
  std::vector<Status> refused;
  auto reader = SharedReader::Open(f.source, f.entry, all, "", nullptr, &refused);
  REQUIRE(reader.ok());
  REQUIRE((*reader)->Start(readers, Watermark(), "2026-11-21 11:00:00", false).ok());
  auto rows = ReadAll(**reader, subs.size(), std::vector<size_t>(subs.size(), 2));
  auto row = [](int id) {
    return std::to_string(id) + "|2026-11-21 10:00:" + (id < 10 ? "0" : "") + std::to_string(id);
  };
  for (int k = 0; k < 63; ++k) {
    CAPTURE(k);
    std::vector<std::string> want;
    if (k >= 30 && k % 30 != 0) want.push_back(row(1));
    want.push_back(row(k % 30 + 1));
    CHECK(rows[static_cast<size_t>(k)] == want);
  }
  std::vector<std::string> want_63;
  for (int id = 3; id <= 30; id += 3) want_63.push_back(row(id));
  CHECK(rows[63] == want_63);
}

TEST_CASE("equal batches of a round are packed once; unequal ones of the same size each") {
  auto batch = [](const char* second) {
    RowBatch b(2);
    for (const char* cell : {"1", "ab", "2", second}) b.AddCell(cell);
    return b;
  };
  const RowBatch a = batch("cd");
  const RowBatch same = batch("cd");
  const RowBatch other = batch("ce");  // as many rows and bytes as `a`, one cell differs
  BatchPacker packer(1);
  auto pa = packer.Pack(a);
  auto psame = packer.Pack(same);
  auto pother = packer.Pack(other);
  REQUIRE(pa.ok());
  REQUIRE(psame.ok());
  REQUIRE(pother.ok());
  CHECK(packer.compressions() == 2);
  CHECK(*psame == *pa);
  auto decoded = RowBatch::Decode(Decompress(*pother, 1 << 20).value());
  REQUIRE(decoded.ok());
  CHECK(*decoded == other);
  packer.Forget();  // a new round packs again
  REQUIRE(packer.Pack(same).ok());
  CHECK(packer.compressions() == 3);
}

TEST_CASE("the query evaluates each distinct filter once, its markers before the WHERE's") {
  ExtractSpec s;
  s.source_table = "pupil";
  ColumnSpec id;
  id.name = "id";
  id.type = ColumnType::kBigint;
  id.primary_key = true;
  ColumnSpec district;
  district.name = "district";
  district.type = ColumnType::kVarchar;
  district.length = 6;
  s.columns = {id};
  s.updatetime.name = "updatetime";
  s.updatetime.type = ColumnType::kDatetime;
  s.after = Watermark{"", "2026-11-21 10:00:00", {}};
  s.bound = "2026-11-21 11:00:00";
  s.routes.push_back({{{"district", "=", {"310101"}}}, {district}});
  s.routes.push_back({{{"district", "in", {"310102", "310103"}}}, {district}});
  std::vector<std::string> params;
  std::string sql = Extractor::BuildQuery(SqlDialect(Dbms::kPostgres), s, &params);
  // One integer word of bits, one bit per filter.
  CHECK(sql.find(", (CASE WHEN \"district\" = ? THEN 1 ELSE 0 END + CASE WHEN \"district\" IN "
                 "(?, ?) THEN 2 ELSE 0 END) FROM") != std::string::npos);
  CHECK(sql.find(" AND ((\"district\" = ") != std::string::npos);
  CHECK(params == std::vector<std::string>{"310101", "310102", "310103", "2026-11-21 11:00:00",
                                           "2026-11-21 10:00:00", "310101", "310102", "310103"});
  // Some reader takes every row: the routes only flag rows.
  s.routes_select = false;
  params.clear();
  sql = Extractor::BuildQuery(SqlDialect(Dbms::kPostgres), s, &params);
  CHECK(sql.find(" AND ((\"district\"") == std::string::npos);
  CHECK(params.size() == 5);
}

}  // namespace
}  // namespace dx::scheduler
