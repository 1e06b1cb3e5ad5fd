#include "scheduler/shared_read.h"

#include <algorithm>
#include <map>
#include <string_view>

#include "scheduler/exchange_run.h"
#include "scheduler/extractor.h"
#include "scheduler/masking.h"
#include "scheduler/source_pool.h"
#include "scheduler/source_schema.h"
#include "scheduler/source_text.h"

namespace dx::scheduler {

struct SharedReader::Subscriber {
  std::unique_ptr<TableMasking> masking;  // null: refused
  std::vector<size_t> projection;         // per column of masking->read(): its union column
  RowFilter filter;                       // source spelling; no conditions: every row
  std::string filter_key;                 // equal for equal filters
};

struct SharedReader::Union {
  ExtractSpec spec;  // source table, union columns, UPDATETIME (source spelling)
};

namespace {

// One text per filter, so that subscribers with the same filter share one route.
std::string FilterKey(const std::vector<RowCondition>& filter) {
  std::string key;
  for (const RowCondition& c : filter) {
    key += c.column + '\x1f' + c.op;
    for (const std::string& v : c.values) key += '\x1f' + std::to_string(v.size()) + ':' + v;
    key += '\x1e';
  }
  return key;
}

// True when a row's UPDATETIME (the source's spelling) is before `start` ("YYYY-MM-DD
// HH:MM:SS"): compared to the second, as the source compares UPDATETIME >= start. A value not
// spelt that way is never skipped (delivering a row again is harmless: agents upsert).
bool Before(const std::string& updatetime, const std::string& start) {
  if (!SpelledToTheSecond(updatetime)) return false;
  return std::string_view(updatetime).substr(0, 19) < std::string_view(start);
}

}  // namespace

SharedReader::~SharedReader() = default;

Result<std::unique_ptr<SharedReader>> SharedReader::Open(
    const Source& source, const CatalogEntry& entry,
    const std::vector<const Subscription*>& subscribers, const std::string& masking_key,
    SourcePool* pool, std::vector<Status>* refused) {
  std::unique_ptr<SharedReader> reader(new SharedReader());
  reader->pool_ = pool;
  reader->connection_ = source.connection;
  refused->assign(subscribers.size(), Status::Ok());
  // Masking first: a rule that cannot apply refuses its subscriber before the source is opened.
  std::vector<std::string> used;  // catalog columns any subscriber's run reads at the source
  std::vector<bool> read(entry.fields.size(), false);
  reader->subscribers_.resize(subscribers.size());
  for (size_t i = 0; i < subscribers.size(); ++i) {
    const Subscription& sub = *subscribers[i];
    auto masking =
        TableMasking::Make(SubscribedTable(sub, entry), sub.masking,
                           masking_key.empty() ? "" : MaskingKeyFor(masking_key, sub.organisation));
    if (!masking.ok()) {
      (*refused)[i] = masking.status();
      continue;
    }
    Subscriber& s = reader->subscribers_[i];
    s.masking = std::move(masking).value();
    for (const std::string& c : ColumnsUsedBy(sub, entry)) {
      if (std::find(used.begin(), used.end(), c) == used.end()) used.push_back(c);
    }
    for (const ColumnSpec& c : s.masking->read().columns) {
      for (size_t f = 0; f < entry.fields.size(); ++f) {
        if (entry.fields[f].column.name == c.name) read[f] = true;
      }
    }
  }
  if (used.empty()) return reader;  // every subscriber refused: nothing to read

  // What the source really has: a column renamed, dropped or widened behind the catalog's back
  // stops the read before anything is read (and the names are the source's own spelling).
  Result<ResolvedSource> checked = Internal("source not checked");
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (pool == nullptr) {
      DX_ASSIGN_OR_RETURN(reader->extractor_, Extractor::Open(source.connection));
    } else {
      DX_ASSIGN_OR_RETURN(SourceLease lease,
                          pool->Acquire(source.connection, std::chrono::seconds(30)));
      DX_ASSIGN_OR_RETURN(reader->extractor_, Extractor::Open(std::move(lease)));
    }
    Extractor& extractor = *reader->extractor_;
    checked =
        CheckEntryAgainstSource(extractor.connection(), extractor.dialect().dbms(), entry, used);
    if (checked.ok()) break;
    extractor.DiscardConnection();
    // A pooled connection may have died while it was idle: one new connection decides.
    if (!extractor.reused_connection()) break;
    reader->extractor_.reset();
  }
  if (!checked.ok()) return checked.status();
  ResolvedSource resolved = std::move(checked).value();

