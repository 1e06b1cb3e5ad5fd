#include "scheduler/scheduler_config.h"

#include <fstream>

#include "common/config_value.h"
#include "common/host_port.h"
#include "common/log.h"

namespace dx::scheduler {
namespace {

Status GetIntField(const ConfigValue& v, const std::string& key, int* out, int min, int max) {
  int64_t x = *out;
  DX_RETURN_IF_ERROR(v.GetInt(key, &x, min, max));
  *out = static_cast<int>(x);
  return Status::Ok();
}

Status CheckAddress(const ConfigValue& parent, const std::string& key, const std::string& text) {
  std::string host;
  int port = 0;
  Status st = ParseHostPort(text, &host, &port);
  return st.ok() ? st : parent[key].Error(st.message());
}

}  // namespace

bool IsLoopbackHost(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

Result<SchedulerConfig> LoadSchedulerConfig(const std::string& path) {
  DX_ASSIGN_OR_RETURN(auto docs, ConfigValue::LoadFile(path));
  if (docs.size() != 1 || !docs[0].IsMap()) {
    return InvalidArgument(path + ":1: expected one YAML mapping");
  }
  const ConfigValue& root = docs[0];
  DX_RETURN_IF_ERROR(root.CheckKeys({"store", "listen", "tls", "admin", "heartbeat_s", "tick_ms",
                                     "exchange", "log", "audit", "masking", "files", "agents"}));
  SchedulerConfig c;
  ConfigValue store = root["store"];
  DX_RETURN_IF_ERROR(store.CheckKeys({"path"}));
  DX_RETURN_IF_ERROR(store.GetString("path", &c.store_path));

  ConfigValue listen = root["listen"];
  DX_RETURN_IF_ERROR(listen.CheckKeys({"agents", "admin"}));
  DX_RETURN_IF_ERROR(listen.GetString("agents", &c.agents_listen));
  DX_RETURN_IF_ERROR(CheckAddress(listen, "agents", c.agents_listen));
  DX_RETURN_IF_ERROR(listen.GetString("admin", &c.admin_listen));
  DX_RETURN_IF_ERROR(CheckAddress(listen, "admin", c.admin_listen));

  ConfigValue tls = root["tls"];
  DX_RETURN_IF_ERROR(tls.CheckKeys({"cert", "key"}));
  DX_RETURN_IF_ERROR(tls.GetString("cert", &c.tls_cert));
  DX_RETURN_IF_ERROR(tls.GetString("key", &c.tls_key));
  if (c.tls_cert.empty() != c.tls_key.empty()) {
    return tls.Error("give both cert and key (or neither, for plain TCP)");
  }
  ConfigValue admin = root["admin"];
  DX_RETURN_IF_ERROR(
      admin.CheckKeys({"token", "token_file", "organisation", "bootstrap_direct", "tls"}));
  DX_RETURN_IF_ERROR(admin.GetString("token", &c.admin_token));
  std::string token_file;
  DX_RETURN_IF_ERROR(admin.GetString("token_file", &token_file));
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    if (!in) return admin["token_file"].Error("cannot read '" + token_file + "'");
    std::getline(in, c.admin_token);
  }
  if (c.admin_token.size() < 16) {
    return admin["token"].Error("an operator token of at least 16 characters is required");
  }
  DX_RETURN_IF_ERROR(admin.GetString("organisation", &c.admin_organisation));
  if (c.admin_organisation.empty()) return admin["organisation"].Error("may not be empty");
  DX_RETURN_IF_ERROR(admin.GetBool("bootstrap_direct", &c.bootstrap_direct));
  ConfigValue admin_tls = admin["tls"];
  DX_RETURN_IF_ERROR(admin_tls.CheckKeys({"cert", "key"}));
  DX_RETURN_IF_ERROR(admin_tls.GetString("cert", &c.admin_tls_cert));
  DX_RETURN_IF_ERROR(admin_tls.GetString("key", &c.admin_tls_key));
  if (c.admin_tls_cert.empty() != c.admin_tls_key.empty()) {
    return admin_tls.Error("give both cert and key (or neither, for loopback only)");
  }
  {
    std::string host;
    int port = 0;
    (void)ParseHostPort(c.admin_listen, &host, &port);
    if (!IsLoopbackHost(host) && c.admin_tls_cert.empty()) {
      return listen["admin"].Error(
          "'" + c.admin_listen +
          "' is reachable beyond this machine: the admin API carries tokens, so it needs HTTPS "
          "(admin.tls.cert and admin.tls.key), or listen on 127.0.0.1");
    }
  }
  ConfigValue audit = root["audit"];
  DX_RETURN_IF_ERROR(audit.CheckKeys({"key_file"}));
  DX_RETURN_IF_ERROR(audit.GetString("key_file", &c.audit_key_file));
  if (c.audit_key_file.empty()) c.audit_key_file = c.store_path + ".audit-key";
  ConfigValue masking = root["masking"];
  DX_RETURN_IF_ERROR(masking.CheckKeys({"key_file"}));
  DX_RETURN_IF_ERROR(masking.GetString("key_file", &c.masking_key_file));
  if (c.masking_key_file.empty()) c.masking_key_file = c.store_path + ".masking-key";

  DX_RETURN_IF_ERROR(GetIntField(root, "heartbeat_s", &c.heartbeat_s, 1, 300));
  DX_RETURN_IF_ERROR(GetIntField(root, "tick_ms", &c.tick_ms, 10, 60000));
  ConfigValue agents = root["agents"];
  DX_RETURN_IF_ERROR(
      agents.CheckKeys({"io_threads", "max_connections", "max_connections_per_address",
                        "handshake_timeout_s", "last_seen_flush_s"}));
  DX_RETURN_IF_ERROR(GetIntField(agents, "io_threads", &c.agents_io_threads, 1, 64));
  DX_RETURN_IF_ERROR(GetIntField(agents, "max_connections", &c.agents_max_connections, 1, 1000000));
  DX_RETURN_IF_ERROR(GetIntField(agents, "max_connections_per_address",
                                 &c.agents_max_connections_per_address, 1, 1000000));
  DX_RETURN_IF_ERROR(
      GetIntField(agents, "handshake_timeout_s", &c.agents_handshake_timeout_s, 1, 600));
  DX_RETURN_IF_ERROR(
      GetIntField(agents, "last_seen_flush_s", &c.agents_last_seen_flush_s, 1, 3600));

  ConfigValue ex = root["exchange"];
  DX_RETURN_IF_ERROR(ex.CheckKeys({"batch_rows", "window", "compression_level", "safety_lag_s",
                                   "workers", "retry_min_s", "retry_max_s", "ack_timeout_s",
                                   "source_connections", "source_idle_s", "window_min_kb",
                                   "window_max_kb", "shared_read_max", "straggler_s"}));
  ExchangeOptions& e = c.exchange;
  DX_RETURN_IF_ERROR(GetIntField(ex, "batch_rows", &e.batch_rows, 1, 1000000));
  DX_RETURN_IF_ERROR(GetIntField(ex, "window", &e.window, 1, 64));
  DX_RETURN_IF_ERROR(GetIntField(ex, "compression_level", &e.compression_level, 1, 19));
  DX_RETURN_IF_ERROR(GetIntField(ex, "safety_lag_s", &e.safety_lag_s, 0, 86400));
  DX_RETURN_IF_ERROR(GetIntField(ex, "workers", &e.workers, 1, 256));
  DX_RETURN_IF_ERROR(GetIntField(ex, "retry_min_s", &e.retry_min_s, 1, 3600));
  DX_RETURN_IF_ERROR(GetIntField(ex, "retry_max_s", &e.retry_max_s, e.retry_min_s, 86400));
  DX_RETURN_IF_ERROR(GetIntField(ex, "ack_timeout_s", &e.ack_timeout_s, 1, 3600));
  DX_RETURN_IF_ERROR(GetIntField(ex, "source_connections", &e.source_connections, 1, 256));
  DX_RETURN_IF_ERROR(GetIntField(ex, "source_idle_s", &e.source_idle_s, 1, 86400));
  DX_RETURN_IF_ERROR(GetIntField(ex, "window_min_kb", &e.window_min_kb, 16, 1048576));
  DX_RETURN_IF_ERROR(GetIntField(ex, "window_max_kb", &e.window_max_kb, e.window_min_kb, 4194304));
  DX_RETURN_IF_ERROR(GetIntField(ex, "shared_read_max", &e.shared_read_max, 1, 4096));
  DX_RETURN_IF_ERROR(GetIntField(ex, "straggler_s", &e.straggler_s, 1, 3600));

  ConfigValue files = root["files"];
  DX_RETURN_IF_ERROR(
      files.CheckKeys({"settle_ms", "retry_min_s", "retry_max_s", "max_delete_percent"}));
  FileOptions& f = c.exchange.files;
  DX_RETURN_IF_ERROR(GetIntField(files, "settle_ms", &f.settle_ms, 0, 60000));
  DX_RETURN_IF_ERROR(GetIntField(files, "retry_min_s", &f.retry_min_s, 1, 86400));
  DX_RETURN_IF_ERROR(GetIntField(files, "retry_max_s", &f.retry_max_s, f.retry_min_s, 604800));
  DX_RETURN_IF_ERROR(GetIntField(files, "max_delete_percent", &f.max_delete_percent, 0, 100));

  ConfigValue log = root["log"];
  DX_RETURN_IF_ERROR(log.CheckKeys({"level"}));
  DX_RETURN_IF_ERROR(log.GetString("level", &c.log_level));
  LogLevel level;
  if (!ParseLogLevel(c.log_level, &level)) {
    return log["level"].Error("expected debug, info, warn or error");
  }
  return c;
}

}  // namespace dx::scheduler
