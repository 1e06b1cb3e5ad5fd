#include "scheduler/extractor.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <limits>

#include "common/canonical_value.h"
#include "common/cell_text.h"

namespace dx::scheduler {

Result<std::string> ShiftTimestamp(const std::string& ts, int64_t seconds) {
  std::tm tm{};
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (std::sscanf(ts.c_str(), "%4d-%2d-%2d %2d:%2d:%2d", &year, &month, &day, &hour, &minute,
                  &second) != 6) {
    return InvalidArgument("source time '" + ts + "' is not YYYY-MM-DD HH:MM:SS");
  }
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  time_t t = timegm(&tm) + static_cast<time_t>(seconds);
  std::tm out{};
  gmtime_r(&t, &out);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &out);
  return std::string(buf);
}

Result<std::unique_ptr<Extractor>> Extractor::Open(const std::string& connection_string) {
  DX_ASSIGN_OR_RETURN(auto conn, OdbcConnection::Open(connection_string));
  return Open(SourceLease(nullptr, "", std::move(conn), false));
}

Result<std::unique_ptr<Extractor>> Extractor::Open(SourceLease lease) {
  Dbms dbms = DbmsFromName(lease->dbms_name());
  return std::unique_ptr<Extractor>(new Extractor(std::move(lease), dbms));
}

Extractor::~Extractor() {
  stmt_.reset();
  if (!clean_) conn_.Discard();
}

Result<std::string> Extractor::SourceNow() {
  auto now = conn_->QueryScalar(dialect_.NowQuery());
  if (!now.ok()) {
    clean_ = false;
    return now.status();
  }
  std::string text = std::move(now).value();
  if (text.size() > 19) text.resize(19);  // drop fractional seconds
  return text;
}

Result<std::string> Extractor::SourceNow(SourcePool* pool, const std::string& connection_string,
                                         std::chrono::milliseconds max_age) {
  if (pool == nullptr) return SourceNow();
  auto now = pool->SourceNow(conn_, connection_string, dialect_.NowQuery(), max_age);
  if (!now.ok()) clean_ = false;
  return now;
}

namespace {

// "(k1, k2, ...) > (v1, v2, ...)" spelt out so that every DBMS can use it:
// k1 > ? OR (k1 = ? AND (k2 > ? ...)). Parameters are appended in marker order.
std::string KeyAfter(const SqlDialect& d, const std::vector<const ColumnSpec*>& keys,
                     const std::vector<std::string>& values, std::vector<std::string>* params) {
  std::string inner;
  for (size_t i = keys.size(); i-- > 0;) {
    std::string k = d.Quote(keys[i]->name);
    std::string mark = d.Placeholder(*keys[i]);
    inner = inner.empty() ? k + " > " + mark
                          : k + " > " + mark + " OR (" + k + " = " + mark + " AND (" + inner + "))";
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    const std::string& v = i < values.size() ? values[i] : std::string();
    params->push_back(v);
    if (i + 1 < keys.size()) params->push_back(v);
  }
  return inner;
}

// Replaces each '?' marker with its value as a quoted SQL literal. Identifiers are validated
// names, so the only '?' in the text are markers.
Result<std::string> InlineParameters(const std::string& sql,
                                     const std::vector<std::string>& params) {
  std::string out;
  size_t next = 0;
  for (char c : sql) {
    if (c != '?') {
      out.push_back(c);
      continue;
    }
    if (next >= params.size()) return Internal("more markers than parameters");
    const std::string& v = params[next++];
    if (v.find('\0') != std::string::npos) return InvalidArgument("a key value contains NUL");
    out.push_back('\'');
    for (char ch : v) {
      if (ch == '\'') out.push_back('\'');
      out.push_back(ch);
    }
    out.push_back('\'');
  }
  return out;
}

// "c1 = ? AND c2 IN (?, ?)"; the values are appended to `params` in marker order.
std::string FilterCondition(const SqlDialect& d, const std::vector<RowCondition>& conditions,
                            const std::vector<ColumnSpec>& columns,
                            std::vector<std::string>* params) {
  std::string out;
  for (size_t i = 0; i < conditions.size(); ++i) {
    const RowCondition& c = conditions[i];
    std::string col = d.Quote(c.column);
    std::string mark = d.Placeholder(columns[i]);
    out += out.empty() ? "" : " AND ";
    if (c.op == "in") {
      std::string marks;
      for (const std::string& v : c.values) {
        marks += (marks.empty() ? "" : ", ") + mark;
        params->push_back(v);
      }
      out += col + " IN (" + marks + ")";
    } else {
      out += col + " " + (c.op == "!=" ? "<>" : c.op) + " " + mark;
      params->push_back(c.values[0]);
    }
  }
  return out;
}

}  // namespace

