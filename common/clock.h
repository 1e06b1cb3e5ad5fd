// Clock: the seam through which schedules and back-off read time, so tests can advance it.
#pragma once

#include <chrono>
#include <string>

namespace dx {

using TimePoint = std::chrono::system_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
};

class SystemClock : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::system_clock::now(); }
};

// Seconds since the Unix epoch.
int64_t ToUnixSeconds(TimePoint t);
// Milliseconds since the Unix epoch (run and audit timestamps).
int64_t ToUnixMillis(TimePoint t);
TimePoint FromUnixSeconds(int64_t secs);
// "YYYY-MM-DD HH:MM:SS" in local time; empty for 0.
std::string FormatLocalTime(int64_t unix_secs);

}  // namespace dx
