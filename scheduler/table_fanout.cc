#include "scheduler/table_fanout.h"

#include <algorithm>
#include <deque>
#include <map>
#include <set>

#include "common/log.h"
#include "common/watermark.h"
#include "common/wire.h"
#include "scheduler/catalog/delivery_gate.h"
#include "scheduler/extractor.h"
#include "scheduler/manifest.h"
#include "scheduler/reconcile_run.h"
#include "scheduler/send_window.h"
#include "scheduler/shared_read.h"

namespace dx::scheduler {

using std::chrono::milliseconds;
using std::chrono::seconds;

struct TableFanout::Flow {
  Member* member = nullptr;
  std::shared_ptr<AgentSession> session;
  size_t reader = 0;  // its index in the SharedReader
  TableBegin begin;
  Watermark after;  // the agent's committed position when the run began
  uint64_t seq = 0;
  struct InFlight {
    uint64_t seq;
    std::string watermark;
  };
  std::deque<InFlight> in_flight;
  std::unique_ptr<SendWindow> window;
  // A scheduled poll not announced to its agent yet (its position from the session's ledger):
  // it is when the read finds rows.
  bool quiet = false;

  const Subscription& sub() const { return *member->subscription; }
  bool live() const { return member->status.ok() && !member->detached; }
};

namespace {

// The position a watermark names, without the resync request it carries.
std::string PositionOf(Watermark w) {
  w.resync.clear();
  return w.Encode();
}

// True at a boundary: every row with UPDATETIME before a whole second is delivered (where
// full loads and completed reads end).
bool AtBoundary(const Watermark& w) {
  return w.full_load_until.empty() && w.key.empty() && w.updatetime.size() == 19 &&
         SpelledToTheSecond(w.updatetime);
}

}  // namespace

TableFanout::TableFanout(Store& store, AgentHub& hub, const ExchangeOptions& options,
                         const Clock& clock, SourcePool* pool, milliseconds clock_max_age,
                         std::atomic<uint64_t>& attempts, std::function<Status(RunRecord*)> record,
                         ExchangeCounters* counters)
    : store_(store),
      hub_(hub),
      options_(options),
      clock_(clock),
      pool_(pool),
      clock_max_age_(clock_max_age),
      attempts_(attempts),
      record_(std::move(record)),
      counters_(counters),
      packer_(options.compression_level) {}

TableFanout::~TableFanout() = default;

void TableFanout::Settle(Flow& flow, const Status& outcome) {
  if (flow.member->status.ok()) flow.member->status = outcome;
}

Status TableFanout::Prepare(const CatalogEntry& entry, Flow& flow) {
  const Subscription& sub = flow.sub();
  DX_RETURN_IF_ERROR(CheckSubscriptionAgainstEntry(sub, entry));
  // The sharing workflow's word: active, shared, within its approval (最小够用).
  DX_RETURN_IF_ERROR(CheckDeliveryAllowed(store_, sub, entry));
  // An agent's subscriptions are read once per group run (an agent may hold many members).
  auto listed = agent_subscriptions_.find(sub.agent);
  if (listed == agent_subscriptions_.end()) {
    DX_ASSIGN_OR_RETURN(auto subscriptions, store_.ListSubscriptionsOfAgent(sub.agent));
    listed = agent_subscriptions_.emplace(sub.agent, std::move(subscriptions)).first;
  }
  DX_RETURN_IF_ERROR(CheckTargetTableFree(sub, listed->second));
  flow.session = hub_.Find(sub.agent);
  if (!flow.session) return Unavailable("agent " + sub.agent + " is offline");
  return Status::Ok();
}

void TableFanout::Transfer(const CatalogEntry& entry, std::vector<Member>& members) {
  std::vector<Flow> flows(members.size());
  for (size_t i = 0; i < members.size(); ++i) {
    flows[i].member = &members[i];
    if (members[i].status.ok()) Settle(flows[i], Prepare(entry, flows[i]));
  }
  auto source = store_.GetSource(entry.source);
  Status source_missing = !source.ok() ? source.status()
                          : !source.value()
                              ? FailedPrecondition("source '" + entry.source + "' no longer exists")
                              : Status::Ok();
  // Open the source first: if it is unreachable or no longer matches the catalog, nothing is
  // announced and nothing moves.
  std::vector<Flow*> live;
  std::vector<const Subscription*> subscribers;
  bool polls = true;
  for (Flow& f : flows) {
    if (!f.live()) continue;
    Settle(f, source_missing);
    if (!f.live()) continue;
    f.reader = subscribers.size();
    subscribers.push_back(&f.sub());
    live.push_back(&f);
    polls = polls && f.member->poll;
    if (f.member->poll) counters_->polls++;
  }
  if (live.empty()) return;
  std::vector<Status> refused;
  auto reader = SharedReader::Open(*source.value(), entry, subscribers, options_.masking_key, pool_,
                                   &refused);
  if (!reader.ok()) {
    for (Flow* f : live) Settle(*f, reader.status());
    return;
  }
  reader_ = std::move(reader).value();
  for (Flow* f : live) Settle(*f, refused[f->reader]);
  if (std::none_of(live.begin(), live.end(), [](Flow* f) { return f->live(); })) return;
  // A poll may use the source clock another poll of the same source read a moment ago: an
  // earlier bound only leaves rows for the next poll.
  Result<std::string> bound = Internal("no bound");
  {
    auto now = reader_->SourceNow(polls ? clock_max_age_ : milliseconds(0));
    bound = now.ok() ? ShiftTimestamp(now.value(), -options_.safety_lag_s) : now.status();
  }
  // A scheduled poll of a member whose agent's position is known (its ledger, kept by the
  // session) reads first and tells the agent only when there is something to deliver: an
  // empty poll costs one source query for the group and no round trip to any agent.
  for (Flow* f : live) {
    if (!bound.ok()) Settle(*f, bound.status());
    if (!f->live()) continue;
    auto ledger = f->session->Ledger(f->sub().name);
    if (f->member->poll && !f->member->reset && ledger) {
      auto after = Watermark::Decode(ledger->watermark);
      if (after.ok()) {
        f->quiet = true;
        f->after = std::move(after).value();
        continue;
      }
    }
    Settle(*f, Begin(*f));
  }
  // Every agent got its TableBegin before the first answer is awaited: they prepare at once.
  std::vector<Flow*> announced;
  for (Flow* f : live) {
    if (!f->quiet) announced.push_back(f);
  }
  AwaitReady(announced, live);
  if (bound.ok()) ReadAll(live, bound.value());  // otherwise every member failed above
  // What is still in flight. A straggler gets straggler_s more, not ack_timeout_s per batch:
  // what its agent commits later is in its ledger, where its next run starts.
  for (Flow* f : live) {
    const auto wait = seconds(f->member->detached ? options_.straggler_s : options_.ack_timeout_s);
    const auto until = std::chrono::steady_clock::now() + wait;
    while (f->member->status.ok() && !f->in_flight.empty()) {
      auto left =
          std::chrono::duration_cast<milliseconds>(until - std::chrono::steady_clock::now());
      if (f->member->detached && left.count() <= 0) break;
      Status st = TakeAck(*f, f->member->detached ? left : milliseconds(wait));
      if (f->member->detached && !st.ok() && st.code() == StatusCode::kUnavailable &&
          !f->session->closed()) {
        break;
      }
      Settle(*f, st);
    }
  }
}

void TableFanout::ReadAll(std::vector<Flow*>& live, const std::string& bound) {
  // Members by the position their agent holds. Those at a boundary ("every row before T is
  // delivered", where every completed read ends) share one read from the earliest, each
  // taking rows from its own T on; the others read with those at exactly their position.
  struct Plan {
    Watermark after;
    std::vector<Flow*> flows;
  };
  std::vector<Plan> plans(1);        // plans[0]: the members at boundaries
  std::map<std::string, size_t> at;  // the others, by exact position: their plan
  for (Flow* f : live) {
    if (!f->live()) continue;
    if (AtBoundary(f->after)) {
      Plan& boundaries = plans[0];
      if (boundaries.flows.empty() || f->after.updatetime < boundaries.after.updatetime) {
        boundaries.after = Watermark{"", f->after.updatetime, {}};
      }
      boundaries.flows.push_back(f);
      continue;
    }
    auto [it, added] = at.emplace(PositionOf(f->after), plans.size());
    if (added) {
      plans.push_back({f->after, {}});
      plans.back().after.resync.clear();
    }
    plans[it->second].flows.push_back(f);
  }
  for (Plan& plan : plans) {
    if (plan.flows.empty()) continue;
    // One read per plan, evaluating at most kMaxRoutes distinct filters.
    std::vector<Flow*> chunk;
    std::set<std::string> filters;
    for (Flow* f : plan.flows) {
      const std::string& filter = reader_->filter_key(f->reader);  // "": every row
      if (!filter.empty() && !filters.count(filter) && filters.size() == SharedReader::kMaxRoutes) {
        Read(chunk, plan.after, bound);
        chunk.clear();
        filters.clear();
      }
      if (!filter.empty()) filters.insert(filter);
      chunk.push_back(f);
    }
    Read(chunk, plan.after, bound);
  }
}

void TableFanout::AwaitReady(std::vector<Flow*>& flows, const std::vector<Flow*>& group) {
  for (Flow* f : flows) {
    if (!f->live()) continue;
    // An agent that does not answer while others of the group could go on (SIGSTOPped,
    // overloaded) is left behind rather than waited for.
    const bool others =
        std::count_if(group.begin(), group.end(), [](Flow* o) { return o->live(); }) > 1;
    Status st = Ready(*f, others ? seconds(options_.straggler_s) : seconds(options_.ack_timeout_s));
    if (!st.ok() && others && st.code() == StatusCode::kUnavailable && !f->session->closed()) {
      Detach(*f, "no answer to the table announcement for " + std::to_string(options_.straggler_s) +
                     " s");
    } else {
      Settle(*f, st);
    }
  }
}

Status TableFanout::Begin(Flow& flow) {
  const Subscription& sub = flow.sub();
  flow.begin.subscription = sub.name;
  flow.begin.run_id = ++attempts_;
  flow.begin.reset = flow.member->reset;
  flow.begin.spec = reader_->table(flow.reader);
  flow.begin.reset_id = flow.member->reset ? sub.resync_id : "";
  flow.session->ResetMailbox(sub.name);
  counters_->announcements++;
  return flow.session->Send(MessageType::kTableBegin, Encode(flow.begin));
}

void TableFanout::Detach(Flow& flow, const std::string& why) {
  flow.member->detached = true;
  flow.member->run->note = "left a shared read (" + why + "); catching up on its own";
  LOG_WARN("subscription " << flow.sub().name << ": " << flow.member->run->note);
}

Status TableFanout::Ready(Flow& flow, milliseconds timeout) {
  const Subscription& sub = flow.sub();
  RunRecord* run = flow.member->run;
  TableReady ready;
  do {
    DX_ASSIGN_OR_RETURN(ready, flow.session->AwaitTableReady(sub.name, timeout));
  } while (ready.run_id != flow.begin.run_id);  // a late answer to an earlier run
  if (ready.code != StatusCode::kOk) return Status(ready.code, "agent: " + ready.error);
  if (ready.reloaded) {
    // The agent found its table dropped or emptied and reset it: this run reloads from
    // scratch, and the history says why.
    run->note = ready.note;
    LOG_WARN("subscription " << sub.name << ": " << ready.note);
    DX_RETURN_IF_ERROR(record_(run));
  }
  if (ready.damaged) {
    // The consumer deleted rows the agent was delivered: a reconciliation puts back exactly
    // those (reloading the whole table would move every row again).
    run->note = ready.note;
    LOG_WARN("subscription " << sub.name << ": " << ready.note);
    DX_RETURN_IF_ERROR(record_(run));
    DX_RETURN_IF_ERROR(RequestReconciliation(store_, sub.name, /*dry_run=*/false,
                                             ToUnixMillis(clock_.Now()),
                                             /*unless_pending=*/true));
  }
  if (flow.member->reset || ready.reloaded) {
    DX_RETURN_IF_ERROR(
        store_.SetProgress(sub.name, ready.ledger.batch_seq, ready.ledger.watermark));
  }
  DX_ASSIGN_OR_RETURN(flow.after, Watermark::Decode(ready.ledger.watermark));
  flow.seq = ready.ledger.batch_seq;
  // Bytes in flight follow the link's bandwidth-delay product as the acks measure it; the
  // count of batches is only a ceiling.
  flow.window = std::make_unique<SendWindow>(int64_t{options_.window_min_kb} * 1024,
                                             int64_t{options_.window_max_kb} * 1024);
  return Status::Ok();
}

void TableFanout::Read(std::vector<Flow*>& flows, const Watermark& after,
                       const std::string& bound) {
  std::vector<size_t> readers;
  std::vector<RowBatch> batches;
  std::vector<std::string> starts;  // a member further on than `after` takes rows from its own
  for (Flow* f : flows) {
    readers.push_back(f->reader);
    batches.emplace_back(reader_->table(f->reader).columns.size());
    const bool further = AtBoundary(f->after) && f->after.updatetime != after.updatetime;
    starts.push_back(further ? f->after.updatetime : "");
  }
  // Packed batches point into `batches`: forgotten whichever way this returns.
  struct ForgetOnReturn {
    TableFanout* fanout;
    ~ForgetOnReturn() { fanout->ForgetPacked(); }
  } forget{this};
  Status started = reader_->Start(readers, after, bound, /*whole_table=*/false, starts);
  counters_->source_reads++;
  if (!started.ok()) {
    for (Flow* f : flows) Settle(*f, started);
    return;
  }
  // Rows are read a batch at a time and routed; a member's rows leave once it has half a
  // batch (so a batch holds between half and one and a half of batch_rows).
  const size_t read_rows = static_cast<size_t>(options_.batch_rows);
  const size_t send_at = std::max<size_t>(1, read_rows / 2);
  auto live_count = [&] {
    size_t n = 0;
    for (Flow* f : flows) n += f->live() ? 1 : 0;
    return n;
  };
  Watermark last = after;
  size_t total = 0;
  bool first = true;
  while (live_count() > 0) {
    auto n = reader_->Read(read_rows, &batches, &last);
    if (!n.ok()) {
      for (Flow* f : flows) Settle(*f, n.status());
      return;
    }
    if (first) {
      first = false;
      if (n.value() > 0 || reader_->full_load()) AnnounceQuiet(flows);
    }
    if (n.value() == 0) break;
    total += n.value();
    // A batch goes to every live member whose rows it holds (SharedReader::batch_of); an
    // equal batch of another member is sent with the same encoding (BatchPacker). A batch is
    // cleared once sent, and when no live member takes its rows any more.
    std::vector<bool> sent(batches.size(), false);
    for (size_t k = 0; k < flows.size(); ++k) {
      const size_t b = reader_->batch_of(k);
      if (!flows[k]->live() || batches[b].rows() < send_at) continue;
      Settle(*flows[k], Deliver(*flows[k], batches[b], last, live_count() > 1));
      sent[b] = true;
    }
    ForgetPacked();
    std::vector<bool> taken(batches.size(), false);
    for (size_t k = 0; k < flows.size(); ++k) {
      if (flows[k]->live()) taken[reader_->batch_of(k)] = true;
    }
    for (size_t b = 0; b < batches.size(); ++b) {
      if (sent[b] || !taken[b]) batches[b].Clear();
    }
  }
  if (live_count() == 0) return;
  for (size_t k = 0; k < flows.size(); ++k) {
    Flow& f = *flows[k];
    if (!f.live()) continue;
    if (reader_->full_load()) {
      // The full load is complete: what is left goes in one last batch (empty if nothing is)
      // that moves the agent's ledger to the incremental watermark: once it is applied, every
      // row up to the load's bound is delivered. A member whose window is still full leaves
      // here like anywhere else (it would hold back the others' last batches) and finishes
      // its load on its own.
      Settle(f, Deliver(f, batches[reader_->batch_of(k)], reader_->FinishedWatermark(),
                        live_count() > 1));
    } else if (total > 0 && !(AtBoundary(f.after) && f.after.updatetime >= bound)) {
      // Every row before the bound is delivered: the member's position moves there, the same
      // for every member of this read and of any read of the entry in this run, so that they
      // share one read next time. (A poll that found nothing sends nothing; a member already
      // at a later boundary, its rows all skipped, stays where it is.)
      Settle(f,
             Deliver(f, batches[reader_->batch_of(k)], Watermark{"", bound, {}}, live_count() > 1));
    }
  }
}

void TableFanout::AnnounceQuiet(std::vector<Flow*>& flows) {
  std::vector<Flow*> quiet;
  std::vector<std::string> expected;
  for (Flow* f : flows) {
    if (!f->quiet || !f->live()) continue;
    f->quiet = false;
    expected.push_back(PositionOf(f->after));
    Settle(*f, Begin(*f));
    quiet.push_back(f);
  }
  AwaitReady(quiet, flows);
  for (size_t i = 0; i < quiet.size(); ++i) {
    Flow* f = quiet[i];
    // The agent's table moved since its ledger was last heard of (reloaded, reset): it runs
    // again on its own from where it really is.
    if (f->live() && PositionOf(f->after) != expected[i]) {
      Detach(*f, "its agent's position changed since it was last heard");
    }
  }
}

Status TableFanout::TakeAck(Flow& flow, milliseconds timeout) {
  const Flow::InFlight expected = flow.in_flight.front();
  const std::string& name = flow.sub().name;
  while (true) {
    DX_ASSIGN_OR_RETURN(BatchAck ack, flow.session->AwaitAck(name, timeout));
    if (ack.seq < expected.seq) continue;  // a late answer to an earlier run
    if (ack.seq != expected.seq) {
      return DataLoss("agent acknowledged batch " + std::to_string(ack.seq) + ", expected " +
                      std::to_string(expected.seq));
    }
    if (ack.code != StatusCode::kOk) {
      return Status(ack.code, "agent refused batch " + std::to_string(ack.seq) + ": " + ack.error);
    }
    break;
  }
  flow.in_flight.pop_front();
  flow.window->OnAck(SendWindow::Clock::now());
  flow.session->NoteCommitted(name, expected.seq, expected.watermark);
  return store_.SetProgress(name, expected.seq, expected.watermark);
}

Result<std::string> BatchPacker::Pack(const RowBatch& rows) {
  const std::pair<size_t, size_t> key{rows.rows(), rows.payload_bytes()};
  if (rows.rows() > 0) {  // an empty batch (a position moving on) costs nothing to pack
    for (auto [it, end] = packed_.equal_range(key); it != end; ++it) {
      if (it->second.rows == &rows || *it->second.rows == rows) return it->second.payload;
    }
  }
  raw_.clear();
  rows.EncodeTo(&raw_);
  DX_ASSIGN_OR_RETURN(std::string payload, Compress(raw_, level_));
  ++compressions_;
  if (rows.rows() > 0) packed_.emplace(key, Packed{&rows, payload});
  return payload;
}

Status TableFanout::Deliver(Flow& flow, const RowBatch& rows, const Watermark& position,
                            bool others_wait) {
  const Subscription& sub = flow.sub();
  RunRecord* run = flow.member->run;
  BatchMessage message;
  message.subscription = sub.name;
  message.run_id = flow.begin.run_id;
  message.seq = flow.seq + 1;
  Watermark at = position;
  at.resync = flow.after.resync;
  message.watermark = at.Encode();
  message.rows = static_cast<uint32_t>(rows.rows());
  DX_ASSIGN_OR_RETURN(message.payload, packer_.Pack(rows));
  std::string frame = Encode(message);
  // Acknowledgements that have arrived are taken first (progress is recorded as it comes).
  while (!flow.in_flight.empty()) {
    Status st = TakeAck(flow, milliseconds(0));
    if (st.ok()) continue;
    if (flow.session->closed() || st.code() != StatusCode::kUnavailable) return st;
    break;  // none yet
  }
  auto window_full = [&] {
    return flow.in_flight.size() >= static_cast<size_t>(options_.window) ||
           !flow.window->CanSend(static_cast<int64_t>(frame.size()));
  };
  while (window_full()) {
    if (!others_wait) {
      DX_RETURN_IF_ERROR(TakeAck(flow, seconds(options_.ack_timeout_s)));
      continue;
    }
    Status st = TakeAck(flow, seconds(options_.straggler_s));
    if (st.ok()) continue;
    if (flow.session->closed() || st.code() != StatusCode::kUnavailable) return st;
    // It holds the others back: it leaves this read and catches up on its own.
    Detach(flow, "no acknowledgement for " + std::to_string(options_.straggler_s) + " s");
    return Status::Ok();
  }
  // A suspension or termination stops the run here, at a batch boundary.
  DX_RETURN_IF_ERROR(CheckStillActive(store_, sub.name));
  DX_RETURN_IF_ERROR(record_(run));  // data moves: this run belongs in the history
  DX_RETURN_IF_ERROR(flow.session->Send(MessageType::kBatch, frame));
  flow.seq = message.seq;
  flow.window->OnSend(static_cast<int64_t>(frame.size()), SendWindow::Clock::now());
  flow.in_flight.push_back({message.seq, message.watermark});
  run->rows += static_cast<int64_t>(rows.rows());
  run->bytes += static_cast<int64_t>(frame.size());
  run->batches += 1;
  return Status::Ok();
}

}  // namespace dx::scheduler
