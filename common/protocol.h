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
  kHello = 1,          // agent -> scheduler: who I am, my secret, my ledger
  kHelloReply = 2,     // scheduler -> agent: accepted or refused (and why)
  kTableBegin = 3,     // scheduler -> agent: a run is starting; the table's shape; reset?
  kTableReady = 4,     // agent -> scheduler: table checked/created, ledger position
  kBatch = 5,          // scheduler -> agent: rows to apply, sequence, watermark
  kBatchAck = 6,       // agent -> scheduler: batch committed (or refused, and why)
  kHeartbeat = 7,      // either way: still here
  kFilePut = 8,        // scheduler -> agent: a whole small file, metadata and content
  kFileOffer = 9,      // scheduler -> agent: a large file follows in chunks; where to resume?
  kFileResume = 10,    // agent -> scheduler: the offset to resume from, or "already complete"
  kFileChunk = 11,     // scheduler -> agent: bytes of the offered file at an offset
  kFileCommit = 12,    // scheduler -> agent: all bytes sent; verify, fsync, move into place
  kFileCopy = 13,      // scheduler -> agent: the content is already at another path; copy it
  kFileDelete = 14,    // scheduler -> agent: the source deleted this file
  kFileResult = 15,    // agent -> scheduler: what happened to one file
  kFileAbort = 20,     // scheduler -> agent: drop an offered file (it changed while read)
  kFileFolder = 21,    // scheduler -> agent: create or remove a folder
  kFileSweep = 22,     // scheduler -> agent: remove stale part files under a target folder
  kFileRunBegin = 23,  // scheduler -> agent: a file run starts; settle what came before
};

// Files travel in chunks of this size; a resumed transfer restarts at a chunk boundary, so at
// most one chunk is sent twice.
constexpr size_t kFileChunkBytes = 1u << 20;

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

// A file as the scheduler describes it. `path` is relative to the agent's shared root.
struct FileMeta {
  std::string subscription;
  uint64_t run_id = 0;
  std::string path;
  uint64_t size = 0;
  std::string sha256;   // hex; empty on an offer of content hashed while it is sent
  std::string version;  // names the resumable part: the same version resumes, another restarts
};

struct FilePut {
  FileMeta meta;
  bool compressed = false;
  std::string data;  // the whole file (zstd when compressed)
};

struct FileResume {
  std::string subscription;
  std::string path;
  StatusCode code = StatusCode::kOk;
  std::string error;
  bool complete = false;  // the agent already holds this exact file at this path
  uint64_t offset = 0;    // else: send from here (a multiple of kFileChunkBytes)
};

struct FileChunk {
  std::string subscription;
  std::string path;
  uint64_t offset = 0;
  bool compressed = false;
  std::string data;
};

struct FileCommit {
  std::string subscription;
  std::string path;
  std::string sha256;  // of the whole content, checked before the file is moved into place
};

struct FileCopy {
  FileMeta meta;
  std::string from_path;  // relative to the shared root
};

struct FileDelete {
  std::string subscription;
  uint64_t run_id = 0;
  std::string path;
};

struct FileResult {
  std::string subscription;
  std::string path;
  StatusCode code = StatusCode::kOk;
  std::string error;
  // written | unchanged | copied | deleted | refused | failed; with kFailedPrecondition,
  // need_data (copy failed); folders: created | deleted | kept; swept; begun
  std::string outcome;
};

// Withdraws an offered large file: the source changed while it was read, so the bytes sent
// are no state the file ever had. The agent drops the transfer and its part file; no answer.
struct FileAbort {
  std::string subscription;
  std::string path;
  std::string reason;
};

// A folder of the resource: created when it is empty at the provider (folders with files
// come with them), removed when it is gone there and empty at the agent (outcome "kept"
// when the consumer put files of its own in it).
struct FileFolder {
  std::string subscription;
  uint64_t run_id = 0;
  std::string path;  // relative to the shared root
  bool remove = false;
};

// Sent at the end of a run that delivered every file: part files left under `path` by
// transfers that can no longer resume are removed. Answered with outcome "swept".
struct FileSweep {
  std::string subscription;
  uint64_t run_id = 0;
  std::string path;
};

// Sent first in every file run. The agent settles what earlier runs of the subscription left
// (answers for files still being made durable go out first; transfers cut off are dropped,
// their part files kept for a resume) and answers with outcome "begun" and an empty path,
// so every answer after it belongs to this run.
struct FileRunBegin {
  std::string subscription;
  uint64_t run_id = 0;
};

std::string Encode(const FileAbort& m);
std::string Encode(const FileFolder& m);
std::string Encode(const FileSweep& m);
std::string Encode(const FileRunBegin& m);
Status Decode(std::string_view in, FileAbort* m);
Status Decode(std::string_view in, FileFolder* m);
Status Decode(std::string_view in, FileSweep* m);
Status Decode(std::string_view in, FileRunBegin* m);

std::string Encode(const FilePut& m);
std::string Encode(const FileMeta& m);  // kFileOffer
std::string Encode(const FileResume& m);
std::string Encode(const FileChunk& m);
std::string Encode(const FileCommit& m);
std::string Encode(const FileCopy& m);
std::string Encode(const FileDelete& m);
std::string Encode(const FileResult& m);
Status Decode(std::string_view in, FilePut* m);
Status Decode(std::string_view in, FileMeta* m);
Status Decode(std::string_view in, FileResume* m);
Status Decode(std::string_view in, FileChunk* m);
// Decodes a chunk without copying its bytes: *data points into `in` (m->data stays empty).
Status DecodeChunkView(std::string_view in, FileChunk* m, std::string_view* data);
Status Decode(std::string_view in, FileCommit* m);
Status Decode(std::string_view in, FileCopy* m);
Status Decode(std::string_view in, FileDelete* m);
Status Decode(std::string_view in, FileResult* m);

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
