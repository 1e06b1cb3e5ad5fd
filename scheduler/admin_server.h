// AdminServer: serves AdminApi over HTTP/1.1 (Boost.Beast) on an IoRuntime (the one the agent
// port runs on, in dx-scheduler), with a deadline on every read and write — over HTTPS when
// given a certificate, which it must be to listen beyond loopback (the API carries tokens).
// Requests are answered on the server's own thread, one at a time (AdminApi reads and writes
// the store), never on an io thread. Boost types stay in admin_server.cc.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "scheduler/admin_api.h"
#include "scheduler/io_runtime.h"

namespace dx::scheduler {

class AdminServer {
 public:
  // On its own runtime (one io thread, one worker).
  explicit AdminServer(AdminApi& api);
  // On `runtime`, shared with other servers: its owner stops it after this server's Stop and
  // before this server is destroyed (requests under way are not waited for).
  AdminServer(AdminApi& api, IoRuntime& runtime);
  ~AdminServer();
  // Serves HTTPS with this PEM certificate chain and key (call before Start).
  Status UseTls(const std::string& cert_file, const std::string& key_file);
  // Listens on "host:port" (port 0 picks one) and starts serving. Refuses an address beyond
  // loopback without TLS.
  Status Start(const std::string& listen);
  void Stop();
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<IoRuntime> own_runtime_;  // when not given one
  std::unique_ptr<Impl> impl_;
};

}  // namespace dx::scheduler
