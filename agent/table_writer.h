// TableWriter: writes subscribed rows into the consumer's local database through ODBC.
// Creates a target table from the catalog's columns when missing, refuses one whose shape
// conflicts, upserts rows by primary key with the fastest statement shape the driver allows,
// and commits each batch together with its BatchLedger row in one transaction.
// Not thread-safe: owned by the agent's writer thread.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/file_receiver.h"
#include "common/odbc.h"
#include "common/protocol.h"
#include "common/row_batch.h"
#include "common/sql_dialect.h"

namespace dx::agent {

// Name of the ledger table kept in the target database.
inline constexpr char kLedgerTable[] = "dx_ledger";
// Name of the table of received files kept in the target database.
inline constexpr char kFilesTable[] = "dx_files";

struct ApplyOutcome {
  bool duplicate = false;   // already applied earlier: skipped
  size_t rows_written = 0;  // rows after collapsing repeated keys
};

class TableWriter {
 public:
  // Connects to the local database and loads the ledger (creating its table if needed).
  // kUnavailable when the database cannot be reached (the caller retries with back-off).
  static Result<std::unique_ptr<TableWriter>> Open(const std::string& connection_string);
  // Open, retried with exponential back-off while the database is unreachable, until `stop`.
  static Result<std::unique_ptr<TableWriter>> OpenWhenReachable(
      const std::string& connection_string, int min_backoff_ms, int max_backoff_ms,
      const std::atomic<bool>& stop);

  Dbms dbms() const { return dialect_.dbms(); }
  std::vector<LedgerEntry> Ledger() const;

  // Prepares a subscription's table: creates it when missing, checks its columns otherwise
  // (kFailedPrecondition, table untouched, on conflict). With `reset`, deletes the rows and
  // the ledger watermark in one transaction (the batch sequence continues).
  Result<LedgerEntry> BeginTable(const TableBegin& begin);

  // Applies one batch with sequence `seq`. A batch at or below the ledger's sequence is a
  // re-send and is skipped; a gap is refused. Rows and ledger commit together or not at all.
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

 private:
  struct TableState {
    TableSpec spec;
    std::map<int, std::unique_ptr<OdbcStatement>> upserts;  // by rows per statement
    std::unique_ptr<OdbcStatement> delete_by_key;           // generic DBMS only
    std::unique_ptr<OdbcStatement> insert_row;              // generic DBMS only
  };

  TableWriter(std::string connection_string, std::unique_ptr<OdbcConnection> conn, Dbms dbms);
  Status LoadLedger();
  // After a lost connection (kUnavailable), reconnects before the next operation; prepared
  // statements are dropped and the ledger is read again, since it is the truth.
  Status EnsureConnected();
  Status Check(Status st);
  Status CheckColumns(const TableSpec& spec, const std::vector<DbColumnInfo>& existing);
  Result<OdbcStatement*> UpsertStatement(TableState& state, int rows);
  Status WriteRows(TableState& state, const RowBatch& rows, const std::vector<size_t>& order);
  Status WriteGeneric(TableState& state, const RowBatch& rows, const std::vector<size_t>& order);
  Status WriteLedger(const LedgerEntry& entry);

  const std::string connection_string_;
  std::unique_ptr<OdbcConnection> conn_;
  bool broken_ = false;  // the last operation lost the connection
  SqlDialect dialect_;
  TableSpec ledger_spec_;
  std::unique_ptr<OdbcStatement> ledger_upsert_;
  TableSpec files_spec_;
  std::unique_ptr<OdbcStatement> file_upsert_;
  std::unique_ptr<OdbcStatement> file_delete_;
  std::map<std::string, LedgerEntry> ledger_;
  std::map<std::string, TableState> tables_;  // by subscription
};

// Row indexes to write so that a key repeated within one batch is written once, with its last
// values (PostgreSQL and MySQL refuse to touch one row twice in one statement).
std::vector<size_t> CollapseRepeatedKeys(const RowBatch& rows, const std::vector<size_t>& keys);

}  // namespace dx::agent