std::string Extractor::BuildQuery(const SqlDialect& d, const ExtractSpec& spec,
                                  std::vector<std::string>* params) {
  std::string select;
  bool ut_delivered = false;
  std::vector<const ColumnSpec*> keys;
  for (const ColumnSpec& c : spec.columns) {
    select += (select.empty() ? "" : ", ") + d.Quote(c.name);
    if (c.name == spec.updatetime.name) ut_delivered = true;
    if (c.primary_key) keys.push_back(&c);
  }
  if (!ut_delivered) select += ", " + d.Quote(spec.updatetime.name);
  // Which routes each row passes, evaluated by the source as the bits of integer words (a
  // word's markers in route order; all of them come before the WHERE's).
  for (size_t first = 0; first < spec.routes.size(); first += kRoutesPerWord) {
    const size_t end = std::min(spec.routes.size(), first + kRoutesPerWord);
    std::string word;
    for (size_t r = first; r < end; ++r) {
      const RowFilter& route = spec.routes[r];
      word += std::string(word.empty() ? "" : " + ") + "CASE WHEN " +
              FilterCondition(d, route.conditions, route.columns, params) + " THEN " +
              std::to_string(1u << (r - first)) + " ELSE 0 END";
    }
    select += ", (" + word + ")";
  }
  const std::string ut = d.Quote(spec.updatetime.name);
  const std::string ut_mark = d.Placeholder(spec.updatetime);
  const Watermark& after = spec.after;
  const bool full = after.empty() || after.in_full_load();

  // The bound is exclusive: rows stamped in the current second (or within the safety lag) may
  // still be committing at the source, so they wait for a later run.
  std::string where = spec.whole_table ? "1 = 1" : ut + " < " + ut_mark;
  if (!spec.whole_table) {
    params->push_back(full && after.in_full_load() ? after.full_load_until : spec.bound);
  }
  if (full) {
    if (!after.key.empty()) where += " AND (" + KeyAfter(d, keys, after.key, params) + ")";
  } else if (after.key.empty()) {
    // After a full load with bound B every row with UPDATETIME < B is delivered.
    where += " AND " + ut + " >= " + ut_mark;
    params->push_back(after.updatetime);
  } else {
    where += " AND (" + ut + " > " + ut_mark + " OR (" + ut + " = " + ut_mark + " AND (";
    params->push_back(after.updatetime);
    params->push_back(after.updatetime);
    where += KeyAfter(d, keys, after.key, params) + ")))";
  }
  if (!spec.filter.empty()) {
    where += " AND " + FilterCondition(d, spec.filter, spec.filter_columns, params);
  }
  if (!spec.routes.empty() && spec.routes_select) {
    std::string any;
    for (const RowFilter& route : spec.routes) {
      any += (any.empty() ? "(" : " OR (") +
             FilterCondition(d, route.conditions, route.columns, params) + ")";
    }
    where += " AND (" + any + ")";
  }
  std::string order = full ? "" : ut;
  for (const ColumnSpec* k : keys) {
    order += (order.empty() ? "" : ", ") +
             (spec.whole_table ? KeyOrderExpression(d, *k) : d.Quote(k->name));
  }
  return "SELECT " + select + " FROM " + d.Quote(spec.source_table) + " WHERE " + where +
         " ORDER BY " + order;
}

