#include "scheduler/masking.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstring>

#include "common/sha256.h"

namespace dx::scheduler {
namespace {

constexpr size_t kBlock = 64;   // SHA-256 block
constexpr size_t kDigest = 32;  // SHA-256 digest

// Bytes of the UTF-8 character starting at `s[i]`; 1 for a byte that does not start a
// well-formed one (so malformed input still masks byte by byte, never reads past the end).
size_t CharBytes(std::string_view s, size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  size_t n = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xe ? 3 : (b >> 3) == 0x1e ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 1;
  for (size_t k = 1; k < n; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return 1;
  }
  return n;
}

std::string_view TrimPadding(std::string_view v) {
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  return v;
}

bool IsText(ColumnType t) {
  return t == ColumnType::kVarchar || t == ColumnType::kChar || t == ColumnType::kText;
}

}  // namespace

struct KeyedHash::Contexts {
  EVP_MD_CTX* inner = nullptr;  // SHA-256 after the key XOR ipad block
  EVP_MD_CTX* outer = nullptr;  // SHA-256 after the key XOR opad block
  EVP_MD_CTX* work = nullptr;
  ~Contexts() {
    EVP_MD_CTX_free(inner);
    EVP_MD_CTX_free(outer);
    EVP_MD_CTX_free(work);
  }
};

KeyedHash::KeyedHash(std::string_view key) : ctx_(std::make_unique<Contexts>()) {
  // HMAC (RFC 2104): a key longer than a block is hashed first, then padded with zeros.
  unsigned char k[kBlock] = {};
  if (key.size() > kBlock) {
    unsigned int n = 0;
    EVP_Digest(key.data(), key.size(), k, &n, EVP_sha256(), nullptr);
  } else {
    std::memcpy(k, key.data(), key.size());
  }
  unsigned char ipad[kBlock];
  unsigned char opad[kBlock];
  for (size_t i = 0; i < kBlock; ++i) {
    ipad[i] = static_cast<unsigned char>(k[i] ^ 0x36);
    opad[i] = static_cast<unsigned char>(k[i] ^ 0x5c);
  }
  ctx_->inner = EVP_MD_CTX_new();
  ctx_->outer = EVP_MD_CTX_new();
  ctx_->work = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx_->inner, EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx_->inner, ipad, kBlock);
  EVP_DigestInit_ex(ctx_->outer, EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx_->outer, opad, kBlock);
  OPENSSL_cleanse(k, sizeof(k));
  OPENSSL_cleanse(ipad, sizeof(ipad));
  OPENSSL_cleanse(opad, sizeof(opad));
}

KeyedHash::~KeyedHash() = default;

void KeyedHash::AppendHex(std::string_view value, std::string* out) {
  unsigned char inner[kDigest];
  unsigned char digest[kDigest];
  unsigned int n = 0;
  EVP_MD_CTX_copy_ex(ctx_->work, ctx_->inner);
  EVP_DigestUpdate(ctx_->work, value.data(), value.size());
  EVP_DigestFinal_ex(ctx_->work, inner, &n);
  EVP_MD_CTX_copy_ex(ctx_->work, ctx_->outer);
  EVP_DigestUpdate(ctx_->work, inner, kDigest);
  EVP_DigestFinal_ex(ctx_->work, digest, &n);
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char b : digest) {
    out->push_back(kHex[b >> 4]);
    out->push_back(kHex[b & 0xf]);
  }
}

std::string KeyedHash::Hex(std::string_view value) {
  std::string out;
  AppendHex(value, &out);
  return out;
}

std::string MaskingKeyFor(std::string_view master_key, std::string_view organisation) {
  KeyedHash hash(master_key);
  std::string label = "dx masking key for organisation ";
  label.append(organisation.data(), organisation.size());
  return hash.Hex(label);
}