  // The query names what the source has; the agents keep the catalog's names. It reads the
  // columns some subscriber's masking keeps (as the catalog types them); the filters name raw
  // columns and run at the source, on the values as they are there.
  auto u = std::make_unique<Union>();
  ExtractSpec& spec = u->spec;
  spec.source_table = resolved.table;
  std::vector<std::string> catalog_names;
  for (size_t f = 0; f < entry.fields.size(); ++f) {
    if (!read[f]) continue;
    catalog_names.push_back(entry.fields[f].column.name);
    spec.columns.push_back(entry.fields[f].column);
    spec.columns.back().name = resolved.Column(entry.fields[f].column.name);
  }
  spec.updatetime = entry.FindField(entry.updatetime_column)->column;
  spec.updatetime.name = resolved.Column(spec.updatetime.name);
  for (Subscriber& s : reader->subscribers_) {
    if (!s.masking) continue;
    for (const ColumnSpec& c : s.masking->read().columns) {
      s.projection.push_back(static_cast<size_t>(
          std::find(catalog_names.begin(), catalog_names.end(), c.name) - catalog_names.begin()));
    }
  }
  for (size_t i = 0; i < subscribers.size(); ++i) {
    Subscriber& s = reader->subscribers_[i];
    if (!s.masking) continue;
    s.filter_key = FilterKey(subscribers[i]->filter);
    s.filter.conditions = subscribers[i]->filter;
    for (RowCondition& c : s.filter.conditions) {
      s.filter.columns.push_back(entry.FindField(c.column)->column);
      s.filter.columns.back().name = resolved.Column(c.column);
      c.column = s.filter.columns.back().name;
    }
  }

  // Text leaves as UTF-8, converted correctly from what the source holds, or not at all.
  TextSpec text_spec;
  text_spec.dbms = reader->extractor_->dialect().dbms();
  text_spec.connection = source.connection;
  text_spec.source_table = resolved.table;
  text_spec.columns = spec.columns;
  for (const std::string& name : catalog_names) {
    auto it = resolved.columns.find(name);
    text_spec.charsets.push_back(it == resolved.columns.end() ? "" : it->second.charset);
  }
  text_spec.encoding = source.encoding;
  DX_ASSIGN_OR_RETURN(reader->text_, SourceText::Make(std::move(text_spec)));
  reader->raw_ = RowBatch(spec.columns.size());
  reader->union_ = std::move(u);
  return reader;
}

const TableSpec& SharedReader::table(size_t i) const {
  return subscribers_.at(i).masking->delivered();
}

Result<std::string> SharedReader::SourceNow(std::chrono::milliseconds max_age) {
  if (!extractor_) return FailedPrecondition("every subscriber of this read was refused");
  return extractor_->SourceNow(pool_, connection_, max_age);
}

const std::string& SharedReader::filter_key(size_t i) const {
  return subscribers_.at(i).filter_key;
}

