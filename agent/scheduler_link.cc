#include "agent/scheduler_link.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <variant>

#include "agent/subscription_deletion.h"
#include "agent/table_reconciler.h"
#include "common/log.h"
#include "common/wire.h"

namespace dx::agent {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr milliseconds kSendTimeout{30000};
constexpr size_t kMaxBatchBytes = 256u << 20;
constexpr size_t kMaxHelloReplyBytes = 64u << 10;

// A batch decoded by the reader thread, ready for the writer.
struct DecodedBatch {
  BatchMessage message;
  Result<RowBatch> rows = RowBatch();
};

// A repair decoded by the reader thread (reconciliation).
struct DecodedRepair {
  RepairBatch message;
  Result<RowBatch> rows = RowBatch();
  Result<RowBatch> keys = RowBatch();
};

// The file receiver's syncing thread has made files durable: their answers can go out.
struct FilesReady {};

// A file chunk whose bytes stay in the frame they arrived in (1 MiB is not copied again).
struct ChunkWork {
  FileChunk header;  // data empty
  std::string frame;
  size_t data_at = 0;
  size_t data_size = 0;
};

using Work =
    std::variant<TableBegin, DecodedBatch, FilePut, FileMeta, ChunkWork, FileCommit, FileCopy,
                 FileDelete, FileAbort, FileFolder, FileSweep, FileRunBegin, FilesReady,
                 ReconcileBegin, RangeQuery, DecodedRepair, DeleteSubscription>;

template <typename T>
Result<Work> DecodeAs(std::string_view payload) {
  T message;
  DX_RETURN_IF_ERROR(Decode(payload, &message));
  return Work(std::move(message));
}

Result<Work> DecodeFileWork(MessageType type, std::string_view payload) {
  switch (type) {
    case MessageType::kFilePut:
      return DecodeAs<FilePut>(payload);
    case MessageType::kFileOffer:
      return DecodeAs<FileMeta>(payload);
    case MessageType::kFileCommit:
      return DecodeAs<FileCommit>(payload);
    case MessageType::kFileCopy:
      return DecodeAs<FileCopy>(payload);
    case MessageType::kFileDelete:
      return DecodeAs<FileDelete>(payload);
    case MessageType::kFileAbort:
      return DecodeAs<FileAbort>(payload);
    case MessageType::kFileFolder:
      return DecodeAs<FileFolder>(payload);
    case MessageType::kFileSweep:
      return DecodeAs<FileSweep>(payload);
    case MessageType::kFileRunBegin:
      return DecodeAs<FileRunBegin>(payload);
    default:
      return DataLoss("not a file message");
  }
}

// A bounded hand-off from the reader thread to the writer thread.
class WorkQueue {
 public:
  explicit WorkQueue(size_t capacity) : capacity_(capacity) {}
  // Blocks while full; false when closed.
  bool Push(Work work) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return closed_ || items_.size() < capacity_; });
    if (closed_) return false;
    items_.push_back(std::move(work));
    cv_.notify_all();
    return true;
  }
  // Blocks while empty; false when closed and drained.
  bool Pop(Work* work) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return closed_ || !items_.empty(); });
    if (items_.empty()) return false;
    *work = std::move(items_.front());
    items_.pop_front();
    if (std::holds_alternative<FilesReady>(*work)) files_ready_queued_ = false;
    cv_.notify_all();
    return true;
  }
  // Queues one FilesReady (never blocks; at most one waits at a time).
  void NoteFilesReady() {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_ || files_ready_queued_) return;
    files_ready_queued_ = true;
    items_.push_back(FilesReady{});
    cv_.notify_all();
  }
  bool Empty() {
    std::lock_guard<std::mutex> lock(mu_);
    return items_.empty();
  }
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    items_.clear();
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Work> items_;
  size_t capacity_;
  bool closed_ = false;
  bool files_ready_queued_ = false;
};

}  // namespace

SchedulerLink::SchedulerLink(const AgentConfig& config, TableWriter* writer, FileReceiver* files,
                             std::shared_ptr<TlsContext> tls)
    : config_(config), writer_(writer), files_(files), tls_(std::move(tls)) {}

void SchedulerLink::Stop() {
  stopping_ = true;
  std::lock_guard<std::mutex> lock(current_mu_);
  if (current_ != nullptr) current_->Close();
}

