// TlsContext: the TLS settings of one side of the agent link. The scheduler presents its
// certificate; the agent verifies it against its trust anchors and the scheduler's name (DNS
// name or IP address), so the agent's secret and the data never cross the network in clear.
// OpenSSL stays behind this header.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"

namespace dx {

class TlsContext {
 public:
  // Scheduler side: certificate chain and private key, PEM files.
  static Result<std::shared_ptr<TlsContext>> Server(const std::string& cert_file,
                                                    const std::string& key_file);
  // Agent side: CA certificates (PEM) to trust, and the name the certificate must carry.
  static Result<std::shared_ptr<TlsContext>> Client(const std::string& ca_file,
                                                    const std::string& server_name);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  bool is_server() const { return server_; }
  const std::string& server_name() const { return server_name_; }
  void* native() const { return ctx_; }  // SSL_CTX*, for the Asio streams of both sides

 private:
  TlsContext(void* ctx, bool server, std::string server_name)
      : ctx_(ctx), server_(server), server_name_(std::move(server_name)) {}
  void* ctx_;
  bool server_;
  std::string server_name_;
};

// The last OpenSSL error as text (clears the queue).
std::string TlsErrorText();

}  // namespace dx
