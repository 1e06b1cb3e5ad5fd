// Masking (脱敏): how the columns of an approved subscription leave the scheduler. Each column is
// kept, replaced by a keyed hash (HMAC-SHA256 under the scheduler's masking key, derived per
// consumer organisation; deterministic, so a value always masks alike and updates,
// reconciliation and a consumer's joins line up), partially masked (an ID number shown as
// 310***********1234; counted in characters, so Chinese names mask by character) or dropped
// (never read, and absent from the table the agent receives). SubscriptionReader applies it to
// every row it reads, so table runs deliver, and reconciliation compares, masked values alike.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/row_batch.h"
#include "common/status.h"
#include "common/table_spec.h"
#include "scheduler/model.h"

namespace dx::scheduler {

// A hashed column travels as this many lowercase hex digits (char(64) at the agent).
inline constexpr int kMaskedHashChars = 64;

// The key one consumer organisation's values are hashed under: HMAC-SHA256 of its name under
// the scheduler's master key (masking.key_file). Two organisations cannot match each other's
// hashed values; one organisation's subscriptions hash alike.
std::string MaskingKeyFor(std::string_view master_key, std::string_view organisation);

// HMAC-SHA256 under one key, as 64 lowercase hex digits; the key's pads are digested once, so a
// short value costs two SHA-256 blocks. Not thread-safe: one per reader.
class KeyedHash {
 public:
  explicit KeyedHash(std::string_view key);
  ~KeyedHash();
  KeyedHash(const KeyedHash&) = delete;
  KeyedHash& operator=(const KeyedHash&) = delete;

  // Appends the hex digest of `value` to `out`.
  void AppendHex(std::string_view value, std::string* out);
  std::string Hex(std::string_view value);

 private:
  struct Contexts;
  std::unique_ptr<Contexts> ctx_;
};

// Appends `value` (UTF-8) to `out` with every character but the first `keep_first` and the last
// `keep_last` replaced by one '*' each. A value of at most keep_first + keep_last characters
// shows fewer of them (first ones before last ones), so that at least one character is always
// hidden: "张三" with 1:1 is "张*", a one-character value is "*", an empty one stays empty.
// A byte that does not start a well-formed UTF-8 character counts as one character.
void AppendPartialMask(std::string_view value, int keep_first, int keep_last, std::string* out);
std::string PartialMask(std::string_view value, int keep_first, int keep_last);

// The masking of one subscription's table: the shape the agent receives and the transform of
// the rows read for it.
class TableMasking {
 public:
  // `table`: the approved columns in catalog order; `rules`: the subscription's masking (a
  // column without a rule is kept; rules of other columns are ignored); `key`: the consumer
  // organisation's key (MaskingKeyFor). kFailedPrecondition names the column when a rule
  // cannot be applied: a masked primary key, hash or partial on a column that is not text, a
  // partial mask that hides nothing, an unknown method, or a hash without a key.
  static Result<std::unique_ptr<TableMasking>> Make(const TableSpec& table,
                                                    const std::vector<MaskingRule>& rules,
                                                    std::string_view key);
  ~TableMasking();

  // The columns read from the source: `table` without the dropped ones, as the catalog types
  // them.
  const TableSpec& read() const { return read_; }
  // The table the agent receives: read() with hashed columns as char(64).
  const TableSpec& delivered() const { return delivered_; }
  // True when no column is hashed or partially masked: rows leave as they are read.
  bool passthrough() const { return passthrough_; }
  // Appends the masked rows of `raw` (rows of read()) to `out` (of delivered() columns).
  void Apply(const RowBatch& raw, RowBatch* out);

 private:
  struct Column {
    enum class Method { kKeep, kHash, kPartial } method = Method::kKeep;
    bool fixed_width = false;  // char(n): trailing spaces are padding, dropped before masking
    int keep_first = 0;
    int keep_last = 0;
  };
  TableMasking() = default;

  TableSpec read_;
  TableSpec delivered_;
  std::vector<Column> columns_;  // one per column of read_
  bool passthrough_ = true;
  std::unique_ptr<KeyedHash> hash_;
  std::string cell_;
};

}  // namespace dx::scheduler
