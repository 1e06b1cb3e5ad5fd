// SchedulerLink: the agent's side of the connection. Dials the scheduler (the front-end
// machine opens no inbound port), authenticates with its secret and reports its ledger, then
// receives table announcements and batches (written through TableWriter) and files (written
// through FileReceiver), and acknowledges only what is committed or durable. Reconnects with
// exponential back-off and full jitter until Stop().
//
// The link runs on one io thread (SchedulerConnection: reader, writer, heartbeats, watchdog);
// the thread that called Run() applies the work the reader decoded, in order, through a
// bounded queue, and queues its answers on the connection: no database or disk work on the io
// thread, no network wait in the apply thread.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>

#include "agent/agent_config.h"
#include "agent/file_receiver.h"
#include "agent/table_writer.h"
#include "common/tls_context.h"

namespace dx::agent {

class SchedulerConnection;
class WorkQueue;

class SchedulerLink {
 public:
  // With `tls`, the connection is verified and encrypted before the agent says who it is.
  SchedulerLink(const AgentConfig& config, TableWriter* writer, FileReceiver* files,
                std::shared_ptr<TlsContext> tls = nullptr);

  // Runs until Stop() is called. Returns the process exit code.
  int Run();
  // May be called from a signal-watching thread.
  void Stop();

 private:
  // Applies the session's work until the queue closes or an answer cannot be queued; returns
  // why it stopped (Ok when the queue closed).
  Status Apply(SchedulerConnection& connection, WorkQueue& queue);

  const AgentConfig& config_;
  TableWriter* writer_;
  FileReceiver* files_;
  std::shared_ptr<TlsContext> tls_;
  std::atomic<bool> stopping_{false};
  // The connection of the current attempt, for Stop().
  std::mutex current_mu_;
  std::shared_ptr<SchedulerConnection> current_;
};

}  // namespace dx::agent
