// SourcePool on the real SQLite ODBC driver: connections are reused between runs, at most
// max_per_source are open at once (a further Acquire waits, then says the source is busy),
// a discarded connection is not reused, and the source clock is read once per max_age.
#include "scheduler/source_pool.h"

#include <doctest/doctest.h>

#include <thread>

#include "scheduler/extractor.h"
#include "test_util.h"

namespace dx::scheduler {
namespace {

using std::chrono::milliseconds;
using testing::SqliteConnection;
using testing::TempDir;

TEST_CASE("source connections are reused, bounded and dropped on error") {
  TempDir dir;
  const std::string cs = SqliteConnection(dir.File("src.db"));
  SourcePool pool(2, 60);
  {
    auto a = pool.Acquire(cs, milliseconds(100));
    REQUIRE(a.ok());
    CHECK_FALSE(a->reused());
    REQUIRE((*a.value()).Execute("CREATE TABLE t(x INTEGER)").ok());
  }
  CHECK(pool.opened() == 1);
  for (int i = 0; i < 5; ++i) {  // five "polls": one connection
    auto b = pool.Acquire(cs, milliseconds(100));
    REQUIRE(b.ok());
    CHECK(b->reused());
  }
  CHECK(pool.opened() == 1);

  // Bounded: two leased, a third waits and is refused after its deadline.
  auto c1 = pool.Acquire(cs, milliseconds(100));
  auto c2 = pool.Acquire(cs, milliseconds(100));
  REQUIRE(c1.ok());
  REQUIRE(c2.ok());
  auto c3 = pool.Acquire(cs, milliseconds(50));
  REQUIRE_FALSE(c3.ok());
  CHECK(c3.status().code() == StatusCode::kUnavailable);
  CHECK(c3.status().message().find("busy") != std::string::npos);
  // One returned while a caller waits: the waiter gets it.
  std::thread give_back([&] {
    std::this_thread::sleep_for(milliseconds(50));
    c1 = Result<SourceLease>(Unavailable("released"));
  });
  auto c4 = pool.Acquire(cs, milliseconds(5000));
  give_back.join();
  CHECK(c4.ok());
  // A discarded connection is closed: the next Acquire opens a new one.
  c4->Discard();
  const int64_t before = pool.opened();
  c2 = Result<SourceLease>(Unavailable("released"));
  auto c5 = pool.Acquire(cs, milliseconds(100));
  auto c6 = pool.Acquire(cs, milliseconds(100));
  REQUIRE(c5.ok());
  REQUIRE(c6.ok());
  CHECK(pool.opened() == before + 1);
}

TEST_CASE("an extractor whose read failed does not return its connection") {
  TempDir dir;
  const std::string cs = SqliteConnection(dir.File("src.db"));
  SourcePool pool(4, 60);
  {
    auto lease = pool.Acquire(cs, milliseconds(100));
    REQUIRE(lease.ok());
    auto ex = Extractor::Open(std::move(lease).value());
    REQUIRE(ex.ok());
    ExtractSpec spec;
    spec.source_table = "missing_table";
    ColumnSpec id;
    id.name = "id";
    id.type = ColumnType::kInteger;
    id.primary_key = true;
    spec.columns = {id};
    spec.updatetime = id;
    spec.bound = "2030-01-01 00:00:00";
    CHECK_FALSE(ex.value()->Start(spec).ok());
  }
  auto again = pool.Acquire(cs, milliseconds(100));
  REQUIRE(again.ok());
  CHECK_FALSE(again->reused());
  CHECK(pool.opened() == 2);
}

TEST_CASE("the source clock is read once per max_age") {
  TempDir dir;
  const std::string cs = SqliteConnection(dir.File("src.db"));
  SourcePool pool(2, 60);
  auto lease = pool.Acquire(cs, milliseconds(100));
  REQUIRE(lease.ok());
  auto first = pool.SourceNow(lease.value(), cs, "SELECT 'first'", milliseconds(60000));
  auto cached = pool.SourceNow(lease.value(), cs, "SELECT 'second'", milliseconds(60000));
  auto fresh = pool.SourceNow(lease.value(), cs, "SELECT 'third'", milliseconds(0));
  REQUIRE(first.ok());
  REQUIRE(cached.ok());
  REQUIRE(fresh.ok());
  CHECK(first.value() == "first");
  CHECK(cached.value() == "first");
  CHECK(fresh.value() == "third");
}

}  // namespace
}  // namespace dx::scheduler
