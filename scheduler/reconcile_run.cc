#include "scheduler/reconcile_run.h"

#include <deque>
#include <map>
#include <optional>

#include "common/log.h"
#include "common/range_digest.h"
#include "common/watermark.h"
#include "common/wire.h"
#include "scheduler/catalog/delivery_gate.h"
#include "scheduler/exchange_run.h"
#include "scheduler/manifest.h"
#include "scheduler/subscription_reader.h"

namespace dx::scheduler {
namespace {

using std::chrono::seconds;
using Kind = RangeRequest::Kind;
using AnswerKind = RangeAnswerItem::Kind;

// Wire run ids of reconciliations never collide with those of exchange runs, whose late
// answers a reconciliation must not take for its own (and the other way round).
constexpr uint64_t kRunIdTag = 1ULL << 62;
constexpr size_t kFrameHeaderBytes = 5;

}  // namespace

// The state of one reconciliation pass: the source's ranges in flight, the requests and
// repairs waiting to be sent, and the counts.
class ReconcileRun::Pass {
 public:
  Pass(const Subscription& sub, const TableSpec& spec, AgentSession& session,
       SubscriptionReader& source, const ExchangeOptions& options,
       const ReconcileOptions& reconcile, uint64_t run_id, bool dry_run, const LedgerEntry& ledger,
       Store& store, RunRecord* run, ReconcileCounts* counts)
      : sub_(sub),
        session_(session),
        source_(source),
        options_(options),
        reconcile_(reconcile),
        run_id_(run_id),
        dry_run_(dry_run),
        seq_(ledger.batch_seq),
        watermark_(ledger.watermark),
        store_(store),
        run_(run),
        counts_(counts),
        hasher_(spec),
        columns_(spec.columns.size()),
        upserts_(spec.columns.size()),
        deletes_(spec.KeyIndexes().size()) {}

  // Time spent waiting for the agent's answers (the rest is reading and hashing the source).
  int64_t waited_ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(waited_).count();
  }

  Status Run() {
    bool source_done = false;
    std::optional<SourceRange> ahead;  // read, waiting to learn whether it is the last
    while (true) {
      while (!source_done && in_flight_.size() < static_cast<size_t>(reconcile_.ranges_in_flight)) {
        SourceRange next;
        DX_RETURN_IF_ERROR(ReadRange(&next));
        if (next.rows.rows() == 0) {
          source_done = true;
          if (!ahead) ahead.emplace(std::move(next));  // an empty source: one empty range
          DX_RETURN_IF_ERROR(Launch(std::move(*ahead), /*last=*/true));
          ahead.reset();
          break;
        }
        if (ahead) DX_RETURN_IF_ERROR(Launch(std::move(*ahead), /*last=*/false));
        ahead.emplace(std::move(next));
      }
      if (source_done && in_flight_.empty()) break;
      // A suspension or termination stops the comparison here, at a range boundary.
      DX_RETURN_IF_ERROR(CheckStillActive(store_, sub_.name));
      DX_RETURN_IF_ERROR(FlushCompares());
      DX_RETURN_IF_ERROR(FlushRequests());
      auto wait_start = std::chrono::steady_clock::now();
      DX_ASSIGN_OR_RETURN(RangeAnswer answer,
                          session_.AwaitRangeAnswer(sub_.name, seconds(options_.ack_timeout_s)));
      waited_ += std::chrono::steady_clock::now() - wait_start;
      if (answer.run_id != run_id_) continue;  // a late answer to an earlier reconciliation
      run_->bytes += static_cast<int64_t>(Encode(answer).size() + kFrameHeaderBytes);
      if (answer.code != StatusCode::kOk) return Status(answer.code, "agent: " + answer.error);
      for (const RangeAnswerItem& item : answer.items) DX_RETURN_IF_ERROR(Settle(item));
    }
    DX_RETURN_IF_ERROR(FlushRequests());
    DX_RETURN_IF_ERROR(FlushRepair());
    while (!repairs_in_flight_.empty()) DX_RETURN_IF_ERROR(AwaitRepair());
    return Status::Ok();
  }

