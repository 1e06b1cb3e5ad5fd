#include "agent/scheduler_link.h"

#include <openssl/ssl.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <variant>

#include "agent/scheduler_connection.h"
#include "agent/subscription_deletion.h"
#include "agent/table_reconciler.h"
#include "common/log.h"
#include "common/wire.h"

namespace dx::agent {
namespace {

namespace asio = boost::asio;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr size_t kMaxBatchBytes = 256u << 20;
constexpr size_t kMaxHelloReplyBytes = 64u << 10;

// A batch decoded by the reader, ready for the writer.
struct DecodedBatch {
  BatchMessage message;
  Result<RowBatch> rows = RowBatch();
};

// A repair decoded by the reader (reconciliation).
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

// A message that is work as it decodes.
template <typename T>
Result<std::optional<Work>> DecodeSomeWork(std::string_view payload) {
  Result<Work> work = DecodeAs<T>(payload);
  if (!work.ok()) return work.status();
  return std::optional<Work>(std::move(work).value());
}

// One frame decoded into work for the apply thread (nothing for a heartbeat). Batches and
// repairs are decompressed here, within kMaxBatchBytes, so that decoding overlaps applying.
Result<std::optional<Work>> DecodeWork(MessageType type, std::string payload) {
  switch (type) {
    case MessageType::kHeartbeat:
      return std::optional<Work>();
    case MessageType::kTableBegin:
      return DecodeSomeWork<TableBegin>(payload);
    case MessageType::kBatch: {
      DecodedBatch batch;
      Status st = Decode(payload, &batch.message);
      if (!st.ok()) return st;
      auto raw = Decompress(batch.message.payload, kMaxBatchBytes);
      batch.rows = raw.ok() ? RowBatch::Decode(raw.value()) : Result<RowBatch>(raw.status());
      batch.message.payload.clear();
      return std::optional<Work>(std::move(batch));
    }
    case MessageType::kReconcileBegin:
      return DecodeSomeWork<ReconcileBegin>(payload);
    case MessageType::kRangeQuery:
      return DecodeSomeWork<RangeQuery>(payload);
    case MessageType::kRepairBatch: {
      DecodedRepair repair;
      Status st = Decode(payload, &repair.message);
      if (!st.ok()) return st;
      for (auto [packed, out] : {std::pair{&repair.message.rows, &repair.rows},
                                 std::pair{&repair.message.keys, &repair.keys}}) {
        auto raw = Decompress(*packed, kMaxBatchBytes);
        *out = raw.ok() ? RowBatch::Decode(raw.value()) : Result<RowBatch>(raw.status());
        packed->clear();
      }
      return std::optional<Work>(std::move(repair));
    }
    case MessageType::kDeleteSubscription:
      return DecodeSomeWork<DeleteSubscription>(payload);
    case MessageType::kFileChunk: {
      ChunkWork chunk;
      chunk.frame = std::move(payload);
      std::string_view data;
      Status st = DecodeChunkView(chunk.frame, &chunk.header, &data);
      if (!st.ok()) return st;
      chunk.data_at = static_cast<size_t>(data.data() - chunk.frame.data());
      chunk.data_size = data.size();
      return std::optional<Work>(std::move(chunk));
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
      Result<Work> work = DecodeFileWork(type, payload);
      if (!work.ok()) return work.status();
      return std::optional<Work>(std::move(work).value());
    }
    default:
      return DataLoss("unexpected message type " + std::to_string(static_cast<int>(type)));
  }
}

}  // namespace

// A bounded hand-off from the reader (io thread) to the apply thread. The reader never blocks:
// when the queue is full it pauses, and the Pop that makes room calls `on_room`.
class WorkQueue {
 public:
  WorkQueue(size_t capacity, std::function<void()> on_room)
      : capacity_(capacity), on_room_(std::move(on_room)) {}
  // Takes `work` unless the queue is full or closed (false; when full, on_room follows).
  bool TryPush(Work& work) {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return false;
    if (items_.size() >= capacity_) {
      reader_waiting_ = true;
      return false;
    }
    items_.push_back(std::move(work));
    cv_.notify_all();
    return true;
  }
  // Blocks while empty; false when closed and drained.
  bool Pop(Work* work) {
    bool room = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return closed_ || !items_.empty(); });
      if (items_.empty()) return false;
      *work = std::move(items_.front());
      items_.pop_front();
      if (std::holds_alternative<FilesReady>(*work)) files_ready_queued_ = false;
      room = reader_waiting_;
      reader_waiting_ = false;
    }
    if (room) on_room_();
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
  std::function<void()> on_room_;
  bool closed_ = false;
  bool files_ready_queued_ = false;
  bool reader_waiting_ = false;
};

