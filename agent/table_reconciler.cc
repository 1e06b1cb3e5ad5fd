#include "agent/table_reconciler.h"

#include <algorithm>

#include "common/canonical_value.h"
#include "common/log.h"

namespace dx::agent {
namespace {

using Kind = RangeRequest::Kind;
using AnswerKind = RangeAnswerItem::Kind;

// Differing ranges the agent keeps for the scheduler's questions at most (the scheduler keeps
// 512 in flight): memory stays bounded whatever a peer asks.
constexpr size_t kMaxKeptRanges = 4096;
// Rows one query may read beyond the source's rows of the ranges asked for: the local table
// may hold any number of rows between two source keys (or after the last one), and its
// digests are held until they are compared.
constexpr size_t kMaxRangeRowsHere = 1u << 18;

// "(k1, k2, ...) OP (v1, v2, ...)" spelt out for every DBMS, OP being ">" (after a bound) or
// "<=" (up to a bound): k1 > ? OR (k1 = ? AND (k2 > ? ...)), the last column taking OP.
std::string KeyCompare(const SqlDialect& d, const std::vector<const ColumnSpec*>& keys,
                       const std::vector<std::string>& values, const std::string& op,
                       std::vector<std::string>* params) {
  const std::string strict = op == "<=" ? "<" : ">";
  std::string inner;
  std::vector<std::string> inner_params;
  for (size_t i = keys.size(); i-- > 0;) {
    std::string k = KeyOrderExpression(d, *keys[i]);
    std::string mark = d.Placeholder(*keys[i]);
    const std::string& v = values[i];
    if (inner.empty()) {
      inner = k + " " + op + " " + mark;
      inner_params = {v};
    } else {
      inner = k + " " + strict + " " + mark + " OR (" + k + " = " + mark + " AND (" + inner + "))";
      inner_params.insert(inner_params.begin(), {v, v});
    }
  }
  params->insert(params->end(), inner_params.begin(), inner_params.end());
  return "(" + inner + ")";
}

// Replaces each '?' marker by its value as a quoted SQL literal (sqliteodbc streams a SELECT
// only without bound parameters). Identifiers are validated names: the only '?' are markers.
Result<std::string> InlineLiterals(const std::string& sql, const std::vector<std::string>& params) {
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

RangeAnswerItem Describe(const DigestedRange& range, uint64_t id, const BucketPath& path) {
  RangeAnswerItem item;
  item.kind = AnswerKind::kChildren;
  item.range = id;
  item.path = path;
  item.children = range.Children(path);
  for (const RangeSummary& c : item.children) {
    item.whole.count += c.count;
    item.whole.digest += c.digest;
  }
  return item;
}

void ListRows(const DigestedRange& range, const std::vector<std::string>& raw_keys,
              RangeAnswerItem* item) {
  item->kind = AnswerKind::kRows;
  item->rows.clear();
  for (size_t i : range.RowsIn(item->path)) {
    ListedRow row;
    for (std::string_view cell : RowHasher::SplitKey(raw_keys[i])) row.key.emplace_back(cell);
    row.row_hash = range.rows()[i].row_hash;
    item->rows.push_back(std::move(row));
  }
}

// How the rows of a range are read. PostgreSQL and MariaDB spell the whole row as one text
// value on the server, so that their ODBC drivers convert one cell per row instead of one per
// column (the drivers were over a third of the agent's time, parsing and printing every date
// and number again): PostgreSQL as its composite-row literal (ROW(...)::text, the cheapest
// form for the server: measured 1.0 s for 1M rows, against 0.6 s for plain columns and 2.0 s
// for concatenated casts), MariaDB as "LEN:value" per column ("-" for NULL, LEN in bytes).
// SQLite (whose driver hands out its text directly) and generic DBMSs read plain columns.
bool ReadsPackedRows(const SqlDialect& d) {
  return d.dbms() == Dbms::kPostgres || d.dbms() == Dbms::kMysql;
}

// Binary columns are read as bytes, column by column: a packed row would carry them as text.
bool HasBinaryColumn(const TableSpec& spec) {
  return std::any_of(spec.columns.begin(), spec.columns.end(),
                     [](const ColumnSpec& c) { return IsBinaryType(c.type); });
}

std::string PackedRow(const SqlDialect& d, const TableSpec& spec) {
  std::string row;
  for (const ColumnSpec& c : spec.columns) {
    std::string q = d.Quote(c.name);
    if (d.dbms() == Dbms::kPostgres) {
      row += (row.empty() ? "" : ", ") + q;
    } else {
      std::string v = "CAST(" + q + " AS CHAR)";
      row += (row.empty() ? "" : ", ") + std::string("COALESCE(CONCAT(LENGTH(") + v + "), ':', " +
             v + "), '-')";
    }
  }
  return d.dbms() == Dbms::kPostgres ? "CAST(ROW(" + row + ") AS TEXT)" : "CONCAT(" + row + ")";
}

// Splits a MariaDB packed row into `out`; false when it is malformed.
bool UnpackLengthPrefixed(std::string_view packed, size_t columns, RowBatch* out) {
  for (size_t c = 0; c < columns; ++c) {
    if (packed.empty()) return false;
    if (packed[0] == '-') {
      out->AddNull();
      packed.remove_prefix(1);
      continue;
    }
    size_t len = 0;
    size_t i = 0;
    while (i < packed.size() && packed[i] >= '0' && packed[i] <= '9' && i < 19) {
      len = len * 10 + static_cast<size_t>(packed[i++] - '0');
    }
    if (i == 0 || i >= packed.size() || packed[i] != ':' || len > packed.size() - i - 1) {
      return false;
    }
    out->AddCell(packed.substr(i + 1, len));
    packed.remove_prefix(i + 1 + len);
  }
  return packed.empty();
}

// Splits a PostgreSQL composite-row literal ("(1,\"a b\",,2010-01-01)": an empty field is
// NULL, "" is the empty string, quoted fields escape '"' and '\\' by doubling or a backslash)
// into `out`; false when it is malformed.
bool UnpackRowLiteral(std::string_view packed, size_t columns, RowBatch* out, std::string* cell) {
  if (packed.size() < 2 || packed.front() != '(' || packed.back() != ')') return false;
  size_t i = 1;
  const size_t end = packed.size() - 1;
  for (size_t c = 0; c < columns; ++c) {
    if (c > 0) {
      if (i >= end || packed[i] != ',') return false;
      ++i;
    }
    if (i == end || packed[i] == ',') {
      out->AddNull();
      continue;
    }
    if (packed[i] != '"') {
      size_t start = i;
      while (i < end && packed[i] != ',') ++i;
      out->AddCell(packed.substr(start, i - start));
      continue;
    }
    cell->clear();
    ++i;
    while (true) {
      if (i >= end) return false;
      char ch = packed[i++];
      if (ch == '\\') {
        if (i >= end) return false;
        cell->push_back(packed[i++]);
      } else if (ch == '"') {
        if (i < end && packed[i] == '"') {
          cell->push_back('"');
          ++i;
        } else {
          break;
        }
      } else {
        cell->push_back(ch);
      }
    }
    out->AddCell(*cell);
  }
  return i == end;
}

}  // namespace

TableReady TableReconciler::Begin(const ReconcileBegin& begin) {
  const std::string& sub = begin.table.subscription;
  TableReady ready;
  ready.subscription = sub;
  ready.run_id = begin.table.run_id;
  states_.erase(sub);
  TableBegin table = begin.table;
  table.reset = false;  // reconciliation never clears a table
  // Rows the consumer deleted are repaired here, not by reloading the whole table.
  auto prepared = writer_->BeginTable(table, /*for_repair=*/true);
  if (!prepared.ok()) {
    ready.code = prepared.status().code();
    ready.error = prepared.status().message();
    return ready;
  }
  ready = std::move(prepared).value();
  const TableSpec* target = writer_->TargetTable(sub);
  if (target == nullptr) {
    ready.code = StatusCode::kInternal;
    ready.error = "table of " + sub + " not prepared";
    return ready;
  }
  State& state = states_[sub];
  state.run_id = begin.table.run_id;
  state.dry_run = begin.dry_run;
  // The target's own names (its name case), in the catalog's column order and types.
  state.hasher = std::make_unique<RowHasher>(*target);
  LOG_INFO("reconciliation of " << sub << " (table " << begin.table.spec.table << ")"
                                << (begin.dry_run ? ", dry run" : ""));
  return ready;
}

RangeAnswer TableReconciler::Answer(const RangeQuery& query) {
  RangeAnswer answer;
  answer.subscription = query.subscription;
  answer.run_id = query.run_id;
  auto fail = [&](const Status& st) {
    answer.code = st.code();
    answer.error = st.message();
    answer.items.clear();
    states_.erase(query.subscription);
    LOG_ERROR("reconciliation of " << query.subscription << ": " << st.message());
    return answer;
  };
  auto it = states_.find(query.subscription);
  if (it == states_.end() || it->second.run_id != query.run_id) {
    return fail(FailedPrecondition("no reconciliation of " + query.subscription +
                                   " is under way with run " + std::to_string(query.run_id)));
  }
  State& state = it->second;
  std::vector<const RangeRequest*> compares;
  auto flush_compares = [&]() -> Status {
    if (compares.empty()) return Status::Ok();
    Status st = CompareRanges(state, compares, &answer.items);
    compares.clear();
    return st;
  };
  for (const RangeRequest& q : query.requests) {
    if (q.kind == Kind::kCompare) {
      compares.push_back(&q);
      continue;
    }
    Status st = flush_compares();
    if (!st.ok()) return fail(st);
    if (q.kind == Kind::kRelease) {
      state.kept.erase(q.range);
      continue;
    }
    auto kept = state.kept.find(q.range);
    if (kept == state.kept.end()) {
      return fail(InvalidArgument("range " + std::to_string(q.range) + " is not held"));
    }
    RangeAnswerItem item = Describe(kept->second.digests, q.range, q.path);
    if (q.kind == Kind::kList) ListRows(kept->second.digests, kept->second.raw_keys, &item);
    answer.items.push_back(std::move(item));
  }
  Status st = flush_compares();
  if (!st.ok()) return fail(st);
  return answer;
}

Status TableReconciler::CompareRanges(State& state,
                                      const std::vector<const RangeRequest*>& compares,
                                      std::vector<RangeAnswerItem>* out) {
  RowHasher& hasher = *state.hasher;
  const TableSpec& spec = hasher.spec();
  const std::vector<size_t>& key_indexes = hasher.key_indexes();
  std::vector<const ColumnSpec*> keys;
  for (size_t k : key_indexes) keys.push_back(&spec.columns[k]);
  for (const RangeRequest* q : compares) {
    if (state.finished || q->range != state.next_range) {
      return InvalidArgument("range " + std::to_string(q->range) + " asked out of order");
    }
    if (!q->last && q->upper_key.size() != keys.size()) {
      return InvalidArgument("range bound has " + std::to_string(q->upper_key.size()) +
                             " key values, the table's key has " + std::to_string(keys.size()));
    }
    ++state.next_range;
    if (q->last) state.finished = true;
  }
  // The bounds as canonical keys, to split the rows read in one query between the ranges.
  std::vector<std::string> bounds;
  for (const RangeRequest* q : compares) {
    std::vector<std::string_view> cells(q->upper_key.begin(), q->upper_key.end());
    bounds.push_back(q->last ? std::string() : hasher.KeyOf(cells));
  }
  for (size_t i = 1; i < bounds.size(); ++i) {
    if (!compares[i]->last && hasher.CompareKeys(bounds[i - 1], bounds[i]) >= 0) {
      return InvalidArgument("range bounds are not increasing");
    }
  }
  const RangeRequest& final_request = *compares.back();
  std::string after_key;
  if (state.started) {
    std::vector<std::string_view> cells(state.after.begin(), state.after.end());
    after_key = hasher.KeyOf(cells);
  }

  std::vector<KeptRange> ranges(compares.size());
  Status read = writer_->ReadLocal([&](OdbcConnection& conn, const SqlDialect& d) -> Status {
    const bool packed = ReadsPackedRows(d) && !HasBinaryColumn(spec);
    std::string select;
    if (packed) {
      select = PackedRow(d, spec);
    } else {
      for (const ColumnSpec& c : spec.columns)
        select += (select.empty() ? "" : ", ") + d.Quote(c.name);
    }
    std::vector<std::string> params;
    std::string where;
    if (state.started) where = KeyCompare(d, keys, state.after, ">", &params);
    if (!final_request.last) {
      where += (where.empty() ? "" : " AND ") +
               KeyCompare(d, keys, final_request.upper_key, "<=", &params);
    }
    std::string order;
    for (const ColumnSpec* k : keys)
      order += (order.empty() ? "" : ", ") + KeyOrderExpression(d, *k);
    std::string sql = "SELECT " + select + " FROM " + d.Quote(spec.table) +
                      (where.empty() ? "" : " WHERE " + where) + " ORDER BY " + order;
    if (d.dbms() == Dbms::kSqlite) {
      DX_ASSIGN_OR_RETURN(sql, InlineLiterals(sql, params));
      params.clear();
    }
    DX_ASSIGN_OR_RETURN(auto stmt, conn.Prepare(sql));
    DX_RETURN_IF_ERROR(stmt->DeclareParams(params.size()));
    for (size_t i = 0; i < params.size(); ++i) DX_RETURN_IF_ERROR(stmt->SetParam(i, params[i]));
    DX_RETURN_IF_ERROR(stmt->Execute());
    RowBatch row(spec.columns.size());
    // The source's rows of these ranges, and at most kMaxRangeRowsHere more, are held.
    size_t read_limit = kMaxRangeRowsHere;
    for (const RangeRequest* q : compares) read_limit += q->source.count;
    size_t rows_read = 0;
    std::string cell;
    std::string quoted;
    std::string previous;
    size_t current = 0;
    while (true) {
      DX_ASSIGN_OR_RETURN(bool more, stmt->Fetch());
      if (!more) break;
      row.Clear();
      if (packed) {
        DX_ASSIGN_OR_RETURN(bool not_null, stmt->GetText(0, &cell));
        bool unpacked =
            not_null && (d.dbms() == Dbms::kPostgres
                             ? UnpackRowLiteral(cell, spec.columns.size(), &row, &quoted)
                             : UnpackLengthPrefixed(cell, spec.columns.size(), &row));
        if (!unpacked) {
          return Internal("a row of " + spec.table + " read back malformed: '" +
                          cell.substr(0, 80) + "'");
        }
      } else {
        for (size_t c = 0; c < spec.columns.size(); ++c) {
          DX_ASSIGN_OR_RETURN(bool not_null, IsBinaryType(spec.columns[c].type)
                                                 ? stmt->GetBytes(c, &cell)
                                                 : stmt->GetText(c, &cell));
          if (not_null) {
            row.AddCell(cell);
          } else {
            row.AddNull();
          }
        }
      }
      RowDigest digest;
      hasher.Hash(row, 0, &digest);
      // The database's order must be the canonical key order, or ranges would not line up.
      if ((!previous.empty() && hasher.CompareKeys(previous, digest.key) >= 0) ||
          (state.started && hasher.CompareKeys(digest.key, after_key) <= 0)) {
        return FailedPrecondition("the rows of " + spec.table +
                                  " do not come back in key order (at key '" +
                                  std::string(row.Cell(0, key_indexes[0])) +
                                  "'): reconciliation needs a key order every DBMS agrees on");
      }
      while (current < bounds.size() && !compares[current]->last &&
             hasher.CompareKeys(digest.key, bounds[current]) > 0) {
        ++current;
      }
      if (current == bounds.size()) {
        return FailedPrecondition("a row of " + spec.table + " lies beyond the range asked for");
      }
      if (++rows_read > read_limit) {
        return FailedPrecondition(
            "the local table holds more than " + std::to_string(kMaxRangeRowsHere) +
            " rows beyond what the source has in the ranges asked for (from key '" +
            std::string(row.Cell(0, key_indexes[0])) +
            "'); reconciliation compares no more at once: resync the subscription");
      }
      previous = digest.key;
      std::string raw;
      for (size_t k : key_indexes) RowHasher::AppendKeyCell(row.Cell(0, k), &raw);
      ranges[current].raw_keys.push_back(std::move(raw));
      ranges[current].digests.Add(std::move(digest));
    }
    return Status::Ok();
  });
  DX_RETURN_IF_ERROR(read);
  if (!final_request.last) {
    state.after = final_request.upper_key;
    state.started = true;
  }
  for (size_t i = 0; i < compares.size(); ++i) {
    const RangeRequest& q = *compares[i];
    RangeSummary mine = ranges[i].digests.Summary(BucketPath{});
    if (mine == q.source) {
      RangeAnswerItem equal;
      equal.kind = AnswerKind::kEqual;
      equal.range = q.range;
      equal.whole = mine;
      out->push_back(equal);
      continue;
    }
    RangeAnswerItem item = Describe(ranges[i].digests, q.range, BucketPath{});
    if (ListBucket(q.source.count, mine.count, 0)) {
      ListRows(ranges[i].digests, ranges[i].raw_keys, &item);
    }
    out->push_back(std::move(item));
    if (state.kept.size() >= kMaxKeptRanges) {
      return FailedPrecondition("the scheduler keeps more than " + std::to_string(kMaxKeptRanges) +
                                " differing ranges open");
    }
    state.kept[q.range] = std::move(ranges[i]);
  }
  return Status::Ok();
}

BatchAck TableReconciler::Repair(const RepairBatch& repair, const Result<RowBatch>& rows,
                                 const Result<RowBatch>& keys) {
  BatchAck ack;
  ack.subscription = repair.subscription;
  ack.seq = repair.seq;
  Status st = rows.status();
  if (st.ok()) st = keys.status();
  auto it = states_.find(repair.subscription);
  if (st.ok() && (it == states_.end() || it->second.run_id != repair.run_id)) {
    st = FailedPrecondition("no reconciliation of " + repair.subscription + " is under way");
  }
  if (st.ok() && it->second.dry_run) {
    st = FailedPrecondition("a dry run changes nothing: repair refused");
  }
  if (st.ok() && (rows->rows() != repair.upserts || keys->rows() != repair.deletes)) {
    st = DataLoss("repair " + std::to_string(repair.seq) + " holds other counts than it says");
  }
  if (st.ok()) {
    auto outcome =
        writer_->ApplyRepair(repair.subscription, repair.seq, rows.value(), keys.value());
    if (outcome.ok()) {
      ack.duplicate = outcome->duplicate;
      LOG_DEBUG("repair " << repair.seq << " of " << repair.subscription << ": " << repair.upserts
                          << " upserts, " << repair.deletes << " deletes");
    } else {
      st = outcome.status();
    }
  }
  if (!st.ok()) {
    ack.code = st.code();
    ack.error = st.message();
    LOG_ERROR("refused repair " << repair.seq << " of " << repair.subscription << ": "
                                << st.message());
  }
  return ack;
}

}  // namespace dx::agent
