// Watermark: where extraction of a subscription stands. Two phases:
//  - the initial full load reads rows with UPDATETIME < full_load_until in primary-key order
//    (fast to write, streams off the key index), resuming after `key`;
//  - then incremental extraction reads rows after the pair (UPDATETIME, primary key), in that
//    order. An empty key means "every row before `updatetime` is done" (the end of a full
//    load), so extraction resumes at UPDATETIME >= updatetime.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace dx {

struct Watermark {
  std::string full_load_until;   // set during the full load: its fixed UPDATETIME bound
  std::string updatetime;        // incremental: last UPDATETIME delivered
  std::vector<std::string> key;  // primary-key values of the last row, in key-column order
  // The resync request whose reset cleared the agent's table (kept from then on), so that a
  // retried resync resumes its load instead of clearing it again.
  std::string resync = {};

  // No position: read everything (a new subscription, or right after a resync's reset).
  bool empty() const { return full_load_until.empty() && updatetime.empty() && key.empty(); }
  bool in_full_load() const { return !full_load_until.empty(); }
  // A readable JSON form stored in ledgers, e.g. {"after":"2026-11-21 10:00:00","key":["42"]}.
  std::string Encode() const;
  static Result<Watermark> Decode(const std::string& text);
  bool operator==(const Watermark& other) const = default;
};

// True when `text` starts "YYYY-MM-DD HH:MM:SS" (a source's spelling of a date-time, maybe
// with fractions): such texts compare by time when compared as text, to the second.
bool SpelledToTheSecond(std::string_view text);

}  // namespace dx
