// upsert_baseline: the baselines the table benchmark compares DX against, on the same rows
// and the same kind of target. Reads N rows of the bench source (native SQLite) into memory
// first (not timed), then times BEGIN..COMMIT of a prepared single-row
//   naive:  INSERT ... ON CONFLICT upsert through ODBC, row by row, driver defaults
//   native: the same upsert through the native SQLite API
// into an empty student table. Prints "rows=N seconds=S rows_per_s=R".
#include <sqlite3.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "common/odbc.h"
#include "common/sql_dialect.h"

namespace {

using Row = std::vector<std::string>;

dx::TableSpec StudentSpec() {
  dx::TableSpec spec;
  spec.table = "student";
  spec.columns = {{"id", dx::ColumnType::kBigint, 0, 0, true, true},
                  {"name", dx::ColumnType::kVarchar, 30, 0, true, false},
                  {"id_card", dx::ColumnType::kChar, 18, 0, false, false},
                  {"school_code", dx::ColumnType::kVarchar, 10, 0, false, false},
                  {"birth", dx::ColumnType::kDate, 0, 0, false, false},
                  {"gender", dx::ColumnType::kInteger, 0, 0, false, false},
                  {"updatetime", dx::ColumnType::kDatetime, 0, 0, true, false}};
  return spec;
}

std::vector<Row> LoadRows(const std::string& path, int64_t limit) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* st = nullptr;
  std::string sql =
      "SELECT id, name, id_card, school_code, birth, gender, updatetime FROM student "
      "ORDER BY id LIMIT " +
      std::to_string(limit);
  sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr);
  std::vector<Row> rows;
  while (sqlite3_step(st) == SQLITE_ROW) {
    Row r;
    for (int c = 0; c < 7; ++c)
      r.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, c)));
    rows.push_back(std::move(r));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rows;
}

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int Fail(const dx::Status& st) {
  std::fprintf(stderr, "upsert_baseline: %s\n", st.ToString().c_str());
  return 1;
}

// The upsert without DX's statement-shape tricks (no dummy CTE, one row per statement).
std::string PlainUpsert(const dx::SqlDialect& d, const dx::TableSpec& spec) {
  std::string sql = d.Upsert(spec, 1);
  const std::string cte = "WITH _dx AS (SELECT 1) ";
  if (sql.rfind(cte, 0) == 0) sql = sql.substr(cte.size());
  return sql;
}

int RunNative(const std::string& target, const std::vector<Row>& rows) {
  sqlite3* db = nullptr;
  if (sqlite3_open(target.c_str(), &db) != SQLITE_OK) return 1;
  dx::SqlDialect d(dx::Dbms::kSqlite);
  dx::TableSpec spec = StudentSpec();
  sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", nullptr, nullptr,
               nullptr);
  sqlite3_exec(db, d.CreateTable(spec).c_str(), nullptr, nullptr, nullptr);
  sqlite3_stmt* st = nullptr;
  std::string sql = PlainUpsert(d, spec);
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) return 1;
  auto start = std::chrono::steady_clock::now();
  sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
  for (const Row& r : rows) {
    for (int c = 0; c < 7; ++c)
      sqlite3_bind_text(st, c + 1, r[c].data(), static_cast<int>(r[c].size()), SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) return 1;
    sqlite3_reset(st);
  }
  sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  double s = Seconds(start);
  sqlite3_finalize(st);
  sqlite3_close(db);
  std::printf("rows=%zu seconds=%.3f rows_per_s=%.0f\n", rows.size(), s, rows.size() / s);
  return 0;
}

int RunNaive(const std::string& target, const std::vector<Row>& rows) {
  auto conn = dx::OdbcConnection::Open(target, /*add_driver_options=*/false);
  if (!conn.ok()) return Fail(conn.status());
  dx::SqlDialect d(dx::DbmsFromName((*conn)->dbms_name()));
  dx::TableSpec spec = StudentSpec();
  (void)(*conn)->Execute("DROP TABLE IF EXISTS " + d.Quote("student"));
  dx::Status st = (*conn)->Execute(d.CreateTable(spec));
  if (!st.ok()) return Fail(st);
  st = (*conn)->SetAutocommit(false);
  if (!st.ok()) return Fail(st);
  auto stmt = (*conn)->Prepare(PlainUpsert(d, spec));
  if (!stmt.ok()) return Fail(stmt.status());
  st = (*stmt)->DeclareParams(7);
  if (!st.ok()) return Fail(st);
  auto start = std::chrono::steady_clock::now();
  for (const Row& r : rows) {
    for (size_t c = 0; c < 7; ++c) st = (*stmt)->SetParam(c, r[c]);
    st = (*stmt)->Execute();
    if (!st.ok()) return Fail(st);
  }
  st = (*conn)->Commit();
  if (!st.ok()) return Fail(st);
  double s = Seconds(start);
  std::printf("rows=%zu seconds=%.3f rows_per_s=%.0f\n", rows.size(), s, rows.size() / s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"upsert baselines for the table benchmark"};
  std::string mode;
  std::string source;
  std::string target;
  int64_t rows = 1000000;
  app.add_option("mode", mode, "naive | native")->required();
  app.add_option("--source", source, "bench source SQLite file")->required();
  app.add_option("--target", target, "ODBC connection string (naive) or SQLite file (native)")
      ->required();
  app.add_option("--rows", rows, "rows to load");
  CLI11_PARSE(app, argc, argv);
  std::vector<Row> data = LoadRows(source, rows);
  if (mode == "native") return RunNative(target, data);
  if (mode == "naive") return RunNaive(target, data);
  std::fprintf(stderr, "upsert_baseline: unknown mode %s\n", mode.c_str());
  return 2;
}
