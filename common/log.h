// Minimal structured logging to stderr: one line per event, timestamped, thread-safe.
#pragma once

#include <sstream>
#include <string>

namespace dx {

enum class LogLevel { kDebug = 0, kInfo, kWarn, kError };

void SetLogLevel(LogLevel level);
// Sets a short tag printed on every line (e.g. "scheduler", "agent school-a").
void SetLogTag(const std::string& tag);
bool ParseLogLevel(const std::string& text, LogLevel* level);
void LogLine(LogLevel level, const std::string& message);
bool LogEnabled(LogLevel level);

}  // namespace dx

#define DX_LOG(level, expr)                            \
  do {                                                 \
    if (::dx::LogEnabled(::dx::LogLevel::level)) {     \
      std::ostringstream _os;                          \
      _os << expr;                                     \
      ::dx::LogLine(::dx::LogLevel::level, _os.str()); \
    }                                                  \
  } while (0)
#define LOG_DEBUG(expr) DX_LOG(kDebug, expr)
#define LOG_INFO(expr) DX_LOG(kInfo, expr)
#define LOG_WARN(expr) DX_LOG(kWarn, expr)
#define LOG_ERROR(expr) DX_LOG(kError, expr)
