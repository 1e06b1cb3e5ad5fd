#include "common/range_digest.h"

#include <xxhash.h>

#include <algorithm>
#include <unordered_map>

#include "common/canonical_value.h"

namespace dx {
namespace {

// Seeds keep the key hash (bucketing) independent of the row hash (content).
constexpr uint64_t kKeySeed = 0x44582d6b6579ULL;  // "DX-key"
constexpr uint64_t kRowSeed = 0x44582d726f77ULL;  // "DX-row"

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// Reads the next length-prefixed value of a canonical key; false at the end.
bool NextKeyPart(std::string_view* key, std::string_view* part) {
  if (key->empty()) return false;
  uint64_t len = 0;
  int shift = 0;
  size_t i = 0;
  while (i < key->size()) {
    auto byte = static_cast<uint8_t>((*key)[i++]);
    len |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) break;
    shift += 7;
  }
  if (len > key->size() - i) len = key->size() - i;  // our own encoding: cannot happen
  *part = key->substr(i, len);
  key->remove_prefix(i + len);
  return true;
}

uint64_t LowBitsMask(int depth) {
  return depth >= kMaxBucketDepth ? ~0ULL : (1ULL << (4 * depth)) - 1;
}

}  // namespace

bool ListBucket(uint32_t source_count, uint32_t agent_count, int depth) {
  constexpr uint32_t kSmall = 16;       // rows: listing costs about what 16 summaries do
  constexpr uint32_t kAllExtra = 4096;  // rows the source lacks that one answer may list
  return depth >= kMaxBucketDepth || agent_count == 0 ||
         (source_count <= kSmall && agent_count <= kSmall) ||
         (source_count == 0 && agent_count <= kAllExtra);
}

bool BucketPath::Contains(uint64_t key_hash) const {
  return (key_hash & LowBitsMask(depth)) == prefix;
}

BucketPath BucketPath::Child(int index) const {
  BucketPath child;
  child.depth = static_cast<uint8_t>(depth + 1);
  child.prefix = prefix | (static_cast<uint64_t>(index) << (4 * depth));
  return child;
}

RowHasher::RowHasher(const TableSpec& spec) : spec_(spec), key_indexes_(spec.KeyIndexes()) {}

void RowHasher::Hash(const RowBatch& rows, size_t row, RowDigest* out) {
  out->key.clear();
  for (size_t k : key_indexes_) {
    key_scratch_.clear();
    AppendCanonical(spec_.columns[k], rows.Cell(row, k), &key_scratch_);
    PutVarint(key_scratch_.size(), &out->key);
    out->key += key_scratch_;
  }
  scratch_.clear();
  for (size_t c = 0; c < spec_.columns.size(); ++c) {
    if (rows.IsNull(row, c)) {
      scratch_.push_back('\0');
      continue;
    }
    scratch_.push_back('\1');
    size_t len_at = scratch_.size();
    scratch_.append(4, '\0');  // fixed-width length, patched below
    size_t start = scratch_.size();
    AppendCanonical(spec_.columns[c], rows.Cell(row, c), &scratch_);
    auto len = static_cast<uint32_t>(scratch_.size() - start);
    for (int b = 0; b < 4; ++b) scratch_[len_at + b] = static_cast<char>((len >> (8 * b)) & 0xff);
  }
  out->key_hash = XXH3_64bits_withSeed(out->key.data(), out->key.size(), kKeySeed);
  out->row_hash = XXH3_64bits_withSeed(scratch_.data(), scratch_.size(), kRowSeed);
}

std::string RowHasher::KeyOf(const std::vector<std::string_view>& key_cells) {
  std::string key;
  std::string canonical;
  for (size_t i = 0; i < key_cells.size() && i < key_indexes_.size(); ++i) {
    canonical.clear();
    AppendCanonical(spec_.columns[key_indexes_[i]], key_cells[i], &canonical);
    PutVarint(canonical.size(), &key);
    key += canonical;
  }
  return key;
}

int RowHasher::CompareKeys(std::string_view a, std::string_view b) const {
  std::string_view pa, pb;
  for (size_t k : key_indexes_) {
    bool has_a = NextKeyPart(&a, &pa);
    bool has_b = NextKeyPart(&b, &pb);
    if (!has_a || !has_b) return static_cast<int>(has_a) - static_cast<int>(has_b);
    int c = CompareCanonical(spec_.columns[k], pa, pb);
    if (c != 0) return c;
  }
  return 0;
}

void RowHasher::AppendKeyCell(std::string_view cell, std::string* key) {
  PutVarint(cell.size(), key);
  key->append(cell);
}

std::vector<std::string_view> RowHasher::SplitKey(std::string_view key) {
  std::vector<std::string_view> parts;
  std::string_view part;
  while (NextKeyPart(&key, &part)) parts.push_back(part);
  return parts;
}

RangeSummary DigestedRange::Summary(const BucketPath& path) const {
  RangeSummary s;
  for (const RowDigest& r : rows_) {
    if (!path.Contains(r.key_hash)) continue;
    ++s.count;
    s.digest += r.row_hash;
  }
  return s;
}

std::array<RangeSummary, kRangeFanout> DigestedRange::Children(const BucketPath& path) const {
  std::array<RangeSummary, kRangeFanout> children{};
  const int shift = 4 * path.depth;
  for (const RowDigest& r : rows_) {
    if (!path.Contains(r.key_hash)) continue;
    RangeSummary& s = children[(r.key_hash >> shift) & (kRangeFanout - 1)];
    ++s.count;
    s.digest += r.row_hash;
  }
  return children;
}

std::vector<size_t> DigestedRange::RowsIn(const BucketPath& path) const {
  std::vector<size_t> out;
  for (size_t i = 0; i < rows_.size(); ++i) {
    if (path.Contains(rows_[i].key_hash)) out.push_back(i);
  }
  return out;
}

BucketDiff CompareBucket(RowHasher& hasher, const DigestedRange& source,
                         const std::vector<size_t>& source_rows,
                         const std::vector<ListedRow>& agent_rows) {
  std::unordered_map<std::string, size_t> agent_by_key;
  agent_by_key.reserve(agent_rows.size() * 2);
  std::vector<std::string_view> cells;
  for (size_t i = 0; i < agent_rows.size(); ++i) {
    cells.assign(agent_rows[i].key.begin(), agent_rows[i].key.end());
    agent_by_key.emplace(hasher.KeyOf(cells), i);
  }
  BucketDiff diff;
  for (size_t s : source_rows) {
    const RowDigest& row = source.rows()[s];
    auto it = agent_by_key.find(row.key);
    if (it == agent_by_key.end()) {
      diff.missing.push_back(s);
      continue;
    }
    if (agent_rows[it->second].row_hash != row.row_hash) diff.changed.push_back(s);
    agent_by_key.erase(it);
  }
  for (const auto& [key, index] : agent_by_key) diff.extra.push_back(index);
  std::sort(diff.extra.begin(), diff.extra.end());
  return diff;
}

std::vector<int> DifferingChildren(const std::array<RangeSummary, kRangeFanout>& mine,
                                   const std::array<RangeSummary, kRangeFanout>& theirs) {
  std::vector<int> out;
  for (int i = 0; i < kRangeFanout; ++i) {
    if (!(mine[i] == theirs[i])) out.push_back(i);
  }
  return out;
}

}  // namespace dx
