// The agent protocol: the messages exchanged between dx-scheduler and dx-agent over one
// agent-initiated connection, and their binary encodings. See docs/PROTOCOL.md.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/range_digest.h"
#include "common/status.h"
#include "common/table_spec.h"

namespace dx {

// Bumped on any incompatible change; both sides refuse a peer that speaks another version.
constexpr uint32_t kProtocolVersion = 1;
// Largest frame either side accepts (header excluded).
constexpr size_t kMaxFrameBytes = 64u << 20;

enum class MessageType : uint8_t {
  kHello = 1,        // agent -> scheduler: who I am, my secret, my ledger
  kHelloReply = 2,   // scheduler -> agent: accepted or refused (and why)
  kTableBegin = 3,   // scheduler -> agent: a run is starting; the table's shape; reset?
  kTableReady = 4,   // agent -> scheduler: table checked/created, ledger position
  kBatch = 5,        // scheduler -> agent: rows to apply, sequence, watermark
  kBatchAck = 6,     // agent -> scheduler: batch committed (or refused, and why)
  kHeartbeat = 7,    // either way: still here
  kFilePut = 8,      // scheduler -> agent: a whole small file, metadata and content
  kFileOffer = 9,    // scheduler -> agent: a large file follows in chunks; where to resume?
  kFileResume = 10,  // agent -> scheduler: the offset to resume from, or "already complete"
  kFileChunk = 11,   // scheduler -> agent: bytes of the offered file at an offset
  kFileCommit = 12,  // scheduler -> agent: all bytes sent; verify, fsync, move into place
  kFileCopy = 13,    // scheduler -> agent: the content is already at another path; copy it
  kFileDelete = 14,  // scheduler -> agent: the source deleted this file
  kFileResult = 15,  // agent -> scheduler: what happened to one file
  // Reconciliation (对账), docs/RECONCILIATION.md:
  kReconcileBegin = 16,  // scheduler -> agent: compare this table (answered by kTableReady)
  kRangeQuery = 17,      // scheduler -> agent: range summaries to compare, buckets to open
  kRepairBatch = 18,     // scheduler -> agent: rows to upsert, keys to delete (kBatchAck)
  kRangeAnswer = 19,     // agent -> scheduler: what the agent holds in the ranges asked about
  // Files:
  kFileAbort = 20,     // scheduler -> agent: drop an offered file (it changed while read)
  kFileFolder = 21,    // scheduler -> agent: create or remove a folder
  kFileSweep = 22,     // scheduler -> agent: remove stale part files under a target folder
  kFileRunBegin = 23,  // scheduler -> agent: a file run starts; settle what came before
  // Suspension and termination (附件一 第二条(四), 第九条(三)):
  kDeleteSubscription = 28,  // scheduler -> agent: delete what you hold for this subscription
  kDeletionDone = 29,        // agent -> scheduler: deleted (what), or why not
};

// A frame on the wire: [u32 length of type + payload, little-endian][u8 type][payload].
constexpr size_t kFrameHeaderBytes = 5;
std::string EncodeFrame(MessageType type, std::string_view payload);
// The length field of a frame header (type + payload; 0 is never valid).
uint32_t FrameLength(const char (&header)[kFrameHeaderBytes]);

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
  // The session credential the scheduler gave at an earlier login (empty at the first). An
  // agent that sends the field (even empty) can take one in the reply; older agents do not
  // send it and are never given one.
  bool offers_session = true;
  std::string session_token;
};

struct HelloReply {
  uint32_t protocol_version = kProtocolVersion;
  bool accepted = false;
  std::string reason;
  uint32_t heartbeat_s = 5;
  // A new session credential (random, 32 bytes as hex), when the agent offered to take one and
  // did not log in with a valid one: its next logins cost a keyed hash instead of PBKDF2, also
  // after the scheduler restarts. Valid until the agent's secret changes or a newer one is given.
  std::string session_token;
};

struct TableBegin {
  std::string subscription;
  uint64_t run_id = 0;
  bool reset = false;  // resync: drop what the agent holds for this subscription first
  TableSpec spec;
  // Names the resync request: the agent clears the table once per id and records the id with
  // the clearing, so a resync retried after a crash resumes its load. Empty: clear every time.
  std::string reset_id;
};