 private:
  struct SourceRange {
    uint64_t id = 0;
    RowBatch rows;
    DigestedRange digests;
    int outstanding = 0;       // answers still expected from the agent
    bool agent_holds = false;  // the agent kept it (it differed): release it when settled
  };
  struct RepairInFlight {
    uint64_t seq;
    int64_t rows;
  };

  Status ReadRange(SourceRange* range) {
    range->rows = RowBatch(columns_);
    Watermark unused;
    DX_ASSIGN_OR_RETURN(
        size_t n, source_.Read(static_cast<size_t>(reconcile_.range_rows), &range->rows, &unused));
    for (size_t r = 0; r < n; ++r) {
      RowDigest d;
      hasher_.Hash(range->rows, r, &d);
      if (!last_key_.empty() && hasher_.CompareKeys(last_key_, d.key) >= 0) {
        return FailedPrecondition("source rows of " + sub_.name +
                                  " do not come in key order (at key '" +
                                  std::string(range->rows.Cell(r, hasher_.key_indexes()[0])) +
                                  "'): reconciliation needs a key order every DBMS agrees on");
      }
      last_key_ = d.key;
      range->digests.Add(std::move(d));
    }
    counts_->compared += static_cast<int64_t>(n);
    return Status::Ok();
  }

  // Sends the range's summary for comparison (batched into the next query).
  Status Launch(SourceRange range, bool last) {
    range.id = next_range_++;
    RangeRequest q;
    q.kind = Kind::kCompare;
    q.range = range.id;
    q.last = last;
    q.source = range.digests.Summary(BucketPath{});
    if (!last) {
      const RowDigest& top = range.digests.rows().back();
      for (std::string_view cell : RowHasher::SplitKey(top.key)) q.upper_key.emplace_back(cell);
    }
    range.outstanding = 1;
    compares_.push_back(std::move(q));
    in_flight_.emplace(range.id, std::move(range));
    if (compares_.size() >= static_cast<size_t>(reconcile_.ranges_per_query)) {
      return FlushCompares();
    }
    return Status::Ok();
  }

  Status SendQuery(std::vector<RangeRequest>* requests) {
    if (requests->empty()) return Status::Ok();
    RangeQuery query;
    query.subscription = sub_.name;
    query.run_id = run_id_;
    query.requests = std::move(*requests);
    requests->clear();
    std::string payload = Encode(query);
    run_->bytes += static_cast<int64_t>(payload.size() + kFrameHeaderBytes);
    return session_.Send(MessageType::kRangeQuery, payload);
  }
  Status FlushCompares() { return SendQuery(&compares_); }
  Status FlushRequests() { return SendQuery(&requests_); }

  void Ask(SourceRange& range, Kind kind, const BucketPath& path) {
    RangeRequest q;
    q.kind = kind;
    q.range = range.id;
    q.path = path;
    requests_.push_back(q);
    ++range.outstanding;
  }

