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
  AdminClient(std::string server, std::string token);
  // kUnavailable when the scheduler cannot be reached.
  Result<HttpReply> Get(const std::string& path);
  Result<HttpReply> Post(const std::string& path, const std::string& body);
  // Percent-encodes one path segment or query value (UTF-8 names).
  static std::string Escape(const std::string& text);

 private:
  Result<HttpReply> Call(const std::string& method, const std::string& path,
                         const std::string& body);
  std::string server_;
  std::string token_;
};

}  // namespace dx::ctl
