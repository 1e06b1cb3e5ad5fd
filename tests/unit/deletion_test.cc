// Suspension and termination at the agent: the DeleteSubscription and DeletionDone messages,
// TableWriter::ForgetSubscription on a real SQLite database through unixODBC (only what the
// agent recorded for that subscription goes, idempotently), a resync whose table shape changed
// recreating the table, and the removal of emptied folders inside the shared root only.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "agent/file_receiver.h"
#include "agent/subscription_deletion.h"
#include "agent/table_shape.h"
#include "agent/table_writer.h"
#include "common/odbc.h"
#include "common/sha256.h"
#include "common/watermark.h"
#include "test_util.h"

namespace dx::agent {
namespace {

using testing::SqliteConnection;
using testing::TempDir;

TEST_CASE("deletion messages round-trip; truncated and oversized ones are refused") {
  DeleteSubscription order{"徐汇-学生",
                           (1ULL << 61) | 7,
                           "terminated by prov: 违约",
                           "教学资源",
                           {"教学资源/空", "教学资源/空/更深"}};
  DeleteSubscription order_back;
  REQUIRE(Decode(Encode(order), &order_back).ok());
  CHECK(order_back.subscription == order.subscription);
  CHECK(order_back.run_id == order.run_id);
  CHECK(order_back.reason == order.reason);
  CHECK(order_back.target_path == "教学资源");
  CHECK(order_back.folders == order.folders);
  // A folder count larger than the bytes that follow is refused before anything is allocated.
  DeleteSubscription no_folders{"s", 1, "r", "t", {}};
  std::string many = Encode(no_folders);
  many = many.substr(0, many.size() - 1) + std::string("\x80\x80\x04", 3);  // 65536 folders
  Status refused = Decode(many, &order_back);
  CHECK(refused.code() == StatusCode::kDataLoss);
  CHECK(refused.message().find("folders to delete") != std::string::npos);

  DeletionDone done;
  done.subscription = "徐汇-学生";
  done.run_id = 9;
  done.tables = {"student", "student_2"};
  done.rows = 4000;
  done.files = 17;
  done.folders = 3;
  done.detail = "dropped table student (4000 rows)";
  DeletionDone back;
  REQUIRE(Decode(Encode(done), &back).ok());
  CHECK(back.tables == done.tables);
  CHECK(back.rows == 4000);
  CHECK(back.files == 17);
  CHECK(back.folders == 3);
  CHECK(back.detail == done.detail);
  CHECK(back.code == StatusCode::kOk);

  std::string cut = Encode(done);
  cut.pop_back();
  CHECK(Decode(cut, &back).code() == StatusCode::kDataLoss);
  std::string trailing = Encode(order) + "x";
  CHECK(Decode(trailing, &order_back).code() == StatusCode::kDataLoss);
  // A table count larger than the bytes that follow is refused before anything is allocated.
  DeletionDone empty;
  std::string huge = Encode(empty);
  // subscription "", run 0, code 0, error "", then the count: replace it by 2^40.
  huge = huge.substr(0, 4) + std::string("\x80\x80\x80\x80\x80\x20", 6) + huge.substr(5);
  Status st = Decode(huge, &back);
  CHECK(st.code() == StatusCode::kDataLoss);
  CHECK(st.message().find("deleted tables") != std::string::npos);
}

TEST_CASE("a recorded shape is for a spec only with the same columns and catalog types") {
  TableSpec spec;
  spec.table = "student";
  spec.columns = {{"id", ColumnType::kBigint, 0, 0, true, true},
                  {"id_card", ColumnType::kChar, 18, 0, false, false}};
  const std::string shape =
      "id\tBIGINT\t-5\t19\t0\tbigint\n"
      "id_card\tCHAR\t1\t18\t0\tchar(18)\n";
  CHECK(ShapeIsFor(spec, shape));
  TableSpec upper = spec;
  upper.columns[1].name = "ID_CARD";
  CHECK(ShapeIsFor(upper, shape));  // names without regard to case
  TableSpec hashed = spec;
  hashed.columns[1].length = 64;  // id_card now hashed: char(64)
  CHECK_FALSE(ShapeIsFor(hashed, shape));
  TableSpec dropped = spec;
  dropped.columns.pop_back();  // id_card now dropped
  CHECK_FALSE(ShapeIsFor(dropped, shape));
  TableSpec more = spec;
  more.columns.push_back({"name", ColumnType::kVarchar, 30, 0, false, false});
  CHECK_FALSE(ShapeIsFor(more, shape));
}

TableBegin Begin(const std::string& sub, const std::string& table) {
  TableBegin b;
  b.subscription = sub;
  b.run_id = 1;
  b.spec.table = table;
  b.spec.columns = {{"id", ColumnType::kBigint, 0, 0, true, true},
                    {"id_card", ColumnType::kChar, 18, 0, false, false}};
  return b;
}

RowBatch Rows(std::initializer_list<std::pair<const char*, const char*>> rows) {
  RowBatch b(2);
  for (const auto& [id, card] : rows) {
    b.AddCell(id);
    b.AddCell(card);
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

TEST_CASE("a subscription's tables, files records and ledger are forgotten; others are kept") {
  TempDir dir;
  const std::string conn = SqliteConnection(dir.File("t.db"));
  auto w = TableWriter::Open(conn);
  REQUIRE(w.ok());
  TableWriter& writer = *w.value();
  REQUIRE(writer.BeginTable(Begin("s1", "student")).ok());
  REQUIRE(writer.ApplyBatch("s1", 1, "wm", Rows({{"1", "310104200001011234"}, {"2", "x"}})).ok());
  REQUIRE(writer.BeginTable(Begin("s2", "teacher")).ok());
  REQUIRE(writer.ApplyBatch("s2", 1, "wm", Rows({{"7", "y"}})).ok());
  REQUIRE(writer
              .RecordFiles({{"s1", "教学资源/a.txt", 3, std::string(64, 'a'), false},
                            {"s2", "其他/b.txt", 3, std::string(64, 'b'), false}})
              .ok());
  // The consumer's own table, which DX never touches.
  REQUIRE(Query(conn, "SELECT 1") == "1");
  {
    auto c = OdbcConnection::Open(conn);
    REQUIRE(c.ok());
    REQUIRE((*c)->Execute("CREATE TABLE mine (id INTEGER)").ok());
    REQUIRE((*c)->Execute("INSERT INTO mine VALUES (1)").ok());
    REQUIRE((*c)->Commit().ok());
  }

  auto files = writer.FilesOf("s1");
  REQUIRE(files.ok());
  CHECK(files.value() == std::vector<std::string>{"教学资源/a.txt"});
  auto forgotten = writer.ForgetSubscription("s1");
  REQUIRE(forgotten.ok());
  CHECK(forgotten->tables == std::vector<std::string>{"student"});
  CHECK(forgotten->rows == 2);
  CHECK(forgotten->detail == "dropped table student (2 rows)");
  CHECK(Query(conn, "SELECT count(*) FROM sqlite_master WHERE name = 'student'") == "0");
  CHECK(Query(conn, "SELECT count(*) FROM dx_tables WHERE subscription = 's1'") == "0");
  CHECK(Query(conn, "SELECT count(*) FROM dx_ledger WHERE subscription = 's1'") == "0");
  CHECK(Query(conn, "SELECT count(*) FROM dx_files WHERE subscription = 's1'") == "0");
  // The other subscription and the consumer's table are untouched.
  CHECK(Query(conn, "SELECT count(*) FROM teacher") == "1");
  CHECK(Query(conn, "SELECT count(*) FROM dx_files WHERE subscription = 's2'") == "1");
  CHECK(Query(conn, "SELECT count(*) FROM mine") == "1");
  CHECK(writer.Ledger().size() == 1);
  CHECK(writer.ApplyBatch("s2", 2, "wm2", Rows({{"8", "z"}})).ok());

  // Again (the confirmation was lost): nothing left to delete, and that is a success.
  auto again = writer.ForgetSubscription("s1");
  REQUIRE(again.ok());
  CHECK(again->tables.empty());
  CHECK(again->detail == "no table held");

  // The record outlives the table when the drop committed alone (MariaDB) and the agent died:
  // the next call forgets it.
  REQUIRE(writer.BeginTable(Begin("s1", "student")).ok());
  {
    auto c = OdbcConnection::Open(conn);
    REQUIRE(c.ok());
    REQUIRE((*c)->Execute("DROP TABLE student").ok());
    REQUIRE((*c)->Commit().ok());
  }
  auto half = writer.ForgetSubscription("s1");
  REQUIRE(half.ok());
  CHECK(half->tables.empty());
  CHECK(Query(conn, "SELECT count(*) FROM dx_tables WHERE subscription = 's1'") == "0");

  // Resumed later: a resync creates the table afresh from sequence 0.
  TableBegin resync = Begin("s1", "student");
  resync.reset = true;
  resync.reset_id = "r1";
  auto ready = writer.BeginTable(resync);
  REQUIRE(ready.ok());
  CHECK(ready->ledger.batch_seq == 0);
  CHECK(writer.ApplyBatch("s1", 1, "wm", Rows({{"1", "310***********1234"}})).ok());
  CHECK(Query(conn, "SELECT id_card FROM student") == "310***********1234");

  // After a restart the agent knows only what its database says.
  w.value().reset();
  auto reopened = TableWriter::Open(conn);
  REQUIRE(reopened.ok());
  CHECK((*reopened)->Ledger().size() == 2);
}

TEST_CASE("a resync whose table shape changed recreates the table; the same shape only clears it") {
  TempDir dir;
  const std::string conn = SqliteConnection(dir.File("t.db"));
  auto w = TableWriter::Open(conn);
  REQUIRE(w.ok());
  TableWriter& writer = *w.value();
  TableBegin begin = Begin("s1", "student");
  begin.spec.columns.push_back({"name", ColumnType::kVarchar, 30, 0, false, false});
  REQUIRE(writer.BeginTable(begin).ok());
  RowBatch rows(3);
  for (const char* v : {"1", "310104200001011234", "张三"}) rows.AddCell(v);
  REQUIRE(writer.ApplyBatch("s1", 1, "wm", rows).ok());

  // Masking changed: id_card is hashed (char(64)), name dropped.
  TableBegin masked = Begin("s1", "student");
  masked.spec.columns[1].length = 64;
  masked.reset = true;
  masked.reset_id = "r1";
  auto ready = writer.BeginTable(masked);
  REQUIRE(ready.ok());
  CHECK(Query(conn,
              "SELECT group_concat(name || ' ' || type, ', ') FROM pragma_table_info("
              "'student')") == "id INTEGER, id_card CHAR(64)");
  CHECK(Query(conn, "SELECT count(*) FROM student") == "0");
  RowBatch hashed(2);
  hashed.AddCell("1");
  hashed.AddCell(std::string(64, 'e'));
  // The load's watermark keeps the resync's id (ExchangeRun carries it on).
  Watermark loading{"2026-06-01 00:00:00", "", {"1"}, "r1"};
  REQUIRE(writer.ApplyBatch("s1", 2, loading.Encode(), hashed).ok());

  // The same request again after a crash does not recreate (or clear) it.
  REQUIRE(writer.BeginTable(masked).ok());
  CHECK(Query(conn, "SELECT count(*) FROM student") == "1");
  // A new resync of the same shape clears it and keeps the table.
  masked.reset_id = "r2";
  REQUIRE(writer.BeginTable(masked).ok());
  CHECK(Query(conn, "SELECT count(*) FROM student") == "0");
  // A changed shape without a resync is refused, not recreated.
  TableBegin wider = masked;
  wider.reset = false;
  wider.spec.columns.push_back({"name", ColumnType::kVarchar, 30, 0, false, false});
  auto refused = writer.BeginTable(wider);
  CHECK(refused.status().code() == StatusCode::kFailedPrecondition);
}

TEST_CASE("emptied folders are removed inside the shared root only, never through a link") {
  TempDir dir;
  const std::string root = dir.File("shared");
  std::filesystem::create_directories(root + "/教学资源/课件/高一");
  std::filesystem::create_directories(root + "/kept");
  std::ofstream(root + "/kept/own.txt") << "the consumer's";
  std::filesystem::create_directories(dir.File("outside/empty"));
  REQUIRE(::symlink(dir.File("outside").c_str(), (root + "/link").c_str()) == 0);

  CHECK(RemoveEmptyFolder(root, "教学资源/课件/高一").value());
  CHECK_FALSE(std::filesystem::exists(root + "/教学资源/课件/高一"));
  CHECK_FALSE(RemoveEmptyFolder(root, "教学资源/课件/高一").value());  // gone already
  CHECK_FALSE(RemoveEmptyFolder(root, "kept").value());                // not empty
  CHECK(std::filesystem::exists(root + "/kept/own.txt"));
  CHECK_FALSE(RemoveEmptyFolder(root, "link/empty").value());  // through a link: left alone
  CHECK_FALSE(RemoveEmptyFolder(root, "link").value());        // a link is not a folder
  CHECK(std::filesystem::exists(dir.File("outside/empty")));
  CHECK(RemoveEmptyFolder(root, "../outside/empty").status().code() ==
        StatusCode::kInvalidArgument);
  CHECK(std::filesystem::exists(dir.File("outside/empty")));
}

TEST_CASE(
    "a file subscription's deletion takes its files, transfers, part files and folders, "
    "inside its folder only") {
  TempDir dir;
  const std::string root = dir.File("shared");
  std::filesystem::create_directories(root);
  const std::string conn = SqliteConnection(dir.File("t.db"));
  auto w = TableWriter::Open(conn);
  REQUIRE(w.ok());
  TableWriter& writer = *w.value();
  FileReceiver files(root, 0640,
                     [&](const std::vector<ReceivedFile>& f) { return writer.RecordFiles(f); });
  auto put = [&](const std::string& sub, const std::string& path, const std::string& data) {
    FilePut p;
    p.meta = {sub, 1, path, data.size(), Sha256::Hex(data), ""};
    p.data = data;
    files.Put(p);
  };
  put("s1", "教学资源/课件/a.txt", "第一课");
  put("s2", "通知/b.txt", "通知");
  files.Folder({"s1", 1, "教学资源/空/更深", false});
  files.FinishPending();
  for (const FileResult& r : files.TakeResults(true)) CHECK(r.code == StatusCode::kOk);
  // A large file of s1 half received, a part file left by an earlier transfer, the consumer's
  // own file and empty folder in s1's folder, and a path recorded for s1 outside its folder.
  const std::string big(kFileChunkBytes + 10, 'x');
  FileMeta meta{"s1", 1, "教学资源/课件/大.bin", big.size(), Sha256::Hex(big), "v1"};
  REQUIRE(files.Offer(meta).code == StatusCode::kOk);
  files.Chunk({"s1", meta.path, 0, false, big.substr(0, kFileChunkBytes)});
  std::ofstream(root + "/教学资源/空/.dx-0123456789abcdef-0123456789abcdef.dxpart") << "old";
  std::ofstream(root + "/教学资源/own.txt") << "the consumer's";
  std::filesystem::create_directories(root + "/教学资源/mine");
  std::filesystem::create_directories(root + "/其他");
  std::ofstream(root + "/其他/x.txt") << "x";
  REQUIRE(writer.RecordFiles({{"s1", "其他/x.txt", 1, Sha256::Hex("x"), false}}).ok());

  DeleteSubscription order{"s1", 9, "terminated", "教学资源", {"教学资源/空/更深"}};
  DeletionDone done = DeleteHoldings(order, writer, &files, root);
  CHECK(done.code == StatusCode::kOk);
  CHECK(done.files == 1);
  CHECK(done.folders == 3);  // 课件 (emptied), 空/更深 (created), 空 (emptied)
  CHECK(done.detail.find("deleted 1 file(s) and 3 emptied folder(s); removed 1 part file(s); "
                         "left 1 recorded path(s)") == 0);
  CHECK(files.transfers_in_progress() == 0);
  std::vector<std::string> left;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    left.push_back(e.path().string().substr(root.size() + 1));
  }
  std::sort(left.begin(), left.end());
  CHECK(left == std::vector<std::string>{"其他", "其他/x.txt", "教学资源", "教学资源/mine",
                                         "教学资源/own.txt", "通知", "通知/b.txt"});
  CHECK(writer.FilesOf("s1").value().empty());
  CHECK(writer.FilesOf("s2").value() == std::vector<std::string>{"通知/b.txt"});

  // Again (the confirmation was lost): nothing left, and that is a success.
  done = DeleteHoldings(order, writer, &files, root);
  CHECK(done.code == StatusCode::kOk);
  CHECK(done.files == 0);
}

}  // namespace
}  // namespace dx::agent
