#include "scheduler/exchange_run.h"

#include <algorithm>
#include <deque>

#include "common/log.h"
#include "common/watermark.h"
#include "common/wire.h"
#include "scheduler/catalog/delivery_gate.h"
#include "scheduler/extractor.h"
#include "scheduler/file_run.h"
#include "scheduler/manifest.h"
#include "scheduler/reconcile_run.h"
#include "scheduler/send_window.h"
#include "scheduler/subscription_reader.h"

namespace dx::scheduler {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

struct InFlight {
  uint64_t seq;
  std::string watermark;
};

}  // namespace

TableSpec SubscribedTable(const Subscription& sub, const CatalogEntry& entry) {
  TableSpec spec;
  spec.table = sub.target_table;
  for (const Field& f : entry.fields) {
    if (std::find(sub.columns.begin(), sub.columns.end(), f.column.name) != sub.columns.end()) {
      spec.columns.push_back(f.column);
    }
  }
  return spec;
}

ExchangeRun::ExchangeRun(Store& store, AgentHub& hub, const ExchangeOptions& options,
                         const Clock& clock)
    : store_(store), hub_(hub), options_(options), clock_(clock) {}

RunRecord ExchangeRun::Execute(const Subscription& sub, const std::string& trigger, bool reset) {
  RunRecord run;
  run.subscription = sub.name;
  run.trigger = trigger;
  run.status = "running";
  run.started_at = ToUnixMillis(clock_.Now());
  Status st = trigger == "schedule" ? Status::Ok() : Record(&run);
  if (st.ok()) st = Transfer(sub, reset, trigger == "schedule", &run);
  run.finished_at = ToUnixMillis(clock_.Now());
  // A file run where some files were not delivered says so itself (status and error).
  const bool partial = st.ok() && run.status == "partial";
  run.status = partial ? "partial" : st.ok() ? "succeeded" : "failed";
  if (!partial) run.error = st.ok() ? "" : st.message();
  run.code = st.code();
  if (run.id == 0 && (!st.ok() || run.rows > 0)) (void)Record(&run);
  if (run.id == 0) return run;  // an empty scheduled poll: nothing to record
  Status recorded = store_.FinishRun(run);
  if (!recorded.ok()) LOG_ERROR("run " << run.id << " not recorded: " << recorded.message());
  if (partial) {
    LOG_WARN("run " << run.id << " of " << sub.name << " partly delivered: " << run.error);
  } else if (st.ok()) {
    LOG_INFO("run " << run.id << " of " << sub.name << " (" << trigger << "): " << run.rows
                    << " rows, " << run.batches << " batches, " << run.bytes << " bytes in "
                    << (run.finished_at - run.started_at) << " ms");
  } else {
    LOG_WARN("run " << run.id << " of " << sub.name << " failed: " << run.error);
  }
  return run;
}

Status ExchangeRun::Record(RunRecord* run) {
  if (run->id != 0) return Status::Ok();
  RunRecord started = *run;
  started.status = "running";
  auto id = store_.StartRun(started);
  if (!id.ok()) {
    LOG_ERROR("run of " << run->subscription
                        << " could not be recorded: " << id.status().message());
    return id.status();
  }
  run->id = id.value();
  return Status::Ok();
}