Status Extractor::Start(const ExtractSpec& spec) {
  clean_ = false;  // until the result is read to its end
  std::vector<std::string> params;
  std::string sql = BuildQuery(dialect_, spec, &params);
  if (dialect_.dbms() == Dbms::kSqlite) {
    // sqliteodbc streams a SELECT (StepAPI) only when it has no parameters; with parameters it
    // materialises the whole result in memory. So the values go in as literals.
    DX_ASSIGN_OR_RETURN(sql, InlineParameters(sql, params));
    params.clear();
  }
  DX_ASSIGN_OR_RETURN(stmt_, conn_->Prepare(sql));
  DX_RETURN_IF_ERROR(stmt_->DeclareParams(params.size()));
  for (size_t i = 0; i < params.size(); ++i) DX_RETURN_IF_ERROR(stmt_->SetParam(i, params[i]));
  DX_RETURN_IF_ERROR(stmt_->Execute());
  delivered_ = spec.columns.size();
  columns_ = spec.columns;
  full_load_until_.clear();
  if (spec.after.in_full_load()) full_load_until_ = spec.after.full_load_until;
  if (spec.after.empty()) full_load_until_ = spec.bound;
  updatetime_index_ = delivered_;
  routes_ = spec.routes.size();
  keep_updatetimes_ = spec.row_updatetimes;
  key_indexes_.clear();
  for (size_t i = 0; i < spec.columns.size(); ++i) {
    if (spec.columns[i].name == spec.updatetime.name) updatetime_index_ = i;
    if (spec.columns[i].primary_key) key_indexes_.push_back(i);
  }
  return Status::Ok();
}

Result<size_t> Extractor::Read(size_t max_rows, RowBatch* batch, Watermark* last) {
  if (max_rows > std::numeric_limits<uint32_t>::max()) {
    return Internal("Extractor::Read of more than 2^32 - 1 rows at once");  // rows as uint32
  }
  clean_ = false;  // set again only when the result is read to its end
  size_t n = 0;
  const size_t total = updatetime_index_ == delivered_ ? delivered_ + 1 : delivered_;
  route_rows_.resize(routes_);
  for (std::vector<uint32_t>& rows : route_rows_) rows.clear();
  updatetimes_.clear();
  while (n < max_rows) {
    DX_ASSIGN_OR_RETURN(bool row, stmt_->Fetch());
    if (!row) break;
    for (size_t c = 0; c < total; ++c) {
      // Binary values are read as bytes: as text a driver would hand out hex digits.
      const bool binary = c < delivered_ && IsBinaryType(columns_[c].type);
      DX_ASSIGN_OR_RETURN(bool not_null,
                          binary ? stmt_->GetBytes(c, &cell_) : stmt_->GetText(c, &cell_));
      // The watermark keeps the source's own spelling: it is compared at the source.
      if (c == updatetime_index_ && !full_load()) last->updatetime = cell_;
      if (c == updatetime_index_ && keep_updatetimes_) updatetimes_.push_back(cell_);
      if (c >= delivered_) continue;
      if (!not_null) {
        batch->AddNull();
      } else if (NeedsCanonicalText(columns_[c])) {
        CanonicalText(columns_[c], cell_, &canonical_);
        batch->AddCell(canonical_);
      } else {
        batch->AddCell(cell_);
      }
    }
    for (size_t first = 0, w = 0; first < routes_; first += kRoutesPerWord, ++w) {
      DX_ASSIGN_OR_RETURN(bool not_null, stmt_->GetText(total + w, &cell_));
      uint32_t bits = 0;
      auto [end, ec] = std::from_chars(cell_.data(), cell_.data() + cell_.size(), bits);
      const size_t in_word = std::min(kRoutesPerWord, routes_ - first);
      if (!not_null || ec != std::errc() || end != cell_.data() + cell_.size() ||
          (bits >> in_word) != 0) {
        return Internal("the source answered '" + cell_ + "' for the filters a row passes (word " +
                        std::to_string(w) + " of the shared read's query)");
      }
      for (; bits != 0; bits &= bits - 1) {
        route_rows_[first + static_cast<size_t>(std::countr_zero(bits))].push_back(
            static_cast<uint32_t>(n));
      }
    }
    ++n;
  }
  if (n == 0) clean_ = true;
  if (n > 0) {
    if (full_load()) {
      last->full_load_until = full_load_until_;
      last->updatetime.clear();
    }
    last->key.resize(key_indexes_.size());
    for (size_t k = 0; k < key_indexes_.size(); ++k) {
      last->key[k] = std::string(batch->Cell(batch->rows() - 1, key_indexes_[k]));
    }
  }
  return n;
}

}  // namespace dx::scheduler