  // Takes in one answer of the agent about one range or bucket.
  Status Settle(const RangeAnswerItem& item) {
    auto it = in_flight_.find(item.range);
    if (it == in_flight_.end()) {
      return DataLoss("agent answered about range " + std::to_string(item.range) +
                      ", which is not in flight");
    }
    SourceRange& range = it->second;
    if (item.path.depth == 0) {
      counts_->target_rows += item.whole.count;
      if (item.kind != AnswerKind::kEqual) range.agent_holds = true;
    }
    if (item.kind == AnswerKind::kChildren) {
      auto mine = range.digests.Children(item.path);
      for (int c : DifferingChildren(mine, item.children)) {
        BucketPath child = item.path.Child(c);
        if (item.children[c].count == 0) {
          DX_RETURN_IF_ERROR(Missing(range, range.digests.RowsIn(child)));
        } else if (ListBucket(mine[c].count, item.children[c].count, child.depth)) {
          Ask(range, Kind::kList, child);
        } else {
          Ask(range, Kind::kExpand, child);
        }
      }
    } else if (item.kind == AnswerKind::kRows) {
      BucketDiff diff =
          CompareBucket(hasher_, range.digests, range.digests.RowsIn(item.path), item.rows);
      counts_->changed += static_cast<int64_t>(diff.changed.size());
      counts_->missing += static_cast<int64_t>(diff.missing.size());
      counts_->extra += static_cast<int64_t>(diff.extra.size());
      for (size_t i : diff.missing) DX_RETURN_IF_ERROR(Upsert(range, i));
      for (size_t i : diff.changed) DX_RETURN_IF_ERROR(Upsert(range, i));
      for (size_t i : diff.extra) DX_RETURN_IF_ERROR(Delete(item.rows[i].key));
    }
    if (--range.outstanding == 0) {
      if (range.agent_holds) {
        RangeRequest release;
        release.kind = Kind::kRelease;
        release.range = range.id;
        requests_.push_back(release);
      }
      in_flight_.erase(it);
    }
    return Status::Ok();
  }

  Status Missing(SourceRange& range, const std::vector<size_t>& rows) {
    counts_->missing += static_cast<int64_t>(rows.size());
    for (size_t i : rows) DX_RETURN_IF_ERROR(Upsert(range, i));
    return Status::Ok();
  }

  Status Upsert(const SourceRange& range, size_t row) {
    if (dry_run_) return Status::Ok();
    for (size_t c = 0; c < columns_; ++c) {
      if (range.rows.IsNull(row, c)) {
        upserts_.AddNull();
      } else {
        upserts_.AddCell(range.rows.Cell(row, c));
      }
    }
    return MaybeFlushRepair();
  }

  Status Delete(const std::vector<std::string>& key) {
    if (dry_run_) return Status::Ok();
    if (key.size() != deletes_.columns()) return DataLoss("agent listed a key of another shape");
    for (const std::string& cell : key) deletes_.AddCell(cell);
    return MaybeFlushRepair();
  }

  Status MaybeFlushRepair() {
    if (upserts_.rows() + deletes_.rows() < static_cast<size_t>(options_.batch_rows)) {
      return Status::Ok();
    }
    return FlushRepair();
  }

  // Sends the collected upserts and deletes as the next numbered batch.
  Status FlushRepair() {
    if (upserts_.rows() + deletes_.rows() == 0) return Status::Ok();
    RepairBatch repair;
    repair.subscription = sub_.name;
    repair.run_id = run_id_;
    repair.seq = ++seq_;
    repair.upserts = static_cast<uint32_t>(upserts_.rows());
    repair.deletes = static_cast<uint32_t>(deletes_.rows());
    std::string raw;
    upserts_.EncodeTo(&raw);
    DX_ASSIGN_OR_RETURN(repair.rows, Compress(raw, options_.compression_level));
    raw.clear();
    deletes_.EncodeTo(&raw);
    DX_ASSIGN_OR_RETURN(repair.keys, Compress(raw, options_.compression_level));
    std::string frame = Encode(repair);
    while (repairs_in_flight_.size() >= static_cast<size_t>(options_.window)) {
      DX_RETURN_IF_ERROR(AwaitRepair());
    }
    // A suspension or termination stops the repairs here, at a batch boundary.
    DX_RETURN_IF_ERROR(CheckStillActive(store_, sub_.name));
    DX_RETURN_IF_ERROR(session_.Send(MessageType::kRepairBatch, frame));
    run_->bytes += static_cast<int64_t>(frame.size() + kFrameHeaderBytes);
    run_->batches += 1;
    repairs_in_flight_.push_back(
        {repair.seq, static_cast<int64_t>(repair.upserts + repair.deletes)});
    upserts_.Clear();
    deletes_.Clear();
    return Status::Ok();
  }

