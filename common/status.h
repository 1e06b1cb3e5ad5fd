// Status and Result<T>: how every module boundary reports success or failure.
// Codes are chosen by what the caller does next (see STYLE.md, "Errors").
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace dx {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // bad input: refuse, never retry
  kNotFound,            // the named thing does not exist
  kUnavailable,         // transient: retry with back-off
  kPermissionDenied,    // authentication or authorisation refused
  kDataLoss,            // data is corrupt or inconsistent
  kFailedPrecondition,  // state conflicts with the request (e.g. table shape vs catalog)
  kInternal,            // our own bug
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

  // Returns a copy with `context` prepended to the message ("context: message").
  Status Annotate(const std::string& context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

Status InvalidArgument(std::string message);
Status NotFound(std::string message);
Status Unavailable(std::string message);
Status PermissionDenied(std::string message);
Status DataLoss(std::string message);
Status FailedPrecondition(std::string message);
Status Internal(std::string message);

// True when the same operation may succeed later (network, locked database, server down).
bool IsRetryable(const Status& status);
const char* StatusCodeName(StatusCode code);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT: implicit by design

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace dx

#define DX_RETURN_IF_ERROR(expr) \
  do {                           \
    ::dx::Status _st = (expr);   \
    if (!_st.ok()) return _st;   \
  } while (0)

#define DX_CONCAT_INNER(a, b) a##b
#define DX_CONCAT(a, b) DX_CONCAT_INNER(a, b)
#define DX_ASSIGN_OR_RETURN(lhs, expr) \
  DX_ASSIGN_OR_RETURN_IMPL(DX_CONCAT(_res_, __LINE__), lhs, expr)
#define DX_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()
