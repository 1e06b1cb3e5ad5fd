// AgentConfig: the settings of one dx-agent, read from conf/agent.yaml.
#pragma once

#include <string>

#include "agent/table_writer.h"
#include "common/status.h"

namespace dx::agent {

struct AgentConfig {
  std::string name;            // agent name registered at the scheduler (required)
  std::string secret;          // shared secret; or read from secret_file (required)
  std::string scheduler_host;  // from "scheduler: host:port" (required)
  int scheduler_port = 0;
  std::string target_connection;  // ODBC connection string of the local database (required)
  // target.name_case, target.lock_timeout_ms, target.lock_retry_ms, target.row_check_s
  // (see conf/agent.yaml); name_case unset = the target DBMS's natural case.
  TableWriterOptions target;
  std::string tls_ca;            // PEM CA file to verify the scheduler; empty = plain TCP
  std::string tls_server_name;   // name the scheduler's certificate carries (default: its host)
  int reconnect_min_ms = 200;    // first back-off after a lost connection
  int reconnect_max_ms = 30000;  // back-off ceiling
  int queue_batches = 8;         // decoded batches/chunks buffered between receiving and writing
  // Where subscribed files are delivered (files.shared_root). Empty (no files section): this
  // agent takes tables only and refuses file subscriptions.
  std::string shared_root;
  unsigned file_mode = 0640;       // mode of delivered files
  bool keep_file_mode = false;     // files.mode: keep — no chmod (FAT, SMB: modes do not stick)
  std::string log_level = "info";  // debug | info | warn | error
};

// Loads and validates the file; errors name the file, line and key. A SQLite target whose
// directory does not exist is refused here (the driver would only say "connect failed").
Result<AgentConfig> LoadAgentConfig(const std::string& path);

// The database file of a SQLite connection string ("Driver=SQLite3;Database=/x/y.db"); empty
// when the string names another driver or a DSN.
std::string SqliteDatabaseOf(const std::string& connection_string);

}  // namespace dx::agent
