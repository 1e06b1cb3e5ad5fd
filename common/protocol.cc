#include "common/protocol.h"

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

}  // namespace

std::string Encode(const Hello& m) {
  ByteWriter w;
  w.PutVarint(m.protocol_version);
  w.PutString(m.agent);
  w.PutString(m.secret);
  w.PutString(m.agent_version);
  w.PutString(m.target_dbms);
  w.PutVarint(m.ledger.size());
  for (const LedgerEntry& e : m.ledger) PutLedger(w, e);
  return w.Take();
}

Status Decode(std::string_view in, Hello* m) {
  ByteReader r(in);
  DX_RETURN_IF_ERROR(GetU32(r, &m->protocol_version));
  if (m->protocol_version != kProtocolVersion) return Status::Ok();  // caller refuses it
  DX_RETURN_IF_ERROR(r.GetString(&m->agent));
  DX_RETURN_IF_ERROR(r.GetString(&m->secret));
  DX_RETURN_IF_ERROR(r.GetString(&m->agent_version));
  DX_RETURN_IF_ERROR(r.GetString(&m->target_dbms));
  uint64_t n = 0;
  DX_RETURN_IF_ERROR(r.GetVarint(&n));
  if (n > 100000) return DataLoss("ledger too long");
  m->ledger.resize(n);
  for (auto& e : m->ledger) DX_RETURN_IF_ERROR(GetLedger(r, &e));
  return Finish(r, "hello");
}

std::string Encode(const HelloReply& m) {
  ByteWriter w;
  w.PutVarint(m.protocol_version);
  w.PutU8(m.accepted ? 1 : 0);
  w.PutString(m.reason);
  w.PutVarint(m.heartbeat_s);
  return w.Take();
}

Status Decode(std::string_view in, HelloReply* m) {
  ByteReader r(in);
  DX_RETURN_IF_ERROR(GetU32(r, &m->protocol_version));
  DX_RETURN_IF_ERROR(GetBool(r, &m->accepted));
  DX_RETURN_IF_ERROR(r.GetString(&m->reason));
  DX_RETURN_IF_ERROR(GetU32(r, &m->heartbeat_s));
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
    if (type < 1 || type > static_cast<uint8_t>(ColumnType::kDatetime)) {
      return DataLoss("unknown column type code " + std::to_string(type));
    }
    c.type = static_cast<ColumnType>(type);
    DX_RETURN_IF_ERROR(r.GetVarint(&length));
    DX_RETURN_IF_ERROR(r.GetVarint(&scale));
    DX_RETURN_IF_ERROR(r.GetU8(&flags));
    c.length = static_cast<int>(length);
    c.scale = static_cast<int>(scale);
    c.not_null = (flags & 1) != 0;
    c.primary_key = (flags & 2) != 0;
  }
  return Finish(r, "table begin");
}

std::string Encode(const TableReady& m) {
  ByteWriter w;
  w.PutString(m.subscription);
  w.PutVarint(m.run_id);
  w.PutU8(static_cast<uint8_t>(m.code));
  w.PutString(m.error);
  PutLedger(w, m.ledger);
  return w.Take();
}

Status Decode(std::string_view in, TableReady* m) {
  ByteReader r(in);
  DX_RETURN_IF_ERROR(r.GetString(&m->subscription));
  DX_RETURN_IF_ERROR(r.GetVarint(&m->run_id));
  DX_RETURN_IF_ERROR(GetCode(r, &m->code));
  DX_RETURN_IF_ERROR(r.GetString(&m->error));
  DX_RETURN_IF_ERROR(GetLedger(r, &m->ledger));
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
