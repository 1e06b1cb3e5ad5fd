// Watermark: the position of incremental extraction, the pair (UPDATETIME, primary key).
// Rows are read in (updatetime, key) order; a run resumes strictly after its watermark.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace dx {

struct Watermark {
  std::string updatetime;         // text as the source returns it; empty = from the start
  std::vector<std::string> key;   // primary-key values of the last row, in key-column order

  bool empty() const { return updatetime.empty() && key.empty(); }
  // A readable, unambiguous text form stored in ledgers: a JSON array ["ut","k1",...].
  std::string Encode() const;
  static Result<Watermark> Decode(const std::string& text);
  bool operator==(const Watermark& other) const = default;
};

}  // namespace dx
