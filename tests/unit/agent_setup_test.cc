// Agent settings a new operator trips on: the files section is optional, and a SQLite target in
// a directory that does not exist is refused at start with the reason.
#include <doctest/doctest.h>

#include "agent/agent_config.h"
#include "test_util.h"

namespace dx::agent {
namespace {

using testing::TempDir;

TEST_CASE("the database file of a SQLite connection string") {
  CHECK(SqliteDatabaseOf("Driver=SQLite3;Database=/var/lib/dx/a.db;JournalMode=WAL") ==
        "/var/lib/dx/a.db");
  CHECK(SqliteDatabaseOf("driver={SQLite3};database={/tmp/a b;c.db}") == "/tmp/a b;c.db");
  CHECK(SqliteDatabaseOf("DSN=local") == "");
  CHECK(SqliteDatabaseOf("Driver=PostgreSQL Unicode;Database=edu;Server=h") == "");
}

TEST_CASE("a tables-only agent needs no files section; a missing SQLite directory is refused") {
  TempDir dir;
  const std::string base = "name: a\nsecret: s3cret-0123456\nscheduler: 127.0.0.1:7800\n";
  auto tables_only = LoadAgentConfig(dir.Write(
      "a.yaml",
      base + "target: {connection: \"Driver=SQLite3;Database=" + dir.File("a.db") + "\"}\n"));
  REQUIRE(tables_only.ok());
  CHECK(tables_only->shared_root.empty());

  auto with_files = LoadAgentConfig(
      dir.Write("b.yaml", base + "target: {connection: \"Driver=SQLite3;Database=a.db\"}\n"
                                 "files: {shared_root: /srv/dx/shared}\n"));
  REQUIRE(with_files.ok());
  CHECK(with_files->shared_root == "/srv/dx/shared");

  auto no_root = LoadAgentConfig(
      dir.Write("c.yaml", base + "target: {connection: c}\nfiles: {mode: \"0600\"}\n"));
  CHECK(no_root.status().message().find("c.yaml:5: key 'files.shared_root': is required") !=
        std::string::npos);

  auto missing =
      LoadAgentConfig(dir.Write("d.yaml", base + "target: {connection: \"Driver=SQLite3;Database=" +
                                              dir.File("nowhere/a.db") + "\"}\n"));
  CHECK(missing.status().code() == StatusCode::kInvalidArgument);
  CHECK(missing.status().message().find(
            "d.yaml:4: key 'target.connection': the directory '" + dir.File("nowhere") +
            "' of the SQLite database does not exist") != std::string::npos);
}

}  // namespace
}  // namespace dx::agent
