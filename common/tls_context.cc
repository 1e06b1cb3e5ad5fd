#include "common/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace dx {

std::string TlsErrorText() {
  std::string text;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!text.empty()) text += "; ";
    text += buf;
  }
  return text.empty() ? "unknown TLS error" : text;
}

Result<std::shared_ptr<TlsContext>> TlsContext::Server(const std::string& cert_file,
                                                       const std::string& key_file) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return Internal("TLS: " + TlsErrorText());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    SSL_CTX_free(ctx);
    return InvalidArgument("TLS certificate " + cert_file + ": " + TlsErrorText());
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    SSL_CTX_free(ctx);
    return InvalidArgument("TLS key " + key_file + ": " + TlsErrorText());
  }
  return std::shared_ptr<TlsContext>(new TlsContext(ctx, true, ""));
}

Result<std::shared_ptr<TlsContext>> TlsContext::Client(const std::string& ca_file,
                                                       const std::string& server_name) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) return Internal("TLS: " + TlsErrorText());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1) {
    SSL_CTX_free(ctx);
    return InvalidArgument("TLS CA file " + ca_file + ": " + TlsErrorText());
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  return std::shared_ptr<TlsContext>(new TlsContext(ctx, false, server_name));
}

TlsContext::~TlsContext() { SSL_CTX_free(static_cast<SSL_CTX*>(ctx_)); }

}  // namespace dx
