#include "common/protocol.h"

#include <cstring>

#include "common/wire.h"

namespace dx {
namespace {

void PutLedger(ByteWriter& w, const LedgerEntry& e) {
  w.PutString(e.subscription);
  w.PutVarint(e.batch_seq);
  w.PutString(e.watermark);
}

Status GetLedger(ByteReader& r, LedgerEntry* e) {
  DX_RETURN_IF_ERROR(r.GetString(&e->subscription));
  DX_RETURN_IF_ERROR(r.GetVarint(&e->batch_seq));
  return r.GetString(&e->watermark);
}

Status GetU32(ByteReader& r, uint32_t* v) {
  uint64_t x = 0;
  DX_RETURN_IF_ERROR(r.GetVarint(&x));
  if (x > UINT32_MAX) return DataLoss("value out of range");
  *v = static_cast<uint32_t>(x);
  return Status::Ok();
}

Status GetBool(ByteReader& r, bool* v) {
  uint8_t b = 0;
  DX_RETURN_IF_ERROR(r.GetU8(&b));
  *v = b != 0;
  return Status::Ok();
}

Status GetCode(ByteReader& r, StatusCode* code) {
  uint8_t b = 0;
  DX_RETURN_IF_ERROR(r.GetU8(&b));
  if (b > static_cast<uint8_t>(StatusCode::kInternal)) return DataLoss("unknown status code");
  *code = static_cast<StatusCode>(b);
  return Status::Ok();
}

Status Finish(const ByteReader& r, const char* what) {
  if (!r.done()) return DataLoss(std::string("trailing bytes in ") + what);
  return Status::Ok();
}

// A hello's ledger count, before anything is allocated for it: each entry takes at least 3
// bytes, so a count the bytes cannot back is refused at once.
Status CheckLedgerCount(uint64_t n, size_t remaining) {
  if (n > 100000 || n > remaining / 3) {
    return DataLoss("hello claims a ledger of " + std::to_string(n) + " entries in " +
                    std::to_string(remaining) + " bytes");
  }
  return Status::Ok();
}

}  // namespace

std::string EncodeFrame(MessageType type, std::string_view payload) {
  std::string out(kFrameHeaderBytes + payload.size(), '\0');
  const auto len = static_cast<uint32_t>(payload.size() + 1);
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((len >> (8 * i)) & 0xff);
  out[4] = static_cast<char>(type);
  std::memcpy(out.data() + kFrameHeaderBytes, payload.data(), payload.size());
  return out;
}

uint32_t FrameLength(const char (&header)[kFrameHeaderBytes]) {
  uint32_t len = 0;
  for (int i = 0; i < 4; ++i)
    len |= static_cast<uint32_t>(static_cast<uint8_t>(header[i])) << (8 * i);
  return len;
}

std::string Encode(const Hello& m) {
  ByteWriter w;
  w.PutVarint(m.protocol_version);
  w.PutString(m.agent);
  w.PutString(m.secret);
  w.PutString(m.agent_version);
  w.PutString(m.target_dbms);
  w.PutVarint(m.ledger.size());
  for (const LedgerEntry& e : m.ledger) PutLedger(w, e);
  if (m.offers_session) w.PutString(m.session_token);
  return w.Take();
}

Status DecodeHelloIdentity(std::string_view in, Hello* m, std::string_view* ledger) {
  ByteReader r(in);
  DX_RETURN_IF_ERROR(GetU32(r, &m->protocol_version));
  if (m->protocol_version != kProtocolVersion) return Status::Ok();  // caller refuses it
  DX_RETURN_IF_ERROR(r.GetString(&m->agent));
  DX_RETURN_IF_ERROR(r.GetString(&m->secret));
  DX_RETURN_IF_ERROR(r.GetString(&m->agent_version));
  DX_RETURN_IF_ERROR(r.GetString(&m->target_dbms));
  // The ledger is walked (checked, nothing allocated) to reach the fields after it.
  const size_t ledger_at = in.size() - r.remaining();
  uint64_t n = 0;
  DX_RETURN_IF_ERROR(r.GetVarint(&n));
  DX_RETURN_IF_ERROR(CheckLedgerCount(n, r.remaining()));
  for (uint64_t i = 0; i < n; ++i) {
    std::string_view text;
    uint64_t seq = 0;
    DX_RETURN_IF_ERROR(r.GetStringView(&text));
    DX_RETURN_IF_ERROR(r.GetVarint(&seq));
    DX_RETURN_IF_ERROR(r.GetStringView(&text));
  }
  *ledger = in.substr(ledger_at, in.size() - r.remaining() - ledger_at);
  m->offers_session = !r.done();  // absent from older agents' hellos
  if (m->offers_session) DX_RETURN_IF_ERROR(r.GetString(&m->session_token));
  return Finish(r, "hello");
}

Status DecodeHelloLedger(std::string_view ledger, std::vector<LedgerEntry>* entries) {
  ByteReader r(ledger);
  uint64_t n = 0;
  DX_RETURN_IF_ERROR(r.GetVarint(&n));
  DX_RETURN_IF_ERROR(CheckLedgerCount(n, r.remaining()));
  entries->resize(n);
  for (auto& e : *entries) DX_RETURN_IF_ERROR(GetLedger(r, &e));
  return Finish(r, "hello ledger");
}

Status Decode(std::string_view in, Hello* m) {
  std::string_view ledger;
  DX_RETURN_IF_ERROR(DecodeHelloIdentity(in, m, &ledger));
  if (m->protocol_version != kProtocolVersion) return Status::Ok();
  return DecodeHelloLedger(ledger, &m->ledger);
}

std::string Encode(const HelloReply& m) {
  ByteWriter w;
  w.PutVarint(m.protocol_version);
  w.PutU8(m.accepted ? 1 : 0);
  w.PutString(m.reason);
  w.PutVarint(m.heartbeat_s);
  if (!m.session_token.empty()) w.PutString(m.session_token);
  return w.Take();
}

Status Decode(std::string_view in, HelloReply* m) {
  ByteReader r(in);
  DX_RETURN_IF_ERROR(GetU32(r, &m->protocol_version));
  DX_RETURN_IF_ERROR(GetBool(r, &m->accepted));
  DX_RETURN_IF_ERROR(r.GetString(&m->reason));
  DX_RETURN_IF_ERROR(GetU32(r, &m->heartbeat_s));
  if (!r.done()) DX_RETURN_IF_ERROR(r.GetString(&m->session_token));
  return Finish(r, "hello reply");
}

std::string Encode(const TableBegin& m) {
  ByteWriter w;
  w.PutString(m.subscription);
  w.PutVarint(m.run_id);
  w.PutU8(m.reset ? 1 : 0);
  w.PutString(m.spec.table);
  w.PutVarint(m.spec.columns.size());
  for (const ColumnSpec& c : m.spec.columns) {
    w.PutString(c.name);
    w.PutU8(static_cast<uint8_t>(c.type));
    w.PutVarint(static_cast<uint64_t>(c.length));
    w.PutVarint(static_cast<uint64_t>(c.scale));
    w.PutU8(static_cast<uint8_t>((c.not_null ? 1 : 0) | (c.primary_key ? 2 : 0)));
  }
  w.PutString(m.reset_id);
  return w.Take();
}

Status Decode(std::string_view in, TableBegin* m) {
  ByteReader r(in);
  DX_RETURN_IF_ERROR(r.GetString(&m->subscription));
  DX_RETURN_IF_ERROR(r.GetVarint(&m->run_id));
  DX_RETURN_IF_ERROR(GetBool(r, &m->reset));
  DX_RETURN_IF_ERROR(r.GetString(&m->spec.table));
  uint64_t n = 0;
  DX_RETURN_IF_ERROR(r.GetVarint(&n));
  if (n == 0 || n > 4096) return DataLoss("table spec has " + std::to_string(n) + " columns");
  m->spec.columns.resize(n);
  for (ColumnSpec& c : m->spec.columns) {
    uint8_t type = 0;
    uint8_t flags = 0;
    uint64_t length = 0;
    uint64_t scale = 0;
    DX_RETURN_IF_ERROR(r.GetString(&c.name));
    DX_RETURN_IF_ERROR(r.GetU8(&type));
    if (!IsKnownColumnType(type)) {
      return DataLoss("unknown column type code " + std::to_string(type));
    }
    c.type = static_cast<ColumnType>(type);
    DX_RETURN_IF_ERROR(r.GetVarint(&length));
    DX_RETURN_IF_ERROR(r.GetVarint(&scale));
    DX_RETURN_IF_ERROR(r.GetU8(&flags));
    if (length > 10000000 || scale > length) {
      return DataLoss("column '" + c.name + "' has length " + std::to_string(length) +
                      " and scale " + std::to_string(scale));
    }
    c.length = static_cast<int>(length);
    c.scale = static_cast<int>(scale);
    c.not_null = (flags & 1) != 0;
    c.primary_key = (flags & 2) != 0;
  }
  m->reset_id.clear();
  if (!r.done()) DX_RETURN_IF_ERROR(r.GetString(&m->reset_id));  // absent from older schedulers
  return Finish(r, "table begin");
}

std::string Encode(const TableReady& m) {
  ByteWriter w;
  w.PutString(m.subscription);
  w.PutVarint(m.run_id);
  w.PutU8(static_cast<uint8_t>(m.code));
  w.PutString(m.error);
  PutLedger(w, m.ledger);
  w.PutU8(m.reloaded ? 1 : 0);
  w.PutString(m.note);
  w.PutU8(m.damaged ? 1 : 0);
  return w.Take();
}

Status Decode(std::string_view in, TableReady* m) {
  ByteReader r(in);
  DX_RETURN_IF_ERROR(r.GetString(&m->subscription));
  DX_RETURN_IF_ERROR(r.GetVarint(&m->run_id));
  DX_RETURN_IF_ERROR(GetCode(r, &m->code));
  DX_RETURN_IF_ERROR(r.GetString(&m->error));
  DX_RETURN_IF_ERROR(GetLedger(r, &m->ledger));
  if (r.done()) return Status::Ok();  // an agent from before reloads were reported
  DX_RETURN_IF_ERROR(GetBool(r, &m->reloaded));
  DX_RETURN_IF_ERROR(r.GetString(&m->note));
  if (r.done()) return Status::Ok();  // an agent from before damage was reported
  DX_RETURN_IF_ERROR(GetBool(r, &m->damaged));
  return Finish(r, "table ready");
}

std::string Encode(const BatchMessage& m) {
  ByteWriter w;
  w.buffer().reserve(m.payload.size() + 128);
  w.PutString(m.subscription);
  w.PutVarint(m.run_id);
  w.PutVarint(m.seq);
  w.PutString(m.watermark);
  w.PutVarint(m.rows);
  w.PutString(m.payload);
  return w.Take();
}

Status Decode(std::string_view in, BatchMessage* m) {
  ByteReader r(in);
  DX_RETURN_IF_ERROR(r.GetString(&m->subscription));
  DX_RETURN_IF_ERROR(r.GetVarint(&m->run_id));
  DX_RETURN_IF_ERROR(r.GetVarint(&m->seq));
  DX_RETURN_IF_ERROR(r.GetString(&m->watermark));
  DX_RETURN_IF_ERROR(GetU32(r, &m->rows));
  DX_RETURN_IF_ERROR(r.GetString(&m->payload));
  return Finish(r, "batch");
}

std::string Encode(const BatchAck& m) {
  ByteWriter w;
  w.PutString(m.subscription);
  w.PutVarint(m.seq);
  w.PutU8(static_cast<uint8_t>(m.code));
  w.PutString(m.error);
  w.PutU8(m.duplicate ? 1 : 0);
  return w.Take();
}

Status Decode(std::string_view in, BatchAck* m) {
  ByteReader r(in);
  DX_RETURN_IF_ERROR(r.GetString(&m->subscription));
  DX_RETURN_IF_ERROR(r.GetVarint(&m->seq));
  DX_RETURN_IF_ERROR(GetCode(r, &m->code));
  DX_RETURN_IF_ERROR(r.GetString(&m->error));
  DX_RETURN_IF_ERROR(GetBool(r, &m->duplicate));
  return Finish(r, "batch ack");
}

namespace {

void PutMeta(ByteWriter& w, const FileMeta& m) {
  w.PutString(m.subscription);
  w.PutVarint(m.run_id);
  w.PutString(m.path);
  w.PutVarint(m.size);
  w.PutString(m.sha256);
  w.PutString(m.version);
}

Status GetMeta(ByteReader& r, FileMeta* m) {
  DX_RETURN_IF_ERROR(r.GetString(&m->subscription));
  DX_RETURN_IF_ERROR(r.GetVarint(&m->run_id));
  DX_RETURN_IF_ERROR(r.GetString(&m->path));
  DX_RETURN_IF_ERROR(r.GetVarint(&m->size));
  DX_RETURN_IF_ERROR(r.GetString(&m->sha256));
  return r.GetString(&m->version);
}

}  // namespace

std::string Encode(const FileMeta& m) {
  ByteWriter w;
  PutMeta(w, m);
  return w.Take();
}

Status Decode(std::string_view in, FileMeta* m) {
  ByteReader r(in);
  DX_RETURN_IF_ERROR(GetMeta(r, m));
  return Finish(r, "file offer");
}

std::string Encode(const FilePut& m) {
  ByteWriter w;
  w.buffer().reserve(m.data.size() + 256);
  PutMeta(w, m.meta);
  w.PutU8(m.compressed ? 1 : 0);
  w.PutString(m.data);
  return w.Take();
}

Status Decode(std::string_view in, FilePut* m) {
  ByteReader r(in);
  DX_RETURN_IF_ERROR(GetMeta(r, &m->meta));
  DX_RETURN_IF_ERROR(GetBool(r, &m->compressed));
  DX_RETURN_IF_ERROR(r.GetString(&m->data));
  return Finish(r, "file put");
}

std::string Encode(const FileResume& m) {
  ByteWriter w;
  w.PutString(m.subscription);
  w.PutString(m.path);
  w.PutU8(static_cast<uint8_t>(m.code));
  w.PutString(m.error);
  w.PutU8(m.complete ? 1 : 0);
  w.PutVarint(m.offset);
  return w.Take();
}

Status Decode(std::string_view in, FileResume* m) {
  ByteReader r(in);
  DX_RETURN_IF_ERROR(r.GetString(&m->subscription));
  DX_RETURN_IF_ERROR(r.GetString(&m->path));
  DX_RETURN_IF_ERROR(GetCode(r, &m->code));
  DX_RETURN_IF_ERROR(r.GetString(&m->error));
  DX_RETURN_IF_ERROR(GetBool(r, &m->complete));
  DX_RETURN_IF_ERROR(r.GetVarint(&m->offset));
  return Finish(r, "file resume");
}

std::string Encode(const FileChunk& m) {
  ByteWriter w;
  w.buffer().reserve(m.data.size() + 128);
  w.PutString(m.subscription);
  w.PutString(m.path);
  w.PutVarint(m.offset);
  w.PutU8(m.compressed ? 1 : 0);
  w.PutString(m.data);
  return w.Take();
}

Status Decode(std::string_view in, FileChunk* m) {
  ByteReader r(in);
  DX_RETURN_IF_ERROR(r.GetString(&m->subscription));
  DX_RETURN_IF_ERROR(r.GetString(&m->path));
  DX_RETURN_IF_ERROR(r.GetVarint(&m->offset));
  DX_RETURN_IF_ERROR(GetBool(r, &m->compressed));
  DX_RETURN_IF_ERROR(r.GetString(&m->data));
  return Finish(r, "file chunk");
}

Status DecodeChunkView(std::string_view in, FileChunk* m, std::string_view* data) {
  ByteReader r(in);
  DX_RETURN_IF_ERROR(r.GetString(&m->subscription));
  DX_RETURN_IF_ERROR(r.GetString(&m->path));
  DX_RETURN_IF_ERROR(r.GetVarint(&m->offset));
  DX_RETURN_IF_ERROR(GetBool(r, &m->compressed));
  DX_RETURN_IF_ERROR(r.GetStringView(data));
  return Finish(r, "file chunk");
}

std::string Encode(const FileCommit& m) {
  ByteWriter w;
  w.PutString(m.subscription);
  w.PutString(m.path);
  w.PutString(m.sha256);
  return w.Take();
}

Status Decode(std::string_view in, FileCommit* m) {
  ByteReader r(in);
  DX_RETURN_IF_ERROR(r.GetString(&m->subscription));
  DX_RETURN_IF_ERROR(r.GetString(&m->path));
  DX_RETURN_IF_ERROR(r.GetString(&m->sha256));
  return Finish(r, "file commit");
}

std::string Encode(const FileCopy& m) {
  ByteWriter w;
  PutMeta(w, m.meta);
  w.PutString(m.from_path);
  return w.Take();
}

Status Decode(std::string_view in, FileCopy* m) {
  ByteReader r(in);
  DX_RETURN_IF_ERROR(GetMeta(r, &m->meta));
  DX_RETURN_IF_ERROR(r.GetString(&m->from_path));
  return Finish(r, "file copy");
}

std::string Encode(const FileDelete& m) {
  ByteWriter w;
  w.PutString(m.subscription);
  w.PutVarint(m.run_id);
  w.PutString(m.path);
  return w.Take();
}

Status Decode(std::string_view in, FileDelete* m) {
  ByteReader r(in);
  DX_RETURN_IF_ERROR(r.GetString(&m->subscription));
  DX_RETURN_IF_ERROR(r.GetVarint(&m->run_id));
  DX_RETURN_IF_ERROR(r.GetString(&m->path));
  return Finish(r, "file delete");
}

std::string Encode(const FileResult& m) {
  ByteWriter w;
  w.PutString(m.subscription);
  w.PutString(m.path);
  w.PutU8(static_cast<uint8_t>(m.code));
  w.PutString(m.error);
  w.PutString(m.outcome);
  return w.Take();
}

Status Decode(std::string_view in, FileResult* m) {
  ByteReader r(in);
  DX_RETURN_IF_ERROR(r.GetString(&m->subscription));
  DX_RETURN_IF_ERROR(r.GetString(&m->path));
  DX_RETURN_IF_ERROR(GetCode(r, &m->code));
  DX_RETURN_IF_ERROR(r.GetString(&m->error));
  DX_RETURN_IF_ERROR(r.GetString(&m->outcome));
  return Finish(r, "file result");
}

std::string Encode(const FileAbort& m) {
  ByteWriter w;
  w.PutString(m.subscription);
  w.PutString(m.path);
  w.PutString(m.reason);
  return w.Take();
}

Status Decode(std::string_view in, FileAbort* m) {
  ByteReader r(in);
  DX_RETURN_IF_ERROR(r.GetString(&m->subscription));
  DX_RETURN_IF_ERROR(r.GetString(&m->path));
  DX_RETURN_IF_ERROR(r.GetString(&m->reason));
  return Finish(r, "file abort");
}

std::string Encode(const FileFolder& m) {
  ByteWriter w;
  w.PutString(m.subscription);
  w.PutVarint(m.run_id);
  w.PutString(m.path);
  w.PutU8(m.remove ? 1 : 0);
  return w.Take();
}

Status Decode(std::string_view in, FileFolder* m) {
  ByteReader r(in);
  DX_RETURN_IF_ERROR(r.GetString(&m->subscription));
  DX_RETURN_IF_ERROR(r.GetVarint(&m->run_id));
  DX_RETURN_IF_ERROR(r.GetString(&m->path));
  DX_RETURN_IF_ERROR(GetBool(r, &m->remove));
  return Finish(r, "file folder");
}

std::string Encode(const FileSweep& m) {
  ByteWriter w;
  w.PutString(m.subscription);
  w.PutVarint(m.run_id);
  w.PutString(m.path);
  return w.Take();
}

Status Decode(std::string_view in, FileSweep* m) {
  ByteReader r(in);
  DX_RETURN_IF_ERROR(r.GetString(&m->subscription));
  DX_RETURN_IF_ERROR(r.GetVarint(&m->run_id));
  DX_RETURN_IF_ERROR(r.GetString(&m->path));
  return Finish(r, "file sweep");
}

std::string Encode(const FileRunBegin& m) {
  ByteWriter w;
  w.PutString(m.subscription);
  w.PutVarint(m.run_id);
  return w.Take();
}

Status Decode(std::string_view in, FileRunBegin* m) {
  ByteReader r(in);
  DX_RETURN_IF_ERROR(r.GetString(&m->subscription));
  DX_RETURN_IF_ERROR(r.GetVarint(&m->run_id));
  return Finish(r, "file run begin");
}

}  // namespace dx

