// Range digests for reconciliation (对账), shared by the scheduler (source side) and the agent
// (local side). A table is compared in consecutive key ranges; inside a range, rows fall into
// buckets by the hash of their key (16 children per bucket, 4 bits of the key hash per level),
// so both sides can split a range the same way without sending keys. A bucket's summary is its
// row count and the sum of its rows' hashes (order does not matter); a row's hash covers the
// canonical form (canonical_value.h) of every delivered column, NULL distinct from "".
// See docs/RECONCILIATION.md.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/row_batch.h"
#include "common/table_spec.h"

namespace dx {

// Children per bucket and the deepest level (4 bits of a 64-bit key hash per level).
constexpr int kRangeFanout = 16;
constexpr int kMaxBucketDepth = 16;

// Whether a differing bucket is answered with its rows rather than split into children: when
// it is small on both sides, empty at the agent (nothing to list), empty at the source and
// small enough to list (every row is extra), or at the deepest level.
bool ListBucket(uint32_t source_count, uint32_t agent_count, int depth);

struct RangeSummary {
  uint32_t count = 0;
  uint64_t digest = 0;  // sum of the rows' hashes, mod 2^64
  bool operator==(const RangeSummary& other) const = default;
};

// A bucket of a range: the rows whose key hash has `prefix` in its low 4 * depth bits.
struct BucketPath {
  uint8_t depth = 0;  // 0: the whole range
  uint64_t prefix = 0;

  bool Contains(uint64_t key_hash) const;
  BucketPath Child(int index) const;
  bool operator==(const BucketPath& other) const = default;
};

// One row as reconciliation sees it.
struct RowDigest {
  std::string key;  // the canonical key values, length-prefixed (a map key and the order key)
  uint64_t key_hash = 0;
  uint64_t row_hash = 0;
};

// Computes RowDigests for rows of one table shape (wire order, key columns flagged).
class RowHasher {
 public:
  explicit RowHasher(const TableSpec& spec);

  // The digest of row `row` of `rows` (whose columns are in the spec's order).
  void Hash(const RowBatch& rows, size_t row, RowDigest* out);
  // The canonical key of a row given only its key cells (in key-column order).
  std::string KeyOf(const std::vector<std::string_view>& key_cells);
  // Orders two canonical keys (RowDigest::key) as the key order SQL does (see
  // CompareCanonical): <0, 0, >0.
  int CompareKeys(std::string_view a, std::string_view b) const;
  // The values of a key encoded like RowDigest::key (canonical or not), in key-column order.
  static std::vector<std::string_view> SplitKey(std::string_view key);
  // Appends one value to a key in that encoding (length-prefixed).
  static void AppendKeyCell(std::string_view cell, std::string* key);

  const std::vector<size_t>& key_indexes() const { return key_indexes_; }
  const TableSpec& spec() const { return spec_; }

 private:
  TableSpec spec_;
  std::vector<size_t> key_indexes_;
  std::string scratch_;
  std::string key_scratch_;
};

// The rows of one key range, in key order, with summaries of any bucket of it.
class DigestedRange {
 public:
  void Add(RowDigest row) { rows_.push_back(std::move(row)); }
  const std::vector<RowDigest>& rows() const { return rows_; }
  size_t size() const { return rows_.size(); }
  void Clear() { rows_.clear(); }

  RangeSummary Summary(const BucketPath& path) const;
  std::array<RangeSummary, kRangeFanout> Children(const BucketPath& path) const;
  // Indexes (into rows()) of the rows in `path`, in key order.
  std::vector<size_t> RowsIn(const BucketPath& path) const;

 private:
  std::vector<RowDigest> rows_;
};

// One row of a bucket as the other side lists it: its key (as that side spells it) and hash.
struct ListedRow {
  std::vector<std::string> key;  // key cells in key-column order
  uint64_t row_hash = 0;
};

// What differs in one bucket between the source's rows and the rows the agent listed.
struct BucketDiff {
  std::vector<size_t> missing;  // source row indexes the agent lacks
  std::vector<size_t> changed;  // source row indexes the agent holds with other values
  std::vector<size_t> extra;    // indexes into the agent's list: keys the source lacks
};

// Compares the source rows `source_rows` (indexes into `source`) with the agent's listing of
// the same bucket; keys are matched on their canonical form.
BucketDiff CompareBucket(RowHasher& hasher, const DigestedRange& source,
                         const std::vector<size_t>& source_rows,
                         const std::vector<ListedRow>& agent_rows);

// Which of the children differ between two sides' summaries.
std::vector<int> DifferingChildren(const std::array<RangeSummary, kRangeFanout>& mine,
                                   const std::array<RangeSummary, kRangeFanout>& theirs);

}  // namespace dx
