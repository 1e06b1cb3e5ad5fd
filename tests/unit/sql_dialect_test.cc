#include "common/sql_dialect.h"

#include <doctest/doctest.h>

namespace dx {
namespace {

TableSpec Student() {
  TableSpec spec;
  spec.table = "student";
  spec.columns = {{"id", ColumnType::kBigint, 0, 0, true, true},
                  {"name", ColumnType::kVarchar, 30, 0, true, false},
                  {"birth", ColumnType::kDate, 0, 0, false, false}};
  return spec;
}

TEST_CASE("the DBMS is recognised from what the driver reports") {
  CHECK(DbmsFromName("SQLite") == Dbms::kSqlite);
  CHECK(DbmsFromName("PostgreSQL") == Dbms::kPostgres);
  CHECK(DbmsFromName("MariaDB") == Dbms::kMysql);
  CHECK(DbmsFromName("MySQL") == Dbms::kMysql);
  CHECK(DbmsFromName("Oracle") == Dbms::kGeneric);
}

TEST_CASE("create table maps catalog types per DBMS") {
  CHECK(SqlDialect(Dbms::kSqlite).CreateTable(Student()) ==
        "CREATE TABLE \"student\" (\"id\" INTEGER NOT NULL, \"name\" VARCHAR(30) NOT NULL, "
        "\"birth\" DATE, PRIMARY KEY (\"id\"))");
  CHECK(SqlDialect(Dbms::kPostgres).CreateTable(Student()) ==
        "CREATE TABLE \"student\" (\"id\" BIGINT NOT NULL, \"name\" VARCHAR(30) NOT NULL, "
        "\"birth\" DATE, PRIMARY KEY (\"id\"))");
  CHECK(SqlDialect(Dbms::kMysql).CreateTable(Student()) ==
        "CREATE TABLE `student` (`id` BIGINT NOT NULL, `name` VARCHAR(30) NOT NULL, "
        "`birth` DATE, PRIMARY KEY (`id`)) DEFAULT CHARSET=utf8mb4");
}

TEST_CASE("upserts use each driver's fastest statement shape") {
  CHECK(SqlDialect(Dbms::kSqlite).Upsert(Student(), 2) ==
        "WITH _dx AS (SELECT 1) INSERT INTO \"student\" (\"id\", \"name\", \"birth\") VALUES "
        "(?, ?, ?),(?, ?, ?) ON CONFLICT (\"id\") DO UPDATE SET \"name\"=excluded.\"name\", "
        "\"birth\"=excluded.\"birth\"");
  CHECK(SqlDialect(Dbms::kPostgres).Upsert(Student(), 1) ==
        "INSERT INTO \"student\" (\"id\", \"name\", \"birth\") VALUES (CAST(? AS BIGINT), ?, "
        "CAST(? AS DATE)) ON CONFLICT (\"id\") DO UPDATE SET \"name\"=excluded.\"name\", "
        "\"birth\"=excluded.\"birth\"");
  CHECK(SqlDialect(Dbms::kMysql).Upsert(Student(), 1) ==
        "INSERT INTO `student` (`id`, `name`, `birth`) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE "
        "`name`=VALUES(`name`), `birth`=VALUES(`birth`)");
  CHECK(SqlDialect(Dbms::kSqlite).RowsPerStatement(7) == 100);
  CHECK_FALSE(SqlDialect(Dbms::kGeneric).HasUpsert());
}

TEST_CASE("multi-row statements stay within what each driver accepts") {
  // Measured with tests/bench/param_limits.sh (docs/PERFORMANCE.md): psqlODBC 13.02 with
  // server-side prepare breaks above 7,498 parameters, MariaDB Connector/ODBC 3.1 above
  // 32,767, sqliteodbc through unixODBC above 65,535.
  const std::pair<Dbms, size_t> limits[] = {
      {Dbms::kPostgres, 7498}, {Dbms::kMysql, 32767}, {Dbms::kSqlite, 32766}};
  for (auto [dbms, limit] : limits) {
    for (size_t columns : {1, 7, 8, 20, 60, 200, 4096}) {
      CAPTURE(columns);
      size_t rows = static_cast<size_t>(SqlDialect(dbms).RowsPerStatement(columns));
      CHECK(rows >= 1);
      if (columns <= 200) CHECK(rows * columns <= limit * 9 / 10);  // a safety margin
    }
  }
  CHECK(SqlDialect(Dbms::kPostgres).RowsPerStatement(7) >= 800);
}

TEST_CASE("every catalog type has a column type in every dialect") {
  struct Case {
    const char* type;
    const char* sqlite;
    const char* postgres;
    const char* mysql;
  };
  const Case cases[] = {
      {"decimal(5,1)", "DECIMAL(5,1)", "NUMERIC(5,1)", "DECIMAL(5,1)"},
      {"decimal(20,6)", "TEXT", "NUMERIC(20,6)", "DECIMAL(20,6)"},  // SQLite keeps 15 digits
      {"datetime", "DATETIME", "TIMESTAMP", "DATETIME"},
      {"datetime(3)", "DATETIME", "TIMESTAMP(3)", "DATETIME(3)"},
      {"blob", "BLOB", "BYTEA", "LONGBLOB"},
      {"varbinary(16)", "BLOB", "BYTEA", "VARBINARY(16)"},
      {"text", "TEXT", "TEXT", "LONGTEXT"},
      {"char(18)", "CHAR(18)", "CHAR(18)", "CHAR(18)"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.type);
    ColumnSpec col = ParseColumnType(c.type).value();
    CHECK(SqlDialect(Dbms::kSqlite).ColumnTypeSql(col) == c.sqlite);
    CHECK(SqlDialect(Dbms::kPostgres).ColumnTypeSql(col) == c.postgres);
    CHECK(SqlDialect(Dbms::kMysql).ColumnTypeSql(col) == c.mysql);
  }
  CHECK(SqlDialect(Dbms::kPostgres).Placeholder(ParseColumnType("blob").value()) ==
        "CAST(? AS BYTEA)");
}

TEST_CASE("target name case: each DBMS's natural case, or the configured one") {
  CHECK(NaturalNameCase(Dbms::kPostgres, 0) == NameCase::kLower);
  CHECK(NaturalNameCase(Dbms::kSqlite, 0) == NameCase::kPreserve);
  CHECK(NaturalNameCase(Dbms::kMysql, 0) == NameCase::kPreserve);
  CHECK(NaturalNameCase(Dbms::kGeneric, 1) == NameCase::kUpper);  // SQL_IC_UPPER (Oracle, DB2)
  CHECK(NaturalNameCase(Dbms::kGeneric, 3) == NameCase::kPreserve);
  CHECK(ApplyNameCase("XS_JBXX", NameCase::kLower) == "xs_jbxx");
  CHECK(ApplyNameCase("xs_jbxx", NameCase::kUpper) == "XS_JBXX");
  CHECK(ApplyNameCase("Xs_Jbxx", NameCase::kPreserve) == "Xs_Jbxx");
  CHECK(ParseNameCase("LOWER").value() == NameCase::kLower);
  CHECK_FALSE(ParseNameCase("camel").ok());
}

TEST_CASE("lock waits are bounded per DBMS") {
  CHECK(SqlDialect(Dbms::kSqlite).LockTimeoutOption(1000) == "Timeout=500");
  CHECK(SqlDialect(Dbms::kSqlite).SessionSetup(1000).empty());
  CHECK(SqlDialect(Dbms::kPostgres).SessionSetup(1500) ==
        std::vector<std::string>{"SET lock_timeout = 1500"});
  CHECK(SqlDialect(Dbms::kMysql).SessionSetup(1500) ==
        std::vector<std::string>{"SET SESSION innodb_lock_wait_timeout = 2"});
  CHECK(SqlDialect(Dbms::kPostgres).LockTimeoutOption(1000).empty());
}

TEST_CASE("drivers get the options that make them stream") {
  CHECK(SqlDialect::ConnectionOptions("psqlodbcw.so").find("UseDeclareFetch=1") !=
        std::string::npos);
  CHECK(SqlDialect::ConnectionOptions("sqlite3odbc.so") == "StepAPI=1");
}

}  // namespace
}  // namespace dx
