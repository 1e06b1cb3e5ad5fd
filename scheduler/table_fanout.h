// TableFanout: the runs of several table subscriptions of one catalog entry, served by one
// read of the source (共享抽取). Each subscriber keeps everything of its own: the table its agent
// holds, columns, filter and masking (SharedReader), the agent's ledger and watermark, batch
// numbers, the window of batches in flight and its run record. Subscribers whose agents stand
// at the same position share a read; one behind (or new, or reloading) reads with those at
// its position, or alone. A subscriber whose agent stops acknowledging while the others
// could go on leaves the read (straggler_s) and catches up on its own later, so that it
// holds no one back; an error of one subscriber (its agent refused a batch, went away, was
// suspended) ends only its run. With one subscriber this is an ordinary table run.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/row_batch.h"
#include "common/watermark.h"
#include "scheduler/agent_hub.h"
#include "scheduler/scheduler_config.h"
#include "scheduler/source_pool.h"
#include "scheduler/store.h"

namespace dx::scheduler {

class SharedReader;

// What table runs did since the scheduler started (GET /api/v1/stats).
struct ExchangeCounters {
  std::atomic<int64_t> polls{0};          // scheduled runs of table subscriptions, one per member
  std::atomic<int64_t> source_reads{0};   // queries that read rows at a source
  std::atomic<int64_t> announcements{0};  // tables announced to agents (TableBegin)
  std::atomic<int64_t> group_runs{0};     // runs of groups (of one subscription or more)
};

// The compressed encodings of one round of a shared read: a batch equal, cell for cell, to one
// packed earlier in the round (subscribers with the same filter, columns and masking) is not
// encoded again. A batch packed must stay unchanged until Forget.
class BatchPacker {
 public:
  explicit BatchPacker(int level) : level_(level) {}
  Result<std::string> Pack(const RowBatch& rows);
  void Forget() { packed_.clear(); }
  size_t compressions() const { return compressions_; }  // batches compressed so far

 private:
  struct Packed {
    const RowBatch* rows;
    std::string payload;
  };
  int level_;
  std::string raw_;                                          // encoding buffer
  std::multimap<std::pair<size_t, size_t>, Packed> packed_;  // by (rows, payload bytes)
  size_t compressions_ = 0;
};

class TableFanout {
 public:
  struct Member {
    const Subscription* subscription = nullptr;
    bool reset = false;  // reload from scratch (resync)
    bool poll = false;   // a scheduled run: may use a source clock read a moment ago
    RunRecord* run = nullptr;
    Status status;  // Ok, or why this member's run failed (members failed before take no part)
    bool detached = false;  // left the shared read behind the others
  };

  // `attempts` numbers run attempts on the wire (shared with the caller's other runs);
  // `record` creates a member's history record once it has something to tell.
  TableFanout(Store& store, AgentHub& hub, const ExchangeOptions& options, const Clock& clock,
              SourcePool* pool, std::chrono::milliseconds clock_max_age,
              std::atomic<uint64_t>& attempts, std::function<Status(RunRecord*)> record,
              ExchangeCounters* counters);
  ~TableFanout();

  // Runs every member whose status is Ok (all of `entry`); sets each member's status and run.
  void Transfer(const CatalogEntry& entry, std::vector<Member>& members);

 private:
  struct Flow;
  // Checks a member against the catalog and the sharing workflow, and finds its agent.
  Status Prepare(const CatalogEntry& entry, Flow& flow);
  // Announces the table to the member's agent.
  Status Begin(Flow& flow);
  // Takes the answers to the announcements of `flows`; one that does not answer while others
  // of `group` could go on is left behind (Detach).
  void AwaitReady(std::vector<Flow*>& flows, const std::vector<Flow*>& group);
  // The read found rows: the members that were not told yet (quiet polls) are announced now;
  // one whose agent no longer stands where its ledger said leaves the read.
  void AnnounceQuiet(std::vector<Flow*>& flows);
  // Takes the agent's answer (its ledger, waiting at most `timeout`) and settles where the
  // member's read starts.
  Status Ready(Flow& flow, std::chrono::milliseconds timeout);
  // The member leaves the shared read behind the others (`why`); its run ends "partial".
  void Detach(Flow& flow, const std::string& why);
  // Plans and runs the reads of the live members: those at a boundary ("every row before T is
  // delivered") share one read from the earliest T; the others read with those at exactly
  // their position; at most SharedReader::kMaxRoutes distinct filters per read.
  void ReadAll(std::vector<Flow*>& live, const std::string& bound);
  // One shared read for `flows` from `after` (each at `after`, or at a later boundary from
  // which it takes rows): routes rows, sends batches.
  void Read(std::vector<Flow*>& flows, const Watermark& after, const std::string& bound);
  // Sends `rows` with `position` as the member's next batch (waits for room in its window).
  Status Deliver(Flow& flow, const RowBatch& rows, const Watermark& position, bool others_wait);
  // Forgets the batches packed this round (BatchPacker).
  void ForgetPacked() { packer_.Forget(); }
  // Takes one acknowledgement (waiting at most `timeout`).
  Status TakeAck(Flow& flow, std::chrono::milliseconds timeout);
  // Records a member's outcome: its first error ends its run (Ok changes nothing).
  void Settle(Flow& flow, const Status& outcome);

  Store& store_;
  AgentHub& hub_;
  const ExchangeOptions& options_;
  const Clock& clock_;
  SourcePool* pool_;
  std::chrono::milliseconds clock_max_age_;
  std::atomic<uint64_t>& attempts_;
  std::function<Status(RunRecord*)> record_;
  ExchangeCounters* counters_;
  std::unique_ptr<SharedReader> reader_;
  std::map<std::string, std::vector<Subscription>> agent_subscriptions_;  // by agent
  BatchPacker packer_;  // this round's encodings (TableFanout::Read)
};

}  // namespace dx::scheduler
