// param_limits: measures how many bound parameters one multi-row upsert statement may carry
// through a given ODBC driver, with the statement shape and connection options the agent
// really uses (SqlDialect::Upsert, OdbcConnection's driver options). For each column count it
// binary-searches the largest number of rows whose statement prepares, executes and commits,
// on a fresh connection in a child process per attempt (a failure may leave the connection
// unusable, and psqlODBC crashes on very large statements). Prints one
// line per column count: "columns=K max_rows=R max_params=P first_error=...".
// Used to size SqlDialect::RowsPerStatement; see docs/PERFORMANCE.md.
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "common/odbc.h"
#include "common/sql_dialect.h"

namespace {

// Column k of the probe table: the catalog's scalar types in turn, key first.
dx::ColumnSpec ProbeColumn(size_t k) {
  if (k == 0) return {"id", dx::ColumnType::kBigint, 0, 0, true, true};
  const std::string name = "c" + std::to_string(k);
  switch (k % 5) {
    case 0:
      return {name, dx::ColumnType::kInteger, 0, 0, false, false};
    case 1:
      return {name, dx::ColumnType::kVarchar, 20, 0, false, false};
    case 2:
      return {name, dx::ColumnType::kDecimal, 10, 2, false, false};
    case 3:
      return {name, dx::ColumnType::kDate, 0, 0, false, false};
    default:
      return {name, dx::ColumnType::kDatetime, 0, 0, false, false};
  }
}

std::string ProbeValue(const dx::ColumnSpec& c, size_t row) {
  switch (c.type) {
    case dx::ColumnType::kBigint:
    case dx::ColumnType::kInteger:
      return std::to_string(row + 1);
    case dx::ColumnType::kDecimal:
      return "12.50";
    case dx::ColumnType::kDate:
      return "2024-02-29";
    case dx::ColumnType::kDatetime:
      return "2024-02-29 10:11:12";
    default:
      return "值" + std::to_string(row);
  }
}

// One attempt: a fresh table, one statement of `rows` rows, committed. Empty on success.
std::string Attempt(const std::string& conn_str, const dx::TableSpec& spec, size_t rows) {
  auto conn = dx::OdbcConnection::Open(conn_str);
  if (!conn.ok()) return "connect: " + conn.status().message();
  dx::SqlDialect dialect(dx::DbmsFromName((*conn)->dbms_name()));
  (void)(*conn)->Execute("DROP TABLE " + dialect.Quote(spec.table));
  dx::Status st = (*conn)->Execute(dialect.CreateTable(spec));
  if (!st.ok()) return "create: " + st.message();
  st = (*conn)->SetAutocommit(false);
  auto stmt = (*conn)->Prepare(dialect.Upsert(spec, static_cast<int>(rows)));
  if (!stmt.ok()) return stmt.status().message();
  const size_t ncols = spec.columns.size();
  st = (*stmt)->DeclareParams(ncols * rows);
  for (size_t r = 0; r < rows && st.ok(); ++r) {
    for (size_t c = 0; c < ncols && st.ok(); ++c) {
      st = (*stmt)->SetParam(r * ncols + c, ProbeValue(spec.columns[c], r));
    }
  }
  if (st.ok()) st = (*stmt)->Execute();
  if (st.ok()) st = (*conn)->Commit();
  if (st.ok()) {
    auto count = (*conn)->QueryScalar("SELECT COUNT(*) FROM " + dialect.Quote(spec.table));
    if (!count.ok()) return count.status().message();
    if (count.value() != std::to_string(rows)) return "wrote " + count.value() + " rows";
    (void)(*conn)->Commit();
  }
  return st.ok() ? "" : st.message();
}

// Attempt in a child process: some drivers crash on statements they cannot carry.
std::string AttemptIsolated(const std::string& conn_str, const dx::TableSpec& spec, size_t rows) {
  int fds[2];
  if (pipe(fds) != 0) return "pipe failed";
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    std::string err = Attempt(conn_str, spec, rows);
    if (write(fds[1], err.data(), err.size()) < 0) _exit(3);
    _exit(err.empty() ? 0 : 1);
  }
  close(fds[1]);
  std::string err;
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) err.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status))
    return "driver crashed (signal " + std::to_string(WTERMSIG(status)) + ")";
  if (WEXITSTATUS(status) != 0 && err.empty()) return "attempt failed";
  return err;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"param_limits: largest multi-row upsert statement an ODBC driver accepts"};
  std::string conn_str;
  std::vector<size_t> column_counts = {1, 7, 8, 20, 60};
  size_t max_params = 70000;
  app.add_option("--connection", conn_str, "ODBC connection string")->required();
  app.add_option("--columns", column_counts, "column counts to probe")->capture_default_str();
  app.add_option("--max-params", max_params, "upper end of the search")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  for (size_t k : column_counts) {
    dx::TableSpec spec;
    spec.table = "dx_param_probe";
    for (size_t i = 0; i < k; ++i) spec.columns.push_back(ProbeColumn(i));
    size_t good = 0;                  // largest row count known to work
    size_t bad = max_params / k + 1;  // smallest row count known to fail (or beyond range)
    std::string first_error;
    while (bad - good > 1) {
      size_t mid = good + (bad - good) / 2;
      std::string err = AttemptIsolated(conn_str, spec, mid);
      if (err.empty()) {
        good = mid;
      } else {
        bad = mid;
        first_error = err;
      }
    }
    if (first_error.size() > 160) first_error = first_error.substr(0, 160) + "...";
    std::printf("columns=%zu max_rows=%zu max_params=%zu%s first_error=%s\n", k, good, good * k,
                bad > max_params / k ? " (search limit)" : "",
                first_error.empty() ? "-" : first_error.c_str());
    std::fflush(stdout);
  }
  return 0;
}
