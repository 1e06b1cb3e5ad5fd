// Schedule: when a subscription runs. Text forms (local time):
//   "manual"              only when triggered (dxctl run)
//   "realtime 5s"         poll every N seconds (also "realtime 2m")
//   "hourly :15"          every hour at minute 15
//   "daily 02:30"         every day at 02:30
//   "weekly mon 02:30"    every Monday at 02:30
//   "monthly 1 02:30"     on day 1 of every month at 02:30 (months without that day skip)
//   "cron */5 * * * *"    five-field cron: minute hour day-of-month month day-of-week
#pragma once

#include <bitset>
#include <string>

#include "common/status.h"

namespace dx::scheduler {

class Schedule {
 public:
  static Result<Schedule> Parse(const std::string& text);

  bool manual() const { return kind_ == Kind::kManual; }
  // The first due time strictly after `after` (unix seconds); 0 for manual schedules.
  // `realtime Ns` is due on its interval's grid (multiples of N seconds since the epoch), not N
  // seconds after the last run: subscriptions with the same interval fall due in the same
  // second whenever their agents came online, so one shared read serves them (TableFanout).
  int64_t NextAfter(int64_t after) const;
  const std::string& text() const { return text_; }

 private:
  enum class Kind { kManual, kInterval, kCalendar };
  Schedule() = default;
  bool Matches(const struct tm& t) const;

  Kind kind_ = Kind::kManual;
  std::string text_;
  int64_t interval_s_ = 0;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;     // 1..31
  std::bitset<13> months_;   // 1..12
  std::bitset<7> weekdays_;  // 0 = Sunday
  bool days_restricted_ = false;
  bool weekdays_restricted_ = false;
};

}  // namespace dx::scheduler
