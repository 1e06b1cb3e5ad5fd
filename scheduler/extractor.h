// Extractor: reads a subscription's rows from its source through ODBC, streaming, strictly
// after a watermark and up to a bound taken on the source's own clock (now minus the safety
// lag), with the approved columns and row filter. During the initial full load rows come in
// primary-key order up to the load's fixed bound; afterwards in (UPDATETIME, primary key)
// order. Several subscriptions can share one read (SharedReader): the query then selects the
// union of their rows and tells, per row, which of their filters it passes (evaluated by the
// source itself, so that collations and types mean what they mean there). One Extractor per
// run; not thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/odbc.h"
#include "common/row_batch.h"
#include "common/sql_dialect.h"
#include "common/watermark.h"
#include "scheduler/model.h"
#include "scheduler/source_pool.h"

namespace dx::scheduler {

// A row filter: conditions that must all hold, and the column each names.
struct RowFilter {
  std::vector<RowCondition> conditions;
  std::vector<ColumnSpec> columns;
};

struct ExtractSpec {
  std::string source_table;
  std::vector<ColumnSpec> columns;  // delivered columns, in wire order (keys flagged)
  ColumnSpec updatetime;            // the UPDATETIME column
  std::vector<RowCondition> filter;
  std::vector<ColumnSpec> filter_columns;  // the column of each filter condition
  Watermark after;                         // read strictly after this (empty: start a full load)
  std::string bound;                       // read rows with UPDATETIME < bound (a full load in
                                           // progress keeps its own bound)
  // Reconciliation: every row the filter passes, in key order as CompareCanonical orders keys
  // (text keys by binary collation), with no UPDATETIME bound; `after` must be empty.
  bool whole_table = false;
  // A shared read: the rows passing any of these filters (and `filter`); after each Read,
  // Extractor::route_rows(r) lists the rows passing filter r.
  std::vector<RowFilter> routes;
  // False when some reader takes every row: the routes then only flag rows, not select them.
  bool routes_select = true;
  // Keep each row's UPDATETIME as the source spells it (Extractor::row_updatetimes()).
  bool row_updatetimes = false;
};

class Extractor {
 public:
  static Result<std::unique_ptr<Extractor>> Open(const std::string& connection_string);
  // Reads through a connection taken from a SourcePool: it goes back to the pool when the
  // Extractor is destroyed, unless a read failed or a result was left unread.
  static Result<std::unique_ptr<Extractor>> Open(SourceLease lease);
  ~Extractor();
  // Closes the connection instead of returning it to its pool.
  void DiscardConnection() { clean_ = false; }
  // True when the connection served an earlier run.
  bool reused_connection() const { return conn_.reused(); }
  // The source's current time from the pool's clock cache (read at most once per `max_age`
  // for the source `connection_string`), or read now when there is no pool.
  Result<std::string> SourceNow(SourcePool* pool, const std::string& connection_string,
                                std::chrono::milliseconds max_age);

  const SqlDialect& dialect() const { return dialect_; }
  // The source connection, for catalog look-ups before Start (not while rows are read).
  OdbcConnection& connection() { return *conn_; }
  // The source's current local time, "YYYY-MM-DD HH:MM:SS".
  Result<std::string> SourceNow();
  Status Start(const ExtractSpec& spec);
  // Appends up to `max_rows` rows to `batch` and sets `*last` to the last row's watermark.
  // Returns the number of rows read; 0 at the end. At the end of a full load, the caller
  // records FinishedWatermark() so that incremental extraction takes over.
  Result<size_t> Read(size_t max_rows, RowBatch* batch, Watermark* last);
  // After Read: the rows (their numbers in that Read, ascending) that pass ExtractSpec route
  // `route`'s filter. The source evaluates the routes as the bits of a few integer columns
  // (kRoutesPerWord each): a driver reads one cell per word, not one per route, and each row
  // costs its words and the routes it passes, not one test per route.
  const std::vector<uint32_t>& route_rows(size_t route) const { return route_rows_.at(route); }
  static constexpr size_t kRoutesPerWord = 30;  // bits 0..29: a sum that fits any SQL INTEGER
  static_assert(kRoutesPerWord < 32, "a word's bits are shifted within 32 bits");
  // After Read, with ExtractSpec::row_updatetimes: each row's UPDATETIME, source spelling.
  const std::vector<std::string>& row_updatetimes() const { return updatetimes_; }

  // The SELECT statement and its parameters for `spec` (exposed for tests).
  static std::string BuildQuery(const SqlDialect& dialect, const ExtractSpec& spec,
                                std::vector<std::string>* params);
  // True when this run reads (part of) the initial full load.
  bool full_load() const { return !full_load_until_.empty(); }
  // The watermark after a completed full load: every row up to its bound is delivered.
  Watermark FinishedWatermark() const { return Watermark{"", full_load_until_, {}}; }

 private:
  Extractor(SourceLease conn, Dbms dbms) : conn_(std::move(conn)), dialect_(dbms) {}

  SourceLease conn_;
  bool clean_ = true;  // false: an error or a result left unread; the connection is not reused
  SqlDialect dialect_;
  std::unique_ptr<OdbcStatement> stmt_;
  std::vector<ColumnSpec> columns_;  // delivered columns, to read each by its type
  size_t delivered_ = 0;             // columns sent to the agent
  size_t updatetime_index_ = 0;      // position of UPDATETIME in the select list
  std::vector<size_t> key_indexes_;
  size_t routes_ = 0;  // routes, their words after the columns (and UPDATETIME)
  std::vector<std::vector<uint32_t>> route_rows_;  // per route, its rows of the last Read
  bool keep_updatetimes_ = false;
  std::vector<std::string> updatetimes_;  // of the rows of the last Read, when kept
  std::string full_load_until_;           // non-empty while reading a full load
  std::string cell_;
  std::string canonical_;
};

// Shifts a "YYYY-MM-DD HH:MM:SS" timestamp by `seconds` (calendar arithmetic, no time zone).
Result<std::string> ShiftTimestamp(const std::string& timestamp, int64_t seconds);

}  // namespace dx::scheduler
