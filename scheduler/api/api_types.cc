#include "scheduler/api/api_types.h"

#include <stdexcept>

namespace dx::scheduler {

using nlohmann::json;

json Call::Body() const {
  if (request.body.find_first_not_of(" \t\r\n") == std::string::npos) return json::object();
  json j = json::parse(request.body);
  if (!j.is_object()) throw std::invalid_argument("the request body must be a JSON object");
  return j;
}

int HttpStatusFor(const Status& st) {
  switch (st.code()) {
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kFailedPrecondition:
      return 409;
    case StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

// Bytes that are not UTF-8 (a file name from a share in another encoding) are replaced rather
// than failing the whole reply.
ApiResponse JsonResponse(int status, const json& body) {
  ApiResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

ApiResponse ErrorResponse(int status, const std::string& message) {
  return JsonResponse(status, json{{"error", message}});
}

ApiResponse ErrorResponse(const Status& st) {
  return ErrorResponse(HttpStatusFor(st), st.message());
}

}  // namespace dx::scheduler
