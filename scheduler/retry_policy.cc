#include "scheduler/retry_policy.h"

#include <algorithm>

namespace dx::scheduler {

bool IsPermanentFailure(StatusCode code) {
  switch (code) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kNotFound:
    case StatusCode::kPermissionDenied:
      return true;
    default:
      return false;
  }
}

int64_t RetryDelaySeconds(int failures, int min_s, int max_s) {
  int64_t delay = std::max(1, min_s);
  for (int i = 1; i < failures && delay < max_s; ++i) delay *= 2;
  return std::min<int64_t>(delay, std::max(min_s, max_s));
}

int FailuresAfter(int failures_before, bool made_progress) {
  if (made_progress) return 1;
  return std::min(failures_before + 1, 30);
}

}  // namespace dx::scheduler
