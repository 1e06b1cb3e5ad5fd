// SubscriptionReader: the rows one table subscription may hold, as they leave the scheduler —
// a SharedReader with a single subscriber (see there: drift check, names resolved to the
// source's spelling, filter at the source, UTF-8 text, masking). ReconcileRun reads through
// it, so what a reconciliation compares and repairs is exactly what a run delivers, masked
// alike. One per run; not thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/row_batch.h"
#include "common/table_spec.h"
#include "common/watermark.h"
#include "scheduler/model.h"
#include "scheduler/shared_read.h"

namespace dx::scheduler {

class SourcePool;

class SubscriptionReader {
 public:
  // kUnavailable when the source cannot be reached; kFailedPrecondition when the source no
  // longer matches the catalog (names the entry, the column and what the source has) or the
  // subscription's masking cannot be applied. `masking_key`: the scheduler's master key of
  // hashed columns (masking.key_file; empty: a hashed column is refused). With a `pool`, the
  // source connection is taken from it.
  static Result<std::unique_ptr<SubscriptionReader>> Open(const Source& source,
                                                          const CatalogEntry& entry,
                                                          const Subscription& sub,
                                                          const std::string& masking_key,
                                                          SourcePool* pool = nullptr);

  // The table the agent holds: the approved columns in catalog order, catalog names, without
  // dropped columns, hashed ones as char(64).
  const TableSpec& table() const { return shared_->table(0); }
  // The source's current local time, "YYYY-MM-DD HH:MM:SS".
  Result<std::string> SourceNow() { return shared_->SourceNow(std::chrono::milliseconds(0)); }
  // Reads rows strictly after `after` with UPDATETIME < `bound` (a full load in progress keeps
  // its own bound); with `whole_table`, every approved row in key order whatever its UPDATETIME.
  Status Start(const Watermark& after, const std::string& bound, bool whole_table) {
    return shared_->Start({0}, after, bound, whole_table);
  }
  // Reads up to `max_rows` rows (UTF-8 text, masked) into the empty `batch`; `*last` becomes the
  // position after the last row. Returns the number of rows read; 0 at the end.
  Result<size_t> Read(size_t max_rows, RowBatch* batch, Watermark* last);
  // True when this run reads (part of) the initial full load.
  bool full_load() const { return shared_->full_load(); }
  // The position after a completed full load.
  Watermark FinishedWatermark() const { return shared_->FinishedWatermark(); }

 private:
  explicit SubscriptionReader(std::unique_ptr<SharedReader> shared)
      : shared_(std::move(shared)), batches_(1) {}

  std::unique_ptr<SharedReader> shared_;
  std::vector<RowBatch> batches_;
};

}  // namespace dx::scheduler