namespace {

// One attempt's state, shared by the io thread's coroutine and the thread in Run().
struct Attempt {
  Attempt(size_t capacity, const std::shared_ptr<SchedulerConnection>& connection,
          const std::atomic<bool>* stopping_flag)
      : queue(capacity, [connection] { connection->Wake(); }), stopping(stopping_flag) {}
  WorkQueue queue;
  const std::atomic<bool>* stopping;
  std::promise<Status> connected;  // the hello's outcome
  std::promise<Status> ended;      // why the link ended; the coroutine's last act
  std::string session_token;       // a new credential in the hello reply (set before `connected`)
};

asio::awaitable<Status> SayHello(SchedulerConnection& connection, const Hello& hello,
                                 uint32_t* heartbeat_s, std::string* session_token) {
  connection.ArmDeadline(seconds(30), "no hello reply from " + connection.peer() + " in 30 s");
  Status st = connection.Send(MessageType::kHello, Encode(hello));
  MessageType type;
  std::string payload;
  if (st.ok()) st = co_await connection.ReadFrame(kMaxHelloReplyBytes, &type, &payload);
  if (!st.ok()) co_return st;
  connection.DisarmDeadline();
  if (type != MessageType::kHelloReply) co_return DataLoss("expected a hello reply");
  HelloReply reply;
  ByteReader peek(payload);
  uint64_t version = 0;
  st = peek.GetVarint(&version);
  if (!st.ok()) co_return st;
  if (version != kProtocolVersion) {
    co_return PermissionDenied("scheduler speaks protocol version " + std::to_string(version) +
                               ", this agent speaks " + std::to_string(kProtocolVersion));
  }
  st = Decode(payload, &reply);
  if (!st.ok()) co_return st;
  if (!reply.accepted) co_return PermissionDenied(reply.reason);
  // From the scheduler; bounded so that three of them fit every duration type used with it.
  *heartbeat_s = std::clamp<uint32_t>(reply.heartbeat_s, 1, 3600);
  *session_token = std::move(reply.session_token);
  co_return Status::Ok();
}

// The reader: decodes frames and hands their work over; pauses while the queue is full.
asio::awaitable<Status> ReadWork(SchedulerConnection& connection, WorkQueue& queue) {
  while (true) {
    MessageType type;
    std::string payload;
    Status st = co_await connection.ReadFrame(kMaxFrameBytes, &type, &payload);
    if (!st.ok()) co_return st;
    Result<std::optional<Work>> work = DecodeWork(type, std::move(payload));
    if (!work.ok()) co_return work.status();
    if (!work->has_value()) continue;
    while (!queue.TryPush(**work)) {
      co_await connection.Pause();
      if (connection.closed()) co_return connection.why();
    }
  }
}

// One attempt on the io thread: connect, TLS, hello, then the reader until the link ends.
asio::awaitable<void> Converse(std::shared_ptr<SchedulerConnection> connection, Attempt* attempt,
                               Hello hello, std::string host, int port) {
  Status st = co_await connection->Connect(host, port, seconds(5), seconds(10));
  uint32_t heartbeat_s = 5;
  if (st.ok()) st = co_await SayHello(*connection, hello, &heartbeat_s, &attempt->session_token);
  const bool connected = st.ok();
  if (connected) {
    connection->StartHeartbeats(seconds(heartbeat_s));
    attempt->connected.set_value(Status::Ok());
    st = co_await ReadWork(*connection, attempt->queue);
  }
  connection->CloseNow(st);
  attempt->queue.Close();
  if (connected && !*attempt->stopping) {
    // Said now: the apply thread may still be busy with the local database for a while.
    LOG_WARN("link to scheduler " << connection->peer()
                                  << " lost: " << connection->why().message());
  }
  if (!connected) attempt->connected.set_value(connection->why());
  attempt->ended.set_value(connection->why());
}

}  // namespace

SchedulerLink::SchedulerLink(const AgentConfig& config, TableWriter* writer, FileReceiver* files,
                             std::shared_ptr<TlsContext> tls)
    : config_(config), writer_(writer), files_(files), tls_(std::move(tls)) {}

void SchedulerLink::Stop() {
  stopping_ = true;
  std::lock_guard<std::mutex> lock(current_mu_);
  if (current_ != nullptr) current_->Close(Unavailable("the agent is stopping"));
}

