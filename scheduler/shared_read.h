// SharedReader: one read of a catalog entry's source serving several table subscriptions of
// that entry (共享抽取). It opens the source once, checks the catalog against what the source
// really has (a column renamed, dropped or widened stops the read before anything is read;
// names are resolved to the source's spelling), and reads the union of what the subscribers
// may hold: the columns any of them reads, the rows any of their filters passes (the filters
// are pushed down to the source query, which also says per row which filters it passes).
// Each row then goes to each subscriber it belongs to through that subscriber's own
// projection and masking (脱敏, TableMasking), as UTF-8 text (SourceText). A subscriber whose
// masking cannot apply is refused alone; the others read on.
// Every run and reconciliation reads through it (SubscriptionReader is the one-subscriber
// case), so what a reconciliation compares is exactly what a run delivers. Not thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/row_batch.h"
#include "common/table_spec.h"
#include "common/watermark.h"
#include "scheduler/model.h"

namespace dx::scheduler {

class Extractor;
class SourcePool;
class SourceText;
class TableMasking;

class SharedReader {
 public:
  // Opens `entry`'s `source` for `subscribers` (subscriptions of `entry`). kUnavailable when
  // the source cannot be reached; kFailedPrecondition when the source no longer matches the
  // catalog (names the entry, the column and what the source has). A subscriber whose masking
  // cannot be applied gets its own error in `(*refused)[i]` and takes no part in reads (the
  // others are Ok; when every one is refused, the reader reads nothing and SourceNow and
  // Start say so). `masking_key`: the scheduler's master key of hashed columns (empty: a
  // hashed column is refused). With a `pool`, the connection is taken from it (and a pooled
  // connection that died meanwhile is replaced once by a new one).
  static Result<std::unique_ptr<SharedReader>> Open(
      const Source& source, const CatalogEntry& entry,
      const std::vector<const Subscription*>& subscribers, const std::string& masking_key,
      SourcePool* pool, std::vector<Status>* refused);
  ~SharedReader();
  SharedReader(const SharedReader&) = delete;
  SharedReader& operator=(const SharedReader&) = delete;

  // The table subscriber `i` receives: its approved columns in catalog order, catalog names,
  // without dropped columns, hashed ones as char(64).
  const TableSpec& table(size_t i) const;
  // The source's current local time, "YYYY-MM-DD HH:MM:SS", read at most once per `max_age`
  // for this source when the reader has a pool (0: read now).
  Result<std::string> SourceNow(std::chrono::milliseconds max_age);
  // Subscriber `i`'s row filter as a key, equal for equal filters ("": every row). One query
  // evaluates at most kMaxRoutes distinct filters.
  const std::string& filter_key(size_t i) const;
  static constexpr size_t kMaxRoutes = 64;

  // Starts a read for the subscribers `readers` (indexes into the Open list, none refused):
  // rows strictly after `after` with UPDATETIME < `bound` (a full load in progress keeps its
  // own bound); with `whole_table`, every row in key order whatever its UPDATETIME. With
  // `starts`, reader k takes only rows with UPDATETIME >= starts[k] ("YYYY-MM-DD HH:MM:SS";
  // empty: every row): a reader further on shares the read of one behind it.
  Status Start(const std::vector<size_t>& readers, const Watermark& after, const std::string& bound,
               bool whole_table, const std::vector<std::string>& starts = {});
  // After Start: the batch that reader k's rows go to, k or an earlier reader's. Readers that
  // always take the same rows the same way (the same filter, columns and start, neither
  // masked: several front-end machines of one district, every consumer of an unfiltered code
  // table) share the first one's batch, so a row is copied once for all of them.
  size_t batch_of(size_t k) const { return batch_of_.at(k); }
  // Reads up to `max_rows` rows at the source and appends each (UTF-8, masked) to
  // `(*batches)[batch_of(k)]` (of table(readers[k]) columns) for each reader k it belongs to;
  // the other batches are left as they are. `*last` becomes the position after the last row
  // read. Returns the number of rows read at the source; 0 at the end.
  Result<size_t> Read(size_t max_rows, std::vector<RowBatch>* batches, Watermark* last);
  // True when this read is (part of) the initial full load.
  bool full_load() const;
  // The position after a completed full load.
  Watermark FinishedWatermark() const;

 private:
  SharedReader() = default;
  struct Subscriber;

  SourcePool* pool_ = nullptr;
  std::string connection_;
  std::unique_ptr<Extractor> extractor_;
  std::vector<Subscriber> subscribers_;
  // What every subscriber may read: raw columns in catalog order, source spelling (with
  // UPDATETIME and the filters' columns resolved).
  struct Union;
  std::unique_ptr<Union> union_;
  // The read under way.
  std::vector<size_t> readers_;
  std::vector<int> route_of_;        // per reader: its route's index, -1 = every row
  std::vector<std::string> starts_;  // per reader: the UPDATETIME it starts at ("" = any)
  std::vector<size_t> batch_of_;     // per reader: the batch its rows go to
  std::unique_ptr<SourceText> text_;
  RowBatch raw_;     // rows as read, all union columns
  RowBatch picked_;  // one reader's rows, before masking
};

}  // namespace dx::scheduler