int SchedulerLink::Run() {
  int backoff_ms = config_.reconnect_min_ms;
  std::mt19937 rng(std::random_device{}());
  while (!stopping_) {
    auto dialed = FrameLink::Dial(config_.scheduler_host, config_.scheduler_port, seconds(5));
    Status ended;
    if (dialed.ok()) {
      std::unique_ptr<FrameLink> link = std::move(dialed).value();
      {
        std::lock_guard<std::mutex> lock(current_mu_);
        current_ = link.get();
        if (stopping_) link->Close();
      }
      uint32_t heartbeat_s = 5;
      ended = tls_ ? link->StartTls(*tls_, seconds(10)) : Status::Ok();
      if (ended.ok()) ended = Handshake(*link, &heartbeat_s);
      if (ended.ok()) {
        LOG_INFO("connected to scheduler " << link->peer() << " as " << config_.name);
        backoff_ms = config_.reconnect_min_ms;
        ended = Serve(*link, heartbeat_s);
      }
      std::lock_guard<std::mutex> lock(current_mu_);
      current_ = nullptr;
    } else {
      ended = dialed.status();
    }
    if (stopping_) break;
    if (ended.code() == StatusCode::kPermissionDenied) {
      LOG_ERROR("scheduler refused this agent: " << ended.message());
      backoff_ms = config_.reconnect_max_ms;  // an operator must act; do not hammer
    } else {
      LOG_WARN("scheduler connection: " << ended.message() << "; retrying in " << backoff_ms
                                        << " ms");
    }
    // Full jitter: after a scheduler restart its agents come back spread over the interval,
    // not in waves.
    std::uniform_int_distribution<int> jitter(std::min(backoff_ms, config_.reconnect_min_ms),
                                              backoff_ms);
    int wait_ms = jitter(rng);
    for (int waited = 0; waited < wait_ms && !stopping_; waited += 50) {
      std::this_thread::sleep_for(milliseconds(50));
    }
    backoff_ms = std::min(backoff_ms * 2, config_.reconnect_max_ms);
  }
  LOG_INFO("agent stopped");
  return 0;
}

Status SchedulerLink::Handshake(FrameLink& link, uint32_t* heartbeat_s) {
  Hello hello;
  hello.agent = config_.name;
  hello.secret = config_.secret;
  hello.agent_version = "0.1.0";
  hello.target_dbms = DbmsLabel(writer_->dbms());
  hello.ledger = writer_->Ledger();
  DX_RETURN_IF_ERROR(link.Send(MessageType::kHello, Encode(hello), kSendTimeout));
  DX_ASSIGN_OR_RETURN(Frame frame, link.Receive(seconds(30), kMaxHelloReplyBytes));
  if (frame.type != MessageType::kHelloReply) return DataLoss("expected a hello reply");
  HelloReply reply;
  ByteReader peek(frame.payload);
  uint64_t version = 0;
  DX_RETURN_IF_ERROR(peek.GetVarint(&version));
  if (version != kProtocolVersion) {
    return PermissionDenied("scheduler speaks protocol version " + std::to_string(version) +
                            ", this agent speaks " + std::to_string(kProtocolVersion));
  }
  DX_RETURN_IF_ERROR(Decode(frame.payload, &reply));
  if (!reply.accepted) return PermissionDenied(reply.reason);
  // From the scheduler; bounded so that three of them fit every duration type used with it.
  *heartbeat_s = std::clamp<uint32_t>(reply.heartbeat_s, 1, 3600);
  return Status::Ok();
}

