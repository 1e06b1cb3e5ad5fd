// TableWriter: writes subscribed rows into the consumer's local database through ODBC.
// Creates a target table from the catalog's columns when missing and records that it did
// (dx_tables); touches no table it did not create for that subscription; reloads a table the
// consumer dropped or emptied; upserts rows by primary key with the fastest statement shape
// the driver allows, and commits each batch together with its ledger row in one transaction.
// No transaction stays open between operations, lock waits are short and retried.
// Not thread-safe: owned by the agent's writer thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/file_receiver.h"
#include "common/odbc.h"
#include "common/protocol.h"
#include "common/row_batch.h"
#include "common/sql_dialect.h"

namespace dx::agent {

// The agent's own tables in the target database. Target tables may not start with "dx_" in
// any case: the prefix is reserved for them.
inline constexpr char kLedgerTable[] = "dx_ledger";  // subscription, batch sequence, watermark
inline constexpr char kFilesTable[] = "dx_files";    // files received
inline constexpr char kTablesTable[] = "dx_tables";  // tables the agent created, and for whom
bool IsReservedTableName(const std::string& name);

// Settings of the target database (agent.yaml `target`); defaults as documented there.
struct TableWriterOptions {
  // How catalog names become target names; empty: the DBMS's natural case (NaturalNameCase).
  std::optional<NameCase> name_case;
  int lock_timeout_ms = 1000;  // longest single wait for a lock another program holds
  int lock_retry_ms = 15000;   // how long one operation keeps retrying lock waits
  // How often (at most) BeginTable counts a table's rows against the ledger; emptiness and
  // absence are checked on every run. 0 counts on every run.
  int row_check_interval_s = 300;
};

struct ApplyOutcome {
  bool duplicate = false;   // already applied earlier: skipped
  size_t rows_written = 0;  // rows after collapsing repeated keys
};

// What TableWriter::ForgetSubscription removed from the local database.
struct ForgottenTables {
  std::vector<std::string> tables;  // dropped (or emptied) tables, as the database spells them
  int64_t rows = 0;                 // rows they held
  std::string detail;               // for people: "dropped table student (4000 rows)"
};

class TableWriter {
 public:
  // Connects to the local database and loads the ledger (creating the agent's tables if
  // needed). kUnavailable when the database cannot be reached (the caller retries).
  static Result<std::unique_ptr<TableWriter>> Open(const std::string& connection_string,
                                                   const TableWriterOptions& options = {});
  // Open, retried with exponential back-off while the database is unreachable, until `stop`.
  static Result<std::unique_ptr<TableWriter>> OpenWhenReachable(
      const std::string& connection_string, const TableWriterOptions& options, int min_backoff_ms,
      int max_backoff_ms, const std::atomic<bool>& stop);

  Dbms dbms() const { return dialect_.dbms(); }
  const SqlDialect& dialect() const { return dialect_; }
  NameCase name_case() const { return name_case_; }
  std::vector<LedgerEntry> Ledger() const;

  // Prepares a subscription's table and answers the scheduler's TableBegin:
  //  - refuses a reserved name (kInvalidArgument) and a table that exists but that the agent
  //    did not create for this subscription (kFailedPrecondition), untouched, reset or not;
  //  - creates the table when missing and records it; checks its columns otherwise;
  //  - with `reset` (resync), deletes its rows and the ledger watermark in one transaction
  //    (the batch sequence continues);
  //  - when the table is missing or empty, resets it the same way and says so
  //    (TableReady::reloaded and note); when it holds fewer rows than the agent delivered, keeps
  //    it and says so (TableReady::damaged): a reconciliation repairs the rows the consumer
  //    deleted without moving the rest (`for_repair`: this is that reconciliation).
  Result<TableReady> BeginTable(const TableBegin& begin, bool for_repair = false);

  // Applies one batch with sequence `seq`. A batch at or below the ledger's sequence is a
  // re-send and is skipped; a gap is refused. Rows and ledger commit together or not at all.
  // A failing statement fails this subscription only; a lost connection fails all until the
  // next BeginTable reconnects.
  Result<ApplyOutcome> ApplyBatch(const std::string& subscription, uint64_t seq,
                                  const std::string& watermark, const RowBatch& rows);

  // The agent's own record of the files it holds (table dx_files), committed at once.
  Status RecordFiles(const std::vector<ReceivedFile>& files);

  // Reconciliation (agent/table_reconciler.h) reaches the local database only through these.
  // ReadLocal runs `read` on the connection in a fresh transaction (ending one a read left
  // open, so the read sees what other programs committed), then ends it (a rollback: reading
  // changes nothing), so that no DX transaction stays open between messages;
  // a lost connection marks the writer for reconnection as a failed write does.
  Status ReadLocal(const std::function<Status(OdbcConnection&, const SqlDialect&)>& read);
  // Applies a repair as batch `seq` of `subscription` (prepared by BeginTable): deletes the
  // rows whose keys are in `delete_keys` (key cells in key-column order), upserts `rows`, and
  // records `seq` in the ledger with the watermark unchanged, in one transaction. Like
  // ApplyBatch, a re-sent repair is skipped and a gap is refused.
  Result<ApplyOutcome> ApplyRepair(const std::string& subscription, uint64_t seq,
                                   const RowBatch& rows, const RowBatch& delete_keys);
  // Suspension and termination (the scheduler's DeleteSubscription). The paths of the files
  // recorded for `subscription` in dx_files (relative to the shared root).
  Result<std::vector<std::string>> FilesOf(const std::string& subscription);
  // Deletes what the local database holds for `subscription`: each table it created for it
  // (recorded in dx_tables) is dropped — emptied when the database refuses the drop, e.g. for
  // a consumer's view on it — with its dx_tables row in one transaction, then its dx_files
  // rows and its ledger row in another. On MariaDB a DROP commits by itself: a crash right
  // after it leaves the record, and the next call finishes (a table already gone is skipped).
  // Touches no table it did not record. On SQLite, freed pages are overwritten (secure_delete).
  Result<ForgottenTables> ForgetSubscription(const std::string& subscription);

