#include "common/clock.h"

#include <ctime>

namespace dx {

int64_t ToUnixSeconds(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

int64_t ToUnixMillis(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

TimePoint FromUnixSeconds(int64_t secs) { return TimePoint(std::chrono::seconds(secs)); }

std::string FormatLocalTime(int64_t unix_secs) {
  if (unix_secs == 0) return "";
  std::time_t t = static_cast<std::time_t>(unix_secs);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

}  // namespace dx