Status SchedulerLink::Serve(FrameLink& link, uint32_t heartbeat_s) {
  WorkQueue queue(static_cast<size_t>(config_.queue_batches));
  std::mutex ended_mu;
  Status ended;
  auto finish = [&](const Status& why) {
    {
      std::lock_guard<std::mutex> lock(ended_mu);
      if (ended.ok()) ended = why.ok() ? Unavailable("session ended") : why;
    }
    queue.Close();
    link.Close();
  };

  // Reader: receives frames, decompresses and decodes batches so decoding overlaps writing.
  std::thread reader([&] {
    while (true) {
      auto frame = link.Receive(seconds(3 * heartbeat_s));
      if (!frame.ok()) return finish(frame.status());
      switch (frame->type) {
        case MessageType::kHeartbeat:
          break;
        case MessageType::kTableBegin: {
          TableBegin begin;
          Status st = Decode(frame->payload, &begin);
          if (!st.ok()) return finish(st);
          if (!queue.Push(std::move(begin))) return;
          break;
        }
        case MessageType::kBatch: {
          DecodedBatch batch;
          Status st = Decode(frame->payload, &batch.message);
          if (!st.ok()) return finish(st);
          auto raw = Decompress(batch.message.payload, kMaxBatchBytes);
          batch.rows = raw.ok() ? RowBatch::Decode(raw.value()) : Result<RowBatch>(raw.status());
          batch.message.payload.clear();
          if (!queue.Push(std::move(batch))) return;
          break;
        }
        case MessageType::kReconcileBegin: {
          Result<Work> work = DecodeAs<ReconcileBegin>(frame->payload);
          if (!work.ok()) return finish(work.status());
          if (!queue.Push(std::move(work).value())) return;
          break;
        }
        case MessageType::kRangeQuery: {
          Result<Work> work = DecodeAs<RangeQuery>(frame->payload);
          if (!work.ok()) return finish(work.status());
          if (!queue.Push(std::move(work).value())) return;
          break;
        }
        case MessageType::kRepairBatch: {
          DecodedRepair repair;
          Status st = Decode(frame->payload, &repair.message);
          if (!st.ok()) return finish(st);
          for (auto [payload, out] : {std::pair{&repair.message.rows, &repair.rows},
                                      std::pair{&repair.message.keys, &repair.keys}}) {
            auto raw = Decompress(*payload, kMaxBatchBytes);
            *out = raw.ok() ? RowBatch::Decode(raw.value()) : Result<RowBatch>(raw.status());
            payload->clear();
          }
          if (!queue.Push(std::move(repair))) return;
          break;
        }
        case MessageType::kDeleteSubscription: {
          Result<Work> work = DecodeAs<DeleteSubscription>(frame->payload);
          if (!work.ok()) return finish(work.status());
          if (!queue.Push(std::move(work).value())) return;
          break;
        }
        case MessageType::kFileChunk: {
          ChunkWork chunk;
          chunk.frame = std::move(frame->payload);
          std::string_view data;
          Status st = DecodeChunkView(chunk.frame, &chunk.header, &data);
          if (!st.ok()) return finish(st);
          chunk.data_at = static_cast<size_t>(data.data() - chunk.frame.data());
          chunk.data_size = data.size();
          if (!queue.Push(std::move(chunk))) return;
          break;
        }
        case MessageType::kFilePut:
        case MessageType::kFileOffer:
        case MessageType::kFileCommit:
        case MessageType::kFileCopy:
        case MessageType::kFileDelete:
        case MessageType::kFileAbort:
        case MessageType::kFileFolder:
        case MessageType::kFileSweep:
        case MessageType::kFileRunBegin: {
          Result<Work> work = DecodeFileWork(frame->type, frame->payload);
          if (!work.ok()) return finish(work.status());
          if (!queue.Push(std::move(work).value())) return;
          break;
        }
        default:
          return finish(
              DataLoss("unexpected message type " + std::to_string(static_cast<int>(frame->type))));
      }
    }
  });

  // Heartbeats keep the scheduler's view of this agent fresh while it is idle.
  std::mutex hb_mu;
  std::condition_variable hb_cv;
  bool hb_stop = false;
  std::thread heartbeat([&] {
    std::unique_lock<std::mutex> lock(hb_mu);
    while (!hb_cv.wait_for(lock, seconds(heartbeat_s), [&] { return hb_stop; })) {
      Status st = link.Send(MessageType::kHeartbeat, "", kSendTimeout);
      if (!st.ok()) return finish(st);
    }
  });

  // Writer (this thread): applies work in order and acknowledges what is committed.
  Work work;
  TableReconciler reconciler(writer_);  // state of reconciliations under way in this session
  // Files are made durable by the receiver's syncing thread; their answers go out as soon as
  // they are recorded (FilesReady wakes this thread when it is idle).
  files_->SetWakeup([&queue] { queue.NoteFilesReady(); });
  auto send_file_results = [&]() -> Status {
    for (const FileResult& r : files_->TakeResults(queue.Empty())) {
      DX_RETURN_IF_ERROR(link.Send(MessageType::kFileResult, Encode(r), kSendTimeout));
    }
    return Status::Ok();
  };
  while (queue.Pop(&work)) {
    Status sent;
    if (auto* begin = std::get_if<TableBegin>(&work)) {
      auto prepared = writer_->BeginTable(*begin);
      TableReady ready;
      if (prepared.ok()) {
        ready = std::move(prepared).value();
      } else {
        ready.subscription = begin->subscription;
        ready.run_id = begin->run_id;
        ready.code = prepared.status().code();
        ready.error = prepared.status().message();
        LOG_ERROR("subscription " << begin->subscription << ": " << ready.error);
      }
      sent = link.Send(MessageType::kTableReady, Encode(ready), kSendTimeout);
    } else if (auto* rb = std::get_if<ReconcileBegin>(&work)) {
      sent = link.Send(MessageType::kTableReady, Encode(reconciler.Begin(*rb)), kSendTimeout);
    } else if (auto* query = std::get_if<RangeQuery>(&work)) {
      sent = link.Send(MessageType::kRangeAnswer, Encode(reconciler.Answer(*query)), kSendTimeout);
    } else if (auto* repair = std::get_if<DecodedRepair>(&work)) {
      sent = link.Send(MessageType::kBatchAck,
                       Encode(reconciler.Repair(repair->message, repair->rows, repair->keys)),
                       kSendTimeout);
    } else if (auto* order = std::get_if<DeleteSubscription>(&work)) {
      // Suspended or terminated: delete what this agent holds for it, then confirm.
      FileReceiver* files = config_.shared_root.empty() ? nullptr : files_;
      sent = link.Send(MessageType::kDeletionDone,
                       Encode(DeleteHoldings(*order, *writer_, files, config_.shared_root)),
                       kSendTimeout);
    } else if (auto* put = std::get_if<FilePut>(&work)) {
      files_->Put(*put);
    } else if (auto* offer = std::get_if<FileMeta>(&work)) {
      sent = link.Send(MessageType::kFileResume, Encode(files_->Offer(*offer)), kSendTimeout);
    } else if (auto* chunk = std::get_if<ChunkWork>(&work)) {
      files_->Chunk(chunk->header,
                    std::string_view(chunk->frame).substr(chunk->data_at, chunk->data_size));
    } else if (auto* commit = std::get_if<FileCommit>(&work)) {
      files_->Commit(*commit);
    } else if (auto* copy = std::get_if<FileCopy>(&work)) {
      files_->Copy(*copy);
    } else if (auto* del = std::get_if<FileDelete>(&work)) {
      files_->Delete(*del);
    } else if (auto* abort = std::get_if<FileAbort>(&work)) {
      files_->Abort(*abort);
    } else if (auto* folder = std::get_if<FileFolder>(&work)) {
      files_->Folder(*folder);
    } else if (auto* sweep = std::get_if<FileSweep>(&work)) {
      files_->Sweep(*sweep);
    } else if (auto* file_run = std::get_if<FileRunBegin>(&work)) {
      files_->BeginRun(*file_run);
    } else if (std::holds_alternative<FilesReady>(work)) {
      // answers are sent below
    } else {
      auto& batch = std::get<DecodedBatch>(work);
      BatchAck ack;
      ack.subscription = batch.message.subscription;
      ack.seq = batch.message.seq;
      Status st = batch.rows.status();
      if (st.ok() && batch.rows->rows() != batch.message.rows) {
        st = DataLoss("batch says " + std::to_string(batch.message.rows) + " rows, holds " +
                      std::to_string(batch.rows->rows()));
      }
      if (st.ok()) {
        auto outcome = writer_->ApplyBatch(batch.message.subscription, batch.message.seq,
                                           batch.message.watermark, batch.rows.value());
        if (outcome.ok()) {
          ack.duplicate = outcome->duplicate;
          LOG_DEBUG("batch " << ack.seq << " of " << ack.subscription << ": "
                             << outcome->rows_written << " rows"
                             << (ack.duplicate ? " (duplicate, skipped)" : ""));
        } else {
          st = outcome.status();
        }
      }
      if (!st.ok()) {
        ack.code = st.code();
        ack.error = st.message();
        LOG_ERROR("refused batch " << ack.seq << " of " << ack.subscription << ": "
                                   << st.message());
      }
      sent = link.Send(MessageType::kBatchAck, Encode(ack), kSendTimeout);
    }
    if (sent.ok()) sent = send_file_results();
    if (!sent.ok()) {
      finish(sent);
      break;
    }
  }
  // Files of this session still being synced are recorded; transfers cut off keep their
  // part files for a resume.
  files_->SetWakeup(nullptr);
  files_->AbandonTransfers();
  files_->FinishPending();
  (void)files_->TakeResults(true);
  {
    std::lock_guard<std::mutex> lock(hb_mu);
    hb_stop = true;
  }
  hb_cv.notify_all();
  finish(Status::Ok());
  reader.join();
  heartbeat.join();
  std::lock_guard<std::mutex> lock(ended_mu);
  return ended;
}

}  // namespace dx::agent
