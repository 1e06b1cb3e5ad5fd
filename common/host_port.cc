#include "common/host_port.h"

#include <cstdlib>

namespace dx {

Status ParseHostPort(const std::string& text, std::string* host, int* port) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    return InvalidArgument("'" + text + "' is not host:port");
  }
  *host = text.substr(0, colon);
  std::string p = text.substr(colon + 1);
  for (char c : p) {
    if (c < '0' || c > '9') return InvalidArgument("'" + text + "' has a bad port");
  }
  *port = std::atoi(p.c_str());
  if (*port < 0 || *port > 65535) return InvalidArgument("'" + text + "' has a bad port");
  return Status::Ok();
}

}  // namespace dx
