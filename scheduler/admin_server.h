// AdminServer: serves AdminApi over HTTP/1.1 (Boost.Beast) on its own I/O thread, with a
// deadline on every read and write — over HTTPS when given a certificate, which it must be
// to listen beyond loopback (the API carries tokens). Boost types stay in admin_server.cc.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "scheduler/admin_api.h"

namespace dx::scheduler {

class AdminServer {
 public:
  explicit AdminServer(AdminApi& api);
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
  std::unique_ptr<Impl> impl_;
};

}  // namespace dx::scheduler