Status ExchangeRun::Transfer(const Subscription& sub, bool reset, bool poll, RunRecord* run) {
  DX_ASSIGN_OR_RETURN(auto entry, store_.GetCatalogEntry(sub.entry));
  if (!entry) return FailedPrecondition("catalog entry '" + sub.entry + "' no longer exists");
  DX_RETURN_IF_ERROR(CheckSubscriptionAgainstEntry(sub, *entry));
  // The sharing workflow's word: active, shared, within its approval (最小够用).
  DX_RETURN_IF_ERROR(CheckDeliveryAllowed(store_, sub, *entry));
  if (entry->is_file()) {
    std::shared_ptr<AgentSession> session = hub_.Find(sub.agent);
    if (!session) return Unavailable("agent " + sub.agent + " is offline");
    DX_ASSIGN_OR_RETURN(auto agent, store_.GetAgent(sub.agent));
    session->ResetMailbox(sub.name);
    FileRun files(store_, options_);
    return files.Transfer(sub, *entry, agent ? agent->bandwidth_kbps : 0, *session, ++attempts_,
                          reset, run, [this, run] { return Record(run); });
  }
  DX_ASSIGN_OR_RETURN(auto source, store_.GetSource(entry->source));
  if (!source) return FailedPrecondition("source '" + entry->source + "' no longer exists");
  DX_ASSIGN_OR_RETURN(auto subscriptions, store_.ListSubscriptionsOfAgent(sub.agent));
  DX_RETURN_IF_ERROR(CheckTargetTableFree(sub, subscriptions));
  std::shared_ptr<AgentSession> session = hub_.Find(sub.agent);
  if (!session) return Unavailable("agent " + sub.agent + " is offline");

  // Open the source first: if it is unreachable or no longer matches the catalog, nothing is
  // announced and nothing moves.
  DX_ASSIGN_OR_RETURN(auto reader,
                      SubscriptionReader::Open(*source, *entry, sub, options_.masking_key, pool_));
  // A poll may use the source clock another poll of the same source read a moment ago: an
  // earlier bound only leaves rows for the next poll.
  DX_ASSIGN_OR_RETURN(std::string source_now,
                      reader->SourceNow(poll ? clock_max_age_ : std::chrono::milliseconds(0)));
  DX_ASSIGN_OR_RETURN(std::string bound, ShiftTimestamp(source_now, -options_.safety_lag_s));

  TableBegin begin;
  begin.subscription = sub.name;
  begin.run_id = ++attempts_;
  begin.reset = reset;
  begin.spec = reader->table();
  begin.reset_id = reset ? sub.resync_id : "";
  session->ResetMailbox(sub.name);
  DX_RETURN_IF_ERROR(session->Send(MessageType::kTableBegin, Encode(begin)));
  TableReady ready;
  do {
    DX_ASSIGN_OR_RETURN(ready, session->AwaitTableReady(sub.name, seconds(options_.ack_timeout_s)));
  } while (ready.run_id != begin.run_id);  // a late answer to an earlier run
  if (ready.code != StatusCode::kOk) return Status(ready.code, "agent: " + ready.error);
  if (ready.reloaded) {
    // The agent found its table dropped or emptied and reset it: this run reloads from
    // scratch, and the history says why.
    run->note = ready.note;
    LOG_WARN("subscription " << sub.name << ": " << ready.note);
    DX_RETURN_IF_ERROR(Record(run));
  }
  if (ready.damaged) {
    // The consumer deleted rows the agent was delivered: a reconciliation puts back exactly
    // those (reloading the whole table would move every row again).
    run->note = ready.note;
    LOG_WARN("subscription " << sub.name << ": " << ready.note);
    DX_RETURN_IF_ERROR(Record(run));
    DX_RETURN_IF_ERROR(RequestReconciliation(store_, sub.name, /*dry_run=*/false,
                                             ToUnixMillis(clock_.Now()),
                                             /*unless_pending=*/true));
  }
  if (reset || ready.reloaded) {
    DX_RETURN_IF_ERROR(
        store_.SetProgress(sub.name, ready.ledger.batch_seq, ready.ledger.watermark));
  }

  DX_ASSIGN_OR_RETURN(Watermark after, Watermark::Decode(ready.ledger.watermark));
  DX_RETURN_IF_ERROR(reader->Start(after, bound, /*whole_table=*/false));

  uint64_t seq = ready.ledger.batch_seq;
  std::deque<InFlight> in_flight;
  // Bytes in flight follow the link's bandwidth-delay product as the acks measure it; the
  // count of batches is only a ceiling.
  SendWindow window(int64_t{options_.window_min_kb} * 1024, int64_t{options_.window_max_kb} * 1024);
  auto window_full = [&](size_t bytes) {
    return in_flight.size() >= static_cast<size_t>(options_.window) ||
           !window.CanSend(static_cast<int64_t>(bytes));
  };
  auto await_ack = [&]() -> Status {
    const InFlight expected = in_flight.front();
    while (true) {
      DX_ASSIGN_OR_RETURN(BatchAck ack,
                          session->AwaitAck(sub.name, seconds(options_.ack_timeout_s)));
      if (ack.seq < expected.seq) continue;  // a late answer to an earlier run
      if (ack.seq != expected.seq) {
        return DataLoss("agent acknowledged batch " + std::to_string(ack.seq) + ", expected " +
                        std::to_string(expected.seq));
      }
      if (ack.code != StatusCode::kOk) {
        return Status(ack.code,
                      "agent refused batch " + std::to_string(ack.seq) + ": " + ack.error);
      }
      break;
    }
    in_flight.pop_front();
    window.OnAck(SendWindow::Clock::now());
    session->NoteCommitted(sub.name, expected.seq, expected.watermark);
    return store_.SetProgress(sub.name, expected.seq, expected.watermark);
  };

  const size_t columns = begin.spec.columns.size();
  RowBatch batch(columns);
  std::string raw;
  Watermark last = after;
  while (true) {
    batch.Clear();
    DX_ASSIGN_OR_RETURN(size_t n,
                        reader->Read(static_cast<size_t>(options_.batch_rows), &batch, &last));
    if (n == 0) break;
    raw.clear();
    batch.EncodeTo(&raw);
    BatchMessage message;
    message.subscription = sub.name;
    message.run_id = begin.run_id;
    message.seq = ++seq;
    message.watermark = last.Encode();
    message.rows = static_cast<uint32_t>(n);
    DX_ASSIGN_OR_RETURN(message.payload, Compress(raw, options_.compression_level));
    std::string frame = Encode(message);
    while (window_full(frame.size())) DX_RETURN_IF_ERROR(await_ack());
    // A suspension or termination stops the run here, at a batch boundary.
    DX_RETURN_IF_ERROR(CheckStillActive(store_, sub.name));
    DX_RETURN_IF_ERROR(Record(run));  // data moves: this run belongs in the history
    DX_RETURN_IF_ERROR(session->Send(MessageType::kBatch, frame));
    window.OnSend(static_cast<int64_t>(frame.size()), SendWindow::Clock::now());
    in_flight.push_back({message.seq, message.watermark});
    run->rows += static_cast<int64_t>(n);
    run->bytes += static_cast<int64_t>(frame.size());
    run->batches += 1;
  }
  if (reader->full_load()) {
    // The full load is complete: one empty batch moves the agent's ledger to the incremental
    // watermark (every row up to the load's bound is delivered), committed like any batch.
    BatchMessage done;
    done.subscription = sub.name;
    done.run_id = begin.run_id;
    done.seq = ++seq;
    Watermark finished = reader->FinishedWatermark();
    finished.resync = after.resync;
    done.watermark = finished.Encode();
    raw.clear();
    RowBatch(columns).EncodeTo(&raw);
    DX_ASSIGN_OR_RETURN(done.payload, Compress(raw, options_.compression_level));
    std::string frame = Encode(done);
    while (window_full(frame.size())) DX_RETURN_IF_ERROR(await_ack());
    DX_RETURN_IF_ERROR(Record(run));
    DX_RETURN_IF_ERROR(session->Send(MessageType::kBatch, frame));
    window.OnSend(static_cast<int64_t>(frame.size()), SendWindow::Clock::now());
    in_flight.push_back({done.seq, done.watermark});
    run->batches += 1;
  }
  while (!in_flight.empty()) DX_RETURN_IF_ERROR(await_ack());
  return Status::Ok();
}

}  // namespace dx::scheduler