  // For work on a prepared table beside batches (reconciliation): the table as it is in the
  // target (names after name case and as found), or null before BeginTable.
  const TableSpec* TargetTable(const std::string& subscription) const;
  // The connection, for statements on a TargetTable. Valid until the next TableWriter call
  // that reconnects; a caller must end its transactions before returning.
  OdbcConnection& connection() { return *conn_; }

 private:
  struct TableState {
    TableSpec spec;  // target names
    std::vector<ParamKind> kinds;
    std::map<int, std::unique_ptr<OdbcStatement>> upserts;  // by rows per statement
    std::unique_ptr<OdbcStatement> delete_by_key;           // generic DBMS only
    std::unique_ptr<OdbcStatement> insert_row;              // generic DBMS only
  };
  // The ledger row of a subscription. `rows_floor`: rows its table must hold at least (the
  // rows of its full load, which are distinct keys); unknown for ledgers of older agents.
  struct LedgerRow {
    LedgerEntry entry;
    std::optional<int64_t> rows_floor;
  };
  // A row of dx_tables: `table` created (or adopted) by the agent for `subscription`.
  struct OwnedTable {
    std::string subscription;
    std::string table;
    std::string origin;  // created | adopted
    std::string shape;   // RecordShape() at creation; empty when adopted
  };

  TableWriter(std::string connection_string, std::unique_ptr<OdbcConnection> conn, Dbms dbms,
              const TableWriterOptions& options);
  Status LoadLedger();
  Status PrepareSession();
  // After a lost connection, reconnects before the next operation; prepared statements are
  // dropped and the ledger is read again, since it is the truth.
  Status EnsureConnected();
  // Rolls back after a failure and finds out whether the connection itself is lost (then
  // kUnavailable for everyone until reconnected) or only this statement failed.
  Status Check(Status st);
  // Runs `attempt` (which must leave no transaction open when it fails) and retries it with
  // back-off while it fails on a lock another program holds, up to lock_retry_ms.
  Status WithLockRetry(const std::string& what, const std::function<Status()>& attempt);
  Status PrepareTable(const TableBegin& begin, const TableSpec& target, bool for_repair,
                      TableReady* ready);
  Result<std::vector<DbColumnInfo>> TableColumns(const std::string& table);
  Result<int64_t> CountRows(const std::string& table);
  // What the consumer did to `table` (which exists) behind DX's back, if anything: emptied
  // (`reload`) or cut short (repaired by a reconciliation).
  struct Damage {
    std::string note;  // empty: none found
    bool reload = false;
  };
  Result<Damage> DamageOf(const std::string& subscription, const std::string& table);
  const OwnedTable* FindOwned(const std::string& table) const;
  Status WriteOwned(const OwnedTable& owned);
  // Removes the record of a table whose creation failed (MariaDB committed it already).
  Status ForgetOwned(const OwnedTable& owned);
  Result<OdbcStatement*> UpsertStatement(TableState& state, int rows);
  Status WriteRows(TableState& state, const RowBatch& rows, const std::vector<size_t>& order);
  Status WriteGeneric(TableState& state, const RowBatch& rows, const std::vector<size_t>& order);
  Status WriteLedger(const LedgerRow& row);

  const std::string connection_string_;
  const TableWriterOptions options_;
  std::unique_ptr<OdbcConnection> conn_;
  bool broken_ = false;  // the connection was lost; reconnect before the next BeginTable
  SqlDialect dialect_;
  NameCase name_case_;
  std::string schema_;  // PostgreSQL: the schema unqualified names resolve to
  TableSpec ledger_spec_;
  std::unique_ptr<OdbcStatement> ledger_upsert_;
  TableSpec files_spec_;
  std::unique_ptr<OdbcStatement> file_upsert_;
  std::unique_ptr<OdbcStatement> file_delete_;
  TableSpec tables_spec_;
  std::map<std::string, LedgerRow> ledger_;  // by subscription
  std::vector<OwnedTable> owned_;
  std::map<std::string, TableState> tables_;                                 // by subscription
  std::map<std::string, std::chrono::steady_clock::time_point> counted_at_;  // by subscription
};

// Row indexes to write so that a key repeated within one batch is written once, with its last
// values (PostgreSQL and MySQL refuse to touch one row twice in one statement).
std::vector<size_t> CollapseRepeatedKeys(const RowBatch& rows, const std::vector<size_t>& keys);

}  // namespace dx::agent
