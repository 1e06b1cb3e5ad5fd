// Byte-level codec for the agent protocol: little-endian integers, LEB128 varints and
// length-prefixed strings. ByteReader checks every bound and reports truncation as kDataLoss.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace dx {

class ByteWriter {
 public:
  void PutU8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void PutVarint(uint64_t v);
  void PutString(std::string_view s);
  std::string& buffer() { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}
  Status GetU8(uint8_t* v);
  Status GetVarint(uint64_t* v);
  Status GetString(std::string* s);
  Status GetStringView(std::string_view* s);
  // The next `n` raw bytes.
  Status GetBytes(size_t n, std::string_view* s);
  bool done() const { return pos_ == in_.size(); }
  size_t remaining() const { return in_.size() - pos_; }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

// zstd compression of a whole payload (batches are bounded, so one-shot is fine).
Result<std::string> Compress(std::string_view raw, int level);
// Refuses payloads whose declared size exceeds `max_size` (a corrupt or hostile frame).
Result<std::string> Decompress(std::string_view compressed, size_t max_size);

}  // namespace dx