  Status AwaitRepair() {
    const RepairInFlight expected = repairs_in_flight_.front();
    while (true) {
      DX_ASSIGN_OR_RETURN(BatchAck ack,
                          session_.AwaitAck(sub_.name, seconds(options_.ack_timeout_s)));
      if (ack.seq < expected.seq) continue;  // a late answer to an earlier run
      if (ack.seq != expected.seq) {
        return DataLoss("agent acknowledged repair " + std::to_string(ack.seq) + ", expected " +
                        std::to_string(expected.seq));
      }
      if (ack.code != StatusCode::kOk) {
        return Status(ack.code,
                      "agent refused repair " + std::to_string(ack.seq) + ": " + ack.error);
      }
      if (!ack.duplicate) counts_->repaired += expected.rows;
      break;
    }
    repairs_in_flight_.pop_front();
    session_.NoteCommitted(sub_.name, expected.seq, watermark_);
    run_->rows = counts_->repaired;
    return store_.SetProgress(sub_.name, expected.seq, watermark_);
  }

  const Subscription& sub_;
  AgentSession& session_;
  SubscriptionReader& source_;
  const ExchangeOptions& options_;
  const ReconcileOptions& reconcile_;
  const uint64_t run_id_;
  const bool dry_run_;
  uint64_t seq_;
  const std::string watermark_;
  Store& store_;
  RunRecord* run_;
  ReconcileCounts* counts_;
  RowHasher hasher_;
  const size_t columns_;
  std::string last_key_;
  uint64_t next_range_ = 0;
  std::map<uint64_t, SourceRange> in_flight_;
  std::vector<RangeRequest> compares_;
  std::vector<RangeRequest> requests_;
  RowBatch upserts_;
  RowBatch deletes_;
  std::deque<RepairInFlight> repairs_in_flight_;
  std::chrono::steady_clock::duration waited_{};
};

ReconcileRun::ReconcileRun(Store& store, AgentHub& hub, const ExchangeOptions& options,
                           const Clock& clock, ReconcileOptions reconcile)
    : store_(store), hub_(hub), options_(options), clock_(clock), reconcile_(reconcile) {}

RunRecord ReconcileRun::Execute(const Subscription& sub, bool dry_run, ReconcileCounts* out,
                                bool* retryable) {
  RunRecord run;
  run.subscription = sub.name;
  run.trigger = "reconcile";
  run.status = "running";
  run.started_at = ToUnixMillis(clock_.Now());
  ReconcileCounts counts;
  counts.dry_run = dry_run;
  auto id = store_.StartRun(run);
  Status st = id.status();
  if (st.ok()) {
    run.id = id.value();
    st = Reconcile(sub, dry_run, &run, &counts);
  }
  run.finished_at = ToUnixMillis(clock_.Now());
  run.status = st.ok() ? "succeeded" : "failed";
  run.error = st.ok() ? "" : st.message();
  run.rows = counts.repaired;
  counts.run_id = run.id;
  if (run.id != 0) {
    Status recorded = store_.FinishRun(run);
    if (recorded.ok()) recorded = store_.PutReconcileCounts(counts);
    if (!recorded.ok()) LOG_ERROR("run " << run.id << " not recorded: " << recorded.message());
  }
  if (st.ok()) {
    LOG_INFO("reconciliation " << run.id << " of " << sub.name << (dry_run ? " (dry run)" : "")
                               << ": " << counts.compared << " source rows compared with "
                               << counts.target_rows << " at the agent; missing " << counts.missing
                               << ", extra " << counts.extra << ", changed " << counts.changed
                               << "; repaired " << counts.repaired << "; " << run.bytes
                               << " bytes in " << (run.finished_at - run.started_at) << " ms");
  } else {
    LOG_WARN("reconciliation " << run.id << " of " << sub.name << " failed: " << run.error);
  }
  if (out) *out = counts;
  if (retryable) *retryable = !st.ok() && IsRetryable(st);
  return run;
}