// Reconciliation (对账) messages.
namespace dx {
namespace {

constexpr size_t kMaxKeyCells = 4096;  // a key has at most as many cells as a table has columns

void PutU64(ByteWriter& w, uint64_t v) {
  for (int i = 0; i < 8; ++i) w.PutU8(static_cast<uint8_t>((v >> (8 * i)) & 0xff));
}

Status GetU64(ByteReader& r, uint64_t* v) {
  std::string_view bytes;
  DX_RETURN_IF_ERROR(r.GetBytes(8, &bytes));
  *v = 0;
  for (int i = 0; i < 8; ++i)
    *v |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  return Status::Ok();
}

void PutSummary(ByteWriter& w, const RangeSummary& s) {
  w.PutVarint(s.count);
  PutU64(w, s.digest);
}

Status GetSummary(ByteReader& r, RangeSummary* s) {
  uint64_t count = 0;
  DX_RETURN_IF_ERROR(r.GetVarint(&count));
  if (count > UINT32_MAX) return DataLoss("range count out of range");
  s->count = static_cast<uint32_t>(count);
  return GetU64(r, &s->digest);
}

void PutPath(ByteWriter& w, uint64_t range, const BucketPath& path) {
  w.PutVarint(range);
  w.PutU8(path.depth);
  w.PutVarint(path.prefix);
}

Status GetPath(ByteReader& r, uint64_t* range, BucketPath* path) {
  DX_RETURN_IF_ERROR(r.GetVarint(range));
  DX_RETURN_IF_ERROR(r.GetU8(&path->depth));
  DX_RETURN_IF_ERROR(r.GetVarint(&path->prefix));
  if (path->depth > kMaxBucketDepth) return DataLoss("bucket depth out of range");
  if (path->depth < kMaxBucketDepth && (path->prefix >> (4 * path->depth)) != 0) {
    return DataLoss("bucket prefix longer than its depth");
  }
  return Status::Ok();
}

void PutKey(ByteWriter& w, const std::vector<std::string>& key) {
  w.PutVarint(key.size());
  for (const std::string& cell : key) w.PutString(cell);
}

Status GetKey(ByteReader& r, std::vector<std::string>* key) {
  uint64_t n = 0;
  DX_RETURN_IF_ERROR(r.GetVarint(&n));
  // Every cell takes at least one byte, so a count beyond what remains is a lie.
  if (n == 0 || n > kMaxKeyCells || n > r.remaining()) return DataLoss("bad key cell count");
  key->resize(n);
  for (std::string& cell : *key) DX_RETURN_IF_ERROR(r.GetString(&cell));
  return Status::Ok();
}

// Reads a count of items that take at least `min_bytes` each, bounded by `max`.
Status GetCount(ByteReader& r, size_t max, size_t min_bytes, const char* what, uint64_t* n) {
  DX_RETURN_IF_ERROR(r.GetVarint(n));
  if (*n > max || *n > r.remaining() / min_bytes) {
    return DataLoss(std::string("bad count of ") + what + ": " + std::to_string(*n));
  }
  return Status::Ok();
}

}  // namespace

std::string Encode(const ReconcileBegin& m) {
  ByteWriter w;
  w.PutString(Encode(m.table));
  w.PutU8(m.dry_run ? 1 : 0);
  return w.Take();
}

Status Decode(std::string_view in, ReconcileBegin* m) {
  ByteReader r(in);
  std::string_view table;
  DX_RETURN_IF_ERROR(r.GetStringView(&table));
  DX_RETURN_IF_ERROR(Decode(table, &m->table));
  DX_RETURN_IF_ERROR(GetBool(r, &m->dry_run));
  return Finish(r, "reconcile begin");
}

std::string Encode(const RangeQuery& m) {
  ByteWriter w;
  w.PutString(m.subscription);
  w.PutVarint(m.run_id);
  w.PutVarint(m.requests.size());
  for (const RangeRequest& q : m.requests) {
    w.PutU8(static_cast<uint8_t>(q.kind));
    PutPath(w, q.range, q.path);
    if (q.kind != RangeRequest::Kind::kCompare) continue;
    w.PutU8(q.last ? 1 : 0);
    if (!q.last) PutKey(w, q.upper_key);
    PutSummary(w, q.source);
  }
  return w.Take();
}

Status Decode(std::string_view in, RangeQuery* m) {
  ByteReader r(in);
  DX_RETURN_IF_ERROR(r.GetString(&m->subscription));
  DX_RETURN_IF_ERROR(r.GetVarint(&m->run_id));
  uint64_t n = 0;
  DX_RETURN_IF_ERROR(GetCount(r, kMaxRangeRequests, 4, "range requests", &n));
  m->requests.resize(n);
  for (RangeRequest& q : m->requests) {
    uint8_t kind = 0;
    DX_RETURN_IF_ERROR(r.GetU8(&kind));
    if (kind < 1 || kind > 4) return DataLoss("unknown range request kind " + std::to_string(kind));
    q.kind = static_cast<RangeRequest::Kind>(kind);
    DX_RETURN_IF_ERROR(GetPath(r, &q.range, &q.path));
    if (q.kind != RangeRequest::Kind::kCompare) continue;
    if (q.path.depth != 0) return DataLoss("a range comparison names a bucket");
    DX_RETURN_IF_ERROR(GetBool(r, &q.last));
    if (!q.last) DX_RETURN_IF_ERROR(GetKey(r, &q.upper_key));
    DX_RETURN_IF_ERROR(GetSummary(r, &q.source));
  }
  return Finish(r, "range query");
}

std::string Encode(const RangeAnswer& m) {
  ByteWriter w;
  w.PutString(m.subscription);
  w.PutVarint(m.run_id);
  w.PutU8(static_cast<uint8_t>(m.code));
  w.PutString(m.error);
  w.PutVarint(m.items.size());
  for (const RangeAnswerItem& a : m.items) {
    w.PutU8(static_cast<uint8_t>(a.kind));
    PutPath(w, a.range, a.path);
    PutSummary(w, a.whole);
    if (a.kind == RangeAnswerItem::Kind::kChildren) {
      for (const RangeSummary& c : a.children) PutSummary(w, c);
    } else if (a.kind == RangeAnswerItem::Kind::kRows) {
      w.PutVarint(a.rows.size());
      for (const ListedRow& row : a.rows) {
        PutKey(w, row.key);
        PutU64(w, row.row_hash);
      }
    }
  }
  return w.Take();
}

Status Decode(std::string_view in, RangeAnswer* m) {
  ByteReader r(in);
  DX_RETURN_IF_ERROR(r.GetString(&m->subscription));
  DX_RETURN_IF_ERROR(r.GetVarint(&m->run_id));
  DX_RETURN_IF_ERROR(GetCode(r, &m->code));
  DX_RETURN_IF_ERROR(r.GetString(&m->error));
  uint64_t n = 0;
  DX_RETURN_IF_ERROR(GetCount(r, kMaxRangeRequests, 12, "range answers", &n));
  m->items.resize(n);
  for (RangeAnswerItem& a : m->items) {
    uint8_t kind = 0;
    DX_RETURN_IF_ERROR(r.GetU8(&kind));
    if (kind < 1 || kind > 3) return DataLoss("unknown range answer kind " + std::to_string(kind));
    a.kind = static_cast<RangeAnswerItem::Kind>(kind);
    DX_RETURN_IF_ERROR(GetPath(r, &a.range, &a.path));
    DX_RETURN_IF_ERROR(GetSummary(r, &a.whole));
    if (a.kind == RangeAnswerItem::Kind::kChildren) {
      for (RangeSummary& c : a.children) DX_RETURN_IF_ERROR(GetSummary(r, &c));
    } else if (a.kind == RangeAnswerItem::Kind::kRows) {
      uint64_t rows = 0;
      DX_RETURN_IF_ERROR(GetCount(r, kMaxListedRows, 10, "listed rows", &rows));
      a.rows.resize(rows);
      for (ListedRow& row : a.rows) {
        DX_RETURN_IF_ERROR(GetKey(r, &row.key));
        DX_RETURN_IF_ERROR(GetU64(r, &row.row_hash));
      }
    }
  }
  return Finish(r, "range answer");
}

std::string Encode(const RepairBatch& m) {
  ByteWriter w;
  w.buffer().reserve(m.rows.size() + m.keys.size() + 128);
  w.PutString(m.subscription);
  w.PutVarint(m.run_id);
  w.PutVarint(m.seq);
  w.PutVarint(m.upserts);
  w.PutString(m.rows);
  w.PutVarint(m.deletes);
  w.PutString(m.keys);
  return w.Take();
}

Status Decode(std::string_view in, RepairBatch* m) {
  ByteReader r(in);
  DX_RETURN_IF_ERROR(r.GetString(&m->subscription));
  DX_RETURN_IF_ERROR(r.GetVarint(&m->run_id));
  DX_RETURN_IF_ERROR(r.GetVarint(&m->seq));
  DX_RETURN_IF_ERROR(GetU32(r, &m->upserts));
  DX_RETURN_IF_ERROR(r.GetString(&m->rows));
  DX_RETURN_IF_ERROR(GetU32(r, &m->deletes));
  DX_RETURN_IF_ERROR(r.GetString(&m->keys));
  return Finish(r, "repair batch");
}

}  // namespace dx

