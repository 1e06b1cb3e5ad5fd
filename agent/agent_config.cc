#include "agent/agent_config.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/ascii.h"
#include "common/config_value.h"
#include "common/host_port.h"
#include "common/log.h"

namespace dx::agent {

std::string SqliteDatabaseOf(const std::string& conn) {
  std::string database;
  bool sqlite = false;
  size_t start = 0;
  while (start < conn.size()) {
    size_t eq = conn.find('=', start);
    if (eq == std::string::npos) break;
    std::string key = AsciiLower(conn.substr(start, eq - start));
    key.erase(0, key.find_first_not_of(' '));
    size_t end;
    std::string value;
    if (eq + 1 < conn.size() && conn[eq + 1] == '{') {  // {value; with semicolons}
      end = conn.find('}', eq + 2);
      if (end == std::string::npos) end = conn.size();
      value = conn.substr(eq + 2, end - eq - 2);
      end = conn.find(';', end);
    } else {
      end = conn.find(';', eq + 1);
      value = conn.substr(eq + 1, (end == std::string::npos ? conn.size() : end) - eq - 1);
    }
    if (key == "driver") sqlite = AsciiLower(value).find("sqlite") != std::string::npos;
    if (key == "database") database = value;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return sqlite ? database : "";
}

Result<AgentConfig> LoadAgentConfig(const std::string& path) {
  DX_ASSIGN_OR_RETURN(auto docs, ConfigValue::LoadFile(path));
  if (docs.size() != 1 || !docs[0].IsMap()) {
    return InvalidArgument(path + ":1: expected one YAML mapping");
  }
  const ConfigValue& root = docs[0];
  DX_RETURN_IF_ERROR(root.CheckKeys({"name", "secret", "secret_file", "scheduler", "target",
                                     "files", "tls", "reconnect", "queue_batches", "log"}));
  AgentConfig c;
  DX_RETURN_IF_ERROR(root.GetString("name", &c.name, true));
  DX_RETURN_IF_ERROR(root.GetString("secret", &c.secret));
  std::string secret_file;
  DX_RETURN_IF_ERROR(root.GetString("secret_file", &secret_file));
  if (!secret_file.empty()) {
    std::ifstream in(secret_file);
    if (!in) return root["secret_file"].Error("cannot read '" + secret_file + "'");
    std::getline(in, c.secret);
  }
  if (c.secret.empty()) return root["secret"].Error("is required (or secret_file)");
  std::string scheduler;
  DX_RETURN_IF_ERROR(root.GetString("scheduler", &scheduler, true));
  Status st = ParseHostPort(scheduler, &c.scheduler_host, &c.scheduler_port);
  if (!st.ok()) return root["scheduler"].Error(st.message());
  ConfigValue target = root["target"];
  if (!target.IsMap()) return target.Error("is required: a mapping with 'connection'");
  DX_RETURN_IF_ERROR(target.CheckKeys(
      {"connection", "name_case", "lock_timeout_ms", "lock_retry_ms", "row_check_s"}));
  DX_RETURN_IF_ERROR(target.GetString("connection", &c.target_connection, true));
  std::string name_case;
  DX_RETURN_IF_ERROR(target.GetString("name_case", &name_case));
  if (!name_case.empty() && name_case != "auto") {
    auto parsed = ParseNameCase(name_case);
    if (!parsed.ok()) {
      return target["name_case"].Error("expected auto, lower, upper or preserve, not '" +
                                       name_case + "'");
    }
    c.target.name_case = parsed.value();
  }
  int64_t ms = c.target.lock_timeout_ms;
  DX_RETURN_IF_ERROR(target.GetInt("lock_timeout_ms", &ms, 1, 600000));
  c.target.lock_timeout_ms = static_cast<int>(ms);
  ms = c.target.lock_retry_ms;
  DX_RETURN_IF_ERROR(target.GetInt("lock_retry_ms", &ms, 0, 3600000));
  c.target.lock_retry_ms = static_cast<int>(ms);
  ms = c.target.row_check_interval_s;
  DX_RETURN_IF_ERROR(target.GetInt("row_check_s", &ms, 0, 86400 * 7));
  c.target.row_check_interval_s = static_cast<int>(ms);
  ConfigValue tls = root["tls"];
  DX_RETURN_IF_ERROR(tls.CheckKeys({"ca", "server_name"}));
  DX_RETURN_IF_ERROR(tls.GetString("ca", &c.tls_ca));
  DX_RETURN_IF_ERROR(tls.GetString("server_name", &c.tls_server_name));
  if (c.tls_server_name.empty()) c.tls_server_name = c.scheduler_host;
  const std::string database = SqliteDatabaseOf(c.target_connection);
  if (!database.empty()) {
    std::error_code ec;
    std::filesystem::path dir = std::filesystem::path(database).parent_path();
    if (!dir.empty() && !std::filesystem::is_directory(dir, ec)) {
      return target["connection"].Error("the directory '" + dir.string() +
                                        "' of the SQLite database does not exist (create it, or "
                                        "correct Database=)");
    }
  }
  ConfigValue files = root["files"];
  DX_RETURN_IF_ERROR(files.CheckKeys({"shared_root", "mode"}));
  if (files.present()) {
    DX_RETURN_IF_ERROR(files.GetString("shared_root", &c.shared_root, true));
    if (c.shared_root.empty() || c.shared_root[0] != '/') {
      return files["shared_root"].Error("must be an absolute path");
    }
  }
  std::string mode;
  DX_RETURN_IF_ERROR(files.GetString("mode", &mode));
  if (mode == "keep" || mode == "none") {
    c.keep_file_mode = true;
  } else if (!mode.empty()) {
    char* end = nullptr;
    unsigned long m = std::strtoul(mode.c_str(), &end, 8);
    if (end == mode.c_str() || *end != '\0' || m > 0777) {
      return files["mode"].Error("expected an octal file mode such as \"0640\", or keep");
    }
    c.file_mode = static_cast<unsigned>(m);
  }
  ConfigValue reconnect = root["reconnect"];
  DX_RETURN_IF_ERROR(reconnect.CheckKeys({"min_ms", "max_ms"}));
  int64_t v = c.reconnect_min_ms;
  DX_RETURN_IF_ERROR(reconnect.GetInt("min_ms", &v, 10, 600000));
  c.reconnect_min_ms = static_cast<int>(v);
  v = c.reconnect_max_ms;
  DX_RETURN_IF_ERROR(reconnect.GetInt("max_ms", &v, c.reconnect_min_ms, 3600000));
  c.reconnect_max_ms = static_cast<int>(v);
  v = c.queue_batches;
  DX_RETURN_IF_ERROR(root.GetInt("queue_batches", &v, 1, 256));
  c.queue_batches = static_cast<int>(v);
  ConfigValue log = root["log"];
  DX_RETURN_IF_ERROR(log.CheckKeys({"level"}));
  DX_RETURN_IF_ERROR(log.GetString("level", &c.log_level));
  LogLevel level;
  if (!ParseLogLevel(c.log_level, &level)) {
    return log["level"].Error("expected debug, info, warn or error");
  }
  return c;
}

}  // namespace dx::agent
