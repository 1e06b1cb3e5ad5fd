// The agent protocol: the messages exchanged between dx-scheduler and dx-agent over one
// agent-initiated connection, and their binary encodings. See docs/PROTOCOL.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/table_spec.h"

namespace dx {

// Bumped on any incompatible change; both sides refuse a peer that speaks another version.
constexpr uint32_t kProtocolVersion = 1;
// Largest frame either side accepts (header excluded).
constexpr size_t kMaxFrameBytes = 64u << 20;

enum class MessageType : uint8_t {
  kHello = 1,       // agent -> scheduler: who I am, my secret, my ledger
  kHelloReply = 2,  // scheduler -> agent: accepted or refused (and why)
  kTableBegin = 3,  // scheduler -> agent: a run is starting; the table's shape; reset?
  kTableReady = 4,  // agent -> scheduler: table checked/created, ledger position
  kBatch = 5,       // scheduler -> agent: rows to apply, sequence, watermark
  kBatchAck = 6,    // agent -> scheduler: batch committed (or refused, and why)
  kHeartbeat = 7,   // either way: still here
};

// The agent's durable record of one subscription: what it has committed.
struct LedgerEntry {
  std::string subscription;
  uint64_t batch_seq = 0;
  std::string watermark;  // Watermark::Encode()
};

struct Hello {
  uint32_t protocol_version = kProtocolVersion;
  std::string agent;
  std::string secret;
  std::string agent_version;
  std::string target_dbms;
  std::vector<LedgerEntry> ledger;
};

struct HelloReply {
  uint32_t protocol_version = kProtocolVersion;
  bool accepted = false;
  std::string reason;
  uint32_t heartbeat_s = 5;
};

struct TableBegin {
  std::string subscription;
  uint64_t run_id = 0;
  bool reset = false;  // resync: drop what the agent holds for this subscription first
  TableSpec spec;
};

struct TableReady {
  std::string subscription;
  uint64_t run_id = 0;
  StatusCode code = StatusCode::kOk;
  std::string error;
  LedgerEntry ledger;  // the position after any reset
};

struct BatchMessage {
  std::string subscription;
  uint64_t run_id = 0;
  uint64_t seq = 0;
  std::string watermark;  // position after this batch
  uint32_t rows = 0;
  std::string payload;  // zstd(RowBatch encoding)
};

struct BatchAck {
  std::string subscription;
  uint64_t seq = 0;
  StatusCode code = StatusCode::kOk;
  std::string error;
  bool duplicate = false;  // the batch was already applied (re-sent) and was skipped
};

std::string Encode(const Hello& m);
std::string Encode(const HelloReply& m);
std::string Encode(const TableBegin& m);
std::string Encode(const TableReady& m);
std::string Encode(const BatchMessage& m);
std::string Encode(const BatchAck& m);

Status Decode(std::string_view in, Hello* m);
Status Decode(std::string_view in, HelloReply* m);
Status Decode(std::string_view in, TableBegin* m);
Status Decode(std::string_view in, TableReady* m);
Status Decode(std::string_view in, BatchMessage* m);
Status Decode(std::string_view in, BatchAck* m);

}  // namespace dx
