// SchedulerLink: the agent's side of the connection. Dials the scheduler (the front-end
// machine opens no inbound port), authenticates with its secret and reports its ledger, then
// receives table announcements and batches (written through TableWriter) and files (written
// through FileReceiver), and acknowledges only what is committed or durable. Reconnects with
// exponential back-off and full jitter until Stop().
#pragma once

#include <atomic>
#include <memory>
#include <mutex>

#include "agent/agent_config.h"
#include "agent/file_receiver.h"
#include "agent/table_writer.h"
#include "common/frame_link.h"

namespace dx::agent {

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
  // One connected session; returns why it ended.
  Status Serve(FrameLink& link, uint32_t heartbeat_s);
  Status Handshake(FrameLink& link, uint32_t* heartbeat_s);

  const AgentConfig& config_;
  TableWriter* writer_;
  FileReceiver* files_;
  std::shared_ptr<TlsContext> tls_;
  std::atomic<bool> stopping_{false};
  // The connected link, for Stop(): read and cleared under current_mu_ so that Stop() never
  // touches a link Run() is destroying.
  std::mutex current_mu_;
  FrameLink* current_ = nullptr;
};

}  // namespace dx::agent