Status SharedReader::Start(const std::vector<size_t>& readers, const Watermark& after,
                           const std::string& bound, bool whole_table,
                           const std::vector<std::string>& starts) {
  batch_of_.clear();  // a Start that fails leaves no read to Read
  if (!union_ || readers.empty()) return Internal("SharedReader::Start without a subscriber");
  ExtractSpec spec = union_->spec;
  spec.after = after;
  spec.bound = bound;
  spec.whole_table = whole_table;
  readers_ = readers;
  route_of_.assign(readers.size(), -1);
  starts_ = starts;
  starts_.resize(readers.size());
  for (const std::string& s : starts_) spec.row_updatetimes = spec.row_updatetimes || !s.empty();
  // Filters: one that every reader shares goes into the WHERE clause as it is; several become
  // routes (their OR in the WHERE clause, and a flag per row for each); a reader without a
  // filter takes every row, so the WHERE clause keeps them all.
  bool every_row = false;
  std::vector<std::string> keys;
  for (size_t r : readers) {
    const Subscriber& s = subscribers_.at(r);
    if (!s.masking) return Internal("SharedReader::Start with a refused subscriber");
    if (s.filter.conditions.empty()) every_row = true;
  }
  for (size_t k = 0; k < readers.size(); ++k) {
    const Subscriber& s = subscribers_[readers[k]];
    if (s.filter.conditions.empty()) continue;
    auto it = std::find(keys.begin(), keys.end(), s.filter_key);
    route_of_[k] = static_cast<int>(it - keys.begin());
    if (it == keys.end()) {
      keys.push_back(s.filter_key);
      spec.routes.push_back(s.filter);
    }
  }
  if (spec.routes.size() > kMaxRoutes) {
    return Internal("a shared read evaluates at most " + std::to_string(kMaxRoutes) + " filters");
  }
  if (spec.routes.size() == 1 && !every_row) {
    spec.filter = spec.routes[0].conditions;
    spec.filter_columns = spec.routes[0].columns;
    spec.routes.clear();
    std::fill(route_of_.begin(), route_of_.end(), -1);
  }
  spec.routes_select = !every_row;
  batch_of_.resize(readers.size());
  for (size_t k = 0; k < readers.size(); ++k) {
    batch_of_[k] = k;
    const Subscriber& s = subscribers_[readers[k]];
    if (!s.masking->passthrough()) continue;
    for (size_t j = 0; j < k; ++j) {  // the first match is the batch's first reader
      const Subscriber& t = subscribers_[readers[j]];
      if (t.masking->passthrough() && route_of_[j] == route_of_[k] && starts_[j] == starts_[k] &&
          t.projection == s.projection) {
        batch_of_[k] = j;
        break;
      }
    }
  }
  return extractor_->Start(spec);
}

Result<size_t> SharedReader::Read(size_t max_rows, std::vector<RowBatch>* batches,
                                  Watermark* last) {
  if (batch_of_.size() != readers_.size()) return Internal("SharedReader::Read before Start");
  if (batches->size() != readers_.size()) return Internal("SharedReader::Read: batch per reader");
  raw_.Clear();
  DX_ASSIGN_OR_RETURN(size_t n, extractor_->Read(max_rows, &raw_, last));
  if (n == 0) return n;
  DX_RETURN_IF_ERROR(text_->Normalize(&raw_));
  DX_RETURN_IF_ERROR(text_->CheckPosition(*last));
  for (size_t k = 0; k < readers_.size(); ++k) {
    if (batch_of_[k] != k) continue;  // an earlier reader's batch holds its rows
    Subscriber& s = subscribers_[readers_[k]];
    RowBatch* out = &(*batches)[k];
    const bool masked = !s.masking->passthrough();
    if (masked) {
      picked_ = RowBatch(s.projection.size());
      out = &picked_;
    }
    // A reader with a route takes that route's rows; one without, every row.
    const std::vector<uint32_t>* routed =
        route_of_[k] >= 0 ? &extractor_->route_rows(static_cast<size_t>(route_of_[k])) : nullptr;
    const size_t count = routed ? routed->size() : n;
    for (size_t i = 0; i < count; ++i) {
      const size_t row = routed ? (*routed)[i] : i;
      if (!starts_[k].empty() && Before(extractor_->row_updatetimes()[row], starts_[k])) continue;
      for (size_t col : s.projection) {
        if (raw_.IsNull(row, col)) {
          out->AddNull();
        } else {
          out->AddCell(raw_.Cell(row, col));
        }
      }
    }
    if (masked) s.masking->Apply(picked_, &(*batches)[k]);
  }
  return n;
}

bool SharedReader::full_load() const { return extractor_->full_load(); }

Watermark SharedReader::FinishedWatermark() const { return extractor_->FinishedWatermark(); }

}  // namespace dx::scheduler