void AppendPartialMask(std::string_view value, int keep_first, int keep_last, std::string* out) {
  // Character boundaries first: masks count characters, not bytes.
  size_t chars = 0;
  for (size_t i = 0; i < value.size(); i += CharBytes(value, i)) ++chars;
  if (chars == 0) return;
  const size_t shown_first = std::min<size_t>(std::max(keep_first, 0), chars - 1);
  const size_t shown_last = std::min<size_t>(std::max(keep_last, 0), chars - 1 - shown_first);
  size_t c = 0;
  for (size_t i = 0; i < value.size(); ++c) {
    const size_t n = CharBytes(value, i);
    if (c < shown_first || c >= chars - shown_last) {
      out->append(value.data() + i, n);
    } else {
      out->push_back('*');
    }
    i += n;
  }
}

std::string PartialMask(std::string_view value, int keep_first, int keep_last) {
  std::string out;
  AppendPartialMask(value, keep_first, keep_last, &out);
  return out;
}

TableMasking::~TableMasking() = default;

Result<std::unique_ptr<TableMasking>> TableMasking::Make(const TableSpec& table,
                                                         const std::vector<MaskingRule>& rules,
                                                         std::string_view key) {
  std::unique_ptr<TableMasking> m(new TableMasking());
  m->read_.table = table.table;
  m->delivered_.table = table.table;
  for (const ColumnSpec& c : table.columns) {
    const MaskingRule* rule = nullptr;
    for (const MaskingRule& r : rules) {
      if (r.column == c.name) rule = &r;
    }
    const std::string at = "masking of column '" + c.name + "': ";
    Column col;
    ColumnSpec delivered = c;
    const std::string method = rule ? rule->method : "keep";
    if (method == "drop") {
      if (c.primary_key) {
        return FailedPrecondition(at + "the primary key cannot be dropped (rows are found by it)");
      }
      continue;
    }
    if (method != "keep" && method != "hash" && method != "partial") {
      return FailedPrecondition(at + "unknown method '" + method +
                                "' (expected keep, hash, partial or drop)");
    }
    if (method != "keep") {
      if (c.primary_key) {
        return FailedPrecondition(at + "a primary key is delivered as it is (see " +
                                  "docs/GOVERNANCE.md, masking)");
      }
      if (!IsText(c.type)) {
        return FailedPrecondition(at + method + " applies to text columns, not " +
                                  ColumnTypeName(c));
      }
      col.fixed_width = c.type == ColumnType::kChar;
      m->passthrough_ = false;
    }
    if (method == "hash") {
      if (key.empty()) return FailedPrecondition(at + "hash needs the masking key; none is set");
      col.method = Column::Method::kHash;
      delivered.type = ColumnType::kChar;
      delivered.length = kMaskedHashChars;
      delivered.scale = 0;
      if (!m->hash_) m->hash_ = std::make_unique<KeyedHash>(key);
    } else if (method == "partial") {
      if (rule->keep_first < 0 || rule->keep_last < 0 || rule->keep_first + rule->keep_last == 0) {
        return FailedPrecondition(at + "partial needs characters to show (FIRST:LAST, e.g. 3:4)");
      }
      col.method = Column::Method::kPartial;
      col.keep_first = rule->keep_first;
      col.keep_last = rule->keep_last;
    }
    m->read_.columns.push_back(c);
    m->delivered_.columns.push_back(delivered);
    m->columns_.push_back(col);
  }
  return m;
}

void TableMasking::Apply(const RowBatch& raw, RowBatch* out) {
  const size_t ncols = columns_.size();
  for (size_t r = 0; r < raw.rows(); ++r) {
    for (size_t c = 0; c < ncols; ++c) {
      if (raw.IsNull(r, c)) {
        out->AddNull();
        continue;
      }
      const Column& col = columns_[c];
      std::string_view v = raw.Cell(r, c);
      if (col.method == Column::Method::kKeep) {
        out->AddCell(v);
        continue;
      }
      if (col.fixed_width) v = TrimPadding(v);
      cell_.clear();
      if (col.method == Column::Method::kHash) {
        hash_->AppendHex(v, &cell_);
      } else {
        AppendPartialMask(v, col.keep_first, col.keep_last, &cell_);
      }
      out->AddCell(cell_);
    }
  }
}

}  // namespace dx::scheduler
