// The agent's side of reconciliation against a real SQLite database through unixODBC: range
// reads split at the scheduler's bounds, answers about buckets, repairs with the ledger.
#include "agent/table_reconciler.h"

#include <doctest/doctest.h>

#include "common/odbc.h"
#include "test_util.h"

namespace dx::agent {
namespace {

using testing::SqliteConnection;
using testing::TempDir;

TableSpec Spec() {
  TableSpec spec;
  spec.table = "student";
  spec.columns = {{"id", ColumnType::kBigint, 0, 0, true, true},
                  {"name", ColumnType::kVarchar, 30, 0, true, false},
                  {"score", ColumnType::kInteger, 0, 0, false, false}};
  return spec;
}

std::string Query(const std::string& conn, const std::string& sql) {
  auto c = OdbcConnection::Open(conn);
  REQUIRE(c.ok());
  auto v = (*c)->QueryScalar(sql);
  REQUIRE(v.ok());
  return v.value();
}

void Exec(const std::string& conn, const std::string& sql) {
  auto c = OdbcConnection::Open(conn);
  REQUIRE(c.ok());
  REQUIRE((*c)->Execute(sql).ok());
}

// The source side of the same table, as the scheduler would digest it.
DigestedRange SourceRange(RowHasher& h, int from, int to, int skip = -1) {
  RowBatch rows(3);
  for (int i = from; i <= to; ++i) {
    if (i == skip) continue;
    rows.AddCell(std::to_string(i));
    rows.AddCell("名" + std::to_string(i));
    rows.AddCell("15");
  }
  DigestedRange range;
  for (size_t r = 0; r < rows.rows(); ++r) {
    RowDigest d;
    h.Hash(rows, r, &d);
    range.Add(d);
  }
  return range;
}

RangeRequest Compare(uint64_t id, const DigestedRange& range, const char* upper) {
  RangeRequest q;
  q.range = id;
  q.source = range.Summary(BucketPath{});
  if (upper) {
    q.upper_key = {upper};
  } else {
    q.last = true;
  }
  return q;
}

TEST_CASE("the agent compares ranges, answers about buckets and applies repairs") {
  TempDir dir;
  const std::string conn = SqliteConnection(dir.File("t.db"));
  auto w = TableWriter::Open(conn);
  REQUIRE(w.ok());
  TableReconciler reconciler(w->get());
  TableBegin load;
  load.subscription = "s1";
  load.run_id = 1;
  load.spec = Spec();
  REQUIRE((*w)->BeginTable(load).ok());
  RowBatch rows(3);
  for (int i = 1; i <= 300; ++i) {
    rows.AddCell(std::to_string(i));
    rows.AddCell("名" + std::to_string(i));
    rows.AddCell(i % 2 ? "15" : "015");  // spelt two ways: the same value
  }
  REQUIRE((*w)->ApplyBatch("s1", 1, R"({"after":"2026-01-01 00:00:00","key":[]})", rows).ok());

  ReconcileBegin begin;
  begin.table = load;
  begin.table.run_id = 7;
  TableReady ready = reconciler.Begin(begin);
  INFO(ready.error);
  REQUIRE(ready.code == StatusCode::kOk);
  CHECK(ready.ledger.batch_seq == 1);
  // The consumer damages its copy behind DX's back (another connection, committed) after the
  // table was checked: the reads must see it (not a snapshot left open by the check).
  Exec(conn, "DELETE FROM student WHERE id = 150");
  Exec(conn, "UPDATE student SET name = 'X' WHERE id = 250");

  RowHasher h(Spec());
  // Source: 1..300 except 77 (deleted at the source), split at 100 and 200.
  DigestedRange r0 = SourceRange(h, 1, 100, 77), r1 = SourceRange(h, 101, 200),
                r2 = SourceRange(h, 201, 300);
  RangeQuery q;
  q.subscription = "s1";
  q.run_id = 7;
  q.requests = {Compare(0, r0, "100"), Compare(1, r1, "200"), Compare(2, r2, nullptr)};
  RangeAnswer a = reconciler.Answer(q);
  REQUIRE(a.code == StatusCode::kOk);
  REQUIRE(a.items.size() == 3);
  for (const RangeAnswerItem& item : a.items) {
    CAPTURE(item.range);
    CHECK(item.kind == RangeAnswerItem::Kind::kChildren);  // each range differs once
  }
  CHECK(a.items[0].whole.count == 100);  // the agent still holds 77
  CHECK(a.items[1].whole.count == 99);   // but lost 150

  // Range 0: find the bucket that differs and list it: the agent names key 77 as extra.
  auto mine = r0.Children(BucketPath{});
  std::vector<int> differ = DifferingChildren(mine, a.items[0].children);
  REQUIRE(differ.size() == 1);
  RangeRequest list;
  list.kind = RangeRequest::Kind::kList;
  list.range = 0;
  list.path = BucketPath{}.Child(differ[0]);
  RangeRequest release;
  release.kind = RangeRequest::Kind::kRelease;
  release.range = 1;
  q.requests = {list, release};
  a = reconciler.Answer(q);
  REQUIRE(a.code == StatusCode::kOk);
  REQUIRE(a.items.size() == 1);
  BucketDiff diff = CompareBucket(h, r0, r0.RowsIn(list.path), a.items[0].rows);
  CHECK(diff.missing.empty());
  CHECK(diff.changed.empty());
  REQUIRE(diff.extra.size() == 1);
  CHECK(a.items[0].rows[diff.extra[0]].key == std::vector<std::string>{"77"});

  SUBCASE("a released range is forgotten") {
    RangeRequest expand;
    expand.kind = RangeRequest::Kind::kExpand;
    expand.range = 1;
    q.requests = {expand};
    CHECK(reconciler.Answer(q).code == StatusCode::kInvalidArgument);
  }
  SUBCASE("ranges asked out of order are refused") {
    q.requests = {Compare(5, r0, "100")};
    CHECK(reconciler.Answer(q).code == StatusCode::kInvalidArgument);
  }
  SUBCASE("a repair deletes, upserts and keeps the watermark, once") {
    RowBatch upserts(3), keys(1);
    for (const char* id : {"150", "250"}) {
      upserts.AddCell(id);
      upserts.AddCell(std::string("名") + id);
      upserts.AddCell("15");
    }
    keys.AddCell("77");
    RepairBatch repair;
    repair.subscription = "s1";
    repair.run_id = 7;
    repair.seq = 2;
    repair.upserts = 2;
    repair.deletes = 1;
    BatchAck ack = reconciler.Repair(repair, upserts, keys);
    REQUIRE(ack.code == StatusCode::kOk);
    CHECK_FALSE(ack.duplicate);
    CHECK(Query(conn, "SELECT count(*) FROM student") == "299");
    CHECK(Query(conn, "SELECT count(*) FROM student WHERE id = 77") == "0");
    CHECK(Query(conn, "SELECT name FROM student WHERE id = 250") == "名250");
    CHECK(Query(conn, "SELECT batch_seq || ' ' || watermark FROM dx_ledger") ==
          R"(2 {"after":"2026-01-01 00:00:00","key":[]})");
    ack = reconciler.Repair(repair, upserts, keys);  // re-sent
    CHECK(ack.duplicate);
    repair.seq = 5;  // a gap
    CHECK(reconciler.Repair(repair, upserts, keys).code == StatusCode::kDataLoss);
  }
  SUBCASE("a repair that fails leaves nothing behind") {
    RowBatch upserts(3), keys(1);
    upserts.AddCell("150");
    upserts.AddNull();  // NOT NULL name: the database refuses the row
    upserts.AddCell("1");
    keys.AddCell("77");
    RepairBatch repair;
    repair.subscription = "s1";
    repair.run_id = 7;
    repair.seq = 2;
    repair.upserts = 1;
    repair.deletes = 1;
    BatchAck ack = reconciler.Repair(repair, upserts, keys);
    CHECK(ack.code != StatusCode::kOk);
    CHECK(Query(conn, "SELECT count(*) FROM student WHERE id = 77") == "1");  // not deleted
    CHECK(Query(conn, "SELECT batch_seq FROM dx_ledger") == "1");
  }
  SUBCASE("a dry run refuses repairs") {
    begin.dry_run = true;
    begin.table.run_id = 8;
    REQUIRE(reconciler.Begin(begin).code == StatusCode::kOk);
    RepairBatch repair;
    repair.subscription = "s1";
    repair.run_id = 8;
    repair.seq = 2;
    CHECK(reconciler.Repair(repair, RowBatch(3), RowBatch(1)).code ==
          StatusCode::kFailedPrecondition);
  }
}

}  // namespace
}  // namespace dx::agent
