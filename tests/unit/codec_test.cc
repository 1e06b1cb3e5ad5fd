#include <doctest/doctest.h>

#include <cstring>
#include <tuple>

#include "common/protocol.h"
#include "common/row_batch.h"
#include "common/table_spec.h"
#include "common/watermark.h"
#include "common/wire.h"

namespace dx {
namespace {

TEST_CASE("row batches round-trip text, empty strings, NULLs and Chinese exactly") {
  RowBatch b(3);
  b.AddCell("1");
  b.AddCell("欧阳修远");
  b.AddNull();
  b.AddCell("2");
  b.AddCell("");
  b.AddCell(std::string("a\0b", 3));
  std::string raw;
  b.EncodeTo(&raw);
  auto compressed = Compress(raw, 1);
  REQUIRE(compressed.ok());
  auto restored = Decompress(compressed.value(), 1 << 20);
  REQUIRE(restored.ok());
  auto d = RowBatch::Decode(restored.value());
  REQUIRE(d.ok());
  CHECK(d->rows() == 2);
  CHECK(d->Cell(0, 1) == "欧阳修远");
  CHECK(d->IsNull(0, 2));
  CHECK_FALSE(d->IsNull(1, 1));
  CHECK(d->Cell(1, 1) == "");
  CHECK(d->Cell(1, 2) == std::string("a\0b", 3));
}

TEST_CASE("corrupt batches are refused as data loss, never half-read") {
  RowBatch b(2);
  for (int i = 0; i < 10; ++i) {
    b.AddCell(std::to_string(i));
    b.AddCell("姓名");
  }
  std::string raw;
  b.EncodeTo(&raw);
  for (size_t cut : {size_t{1}, raw.size() / 2, raw.size() - 1}) {
    CAPTURE(cut);
    CHECK(RowBatch::Decode(raw.substr(0, cut)).status().code() == StatusCode::kDataLoss);
  }
  CHECK(RowBatch::Decode(raw + "x").status().code() == StatusCode::kDataLoss);
  CHECK(Decompress("not zstd at all", 1 << 20).status().code() == StatusCode::kDataLoss);
  auto big = Compress(std::string(4096, 'x'), 1);
  REQUIRE(big.ok());
  CHECK(Decompress(big.value(), 1000).status().code() == StatusCode::kDataLoss);
}

TEST_CASE("protocol messages round-trip") {
  TableBegin begin;
  begin.subscription = "徐汇-学生";
  begin.run_id = 42;
  begin.reset = true;
  begin.spec.table = "student";
  begin.spec.columns = {{"id", ColumnType::kBigint, 0, 0, true, true},
                        {"amount", ColumnType::kDecimal, 10, 2, false, false}};
  TableBegin back;
  REQUIRE(Decode(Encode(begin), &back).ok());
  CHECK(back.subscription == begin.subscription);
  CHECK(back.reset);
  REQUIRE(back.spec.columns.size() == 2);
  CHECK(back.spec.columns[0].primary_key);
  CHECK(back.spec.columns[1].scale == 2);

  Hello hello;
  hello.agent = "agent";
  hello.ledger = {{"s1", 7, "[\"2026-01-01 00:00:00\",\"5\"]"}};
  Hello hello_back;
  REQUIRE(Decode(Encode(hello), &hello_back).ok());
  CHECK(hello_back.ledger.at(0).batch_seq == 7);

  BatchAck ack{"s1", 9, StatusCode::kInvalidArgument, "bad", false};
  BatchAck ack_back;
  REQUIRE(Decode(Encode(ack), &ack_back).ok());
  CHECK(ack_back.code == StatusCode::kInvalidArgument);
  std::string truncated = Encode(ack);
  truncated.pop_back();
  CHECK_FALSE(Decode(truncated, &ack_back).ok());
}

TEST_CASE("table messages carry the new types, and reloads in both directions of versions") {
  TableBegin begin;
  begin.subscription = "s";
  begin.spec.table = "t";
  begin.spec.columns = {{"id", ColumnType::kBigint, 0, 0, true, true},
                        {"photo", ColumnType::kBlob, 0, 0, false, false},
                        {"hash", ColumnType::kVarbinary, 32, 0, false, false},
                        {"at", ColumnType::kDatetime, 3, 0, false, false}};
  TableBegin back;
  REQUIRE(Decode(Encode(begin), &back).ok());
  CHECK(back.spec.columns[1].type == ColumnType::kBlob);
  CHECK(back.spec.columns[2].length == 32);
  CHECK(back.spec.columns[3].length == 3);
  // An unknown type code, an absurd length or a scale over the length is refused.
  for (auto [code, length, scale] : {std::tuple{11, 0, 0}, {4, 20000000, 0}, {3, 5, 6}}) {
    CAPTURE(code);
    ByteWriter w;
    w.PutString("s");
    w.PutVarint(1);
    w.PutU8(0);
    w.PutString("t");
    w.PutVarint(1);
    w.PutString("c");
    w.PutU8(static_cast<uint8_t>(code));
    w.PutVarint(static_cast<uint64_t>(length));
    w.PutVarint(static_cast<uint64_t>(scale));
    w.PutU8(2);
    CHECK(Decode(w.Take(), &back).code() == StatusCode::kDataLoss);
  }

  TableReady ready;
  ready.subscription = "s";
  ready.run_id = 3;
  ready.ledger = {"s", 12, ""};
  ready.reloaded = true;
  ready.note = "target table student was missing at the agent; reloading from scratch";
  TableReady ready_back;
  REQUIRE(Decode(Encode(ready), &ready_back).ok());
  CHECK(ready_back.reloaded);
  CHECK(ready_back.note == ready.note);
  CHECK(ready_back.ledger.batch_seq == 12);
  // An agent from before reloads were reported sends neither field.
  ByteWriter old;
  old.PutString("s");
  old.PutVarint(3);
  old.PutU8(0);
  old.PutString("");
  old.PutString("s");
  old.PutVarint(12);
  old.PutString("");
  TableReady old_back;
  REQUIRE(Decode(old.Take(), &old_back).ok());
  CHECK_FALSE(old_back.reloaded);
  CHECK(old_back.note.empty());
}

TEST_CASE("a hello from another protocol version is recognised before anything else") {
  ByteWriter w;
  w.PutVarint(kProtocolVersion + 1);
  w.PutString("future fields we cannot parse");
  Hello hello;
  REQUIRE(Decode(w.Take(), &hello).ok());
  CHECK(hello.protocol_version == kProtocolVersion + 1);
}

TEST_CASE("a frame carries its length (type + payload) little-endian, then its type") {
  const std::string frame = EncodeFrame(MessageType::kBatchAck, std::string(300, 'x'));
  REQUIRE(frame.size() == kFrameHeaderBytes + 300);
  char header[kFrameHeaderBytes];
  std::memcpy(header, frame.data(), kFrameHeaderBytes);
  CHECK(FrameLength(header) == 301);
  CHECK(static_cast<uint8_t>(frame[0]) == 301 % 256);
  CHECK(static_cast<uint8_t>(frame[1]) == 1);
  CHECK(static_cast<MessageType>(frame[4]) == MessageType::kBatchAck);
  CHECK(EncodeFrame(MessageType::kHeartbeat, "") == std::string("\x01\0\0\0", 4) + "\x07");
}

TEST_CASE("session credentials: offered by new agents, given only to those that offer") {
  Hello hello;
  hello.agent = "a";
  hello.session_token = "t0";
  Hello back;
  REQUIRE(Decode(Encode(hello), &back).ok());
  CHECK(back.offers_session);
  CHECK(back.session_token == "t0");
  // An older agent's hello ends after the ledger: it offers nothing.
  Hello old = hello;
  old.offers_session = false;
  Hello old_back;
  REQUIRE(Decode(Encode(old), &old_back).ok());
  CHECK_FALSE(old_back.offers_session);
  CHECK(old_back.session_token.empty());
  // A reply without a credential is what older agents decode (nothing after heartbeat_s).
  HelloReply reply;
  reply.accepted = true;
  ByteWriter w;
  w.PutVarint(kProtocolVersion);
  w.PutU8(1);
  w.PutString("");
  w.PutVarint(5);
  CHECK(Encode(reply) == w.Take());
  reply.session_token = "fresh";
  HelloReply reply_back;
  REQUIRE(Decode(Encode(reply), &reply_back).ok());
  CHECK(reply_back.session_token == "fresh");
}

TEST_CASE("a hello's identity is read before its ledger, which is decoded only when asked") {
  Hello hello;
  hello.agent = "a";
  hello.secret = "s";
  hello.session_token = "t";
  hello.ledger = {{"s1", 7, "w1"}, {"s2", 9, "w2"}};
  const std::string bytes = Encode(hello);
  Hello identity;
  std::string_view ledger;
  REQUIRE(DecodeHelloIdentity(bytes, &identity, &ledger).ok());
  CHECK(identity.agent == "a");
  CHECK(identity.session_token == "t");
  CHECK(identity.ledger.empty());
  std::vector<LedgerEntry> entries;
  REQUIRE(DecodeHelloLedger(ledger, &entries).ok());
  REQUIRE(entries.size() == 2);
  CHECK(entries[1].batch_seq == 9);
  CHECK(entries[1].watermark == "w2");
  // A ledger entry cut short is refused at the identity already.
  Hello cut;
  CHECK_FALSE(DecodeHelloIdentity(bytes.substr(0, bytes.size() - 6), &cut, &ledger).ok());
}

TEST_CASE("a hello whose ledger count its bytes cannot back is refused before allocating") {
  ByteWriter w;
  w.PutVarint(kProtocolVersion);
  for (int i = 0; i < 4; ++i) w.PutString("x");
  w.PutVarint(90000);  // under the cap, but 3 bytes remain for it
  w.PutString("s");
  Hello hello;
  Status st = Decode(w.Take(), &hello);
  CHECK(st.code() == StatusCode::kDataLoss);
  CHECK(st.message().find("90000 entries") != std::string::npos);
  CHECK(hello.ledger.capacity() == 0);
}

TEST_CASE("watermarks encode both phases and keys unambiguously") {
  Watermark incremental{"", "2026-11-21 10:00:00", {"a,b", "\"q\""}};
  Watermark full{"2026-11-21 09:59:58", "", {"42"}};
  for (const Watermark& w : {incremental, full}) {
    auto back = Watermark::Decode(w.Encode());
    REQUIRE(back.ok());
    CHECK(back.value() == w);
  }
  CHECK(full.in_full_load());
  CHECK(Watermark::Decode("").value().empty());
  CHECK(Watermark::Decode("[1,2]").status().code() == StatusCode::kDataLoss);
  CHECK(Watermark::Decode("{\"key\":[]}").status().code() == StatusCode::kDataLoss);
}

struct TypeCase {
  const char* text;
  ColumnType type;
  int length;
  int scale;
};

TEST_CASE("catalog column types parse") {
  const TypeCase cases[] = {
      {"bigint", ColumnType::kBigint, 0, 0},
      {"INT", ColumnType::kInteger, 0, 0},
      {"varchar(30)", ColumnType::kVarchar, 30, 0},
      {"char(18)", ColumnType::kChar, 18, 0},
      {"decimal(10,2)", ColumnType::kDecimal, 10, 2},
      {"numeric(5)", ColumnType::kDecimal, 5, 0},
      {"date", ColumnType::kDate, 0, 0},
      {"timestamp", ColumnType::kDatetime, 0, 0},
      {" text ", ColumnType::kText, 0, 0},
      {"datetime(3)", ColumnType::kDatetime, 3, 0},
      {"timestamp(6)", ColumnType::kDatetime, 6, 0},
      {"datetime(0)", ColumnType::kDatetime, 0, 0},
      {"BLOB", ColumnType::kBlob, 0, 0},
      {"varbinary(16)", ColumnType::kVarbinary, 16, 0},
  };
  for (const TypeCase& c : cases) {
    CAPTURE(c.text);
    auto t = ParseColumnType(c.text);
    REQUIRE(t.ok());
    CHECK(t->type == c.type);
    CHECK(t->length == c.length);
    CHECK(t->scale == c.scale);
    // The name a type prints parses back to the same type.
    auto again = ParseColumnType(ColumnTypeName(t.value()));
    REQUIRE(again.ok());
    CHECK(again->type == c.type);
    CHECK(again->length == c.length);
    CHECK(again->scale == c.scale);
  }
  for (const char* bad : {"varchar", "varchar(0)", "varchar(x)", "decimal(2,5)", "blob(3)",
                          "int(3)", "datetime(7)", "varbinary", "varbinary(0)", "bytea"}) {
    CAPTURE(bad);
    CHECK_FALSE(ParseColumnType(bad).ok());
  }
}

}  // namespace
}  // namespace dx
