#include "scheduler/schedule.h"

#include <ctime>
#include <sstream>
#include <vector>

namespace dx::scheduler {
namespace {

std::vector<std::string> Words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

bool ParseNumber(const std::string& s, int lo, int hi, int* out) {
  if (s.empty() || s.size() > 4) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  *out = std::stoi(s);
  return *out >= lo && *out <= hi;
}

bool ParseClock(const std::string& s, int* hour, int* minute) {
  size_t colon = s.find(':');
  if (colon == std::string::npos) return false;
  return ParseNumber(s.substr(0, colon), 0, 23, hour) &&
         ParseNumber(s.substr(colon + 1), 0, 59, minute) && s.size() - colon == 3;
}

int WeekdayNumber(const std::string& s) {
  static const char* kNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
  for (int i = 0; i < 7; ++i) {
    if (s == kNames[i]) return i;
  }
  return -1;
}

// One cron field: "*", "*/n", "a", "a-b", "a-b/n", and comma lists of these.
template <size_t N>
bool ParseCronField(const std::string& field, int lo, int hi, std::bitset<N>* bits,
                    bool* restricted) {
  bits->reset();
  *restricted = field != "*";
  std::stringstream list(field);
  std::string part;
  while (std::getline(list, part, ',')) {
    int step = 1;
    size_t slash = part.find('/');
    if (slash != std::string::npos) {
      if (!ParseNumber(part.substr(slash + 1), 1, hi, &step)) return false;
      part = part.substr(0, slash);
    }
    int a = lo;
    int b = hi;
    if (part != "*") {
      size_t dash = part.find('-');
      if (dash == std::string::npos) {
        if (!ParseNumber(part, lo, hi, &a)) return false;
        b = slash == std::string::npos ? a : hi;
      } else if (!ParseNumber(part.substr(0, dash), lo, hi, &a) ||
                 !ParseNumber(part.substr(dash + 1), lo, hi, &b) || b < a) {
        return false;
      }
    }
    for (int v = a; v <= b; v += step) bits->set(static_cast<size_t>(v));
  }
  return bits->any();
}

}  // namespace

Result<Schedule> Schedule::Parse(const std::string& text) {
  Schedule s;
  s.text_ = text;
  std::vector<std::string> w = Words(text);
  auto bad = [&](const std::string& why) {
    return InvalidArgument("bad schedule '" + text + "': " + why);
  };
  if (w.empty()) return bad("empty");
  if (w[0] == "manual" && w.size() == 1) return s;
  if (w[0] == "realtime" && w.size() == 2) {
    std::string n = w[1];
    int unit = 1;
    if (!n.empty() && (n.back() == 's' || n.back() == 'm')) {
      unit = n.back() == 'm' ? 60 : 1;
      n.pop_back();
    }
    int v = 0;
    if (!ParseNumber(n, 1, 86400, &v)) return bad("expected an interval like 5s or 2m");
    s.kind_ = Kind::kInterval;
    s.interval_s_ = static_cast<int64_t>(v) * unit;
    return s;
  }
  s.kind_ = Kind::kCalendar;
  s.months_.set();
  s.months_.reset(0);
  s.days_.set();
  s.days_.reset(0);
  s.weekdays_.set();
  s.hours_.set();
  int hour = 0;
  int minute = 0;
  if (w[0] == "hourly" && w.size() == 2) {
    if (w[1].size() != 3 || w[1][0] != ':' || !ParseNumber(w[1].substr(1), 0, 59, &minute)) {
      return bad("expected hourly :MM");
    }
    s.minutes_.set(static_cast<size_t>(minute));
    return s;
  }
  if (w[0] == "daily" && w.size() == 2) {
    if (!ParseClock(w[1], &hour, &minute)) return bad("expected daily HH:MM");
  } else if (w[0] == "weekly" && w.size() == 3) {
    int day = WeekdayNumber(w[1]);
    if (day < 0) return bad("expected a weekday: sun mon tue wed thu fri sat");
    if (!ParseClock(w[2], &hour, &minute)) return bad("expected weekly DAY HH:MM");
    s.weekdays_.reset();
    s.weekdays_.set(static_cast<size_t>(day));
    s.weekdays_restricted_ = true;
  } else if (w[0] == "monthly" && w.size() == 3) {
    int day = 0;
    if (!ParseNumber(w[1], 1, 31, &day)) return bad("expected a day of month 1-31");
    if (!ParseClock(w[2], &hour, &minute)) return bad("expected monthly DAY HH:MM");
    s.days_.reset();
    s.days_.set(static_cast<size_t>(day));
    s.days_restricted_ = true;
  } else if (w[0] == "cron" && w.size() == 6) {
    bool restricted = false;
    if (!ParseCronField(w[1], 0, 59, &s.minutes_, &restricted)) return bad("minute field");
    if (!ParseCronField(w[2], 0, 23, &s.hours_, &restricted)) return bad("hour field");
    if (!ParseCronField(w[3], 1, 31, &s.days_, &s.days_restricted_)) return bad("day field");
    if (!ParseCronField(w[4], 1, 12, &s.months_, &restricted)) return bad("month field");
    std::string dow = w[5] == "7" ? "0" : w[5];
    if (!ParseCronField(dow, 0, 6, &s.weekdays_, &s.weekdays_restricted_)) {
      return bad("day-of-week field");
    }
    return s;
  } else {
    return bad(
        "expected manual, realtime Ns, hourly :MM, daily HH:MM, weekly DAY HH:MM, "
        "monthly D HH:MM or cron with five fields");
  }
  s.minutes_.set(static_cast<size_t>(minute));
  s.hours_.reset();
  s.hours_.set(static_cast<size_t>(hour));
  return s;
}

bool Schedule::Matches(const struct tm& t) const {
  if (!minutes_.test(static_cast<size_t>(t.tm_min)) ||
      !hours_.test(static_cast<size_t>(t.tm_hour)) ||
      !months_.test(static_cast<size_t>(t.tm_mon + 1))) {
    return false;
  }
  bool day_ok = days_.test(static_cast<size_t>(t.tm_mday));
  bool weekday_ok = weekdays_.test(static_cast<size_t>(t.tm_wday));
  // Cron rule: when both day fields are restricted, either may match.
  if (days_restricted_ && weekdays_restricted_) return day_ok || weekday_ok;
  return day_ok && weekday_ok;
}

int64_t Schedule::NextAfter(int64_t after) const {
  switch (kind_) {
    case Kind::kManual:
      return 0;
    case Kind::kInterval:
      return (after / interval_s_ + 1) * interval_s_;
    case Kind::kCalendar:
      break;
  }
  // Walk minute by minute in local time, skipping whole hours and days that cannot match.
  time_t t = static_cast<time_t>(after - after % 60 + 60);
  const time_t limit = t + 366LL * 24 * 3600 * 5;
  while (t < limit) {
    struct tm lt {};
    localtime_r(&t, &lt);
    if (!months_.test(static_cast<size_t>(lt.tm_mon + 1))) {
      t += (24 * 60 - lt.tm_hour * 60 - lt.tm_min) * 60;
      continue;
    }
    if (!hours_.test(static_cast<size_t>(lt.tm_hour))) {
      t += (60 - lt.tm_min) * 60;
      continue;
    }
    if (Matches(lt)) return static_cast<int64_t>(t);
    t += 60;
  }
  return 0;
}

}  // namespace dx::scheduler
