// dx-scheduler: the central daemon (catalog, subscriptions, schedules, exchange, admin API).
#include <malloc.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <fstream>

#include "common/clock.h"
#include "common/log.h"
#include "scheduler/access/audit_key.h"
#include "scheduler/admin_server.h"
#include "scheduler/agent_hub.h"
#include "scheduler/dispatcher.h"
#include "scheduler/scheduler_config.h"
#include "scheduler/sqlite_store.h"

int main(int argc, char** argv) {
  // Files travel in 1 MiB buffers: freed ones are kept for reuse rather than handed back to
  // the kernel and faulted in again (zeroed) for every chunk.
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  CLI::App app{"dx-scheduler: the central scheduler of DX"};
  std::string config_path = "/etc/dx/scheduler.yaml";
  std::string ports_file;
  app.add_option("-c,--config", config_path, "scheduler config file")->capture_default_str();
  app.add_option("--ports-file", ports_file, "write the bound ports here once listening");
  CLI11_PARSE(app, argc, argv);

  auto config = dx::scheduler::LoadSchedulerConfig(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "dx-scheduler: %s\n", config.status().message().c_str());
    return 2;
  }
  dx::LogLevel level;
  dx::ParseLogLevel(config->log_level, &level);
  dx::SetLogLevel(level);
  dx::SetLogTag("scheduler");

  // A peer that vanishes must surface as EPIPE on the write, not kill the process (OpenSSL
  // writes to sockets without MSG_NOSIGNAL).
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto store = dx::scheduler::SqliteStore::Open(config->store_path);
  if (!store.ok()) {
    std::fprintf(stderr, "dx-scheduler: %s\n", store.status().message().c_str());
    return 2;
  }
  // The audit chain is keyed with a key kept outside the store.
  auto audit_key = dx::scheduler::LoadOrCreateAuditKey(config->audit_key_file);
  if (!audit_key.ok()) {
    std::fprintf(stderr, "dx-scheduler: %s: key 'audit.key_file': %s\n", config_path.c_str(),
                 audit_key.status().message().c_str());
    return 2;
  }
  (*store)->SetAuditKey(audit_key.value(), config->audit_key_file + ".head");
  // Hashed columns (脱敏) are keyed with a key of their own, also outside the store.
  auto masking_key = dx::scheduler::LoadOrCreateKeyFile(config->masking_key_file, "masking key");
  if (!masking_key.ok()) {
    std::fprintf(stderr, "dx-scheduler: %s: key 'masking.key_file': %s\n", config_path.c_str(),
                 masking_key.status().message().c_str());
    return 2;
  }
  config->exchange.masking_key = masking_key.value();
  dx::SystemClock clock;
  // A run the last stop interrupted is retried as soon as its agent is back (a resync
  // resumes its load), so an operator waiting for it (dxctl run --wait) sees it finish.
  if (auto subs = (*store)->ListSubscriptions(); subs.ok()) {
    for (const auto& sub : subs.value()) {
      auto last = (*store)->LastRun(sub.name);
      if (last.ok() && last.value() && last.value()->status == "running") {
        (void)(*store)->SetSchedule(sub.name, dx::ToUnixSeconds(clock.Now()),
                                    std::max(sub.failures, 1));
      }
    }
  }
  auto interrupted = (*store)->MarkInterruptedRuns(dx::ToUnixMillis(clock.Now()));
  if (interrupted.ok() && interrupted.value() > 0) {
    LOG_WARN(interrupted.value() << " run(s) were interrupted by the last stop; they resume");
  }

  std::shared_ptr<dx::TlsContext> tls;
  if (!config->tls_cert.empty()) {
    auto ctx = dx::TlsContext::Server(config->tls_cert, config->tls_key);
    if (!ctx.ok()) {
      std::fprintf(stderr, "dx-scheduler: %s: %s\n", config_path.c_str(),
                   ctx.status().message().c_str());
      return 2;
    }
    tls = ctx.value();
  }
  dx::scheduler::AgentHubOptions hub_options;
  hub_options.heartbeat_s = config->heartbeat_s;
  hub_options.io_threads = config->agents_io_threads;
  hub_options.max_connections = config->agents_max_connections;
  hub_options.max_connections_per_address = config->agents_max_connections_per_address;
  hub_options.handshake_timeout_s = config->agents_handshake_timeout_s;
  hub_options.last_seen_flush_s = config->agents_last_seen_flush_s;
  // One io_context and a few workers for the agent port and the admin API together: the
  // threads do not depend on the number of agents or callers.
  const int kWorkerThreads = 2;  // secret checks and store writes of the agent link
  dx::scheduler::IoRuntime runtime(config->agents_io_threads, kWorkerThreads);
  dx::scheduler::AgentHub hub(**store, clock, hub_options, runtime, tls);
  dx::scheduler::Dispatcher dispatcher(**store, hub, config.value(), clock);
  dx::scheduler::GovernanceOptions governance;
  governance.bootstrap_organisation = config->admin_organisation;
  governance.bootstrap_direct = config->bootstrap_direct;
  if (config->bootstrap_direct) {
    LOG_WARN(
        "admin.bootstrap_direct is on: the operator token publishes catalog entries and "
        "grants subscriptions without review or application");
  }
  dx::scheduler::AdminApi api(**store, hub, dispatcher, clock, config->admin_token, governance);
  dx::scheduler::AdminServer admin(api, runtime);
  if (!config->admin_tls_cert.empty()) {
    dx::Status st = admin.UseTls(config->admin_tls_cert, config->admin_tls_key);
    if (!st.ok()) {
      std::fprintf(stderr, "dx-scheduler: %s: %s\n", config_path.c_str(), st.message().c_str());
      return 2;
    }
  }
  runtime.Start();
  for (dx::Status st : {hub.Start(config->agents_listen), admin.Start(config->admin_listen)}) {
    if (!st.ok()) {
      LOG_ERROR(st.message());
      admin.Stop();
      hub.Stop();
      runtime.Stop();
      return 1;
    }
  }
  if (!ports_file.empty()) {
    std::ofstream(ports_file + ".tmp")
        << "agents=" << hub.port() << "\nadmin=" << admin.port() << "\n";
    std::rename((ports_file + ".tmp").c_str(), ports_file.c_str());
  }
  dispatcher.Start();
  LOG_INFO("scheduler ready (store " << config->store_path << ")");

  // Waits for a signal; meanwhile checks that the store's path still names the open file (a
  // deleted or replaced store would swallow every later write).
  int sig = 0;
  int exit_code = 0;
  while (true) {
    timespec period{2, 0};
    sig = sigtimedwait(&signals, nullptr, &period);
    if (sig > 0) {
      LOG_INFO("signal " << sig << ": stopping");
      break;
    }
    if (dx::Status st = (*store)->CheckFileIdentity(); !st.ok()) {
      LOG_ERROR(st.message() << "; stopping (restore the store and start the scheduler again)");
      std::fprintf(stderr, "dx-scheduler: %s\n", st.message().c_str());
      exit_code = 3;
      break;
    }
  }
  // Close agent sessions first: runs waiting for an agent's answer then end at once, and the
  // dispatcher can wait for them. What the agents committed is in their ledgers.
  admin.Stop();
  hub.Stop();
  runtime.Stop();
  dispatcher.Stop();
  return exit_code;
}
