// dx-agent: the daemon on a consumer's front-end machine (前置机).
#include <malloc.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <thread>

#include "agent/agent_config.h"
#include "agent/file_receiver.h"
#include "agent/scheduler_link.h"
#include "agent/shared_root.h"
#include "agent/table_writer.h"
#include "common/log.h"

int main(int argc, char** argv) {
  // Files travel in 1 MiB buffers: freed ones are kept for reuse rather than handed back to
  // the kernel and faulted in again (zeroed) for every chunk.
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  CLI::App app{"dx-agent: receives subscribed data from dx-scheduler into the local database"};
  std::string config_path = "/etc/dx/agent.yaml";
  app.add_option("-c,--config", config_path, "agent config file")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto config = dx::agent::LoadAgentConfig(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "dx-agent: %s\n", config.status().message().c_str());
    return 2;
  }
  dx::LogLevel level;
  dx::ParseLogLevel(config->log_level, &level);
  dx::SetLogLevel(level);
  dx::SetLogTag("agent " + config->name);

  // A peer that vanishes must surface as EPIPE on the write, not kill the process (OpenSSL
  // writes to sockets without MSG_NOSIGNAL).
  std::signal(SIGPIPE, SIG_IGN);
  // Block termination signals here; a watcher thread turns them into an orderly stop.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::atomic<bool> stopping{false};
  std::atomic<dx::agent::SchedulerLink*> running_link{nullptr};
  std::thread watcher([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    LOG_INFO("signal " << sig << ": stopping");
    stopping = true;
    if (auto* link = running_link.load()) link->Stop();
  });
  watcher.detach();

  // The shared root is checked first, so that a root the agent cannot use is said at once.
  std::optional<unsigned> file_mode;
  if (!config->keep_file_mode) file_mode = config->file_mode;
  if (!config->shared_root.empty()) {
    dx::Status root = dx::agent::PrepareSharedRoot(config->shared_root, file_mode);
    if (!root.ok()) {
      std::fprintf(stderr, "dx-agent: %s: %s\n", config_path.c_str(), root.message().c_str());
      return 2;
    }
  }
  // Part files and folders of files being made durable are held open: allow plenty.
  rlimit files_limit{};
  if (::getrlimit(RLIMIT_NOFILE, &files_limit) == 0 &&
      files_limit.rlim_cur < files_limit.rlim_max) {
    files_limit.rlim_cur = std::min<rlim_t>(files_limit.rlim_max, 65536);
    (void)::setrlimit(RLIMIT_NOFILE, &files_limit);
  }

  auto writer = dx::agent::TableWriter::OpenWhenReachable(config->target_connection, config->target,
                                                          config->reconnect_min_ms,
                                                          config->reconnect_max_ms, stopping);
  if (!writer.ok()) {
    LOG_ERROR("cannot open the local database: " << writer.status().message());
    return writer.status().code() == dx::StatusCode::kInvalidArgument ? 2 : 1;
  }
  if (stopping) return 0;
  if (config->shared_root.empty()) {
    LOG_INFO("no files.shared_root: this agent takes tables only and refuses file subscriptions");
  }
  dx::agent::TableWriter* table_writer = writer->get();
  dx::agent::FileReceiver files(config->shared_root, file_mode,
                                [table_writer](const std::vector<dx::agent::ReceivedFile>& f) {
                                  return table_writer->RecordFiles(f);
                                });
  std::shared_ptr<dx::TlsContext> tls;
  if (!config->tls_ca.empty()) {
    auto ctx = dx::TlsContext::Client(config->tls_ca, config->tls_server_name);
    if (!ctx.ok()) {
      std::fprintf(stderr, "dx-agent: %s: %s\n", config_path.c_str(),
                   ctx.status().message().c_str());
      return 2;
    }
    tls = ctx.value();
  }
  dx::agent::SchedulerLink link(config.value(), table_writer, &files, tls);
  running_link = &link;
  if (stopping) link.Stop();
  return link.Run();
}