int SchedulerLink::Run() {
  // One io thread carries the link; this thread applies what it receives.
  asio::io_context io(1);
  auto work_guard = asio::make_work_guard(io);
  std::thread io_thread([&io] { io.run(); });
  std::optional<asio::ssl::context> tls;
  if (tls_) {
    SSL_CTX* native = static_cast<SSL_CTX*>(tls_->native());
    SSL_CTX_up_ref(native);  // the Asio context frees its reference
    tls.emplace(native);
  }
  int backoff_ms = config_.reconnect_min_ms;
  std::mt19937 rng(std::random_device{}());
  // The scheduler's session credential from the last accepted login (memory only: a restarted
  // agent logs in with its secret once and gets a new one).
  std::string session_token;
  while (!stopping_) {
    auto connection = std::make_shared<SchedulerConnection>(io, tls ? &*tls : nullptr,
                                                            tls_ ? tls_->server_name() : "");
    {
      std::lock_guard<std::mutex> lock(current_mu_);
      current_ = connection;
      if (stopping_) connection->Close(Unavailable("the agent is stopping"));
    }
    Hello hello;
    hello.agent = config_.name;
    hello.secret = config_.secret;
    hello.agent_version = "0.1.0";
    hello.target_dbms = DbmsLabel(writer_->dbms());
    hello.ledger = writer_->Ledger();
    hello.session_token = session_token;
    Attempt attempt(static_cast<size_t>(config_.queue_batches), connection, &stopping_);
    std::future<Status> connected = attempt.connected.get_future();
    std::future<Status> ended_future = attempt.ended.get_future();
    asio::co_spawn(io,
                   Converse(connection, &attempt, std::move(hello), config_.scheduler_host,
                            config_.scheduler_port),
                   &SchedulerConnection::Rethrow);
    if (connected.get().ok()) {
      if (!attempt.session_token.empty()) session_token = attempt.session_token;
      LOG_INFO("connected to scheduler " << connection->peer() << " as " << config_.name);
      backoff_ms = config_.reconnect_min_ms;
      Status applied = Apply(*connection, attempt.queue);
      connection->Close(applied.ok() ? Unavailable("session ended") : applied);
    }
    Status ended = ended_future.get();  // the io thread is done with `attempt`
    {
      std::lock_guard<std::mutex> lock(current_mu_);
      current_.reset();
    }
    if (stopping_) break;
    if (ended.code() == StatusCode::kPermissionDenied) {
      // The session credential is kept: most refusals are passing ("already connected" after
      // a blip, "busy"), and a void one only makes the scheduler check the secret instead.
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
  work_guard.reset();
  io_thread.join();
  LOG_INFO("agent stopped");
  return 0;
}

Status SchedulerLink::Apply(SchedulerConnection& connection, WorkQueue& queue) {
  Status why;
  Work work;
  TableReconciler reconciler(writer_);  // state of reconciliations under way in this session
  // Files are made durable by the receiver's syncing thread; their answers go out as soon as
  // they are recorded (FilesReady wakes this thread when it is idle).
  files_->SetWakeup([&queue] { queue.NoteFilesReady(); });
  auto send_file_results = [&]() -> Status {
    for (const FileResult& r : files_->TakeResults(queue.Empty())) {
      DX_RETURN_IF_ERROR(connection.Send(MessageType::kFileResult, Encode(r)));
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
      sent = connection.Send(MessageType::kTableReady, Encode(ready));
    } else if (auto* rb = std::get_if<ReconcileBegin>(&work)) {
      sent = connection.Send(MessageType::kTableReady, Encode(reconciler.Begin(*rb)));
    } else if (auto* query = std::get_if<RangeQuery>(&work)) {
      sent = connection.Send(MessageType::kRangeAnswer, Encode(reconciler.Answer(*query)));
    } else if (auto* repair = std::get_if<DecodedRepair>(&work)) {
      sent =
          connection.Send(MessageType::kBatchAck,
                          Encode(reconciler.Repair(repair->message, repair->rows, repair->keys)));
    } else if (auto* order = std::get_if<DeleteSubscription>(&work)) {
      // Suspended or terminated: delete what this agent holds for it, then confirm.
      FileReceiver* files = config_.shared_root.empty() ? nullptr : files_;
      sent = connection.Send(MessageType::kDeletionDone,
                             Encode(DeleteHoldings(*order, *writer_, files, config_.shared_root)));
    } else if (auto* put = std::get_if<FilePut>(&work)) {
      files_->Put(*put);
    } else if (auto* offer = std::get_if<FileMeta>(&work)) {
      sent = connection.Send(MessageType::kFileResume, Encode(files_->Offer(*offer)));
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
      sent = connection.Send(MessageType::kBatchAck, Encode(ack));
    }
    if (sent.ok()) sent = send_file_results();
    if (!sent.ok()) {
      why = sent;
      queue.Close();
      break;
    }
  }
  // Files of this session still being synced are recorded; transfers cut off keep their
  // part files for a resume.
  files_->SetWakeup(nullptr);
  files_->AbandonTransfers();
  files_->FinishPending();
  (void)files_->TakeResults(true);
  return why;
}

}  // namespace dx::agent
