// Reconciliation's shared parts: canonical forms of values read back from every DBMS, key
// order, range and bucket digests, bucket comparison, and the wire messages (with hostile input).
#include <doctest/doctest.h>

#include <algorithm>
#include <tuple>

#include "common/canonical_value.h"
#include "common/protocol.h"
#include "common/range_digest.h"
#include "common/wire.h"

namespace dx {
namespace {

ColumnSpec Col(ColumnType type, int length = 0, int scale = 0) {
  ColumnSpec c;
  c.name = "c";
  c.type = type;
  c.length = length;
  c.scale = scale;
  return c;
}

TEST_CASE("canonical forms: one spelling per value, whatever the DBMS printed") {
  struct Case {
    ColumnSpec column;
    const char* in;
    const char* want;
  };
  const ColumnSpec integer = Col(ColumnType::kInteger);
  const ColumnSpec bigint = Col(ColumnType::kBigint);
  const ColumnSpec dec = Col(ColumnType::kDecimal, 10, 2);
  const ColumnSpec dec0 = Col(ColumnType::kDecimal, 5, 0);
  const ColumnSpec chr = Col(ColumnType::kChar, 6);
  const ColumnSpec vc = Col(ColumnType::kVarchar, 10);
  const ColumnSpec text = Col(ColumnType::kText);
  const ColumnSpec date = Col(ColumnType::kDate);
  const ColumnSpec dt = Col(ColumnType::kDatetime);
  const Case cases[] = {
      {integer, "42", "42"},
      {integer, "+42", "42"},
      {integer, "0042", "42"},
      {integer, "42.0", "42"},  // a numeric column read back by a driver
      {integer, "-0", "0"},
      {integer, " 7 ", "7"},
      {integer, "7.5", "7.5"},  // not an integer: kept, so the difference shows
      {integer, "abc", "abc"},
      {bigint, "-9223372036854775808", "-9223372036854775808"},
      {dec, "12.50", "12.5"},     // PostgreSQL / MariaDB print the scale
      {dec, "12.5", "12.5"},      // SQLite (REAL) does not
      {dec, "1.25e+01", "12.5"},  // SQLite's %.15g for large or small values
      {dec, "1.25E1", "12.5"},
      {dec, "12.345", "12.35"},  // rounded to the scale, half away from zero
      {dec, "-12.345", "-12.35"},
      {dec, "12.344", "12.34"},
      {dec, "99.995", "100"},
      {dec, "0.00", "0"},
      {dec, "-0.001", "0"},
      {dec, ".5", "0.5"},
      {dec, "5.", "5"},
      {dec, "3e2", "300"},
      {dec, "1e-3", "0"},
      {dec, "1e999", "1e999"},  // beyond any decimal column: kept as it is
      {dec0, "7.5", "8"},
      {dec, "", ""},
      {chr, "ab    ", "ab"},  // PostgreSQL pads char(n)
      {chr, "ab", "ab"},      // MariaDB strips it
      {chr, "  ab", "  ab"},  // leading spaces count
      {vc, "ab  ", "ab  "},   // varchar keeps trailing spaces
      {vc, "", ""},
      {text, "欧阳\t修\n", "欧阳\t修\n"},
      {date, "2010-01-01", "2010-01-01"},
      {date, "2010-1-1", "2010-01-01"},
      {date, "2010-01-01 00:00:00", "2010-01-01"},
      {date, "2010-01-01T00:00:00.000", "2010-01-01"},
      {date, "20100101", "20100101"},
      {dt, "2026-01-01 08:00:00", "2026-01-01 08:00:00"},
      {dt, "2026-01-01T08:00:00", "2026-01-01 08:00:00"},
      {dt, "2026-01-01 08:00:00.000", "2026-01-01 08:00:00"},
      {dt, "2026-01-01 08:00:00.120000", "2026-01-01 08:00:00.12"},
      {dt, "2026-01-01 08:00:00.12", "2026-01-01 08:00:00.12"},
      {dt, "2026-01-01 08:00", "2026-01-01 08:00:00"},
      {dt, "2026-01-01", "2026-01-01 00:00:00"},
      {dt, "2026-1-1 8:0:0", "2026-01-01 08:00:00"},
      {dt, "2026-01-01 25:00:00", "2026-01-01 25:00:00"},
      {dt, "2026-01-01 08:00:00+08", "2026-01-01 08:00:00+08"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.in);
    CAPTURE(ColumnTypeName(c.column));
    CHECK(CanonicalValue(c.column, c.in) == c.want);
  }
}

TEST_CASE("canonical key order: numbers numerically, text bytewise, datetimes in time order") {
  struct Case {
    ColumnSpec column;
    const char* a;
    const char* b;
    int want;
  };
  const ColumnSpec bigint = Col(ColumnType::kBigint);
  const ColumnSpec dec = Col(ColumnType::kDecimal, 10, 2);
  const ColumnSpec vc = Col(ColumnType::kVarchar, 10);
  const ColumnSpec dt = Col(ColumnType::kDatetime);
  const Case cases[] = {
      {bigint, "9", "10", -1},
      {bigint, "10", "9", 1},
      {bigint, "-10", "-9", -1},
      {bigint, "-1", "0", -1},
      {bigint, "5", "5", 0},
      {dec, "1.5", "1.25", 1},
      {dec, "-1.5", "-1.25", -1},
      {dec, "2", "1.99", 1},
      {dec, "0.1", "0.12", -1},
      {vc, "B", "a", -1},
      {vc, "a", "ab", -1},
      {vc, "张", "z", 1},
      {vc, "10", "9", -1},
      {dt, "2026-01-01 08:00:00", "2026-01-01 08:00:00.5", -1},
      {dt, "2026-01-01 08:00:00.5", "2026-01-01 08:00:00.12", 1},
  };
  for (const Case& c : cases) {
    CAPTURE(c.a);
    CAPTURE(c.b);
    CHECK(CompareCanonical(c.column, c.a, c.b) == c.want);
  }
  CHECK(KeyOrderIsBinaryText(vc));
  CHECK_FALSE(KeyOrderIsBinaryText(bigint));
}

TableSpec Spec() {
  TableSpec spec;
  spec.table = "t";
  spec.columns = {{"id", ColumnType::kBigint, 0, 0, true, true},
                  {"name", ColumnType::kVarchar, 30, 0, false, false},
                  {"score", ColumnType::kDecimal, 5, 1, false, false}};
  return spec;
}

RowBatch Rows(std::initializer_list<std::tuple<const char*, const char*, const char*>> rows) {
  RowBatch b(3);
  for (const auto& [id, name, score] : rows) {
    b.AddCell(id);
    if (name)
      b.AddCell(name);
    else
      b.AddNull();
    b.AddCell(score);
  }
  return b;
}

DigestedRange Digest(RowHasher& h, const RowBatch& rows) {
  DigestedRange range;
  for (size_t r = 0; r < rows.rows(); ++r) {
    RowDigest d;
    h.Hash(rows, r, &d);
    range.Add(d);
  }
  return range;
}

TEST_CASE("row digests: spellings of one value hash alike; NULL, '' and real changes do not") {
  RowHasher h(Spec());
  struct Case {
    const char* what;
    RowBatch a;
    RowBatch b;
    bool same;
  };
  Case cases[] = {
      {"decimal spelt by PostgreSQL vs SQLite", Rows({{"1", "张三", "90.50"}}),
       Rows({{"1", "张三", "90.5"}}), true},
      {"key spelt with a leading zero", Rows({{"01", "张三", "1"}}), Rows({{"1", "张三", "1.0"}}),
       true},
      {"NULL vs empty string", Rows({{"1", nullptr, "1"}}), Rows({{"1", "", "1"}}), false},
      {"a changed name", Rows({{"1", "张三", "1"}}), Rows({{"1", "张四", "1"}}), false},
      {"a changed score", Rows({{"1", "张三", "1"}}), Rows({{"1", "张三", "2"}}), false},
      {"values moved between columns", Rows({{"1", "2", "3"}}), Rows({{"1", "23", ""}}), false},
  };
  for (Case& c : cases) {
    CAPTURE(c.what);
    RowDigest da, db;
    h.Hash(c.a, 0, &da);
    h.Hash(c.b, 0, &db);
    CHECK(da.key == db.key);
    CHECK((da.row_hash == db.row_hash) == c.same);
  }
}

TEST_CASE("bucket summaries split a range the same way on both sides") {
  RowHasher h(Spec());
  RowBatch source(3), agent(3);
  for (int i = 1; i <= 500; ++i) {
    std::string id = std::to_string(i);
    source.AddCell(id);
    source.AddCell("名" + id);
    source.AddCell("1.5");
    if (i == 17) continue;  // the agent lost row 17
    agent.AddCell(id);
    agent.AddCell(i == 230 ? "改" : "名" + id);  // and changed row 230
    agent.AddCell(i % 2 ? "1.50" : "1.5");       // spelt differently, same value
  }
  agent.AddCell("900");  // and holds a row the source does not
  agent.AddCell("多");
  agent.AddCell("0");
  DigestedRange s = Digest(h, source), a = Digest(h, agent);
  CHECK(s.Summary({}).count == 500);
  CHECK(a.Summary({}).count == 500);
  CHECK_FALSE(s.Summary({}) == a.Summary({}));
  // Children partition the range.
  uint32_t total = 0;
  for (const RangeSummary& c : s.Children({})) total += c.count;
  CHECK(total == 500);
  // Walk down the differing buckets the way the scheduler does, down to rows.
  std::vector<BucketPath> todo = {BucketPath{}};
  std::vector<size_t> missing, changed;
  std::vector<std::string> extra;
  int opened = 0;
  while (!todo.empty()) {
    BucketPath p = todo.back();
    todo.pop_back();
    ++opened;
    auto mine = s.Children(p), theirs = a.Children(p);
    for (int c : DifferingChildren(mine, theirs)) {
      BucketPath child = p.Child(c);
      if (std::max(mine[c].count, theirs[c].count) > 4) {
        todo.push_back(child);
        continue;
      }
      std::vector<ListedRow> listed;
      for (size_t i : a.RowsIn(child)) {
        ListedRow row;
        for (auto part : RowHasher::SplitKey(a.rows()[i].key)) row.key.emplace_back(part);
        row.row_hash = a.rows()[i].row_hash;
        listed.push_back(row);
      }
      BucketDiff d = CompareBucket(h, s, s.RowsIn(child), listed);
      missing.insert(missing.end(), d.missing.begin(), d.missing.end());
      changed.insert(changed.end(), d.changed.begin(), d.changed.end());
      for (size_t e : d.extra) extra.push_back(listed[e].key[0]);
    }
  }
  REQUIRE(missing.size() == 1);
  CHECK(source.Cell(missing[0], 0) == "17");
  REQUIRE(changed.size() == 1);
  CHECK(source.Cell(changed[0], 0) == "230");
  REQUIRE(extra.size() == 1);
  CHECK(extra[0] == "900");
  CHECK(opened <= 6);  // three differences, never the whole range
}

TEST_CASE("bucket paths: children partition their parent, prefixes stay within depth") {
  BucketPath root;
  CHECK(root.Contains(0xdeadbeef));
  BucketPath c = root.Child(0xf);
  CHECK(c.depth == 1);
  CHECK(c.Contains(0x1f));
  CHECK_FALSE(c.Contains(0x1e));
  BucketPath g = c.Child(0x3);
  CHECK(g.Contains(0x3f));
  CHECK_FALSE(g.Contains(0x4f));
}

TEST_CASE("reconciliation messages round-trip") {
  RangeQuery q;
  q.subscription = "sub-a";
  q.run_id = 7;
  RangeRequest cmp;
  cmp.range = 3;
  cmp.upper_key = {"1024"};
  cmp.source = {1024, 0x0123456789abcdefULL};
  RangeRequest last;
  last.range = 4;
  last.last = true;
  RangeRequest expand;
  expand.kind = RangeRequest::Kind::kExpand;
  expand.range = 2;
  expand.path = BucketPath{}.Child(5).Child(9);
  q.requests = {cmp, last, expand};
  RangeQuery q2;
  REQUIRE(Decode(Encode(q), &q2).ok());
  REQUIRE(q2.requests.size() == 3);
  CHECK(q2.requests[0].upper_key == std::vector<std::string>{"1024"});
  CHECK(q2.requests[0].source == cmp.source);
  CHECK(q2.requests[1].last);
  CHECK(q2.requests[2].path == expand.path);

  RangeAnswer a;
  a.subscription = "sub-a";
  RangeAnswerItem children;
  children.kind = RangeAnswerItem::Kind::kChildren;
  children.children[15] = {3, 42};
  RangeAnswerItem rows;
  rows.kind = RangeAnswerItem::Kind::kRows;
  rows.rows = {{{"17", "x"}, 99}};
  a.items = {children, rows};
  RangeAnswer a2;
  REQUIRE(Decode(Encode(a), &a2).ok());
  CHECK(a2.items[0].children[15] == RangeSummary{3, 42});
  CHECK(a2.items[1].rows[0].key == std::vector<std::string>{"17", "x"});
  CHECK(a2.items[1].rows[0].row_hash == 99);

  ReconcileBegin b;
  b.table.subscription = "sub-a";
  b.table.spec = Spec();
  b.dry_run = true;
  ReconcileBegin b2;
  REQUIRE(Decode(Encode(b), &b2).ok());
  CHECK(b2.dry_run);
  CHECK(b2.table.spec.columns.size() == 3);

  RepairBatch r;
  r.subscription = "sub-a";
  r.seq = 12;
  r.upserts = 2;
  r.rows = "abc";
  r.deletes = 1;
  r.keys = "k";
  RepairBatch r2;
  REQUIRE(Decode(Encode(r), &r2).ok());
  CHECK(r2.seq == 12);
  CHECK(r2.keys == "k");
}

TEST_CASE("hostile reconciliation messages are refused before anything is allocated") {
  auto query_with = [](auto&& body) {
    ByteWriter w;
    w.PutString("s");
    w.PutVarint(1);
    body(w);
    return w.Take();
  };
  RangeQuery q;
  // Claims 2^40 requests in a few bytes.
  CHECK(Decode(query_with([](ByteWriter& w) { w.PutVarint(1ULL << 40); }), &q).code() ==
        StatusCode::kDataLoss);
  // A bucket deeper than a 64-bit hash allows.
  CHECK(Decode(query_with([](ByteWriter& w) {
                 w.PutVarint(1);
                 w.PutU8(2);
                 w.PutVarint(0);
                 w.PutU8(17);
                 w.PutVarint(0);
               }),
               &q)
            .code() == StatusCode::kDataLoss);
  // A prefix with bits beyond its depth.
  CHECK(Decode(query_with([](ByteWriter& w) {
                 w.PutVarint(1);
                 w.PutU8(2);
                 w.PutVarint(0);
                 w.PutU8(1);
                 w.PutVarint(0x100);
               }),
               &q)
            .code() == StatusCode::kDataLoss);
  // A key claiming a million cells.
  CHECK(Decode(query_with([](ByteWriter& w) {
                 w.PutVarint(1);
                 w.PutU8(1);
                 w.PutVarint(0);
                 w.PutU8(0);
                 w.PutVarint(0);
                 w.PutU8(0);
                 w.PutVarint(1000000);
               }),
               &q)
            .code() == StatusCode::kDataLoss);
  // An answer listing more rows than its bytes could hold.
  ByteWriter w;
  w.PutString("s");
  w.PutVarint(1);
  w.PutU8(0);
  w.PutString("");
  w.PutVarint(1);
  w.PutU8(3);
  w.PutVarint(0);
  w.PutU8(0);
  w.PutVarint(0);
  w.PutVarint(0);
  for (int i = 0; i < 8; ++i) w.PutU8(0);
  w.PutVarint(60000);
  RangeAnswer a;
  CHECK(Decode(w.Take(), &a).code() == StatusCode::kDataLoss);
  // Every truncation of a valid message is refused.
  RangeQuery good;
  good.subscription = "sub";
  RangeRequest cmp;
  cmp.upper_key = {"1", "abc"};
  good.requests = {cmp};
  std::string bytes = Encode(good);
  for (size_t n = 0; n < bytes.size(); ++n) {
    RangeQuery t;
    CHECK_FALSE(Decode(std::string_view(bytes).substr(0, n), &t).ok());
  }
}

}  // namespace
}  // namespace dx
