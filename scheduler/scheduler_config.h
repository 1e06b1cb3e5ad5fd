// SchedulerConfig: the settings of dx-scheduler, read from conf/scheduler.yaml.
#pragma once

#include <string>

#include "common/status.h"

namespace dx::scheduler {

// How file runs treat the provider's files (the `files` section).
struct FileOptions {
  // A file modified less than this long before it is read may still be being written within
  // one tick of the filesystem's clock, where a change would not show in its mtime: it is read
  // last in the run, once it is this old. Raise it for shares with coarse timestamps (FAT: 2 s).
  int settle_ms = 1000;
  // A file that failed waits retry_min_s before it is tried again, doubling up to
  // retry_max_s, unless it changes or an operator runs the subscription.
  int retry_min_s = 60;
  int retry_max_s = 3600;
  // A run that would delete more than this share (percent) of a subscription's delivered
  // files stops and asks for confirmation (dxctl run SUB --allow-mass-delete); 100 turns the
  // guard off. A subscription may set its own max_delete_percent.
  int max_delete_percent = 50;
};

// How exchange runs read, batch and send.
struct ExchangeOptions {
  int batch_rows = 5000;      // rows per batch
  int window = 64;            // most batches in flight per run (bytes: window_*_kb below)
  int compression_level = 1;  // zstd level (1 is fastest; limits.md: 2.5x on student rows)
  int safety_lag_s = 2;       // rows not older than source-now minus this wait for a later run
  int workers = 4;            // runs executing at once
  int retry_min_s = 1;        // first back-off after a failed run
  int retry_max_s = 60;       // back-off ceiling
  int ack_timeout_s = 120;    // longest wait for an agent's answer to one batch
  // The master key of hashed columns (脱敏): the content of masking.key_file, loaded by main
  // (never a YAML value). Empty: a subscription with a hashed column is refused.
  std::string masking_key;
  FileOptions files;  // file runs (read from the top-level `files` section)

  // Source connections kept open between runs (and open at once) per source.
  int source_connections = 4;
  int source_idle_s = 60;  // an idle source connection is closed after this
  // Bytes of batches in flight per run: twice the measured bandwidth-delay product, between
  // these bounds (`window` above is then only a ceiling on the count of batches).
  int window_min_kb = 1024;
  int window_max_kb = 65536;
  // Shared extraction: subscriptions of one catalog entry due together are served by one
  // source read, at most this many per read (a worker slot each).
  int shared_read_max = 256;
  // In a shared read, a subscriber whose agent has not acknowledged for this long while the
  // others could go on leaves the read and catches up on its own (its run ends "partial").
  int straggler_s = 10;
};

struct SchedulerConfig {
  std::string store_path = "/var/lib/dx/scheduler.db";  // SQLite store (WAL)
  std::string agents_listen = "127.0.0.1:7800";         // where agents dial in
  std::string admin_listen = "127.0.0.1:7880";          // admin API (dxctl, console)
  std::string admin_token;                              // operator token (required)
  std::string tls_cert;  // PEM certificate chain for the agent link; empty = plain TCP
  std::string tls_key;   // PEM private key of tls_cert
  int heartbeat_s = 5;   // heartbeat interval towards agents
  int tick_ms = 200;     // how often schedules are checked
  // The agent link (section `agents`): io threads, limits before authentication.
  int agents_io_threads = 2;
  int agents_max_connections = 20000;
  int agents_max_connections_per_address = 64;
  int agents_handshake_timeout_s = 10;
  int agents_last_seen_flush_s = 15;
  ExchangeOptions exchange;
  std::string log_level = "info";
  // Governance (the sharing workflow).
  std::string admin_organisation = "数据技术管理部门";  // the bootstrap admin's organisation
  // The bootstrap admin (operator token) publishes catalog entries and grants subscriptions
  // directly, without review or application (the first release's behaviour); false in
  // production once real users exist.
  bool bootstrap_direct = true;
  // HTTPS for the admin API: required when it listens beyond loopback.
  std::string admin_tls_cert;
  std::string admin_tls_key;
  // The audit chain's HMAC key, kept outside the store; created (0600) when missing. Default:
  // the store's path + ".audit-key".
  std::string audit_key_file;
  // The master key of hashed columns (masking: hash), kept outside the store like the audit
  // key; created (0600) when missing. Default: the store's path + ".masking-key".
  std::string masking_key_file;
};

// True for host names and addresses that only this machine reaches (127.0.0.0/8, ::1,
// localhost).
bool IsLoopbackHost(const std::string& host);

// Loads and validates the file; errors name the file, line and key.
Result<SchedulerConfig> LoadSchedulerConfig(const std::string& path);

}  // namespace dx::scheduler
