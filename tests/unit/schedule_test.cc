#include "scheduler/schedule.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <ctime>

namespace dx::scheduler {
namespace {

// Local time "YYYY-MM-DD HH:MM" -> unix seconds. The tests run with TZ=Asia/Shanghai.
int64_t Local(const char* text) {
  std::tm tm{};
  strptime(text, "%Y-%m-%d %H:%M", &tm);
  tm.tm_isdst = -1;
  return static_cast<int64_t>(mktime(&tm));
}

struct ScheduleCase {
  const char* schedule;
  const char* after;
  const char* expected;
};

TEST_CASE("schedules compute the next due time in local time") {
  setenv("TZ", "Asia/Shanghai", 1);
  tzset();
  const ScheduleCase cases[] = {
      {"hourly :15", "2026-11-21 10:00", "2026-11-21 10:15"},
      {"hourly :15", "2026-11-21 10:15", "2026-11-21 11:15"},
      {"daily 02:30", "2026-11-21 10:00", "2026-11-22 02:30"},
      {"daily 02:30", "2026-11-21 01:00", "2026-11-21 02:30"},
      {"weekly mon 08:00", "2026-11-21 10:00", "2026-11-23 08:00"},  // 11-21 is a Saturday
      {"monthly 1 00:05", "2026-11-21 10:00", "2026-12-01 00:05"},
      {"monthly 31 00:00", "2026-11-21 10:00", "2026-12-31 00:00"},  // November has no 31st
      {"cron */20 * * * *", "2026-11-21 10:05", "2026-11-21 10:20"},
      {"cron 0 9-17/4 * * *", "2026-11-21 10:00", "2026-11-21 13:00"},
      {"cron 30 6 * * 1,3", "2026-11-21 10:00", "2026-11-23 06:30"},
      {"cron 0 0 1 1 *", "2026-11-21 10:00", "2027-01-01 00:00"},
      {"cron 0 12 15 * 0", "2026-11-21 10:00", "2026-11-22 12:00"},  // day-of-month OR weekday
  };
  for (const ScheduleCase& c : cases) {
    CAPTURE(c.schedule);
    CAPTURE(c.after);
    auto s = Schedule::Parse(c.schedule);
    REQUIRE(s.ok());
    CHECK(s->NextAfter(Local(c.after)) == Local(c.expected));
  }
}

TEST_CASE("realtime and manual schedules") {
  auto rt = Schedule::Parse("realtime 5s");
  REQUIRE(rt.ok());
  CHECK(rt->NextAfter(1000) == 1005);
  // On the interval's grid, whenever the last run ended: peers with the same interval meet.
  CHECK(rt->NextAfter(1001) == 1005);
  CHECK(rt->NextAfter(1004) == 1005);
  auto rt2 = Schedule::Parse("realtime 2m");
  REQUIRE(rt2.ok());
  CHECK(rt2->NextAfter(1000) == 1080);
  CHECK(rt2->NextAfter(1080) == 1200);
  auto manual = Schedule::Parse("manual");
  REQUIRE(manual.ok());
  CHECK(manual->manual());
  CHECK(manual->NextAfter(1000) == 0);
}

TEST_CASE("bad schedules are refused with the reason") {
  for (const char* bad : {"", "sometimes", "daily 25:00", "daily 2:3", "hourly 15",
                          "weekly xyz 01:00", "monthly 0 01:00", "cron * * *", "cron 61 * * * *",
                          "cron 5-1 * * * *", "realtime 0s", "realtime fast"}) {
    CAPTURE(bad);
    auto s = Schedule::Parse(bad);
    CHECK_FALSE(s.ok());
    CHECK(s.status().code() == StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace dx::scheduler
