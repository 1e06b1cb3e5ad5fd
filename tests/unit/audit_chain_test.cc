// The keyed audit chain: someone who can edit the store (not the key file) cannot rewrite,
// insert or delete records unnoticed — in the middle or at the end of the log.
#include <doctest/doctest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <fstream>

#include "scheduler/access/audit_key.h"
#include "scheduler/secret.h"
#include "scheduler/sqlite_store.h"
#include "test_util.h"

namespace dx::scheduler {
namespace {

using testing::TempDir;

const std::string kKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

void Exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  CAPTURE(sql);
  CAPTURE((err ? err : ""));
  sqlite3_free(err);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

// A store with five keyed records (and the head noted outside it).
struct Log {
  TempDir dir;
  std::string db = dir.File("s.db");
  std::string head = dir.File("audit.head");

  Log() {
    auto store = Open();
    for (int i = 1; i <= 5; ++i) {
      AuditEvent e{1000 + i, "prov",       "catalog.submit", "catalog/x" + std::to_string(i),
                   "ok",     "127.0.0.1:1"};
      e.role = "provider";
      e.organisation = "市教委基础教育处";
      REQUIRE(store->Audit(e).ok());
    }
    REQUIRE(store->VerifyAudit().ok());
  }
  std::unique_ptr<SqliteStore> Open(const std::string& key = kKey) {
    auto store = SqliteStore::Open(db);
    REQUIRE(store.ok());
    if (!key.empty()) (*store)->SetAuditKey(key, head);
    return std::move(store.value());
  }
  Status Verify() { return Open()->VerifyAudit(); }
};

// What an attacker without the key can compute: the record's text hashed with SHA-256.
std::string ForgedHash(int64_t at, const std::string& actor, const std::string& result,
                       const std::string& target, const std::string& prev) {
  const std::string text = std::to_string(at) + "\x1f" + actor + "\x1f" + "catalog.submit" +
                           "\x1f" + target + "\x1f" + result + "\x1f" + "127.0.0.1:1" + "\x1f" +
                           prev + "\x1f" + "provider" + "\x1f" + "市教委基础教育处";
  return Sha256Hex(text);
}

TEST_CASE("a keyed audit chain detects an edited record, even with hashes recomputed") {
  Log log;
  Exec(log.db, "DROP TRIGGER audit_no_update; UPDATE audit SET result='refused' WHERE id=3");
  Status st = log.Verify();
  CHECK(st.code() == StatusCode::kDataLoss);
  CHECK(st.message().find("audit record 3 does not match the chain") != std::string::npos);

  // Rewriting the hashes too (as SHA-256, without the key) does not help.
  Log again;
  std::string prev;
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(again.db.c_str(), &db) == SQLITE_OK);
    sqlite3_stmt* q = nullptr;
    sqlite3_prepare_v2(db, "SELECT hash FROM audit WHERE id=2", -1, &q, nullptr);
    REQUIRE(sqlite3_step(q) == SQLITE_ROW);
    prev = reinterpret_cast<const char*>(sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    sqlite3_close(db);
  }
  std::string sql = "DROP TRIGGER audit_no_update;";
  for (int id = 3; id <= 5; ++id) {
    const std::string result = id == 3 ? "refused" : "ok";
    const std::string hash =
        ForgedHash(1000 + id, "prov", result, "catalog/x" + std::to_string(id), prev);
    sql += "UPDATE audit SET result='" + result + "', prev_hash='" + prev + "', hash='" + hash +
           "' WHERE id=" + std::to_string(id) + ";";
    prev = hash;
  }
  Exec(again.db, sql);
  st = again.Verify();
  CHECK(st.code() == StatusCode::kDataLoss);
  CHECK(st.message().find("audit record 3") != std::string::npos);
  // ... nor does calling them unkeyed.
  Exec(again.db, "DROP TRIGGER audit_no_update; UPDATE audit SET scheme='sha256' WHERE id>=3");
  st = again.Verify();
  CHECK(st.message().find("audit record 3 is not keyed but follows keyed records") !=
        std::string::npos);
}

TEST_CASE("a keyed audit chain detects deleted records, in the middle and at the end") {
  Log middle;
  Exec(middle.db, "DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE id=3");
  Status st = middle.Verify();
  CHECK(st.code() == StatusCode::kDataLoss);
  CHECK(st.message().find("audit records 3 to 3 were deleted") != std::string::npos);

  Log tail;
  Exec(tail.db, "DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE id>=4");
  st = tail.Verify();
  CHECK(st.code() == StatusCode::kDataLoss);
  CHECK(st.message().find("after 3 (up to 5, the newest written) were deleted") !=
        std::string::npos);
}

TEST_CASE("the chain verifies only with its key; unkeyed records before keyed ones stay valid") {
  Log log;
  auto without = log.Open("");
  Status st = without->VerifyAudit();
  CHECK(st.code() == StatusCode::kFailedPrecondition);
  CHECK(log.Open(std::string(64, 'a'))->VerifyAudit().code() == StatusCode::kDataLoss);

  TempDir dir;
  {
    auto plain = SqliteStore::Open(dir.File("s.db"));
    REQUIRE(plain.ok());
    REQUIRE((*plain)->Audit({1, "operator", "run", "s1", "ok", ""}).ok());
  }
  auto keyed = SqliteStore::Open(dir.File("s.db"));
  REQUIRE(keyed.ok());
  (*keyed)->SetAuditKey(kKey, dir.File("head"));
  REQUIRE((*keyed)->Audit({2, "operator", "run", "s1", "ok", ""}).ok());
  CHECK((*keyed)->VerifyAudit().ok());
  auto list = (*keyed)->ListAudit({});
  REQUIRE(list.ok());
  CHECK(list->size() == 2);
}

TEST_CASE("audit records are listed by who, what, target and when") {
  Log log;
  auto store = log.Open();
  AuditEvent other{2000,          "cons",       "application.create", "application/1",
                   "refused: no", "127.0.0.1:2"};
  other.role = "consumer";
  other.organisation = "徐汇区教育局";
  REQUIRE(store->Audit(other).ok());
  auto count = [&](AuditFilter f) { return store->ListAudit(f).value().size(); };
  CHECK(count({}) == 6);
  CHECK(count({"cons"}) == 1);
  CHECK(count({"", "catalog."}) == 5);
  CHECK(count({"", "", "x3"}) == 1);
  CHECK(count({"", "", "", "徐汇区教育局"}) == 1);
  CHECK(count({"", "", "", "", 1003, 1005}) == 2);
  AuditFilter newest;
  newest.limit = 2;
  auto two = store->ListAudit(newest).value();
  REQUIRE(two.size() == 2);
  CHECK(two[0].id == 5);  // the newest two, oldest first
  CHECK(two[1].event.role == "consumer");
}

TEST_CASE("the audit key file is created 0600 and refused when others may read it") {
  TempDir dir;
  const std::string path = dir.File("audit.key");
  auto key = LoadOrCreateAuditKey(path);
  REQUIRE(key.ok());
  CHECK(key->size() == 64);
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(LoadOrCreateAuditKey(path).value() == key.value());  // kept
  chmod(path.c_str(), 0644);
  auto open = LoadOrCreateAuditKey(path);
  CHECK(open.status().message().find("has mode 0644") != std::string::npos);
  chmod(path.c_str(), 0600);
  std::ofstream(path) << "short\n";
  CHECK(LoadOrCreateAuditKey(path).status().message().find("does not hold a key") !=
        std::string::npos);
}

}  // namespace
}  // namespace dx::scheduler
