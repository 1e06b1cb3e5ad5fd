// TableReconciler: the agent's side of reconciliation (对账). For each range the scheduler
// describes (keys up to a bound, row count, digest of the source's rows), it reads its own rows
// of that range from the local table in key order, compares the summaries, and keeps the rows'
// digests of a range that differs so that it can answer about its buckets (children's summaries,
// or the rows' keys and hashes) until the scheduler releases it. Repairs (upserts and deletes)
// are applied through TableWriter as numbered batches with the ledger.
// Reads go through TableWriter::ReadLocal, one short transaction per query; the local table is
// never held in memory (at most the ranges the scheduler has in flight).
// One per scheduler session, used by the session's writer thread only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/table_writer.h"
#include "common/protocol.h"
#include "common/range_digest.h"

namespace dx::agent {

class TableReconciler {
 public:
  explicit TableReconciler(TableWriter* writer) : writer_(writer) {}

  // Prepares a reconciliation of `begin.table.subscription` (the table is checked, or created
  // when missing) and answers with the ledger position.
  TableReady Begin(const ReconcileBegin& begin);
  // Answers a query about ranges of a reconciliation started by Begin.
  RangeAnswer Answer(const RangeQuery& query);
  // Applies a repair; `rows` and `keys` are the decoded payloads (or why they did not decode).
  BatchAck Repair(const RepairBatch& repair, const Result<RowBatch>& rows,
                  const Result<RowBatch>& keys);

 private:
  // A range that differs from the source's: its rows' digests and the keys as stored here.
  struct KeptRange {
    DigestedRange digests;
    // Parallel to digests.rows(): each key as the local database spells it, encoded like
    // RowDigest::key (RowHasher::AppendKeyCell), for the deletes of a repair.
    std::vector<std::string> raw_keys;
  };
  struct State {
    uint64_t run_id = 0;
    bool dry_run = false;
    std::unique_ptr<RowHasher> hasher;
    uint64_t next_range = 0;         // the range the next kCompare request must name
    bool started = false;            // a range has been read: `after` holds its bound
    bool finished = false;           // the last range has been read
    std::vector<std::string> after;  // canonical key values of the last bound read
    std::map<uint64_t, KeptRange> kept;
  };

  // Reads the local rows after `state.after` up to the bound of the last of `compares`
  // (to the end when it is `last`), splits them at the requests' bounds and answers each.
  Status CompareRanges(State& state, const std::vector<const RangeRequest*>& compares,
                       std::vector<RangeAnswerItem>* out);

  TableWriter* writer_;
  std::map<std::string, State> states_;  // by subscription
};

}  // namespace dx::agent