Status ReconcileRun::Reconcile(const Subscription& sub, bool dry_run, RunRecord* run,
                               ReconcileCounts* counts) {
  DX_ASSIGN_OR_RETURN(auto entry, store_.GetCatalogEntry(sub.entry));
  if (!entry) return FailedPrecondition("catalog entry '" + sub.entry + "' no longer exists");
  if (entry->is_file()) {
    return FailedPrecondition("reconciliation is for table subscriptions; '" + sub.entry +
                              "' is a file resource");
  }
  DX_RETURN_IF_ERROR(CheckSubscriptionAgainstEntry(sub, *entry));
  // The sharing workflow's word: active, shared, within its approval (最小够用).
  DX_RETURN_IF_ERROR(CheckDeliveryAllowed(store_, sub, *entry));
  DX_ASSIGN_OR_RETURN(auto source, store_.GetSource(entry->source));
  if (!source) return FailedPrecondition("source '" + entry->source + "' no longer exists");
  std::shared_ptr<AgentSession> session = hub_.Find(sub.agent);
  if (!session) return Unavailable("agent " + sub.agent + " is offline");
  DX_ASSIGN_OR_RETURN(auto subscriptions, store_.ListSubscriptionsOfAgent(sub.agent));
  DX_RETURN_IF_ERROR(CheckTargetTableFree(sub, subscriptions));
  // The same rows a run delivers: the source checked against the catalog, names resolved,
  // approved columns and rows, text made UTF-8.
  DX_ASSIGN_OR_RETURN(auto reader,
                      SubscriptionReader::Open(*source, *entry, sub, options_.masking_key));

  ReconcileBegin begin;
  begin.table.subscription = sub.name;
  begin.table.run_id = kRunIdTag | ++attempts_;
  begin.table.spec = reader->table();
  begin.dry_run = dry_run;
  session->ResetMailbox(sub.name);
  std::string payload = Encode(begin);
  run->bytes += static_cast<int64_t>(payload.size() + kFrameHeaderBytes);
  DX_RETURN_IF_ERROR(session->Send(MessageType::kReconcileBegin, payload));
  TableReady ready;
  do {
    DX_ASSIGN_OR_RETURN(ready, session->AwaitTableReady(sub.name, seconds(options_.ack_timeout_s)));
  } while (ready.run_id != begin.table.run_id);
  if (ready.code != StatusCode::kOk) return Status(ready.code, "agent: " + ready.error);
  DX_ASSIGN_OR_RETURN(Watermark held, Watermark::Decode(ready.ledger.watermark));
  if (held.empty() || held.in_full_load()) {
    return FailedPrecondition("subscription " + sub.name +
                              " has not finished its first load; run it before reconciling");
  }

  DX_RETURN_IF_ERROR(reader->Start(Watermark(), "", /*whole_table=*/true));
  Pass pass(sub, begin.table.spec, *session, *reader, options_, reconcile_, begin.table.run_id,
            dry_run, ready.ledger, store_, run, counts);
  Status st = pass.Run();
  LOG_INFO("reconciliation of " << sub.name << ": " << pass.waited_ms()
                                << " ms waiting for the agent's answers");
  return st;
}

Status RequestReconciliation(Store& store, const std::string& subscription, bool dry_run,
                             int64_t now_ms, bool unless_pending) {
  DX_ASSIGN_OR_RETURN(auto states, store.ListReconcileStates());
  ReconcileState state;
  state.subscription = subscription;
  for (const ReconcileState& s : states) {
    if (s.subscription == subscription) state = s;
  }
  if (unless_pending && state.pending != 0) return Status::Ok();
  state.pending = dry_run ? 2 : 1;
  state.failures = 0;
  state.requested_at = now_ms;
  return store.PutReconcileState(state);
}

}  // namespace dx::scheduler
