// AdminClient: dxctl's HTTP client of the scheduler's admin API (libcurl stays in the .cc).
#pragma once

#include <string>

#include "common/status.h"

namespace dx::ctl {

struct HttpReply {
  long status = 0;
  std::string body;
};

class AdminClient {
 public:
  // `ca_file`: PEM certificates to verify an https:// server with (empty: the system's). The
  // server's certificate and name are always verified.
  AdminClient(std::string server, std::string token, std::string ca_file = "");
  // kUnavailable when the scheduler cannot be reached (or its certificate does not verify).
  Result<HttpReply> Get(const std::string& path);
  Result<HttpReply> Post(const std::string& path, const std::string& body,
                         const std::string& content_type = "application/yaml");
  Result<HttpReply> Delete(const std::string& path);
  // Percent-encodes one path segment or query value (UTF-8 names).
  static std::string Escape(const std::string& text);

 private:
  Result<HttpReply> Call(const std::string& method, const std::string& path,
                         const std::string& body, const std::string& content_type);
  std::string server_;
  std::string token_;
  std::string ca_file_;
};

}  // namespace dx::ctl
