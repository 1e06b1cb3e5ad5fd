#include "scheduler/subscription_reader.h"

#include "scheduler/exchange_run.h"
#include "scheduler/extractor.h"
#include "scheduler/masking.h"
#include "scheduler/source_schema.h"
#include "scheduler/source_text.h"

namespace dx::scheduler {

// The query's shape in the source's spelling; Start adds the position.
struct SubscriptionReader::Query {
  ExtractSpec spec;
};

SubscriptionReader::~SubscriptionReader() = default;

Result<std::unique_ptr<SubscriptionReader>> SubscriptionReader::Open(const Source& source,
                                                                     const CatalogEntry& entry,
                                                                     const Subscription& sub,
                                                                     const std::string& masking_key,
                                                                     SourcePool* pool) {
  std::unique_ptr<SubscriptionReader> reader(new SubscriptionReader());
  // Masking first: a rule that cannot apply stops the run before the source is opened.
  DX_ASSIGN_OR_RETURN(
      reader->masking_,
      TableMasking::Make(SubscribedTable(sub, entry), sub.masking,
                         masking_key.empty() ? "" : MaskingKeyFor(masking_key, sub.organisation)));
  reader->table_ = reader->masking_->delivered();
  reader->raw_ = RowBatch(reader->masking_->read().columns.size());
  reader->pool_ = pool;
  reader->connection_ = source.connection;
  // What the source really has: a column renamed, dropped or widened behind the catalog's back
  // stops the run before anything is read (and the names are the source's own spelling).
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
    checked = CheckEntryAgainstSource(extractor.connection(), extractor.dialect().dbms(), entry,
                                      ColumnsUsedBy(sub, entry));
    if (checked.ok()) break;
    extractor.DiscardConnection();
    // A pooled connection may have died while it was idle: one new connection decides.
    if (!extractor.reused_connection()) break;
    reader->extractor_.reset();
  }
  if (!checked.ok()) return checked.status();
  ResolvedSource resolved = std::move(checked).value();
  Extractor& extractor = *reader->extractor_;

  // The query names what the source has; the agent keeps the catalog's names. It reads the
  // columns masking keeps (as the catalog types them); the filter below names raw columns
  // and runs at the source, on the values as they are there.
  auto query = std::make_unique<Query>();
  ExtractSpec& spec = query->spec;
  spec.source_table = resolved.table;
  spec.columns = reader->masking_->read().columns;
  for (ColumnSpec& c : spec.columns) c.name = resolved.Column(c.name);
  spec.updatetime = entry.FindField(entry.updatetime_column)->column;
  spec.updatetime.name = resolved.Column(spec.updatetime.name);
  spec.filter = sub.filter;
  for (RowCondition& c : spec.filter) {
    spec.filter_columns.push_back(entry.FindField(c.column)->column);
    spec.filter_columns.back().name = resolved.Column(c.column);
    c.column = spec.filter_columns.back().name;
  }

  // Text leaves as UTF-8, converted correctly from what the source holds, or not at all.
  TextSpec text_spec;
  text_spec.dbms = extractor.dialect().dbms();
  text_spec.connection = source.connection;
  text_spec.source_table = resolved.table;
  text_spec.columns = spec.columns;
  for (const ColumnSpec& c : reader->masking_->read().columns) {
    auto it = resolved.columns.find(c.name);
    text_spec.charsets.push_back(it == resolved.columns.end() ? "" : it->second.charset);
  }
  text_spec.encoding = source.encoding;
  DX_ASSIGN_OR_RETURN(reader->text_, SourceText::Make(std::move(text_spec)));
  reader->query_ = std::move(query);
  return reader;
}

Result<std::string> SubscriptionReader::SourceNow() { return extractor_->SourceNow(); }

Result<std::string> SubscriptionReader::SourceNow(std::chrono::milliseconds max_age) {
  return extractor_->SourceNow(pool_, connection_, max_age);
}

Status SubscriptionReader::Start(const Watermark& after, const std::string& bound,
                                 bool whole_table) {
  ExtractSpec spec = query_->spec;
  spec.after = after;
  spec.bound = bound;
  spec.whole_table = whole_table;
  return extractor_->Start(spec);
}

Result<size_t> SubscriptionReader::Read(size_t max_rows, RowBatch* batch, Watermark* last) {
  if (batch->rows() != 0) return Internal("SubscriptionReader::Read needs an empty batch");
  const bool masked = !masking_->passthrough();
  RowBatch* rows = masked ? &raw_ : batch;
  rows->Clear();
  DX_ASSIGN_OR_RETURN(size_t n, extractor_->Read(max_rows, rows, last));
  if (n == 0) return n;
  DX_RETURN_IF_ERROR(text_->Normalize(rows));
  DX_RETURN_IF_ERROR(text_->CheckPosition(*last));
  if (masked) masking_->Apply(raw_, batch);
  return n;
}

bool SubscriptionReader::full_load() const { return extractor_->full_load(); }

Watermark SubscriptionReader::FinishedWatermark() const { return extractor_->FinishedWatermark(); }

}  // namespace dx::scheduler
