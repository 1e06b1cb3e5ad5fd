// SubscriptionReader: the rows a table subscription may hold, as they leave the scheduler.
// Opens the entry's source, checks the catalog against what the source really has (a column
// renamed, dropped or widened stops the run before anything is read; names are resolved to the
// source's spelling), then reads the approved columns of the approved rows through the
// Extractor, makes their text UTF-8 (SourceText) and masks them (脱敏, TableMasking: the row
// filter has run at the source on the raw values; dropped columns are not even read).
// ExchangeRun and ReconcileRun both read through it, so what a reconciliation compares and
// repairs is exactly what a run delivers, masked alike. One per run; not thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/odbc.h"
#include "common/row_batch.h"
#include "common/table_spec.h"
#include "common/watermark.h"
#include "scheduler/model.h"

namespace dx::scheduler {

class Extractor;
class SourcePool;
class SourceText;
class TableMasking;

class SubscriptionReader {
 public:
  // kUnavailable when the source cannot be reached; kFailedPrecondition when the source no
  // longer matches the catalog (names the entry, the column and what the source has) or the
  // subscription's masking cannot be applied. `masking_key`: the scheduler's master key of
  // hashed columns (masking.key_file; empty: a hashed column is refused). With a `pool`, the
  // source connection is taken from it (and a pooled connection that died meanwhile is
  // replaced once by a new one).
  static Result<std::unique_ptr<SubscriptionReader>> Open(const Source& source,
                                                          const CatalogEntry& entry,
                                                          const Subscription& sub,
                                                          const std::string& masking_key,
                                                          SourcePool* pool = nullptr);
  ~SubscriptionReader();
  SubscriptionReader(const SubscriptionReader&) = delete;
  SubscriptionReader& operator=(const SubscriptionReader&) = delete;

  // The table the agent holds: the approved columns in catalog order, catalog names, without
  // dropped columns, hashed ones as char(64).
  const TableSpec& table() const { return table_; }
  // The source's current local time, "YYYY-MM-DD HH:MM:SS".
  Result<std::string> SourceNow();
  // The same, read at most once per `max_age` for this source when the reader has a pool.
  Result<std::string> SourceNow(std::chrono::milliseconds max_age);
  // Reads rows strictly after `after` with UPDATETIME < `bound` (a full load in progress keeps
  // its own bound); with `whole_table`, every approved row in key order whatever its UPDATETIME.
  Status Start(const Watermark& after, const std::string& bound, bool whole_table);
  // Reads up to `max_rows` rows (UTF-8 text, masked) into the empty `batch`; `*last` becomes the
  // position after the last row. Returns the number of rows read; 0 at the end.
  Result<size_t> Read(size_t max_rows, RowBatch* batch, Watermark* last);
  // True when this run reads (part of) the initial full load.
  bool full_load() const;
  // The position after a completed full load.
  Watermark FinishedWatermark() const;

 private:
  SubscriptionReader() = default;

  TableSpec table_;
  SourcePool* pool_ = nullptr;
  std::string connection_;
  std::unique_ptr<Extractor> extractor_;
  std::unique_ptr<SourceText> text_;
  std::unique_ptr<TableMasking> masking_;
  RowBatch raw_;  // rows as read, before masking (unused when masking passes rows through)
  // The query's shape in the source's spelling (filled by Open, completed by Start).
  struct Query;
  std::unique_ptr<Query> query_;
};

}  // namespace dx::scheduler
