// The agent link's guards that need no network: the store's file mode and identity, wire text
// escaping for logs and the audit, and row-batch counts that could overflow.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>

#include "common/row_batch.h"
#include "common/wire.h"
#include "scheduler/agent_hub.h"
#include "scheduler/sqlite_store.h"
#include "test_util.h"

namespace dx {
namespace {

using scheduler::EscapeWireText;
using scheduler::SqliteStore;

TEST_CASE("the store is created 0600, and a store opened wider is tightened") {
  testing::TempDir dir;
  auto store = SqliteStore::Open(dir.File("s.db"));
  REQUIRE(store.ok());
  struct stat st {};
  REQUIRE(::stat(dir.File("s.db").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  store.value().reset();
  ::chmod(dir.File("s.db").c_str(), 0644);
  store = SqliteStore::Open(dir.File("s.db"));
  REQUIRE(store.ok());
  REQUIRE(::stat(dir.File("s.db").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("a deleted or replaced store is noticed") {
  testing::TempDir dir;
  auto store = SqliteStore::Open(dir.File("s.db"));
  REQUIRE(store.ok());
  CHECK((*store)->CheckFileIdentity().ok());
  std::filesystem::rename(dir.File("s.db"), dir.File("moved.db"));
  Status gone = (*store)->CheckFileIdentity();
  CHECK(gone.code() == StatusCode::kDataLoss);
  CHECK(gone.message().find("deleted") != std::string::npos);
  dir.Write("s.db", "another file");
  Status replaced = (*store)->CheckFileIdentity();
  CHECK(replaced.code() == StatusCode::kDataLoss);
  CHECK(replaced.message().find("replaced") != std::string::npos);
}

TEST_CASE("wire text is cut and escaped before it reaches a log line") {
  CHECK(EscapeWireText("agent-1") == "agent-1");
  CHECK(EscapeWireText("徐汇区教育局") == "徐汇区教育局");
  CHECK(EscapeWireText("a\nb\\c") == "a\\x0ab\\x5cc");
  CHECK(EscapeWireText(std::string("\xff\xfe", 2)) == "\\xff\\xfe");
  std::string huge(10 << 20, 'x');
  std::string shown = EscapeWireText(huge);
  CHECK(shown.size() < 100);
  CHECK(shown.find("(10485760 bytes)") != std::string::npos);
  // A character cut by the limit is dropped, not split.
  std::string cut = EscapeWireText("ab徐汇", 4);
  CHECK(cut.rfind("ab", 0) == 0);
  CHECK(cut.find("\\x") == std::string::npos);
}

TEST_CASE("a batch whose rows x columns overflow is refused before allocating") {
  ByteWriter w;
  w.PutVarint(uint64_t{1} << 62);  // rows: times 4 columns wraps to 0
  w.PutVarint(4);
  auto batch = RowBatch::Decode(w.Take());
  CHECK(batch.status().code() == StatusCode::kDataLoss);
}

}  // namespace
}  // namespace dx