// Suspension and termination: deletion at the agent.
namespace dx {

std::string Encode(const DeleteSubscription& m) {
  ByteWriter w;
  w.PutString(m.subscription);
  w.PutVarint(m.run_id);
  w.PutString(m.reason);
  w.PutString(m.target_path);
  w.PutVarint(m.folders.size());
  for (const std::string& f : m.folders) w.PutString(f);
  return w.Take();
}

Status Decode(std::string_view in, DeleteSubscription* m) {
  ByteReader r(in);
  DX_RETURN_IF_ERROR(r.GetString(&m->subscription));
  DX_RETURN_IF_ERROR(r.GetVarint(&m->run_id));
  DX_RETURN_IF_ERROR(r.GetString(&m->reason));
  DX_RETURN_IF_ERROR(r.GetString(&m->target_path));
  uint64_t n = 0;
  // Each path takes at least its length byte: the count is checked before anything is allocated.
  DX_RETURN_IF_ERROR(GetCount(r, kMaxDeletionFolders, 1, "folders to delete", &n));
  m->folders.resize(n);
  for (std::string& f : m->folders) DX_RETURN_IF_ERROR(r.GetString(&f));
  return Finish(r, "delete subscription");
}

std::string Encode(const DeletionDone& m) {
  ByteWriter w;
  w.PutString(m.subscription);
  w.PutVarint(m.run_id);
  w.PutU8(static_cast<uint8_t>(m.code));
  w.PutString(m.error);
  w.PutVarint(m.tables.size());
  for (const std::string& t : m.tables) w.PutString(t);
  w.PutVarint(m.rows);
  w.PutVarint(m.files);
  w.PutVarint(m.folders);
  w.PutString(m.detail);
  return w.Take();
}

Status Decode(std::string_view in, DeletionDone* m) {
  ByteReader r(in);
  DX_RETURN_IF_ERROR(r.GetString(&m->subscription));
  DX_RETURN_IF_ERROR(r.GetVarint(&m->run_id));
  DX_RETURN_IF_ERROR(GetCode(r, &m->code));
  DX_RETURN_IF_ERROR(r.GetString(&m->error));
  uint64_t n = 0;
  // Each name takes at least its length byte: the count is checked before anything is allocated.
  DX_RETURN_IF_ERROR(GetCount(r, kMaxDeletedTables, 1, "deleted tables", &n));
  m->tables.resize(n);
  for (std::string& t : m->tables) DX_RETURN_IF_ERROR(r.GetString(&t));
  DX_RETURN_IF_ERROR(r.GetVarint(&m->rows));
  DX_RETURN_IF_ERROR(r.GetVarint(&m->files));
  DX_RETURN_IF_ERROR(r.GetVarint(&m->folders));
  DX_RETURN_IF_ERROR(r.GetString(&m->detail));
  return Finish(r, "deletion done");
}

}  // namespace dx
