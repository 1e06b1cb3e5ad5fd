// A small C++ face on the unixODBC driver manager: connections, transactions, prepared
// statements with reusable text parameter slots, and streaming result reads.
// Not thread-safe: one connection belongs to one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace dx {

class OdbcStatement;

// A column of an existing table, as the driver describes it (SQLColumns).
struct DbColumnInfo {
  std::string name;
  int16_t data_type = 0;  // SQL_* type code
  std::string type_name;
  int64_t size = 0;
  std::string table;  // the table the driver matched (names are search patterns)
  // Scale of a decimal, fractional digits of a timestamp; -1 when the driver reports none.
  int decimal_digits = -1;
};

// A table or view the driver lists (SQLTables).
struct DbTableInfo {
  std::string catalog;  // empty when the driver reports none
  std::string schema;
  std::string name;
};

// How a parameter travels to the driver: UTF-8 text (SQL_C_CHAR) or bytes (SQL_C_BINARY).
enum class ParamKind : uint8_t { kText, kBinary };

class OdbcConnection {
 public:
  // Connects with an ODBC connection string ("DSN=x" or "Driver=...;..."). When the driver
  // benefits from options DX relies on (SqlDialect::ConnectionOptions), they are added unless
  // the string already sets them. Failure to reach the database is kUnavailable.
  static Result<std::unique_ptr<OdbcConnection>> Open(const std::string& connection_string,
                                                      bool add_driver_options = true);
  ~OdbcConnection();
  OdbcConnection(const OdbcConnection&) = delete;
  OdbcConnection& operator=(const OdbcConnection&) = delete;

  const std::string& dbms_name() const { return dbms_name_; }
  const std::string& driver_name() const { return driver_name_; }
  // SQLGetInfo(SQL_IDENTIFIER_CASE): how the DBMS keeps unquoted names (SQL_IC_*).
  int identifier_case() const { return identifier_case_; }
  // False once the driver knows the connection is gone (SQL_ATTR_CONNECTION_DEAD); true when
  // the driver cannot tell. Costs no round trip.
  bool DriverSaysAlive();

  Status SetAutocommit(bool on);
  Status Commit();
  Status Rollback();
  // Runs a statement with no parameters and discards any result.
  Status Execute(const std::string& sql);
  Result<std::unique_ptr<OdbcStatement>> Prepare(const std::string& sql);
  // Runs a query without parameters and returns the first column of the first row ("" if none).
  Result<std::string> QueryScalar(const std::string& sql);
  // The columns of `table` (in `schema` when not empty); empty when the table does not exist.
  // Only the table of exactly that name counts: the catalog call takes a pattern, in which
  // '_' matches any character. When the DBMS matched names without regard to case and no
  // table has exactly this spelling, the one it matched is returned.
  Result<std::vector<DbColumnInfo>> Columns(const std::string& table,
                                            const std::string& schema = "");
  // Every table and view the driver lists (SQLTables), in the driver's order.
  Result<std::vector<DbTableInfo>> Tables();
  // The connection's current catalog (database), or "" when the driver has none.
  std::string CurrentCatalog();

 private:
  friend class OdbcStatement;
  OdbcConnection() = default;
  Status Connect(const std::string& connection_string);
  void Disconnect();

  void* env_ = nullptr;
  void* dbc_ = nullptr;
  bool connected_ = false;
  std::string dbms_name_;
  std::string driver_name_;
  int identifier_case_ = 0;
};

// A prepared statement. Parameters are text (SQL_C_CHAR, UTF-8) or bytes (SQL_C_BINARY) held
// in slots bound once and refilled before each Execute, so a hot loop never re-binds unless a
// value outgrows its slot.
class OdbcStatement {
 public:
  ~OdbcStatement();
  OdbcStatement(const OdbcStatement&) = delete;
  OdbcStatement& operator=(const OdbcStatement&) = delete;

  // Declares `count` text parameters. Must be called before SetParam/SetNull.
  Status DeclareParams(size_t count);
  // Declares one parameter of each kind, in marker order.
  Status DeclareParams(const std::vector<ParamKind>& kinds);
  // Copies `value` into parameter slot `index` (0-based); bytes for a binary slot.
  Status SetParam(size_t index, std::string_view value);
  void SetNull(size_t index);
  // Executes with the current parameter values. For queries, rows are then read with Fetch.
  Status Execute();
  // Closes an open cursor so the statement can be executed again.
  Status CloseCursor();

  Result<size_t> ColumnCount();
  // Advances to the next row; false at the end.
  Result<bool> Fetch();
  // Reads column `index` (0-based) of the current row as text; returns false for NULL.
  Result<bool> GetText(size_t index, std::string* out);
  // Reads column `index` as raw bytes (SQL_C_BINARY); returns false for NULL.
  Result<bool> GetBytes(size_t index, std::string* out);

 private:
  friend class OdbcConnection;
  OdbcStatement(OdbcConnection* conn, void* stmt) : conn_(conn), stmt_(stmt) {}
  Status BindSlot(size_t index);
  Result<bool> GetData(size_t index, bool binary, std::string* out);

  struct Slot {
    std::vector<char> buffer;
    int64_t indicator = 0;  // SQLLEN
    ParamKind kind = ParamKind::kText;
  };
  OdbcConnection* conn_;
  void* stmt_;
  std::vector<Slot> slots_;
  std::vector<char> read_buffer_;
};

// Classifies an ODBC failure by its SQLSTATE: connection and lock problems are retryable.
StatusCode CodeForSqlState(const std::string& sqlstate, const std::string& message);
// True when a failure was a wait for a lock another session holds (SQLite busy, lock wait
// timeouts, deadlocks): worth retrying on the same connection after a short back-off.
bool IsLockConflict(const Status& status);

// Appends each `key=value` of `options` whose key `connection_string` does not set already.
std::string WithConnectionOptions(const std::string& connection_string, const std::string& options);

}  // namespace dx
