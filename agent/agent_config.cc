#include "agent/agent_config.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "common/config_value.h"
#include "common/frame_link.h"
#include "common/log.h"

namespace dx::agent {

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
  DX_RETURN_IF_ERROR(target.CheckKeys({"connection"}));
  DX_RETURN_IF_ERROR(target.GetString("connection", &c.target_connection, true));
  ConfigValue tls = root["tls"];
  DX_RETURN_IF_ERROR(tls.CheckKeys({"ca", "server_name"}));
  DX_RETURN_IF_ERROR(tls.GetString("ca", &c.tls_ca));
  DX_RETURN_IF_ERROR(tls.GetString("server_name", &c.tls_server_name));
  if (c.tls_server_name.empty()) c.tls_server_name = c.scheduler_host;
  ConfigValue files = root["files"];
  DX_RETURN_IF_ERROR(files.CheckKeys({"shared_root", "mode"}));
  DX_RETURN_IF_ERROR(files.GetString("shared_root", &c.shared_root));
  if (c.shared_root.empty() || c.shared_root[0] != '/') {
    return files["shared_root"].Error("must be an absolute path");
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
