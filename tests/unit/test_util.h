// Helpers shared by the unit tests: a temporary directory removed at scope exit.
#pragma once

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/clock.h"

namespace dx::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/dx-unit.XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  std::string Write(const std::string& name, const std::string& text) const {
    std::ofstream(File(name)) << text;
    return File(name);
  }

 private:
  std::string path_;
};

// A clock the test moves by hand.
class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t unix_seconds = 1700000000) : now_(FromUnixSeconds(unix_seconds)) {}
  TimePoint Now() const override { return now_; }
  void Advance(std::chrono::seconds by) { now_ += by; }

 private:
  TimePoint now_;
};

inline std::string SqliteConnection(const std::string& path) {
  return "Driver=SQLite3;Database=" + path + ";JournalMode=WAL;SyncPragma=NORMAL";
}

}  // namespace dx::testing