struct TableReady {
  std::string subscription;
  uint64_t run_id = 0;
  StatusCode code = StatusCode::kOk;
  std::string error;
  LedgerEntry ledger;  // the position after any reset
  // The agent found its table dropped or emptied and reset it: the run is a reload from
  // scratch. `note` says why, for the run history.
  bool reloaded = false;
  std::string note;
  // The agent's table holds fewer rows than it was delivered (the consumer deleted some); the
  // table is kept and a reconciliation repairs it. `note` says what was found.
  bool damaged = false;
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

// Reconciliation (对账). The agent answers ReconcileBegin with TableReady (table checked or
// created, ledger position) and each RepairBatch with BatchAck: repairs take the next batch
// sequence numbers, so a re-sent repair is recognised like a re-sent batch.
struct ReconcileBegin {
  TableBegin table;  // subscription, run attempt id and table shape (reset is never set)
  bool dry_run = false;
};

// One request of a RangeQuery, about range `range` (numbered from 0 in key order per run).
struct RangeRequest {
  enum class Kind : uint8_t {
    kCompare = 1,  // the next range: keys after the previous range's bound up to `upper_key`
    kExpand = 2,   // send the children's summaries of bucket `path`
    kList = 3,     // send the keys and row hashes of bucket `path`
    kRelease = 4,  // the scheduler is done with this range: forget it
  };
  Kind kind = Kind::kCompare;
  uint64_t range = 0;
  BucketPath path;
  // kCompare: the range's last key (canonical values, key-column order), or none when `last`
  // (the range runs to the end of the table), and the source's summary of the range.
  bool last = false;
  std::vector<std::string> upper_key;
  RangeSummary source;
};

struct RangeQuery {
  std::string subscription;
  uint64_t run_id = 0;
  std::vector<RangeRequest> requests;
};

// The agent's answer to one request (kRelease gets none).
struct RangeAnswerItem {
  enum class Kind : uint8_t {
    kEqual = 1,     // kCompare: the agent's range matches the source's summary
    kChildren = 2,  // the summaries of the bucket's children
    kRows = 3,      // the bucket's rows: key cells (as the agent's database spells them) and hash
  };
  Kind kind = Kind::kEqual;
  uint64_t range = 0;
  BucketPath path;
  RangeSummary whole;  // the agent's summary of the bucket
  std::array<RangeSummary, kRangeFanout> children{};
  std::vector<ListedRow> rows;
};

struct RangeAnswer {
  std::string subscription;
  uint64_t run_id = 0;
  StatusCode code = StatusCode::kOk;
  std::string error;
  std::vector<RangeAnswerItem> items;
};

struct RepairBatch {
  std::string subscription;
  uint64_t run_id = 0;
  uint64_t seq = 0;      // the next batch sequence: applied with the ledger, watermark kept
  uint32_t upserts = 0;  // rows in `rows`
  std::string rows;      // zstd(RowBatch of whole rows, wire order)
  uint32_t deletes = 0;  // rows in `keys`
  std::string keys;      // zstd(RowBatch of key cells, key-column order)
};

// Largest counts a reconciliation message may declare (checked before anything is allocated).
constexpr size_t kMaxRangeRequests = 1u << 16;
constexpr size_t kMaxListedRows = 1u << 16;

std::string Encode(const ReconcileBegin& m);
std::string Encode(const RangeQuery& m);
std::string Encode(const RangeAnswer& m);
std::string Encode(const RepairBatch& m);
Status Decode(std::string_view in, ReconcileBegin* m);
Status Decode(std::string_view in, RangeQuery* m);
Status Decode(std::string_view in, RangeAnswer* m);
Status Decode(std::string_view in, RepairBatch* m);

// Suspension and termination: the scheduler tells the agent to delete everything it holds for a
// subscription — the tables it created for it (recorded in dx_tables), the files it received
// for it (recorded in dx_files), and its ledger row — and the agent confirms. Idempotent: an
// instruction repeated after a crash finishes the job, and one about a subscription the agent
// holds nothing of is confirmed at once.
struct DeleteSubscription {
  std::string subscription;
  uint64_t run_id = 0;      // names this instruction; its answer carries it back
  std::string reason;       // why (suspended or terminated, by whom), for the agent's log
  std::string target_path;  // file subscriptions: their folder under the shared root
  // File subscriptions: the folders its runs created (empty at the provider), paths under the
  // shared root; at most kMaxDeletionFolders, removed when still empty.
  std::vector<std::string> folders;
};

struct DeletionDone {
  std::string subscription;
  uint64_t run_id = 0;
  StatusCode code = StatusCode::kOk;
  std::string error;
  std::vector<std::string> tables;  // tables dropped (or emptied) for the subscription
  uint64_t rows = 0;                // rows they held
  uint64_t files = 0;               // files deleted
  uint64_t folders = 0;             // emptied folders removed
  std::string detail;               // the same, for people ("dropped table student (...)")
};

// Largest number of table names a DeletionDone may declare.
constexpr size_t kMaxDeletedTables = 1024;
// Folders named in one DeleteSubscription (the scheduler names at most this many).
constexpr size_t kMaxDeletionFolders = 16384;

std::string Encode(const DeleteSubscription& m);
std::string Encode(const DeletionDone& m);
Status Decode(std::string_view in, DeleteSubscription* m);
Status Decode(std::string_view in, DeletionDone* m);

std::string Encode(const Hello& m);
std::string Encode(const HelloReply& m);
std::string Encode(const TableBegin& m);
std::string Encode(const TableReady& m);
std::string Encode(const BatchMessage& m);
std::string Encode(const BatchAck& m);

Status Decode(std::string_view in, Hello* m);
// A Hello without its ledger, as the scheduler reads one before the agent is authenticated:
// the ledger is checked but left undecoded (`ledger`: its bytes within `in`) for
// DecodeHelloLedger once the agent is accepted.
Status DecodeHelloIdentity(std::string_view in, Hello* m, std::string_view* ledger);
Status DecodeHelloLedger(std::string_view ledger, std::vector<LedgerEntry>* entries);
Status Decode(std::string_view in, HelloReply* m);
Status Decode(std::string_view in, TableBegin* m);
Status Decode(std::string_view in, TableReady* m);
Status Decode(std::string_view in, BatchMessage* m);
Status Decode(std::string_view in, BatchAck* m);

}  // namespace dx
