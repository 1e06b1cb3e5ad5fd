#include "scheduler/source_text.h"

#include <iconv.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/ascii.h"

namespace dx::scheduler {
namespace {

// Columns whose cells are text on the wire; binary columns travel as bytes and are left alone.
bool IsTextual(ColumnType type) {
  switch (type) {
    case ColumnType::kInteger:
    case ColumnType::kBigint:
    case ColumnType::kDecimal:
    case ColumnType::kVarchar:
    case ColumnType::kChar:
    case ColumnType::kText:
    case ColumnType::kDate:
    case ColumnType::kDatetime:
      return true;
    default:
      return false;
  }
}

// Character sets MariaDB converts to utf8mb4 without loss.
bool IsLosslessCharset(const std::string& charset) {
  return charset.empty() || charset == "binary" || charset == "ascii" ||
         charset.rfind("utf", 0) == 0 || charset == "ucs2";
}

bool IsAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (static_cast<unsigned char>(c) & 0x80) == 0; });
}

// A cell as it may appear in a message: printable ASCII as is, other bytes as \xNN.
std::string Printable(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s.substr(0, 64)) {
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  if (s.size() > 64) out += "...";
  return out;
}

std::string HexByte(unsigned char c) {
  static const char kHex[] = "0123456789ABCDEF";
  return std::string("0x") + kHex[c >> 4] + kHex[c & 15];
}

}  // namespace

bool IsValidUtf8(std::string_view s, size_t* bad_offset) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    // ASCII runs, eight bytes at a time.
    while (i + 8 <= n) {
      uint64_t word;
      std::memcpy(&word, p + i, 8);
      if ((word & 0x8080808080808080ULL) != 0) break;
      i += 8;
    }
    if (i >= n) break;
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0;
    uint32_t min = 0;
    if ((c & 0xe0) == 0xc0) {
      len = 2, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      if (bad_offset) *bad_offset = i;
      return false;
    }
    if (i + len > n) {
      if (bad_offset) *bad_offset = i;
      return false;
    }
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) {
        if (bad_offset) *bad_offset = i;
        return false;
      }
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      if (bad_offset) *bad_offset = i;
      return false;
    }
    i += len;
  }
  return true;
}

Status CheckSourceEncoding(const std::string& encoding) {
  iconv_t cd = iconv_open("UTF-8", encoding.c_str());
  if (cd == reinterpret_cast<iconv_t>(-1)) {
    return InvalidArgument("unknown encoding '" + encoding +
                           "' (iconv names such as gbk, gb18030, big5, latin1)");
  }
  // ASCII must stay ASCII (keys and numbers are compared at the source as they are).
  char ascii[] = "AZaz09 -:.";
  char out[64];
  char* in = ascii;
  size_t in_left = sizeof(ascii) - 1;
  char* o = out;
  size_t out_left = sizeof(out);
  size_t rc = iconv(cd, &in, &in_left, &o, &out_left);
  iconv_close(cd);
  if (rc == static_cast<size_t>(-1) ||
      std::string_view(out, sizeof(out) - out_left) != "AZaz09 -:.") {
    return InvalidArgument("encoding '" + encoding +
                           "' does not keep ASCII as it is (use an ASCII-compatible encoding "
                           "such as gbk, gb18030, big5, latin1)");
  }
  return Status::Ok();
}

Result<std::unique_ptr<SourceText>> SourceText::Make(TextSpec spec) {
  std::unique_ptr<SourceText> text(new SourceText(std::move(spec)));
  const TextSpec& s = text->spec_;
  if (!s.encoding.empty()) {
    DX_RETURN_IF_ERROR(CheckSourceEncoding(s.encoding));
    text->iconv_ = iconv_open("UTF-8", s.encoding.c_str());
  }
  for (size_t i = 0; i < s.columns.size(); ++i) {
    const ColumnSpec& c = s.columns[i];
    text->textual_.push_back(IsTextual(c.type) || c.primary_key);
    const std::string charset = i < s.charsets.size() ? AsciiLower(s.charsets[i]) : "";
    text->check_round_trip_.push_back(s.dbms == Dbms::kMysql && IsTextual(c.type) &&
                                      !IsLosslessCharset(charset) && IsValidIdentifier(charset));
    if (c.primary_key) text->keys_.push_back(i);
  }
  return text;
}

SourceText::~SourceText() {
  if (iconv_ != nullptr) iconv_close(static_cast<iconv_t>(iconv_));
}

std::string SourceText::KeyOf(const RowBatch& batch, size_t row) const {
  std::string out;
  for (size_t k : keys_) {
    out += (out.empty() ? "" : ", ") + spec_.columns[k].name + "=" + Printable(batch.Cell(row, k));
  }
  return out;
}

Result<bool> SourceText::RoundTrips(const RowBatch& batch, size_t row, size_t col) {
  if (!verify_) {
    DX_ASSIGN_OR_RETURN(verify_, OdbcConnection::Open(spec_.connection));
  }
  SqlDialect d(spec_.dbms);
  const std::string column = d.Quote(spec_.columns[col].name);
  const std::string charset = AsciiLower(spec_.charsets[col]);
  std::string sql = "SELECT COUNT(*) FROM " + d.Quote(spec_.source_table) + " WHERE ";
  for (size_t k : keys_) sql += d.Quote(spec_.columns[k].name) + " = ? AND ";
  sql += "CAST(CONVERT(CONVERT(" + column + " USING utf8mb4) USING " + charset +
         ") AS BINARY) <> CAST(" + column + " AS BINARY)";
  DX_ASSIGN_OR_RETURN(auto stmt, verify_->Prepare(sql));
  DX_RETURN_IF_ERROR(stmt->DeclareParams(keys_.size()));
  for (size_t i = 0; i < keys_.size(); ++i) {
    DX_RETURN_IF_ERROR(stmt->SetParam(i, batch.Cell(row, keys_[i])));
  }
  DX_RETURN_IF_ERROR(stmt->Execute());
  DX_ASSIGN_OR_RETURN(bool has_row, stmt->Fetch());
  std::string lossy;
  if (has_row) DX_RETURN_IF_ERROR(stmt->GetText(0, &lossy).status());
  return lossy.empty() || lossy == "0";
}

Status SourceText::Normalize(RowBatch* batch) {
  const size_t columns = spec_.columns.size();
  auto where = [&](size_t row, size_t col) {
    return "source table '" + spec_.source_table + "': column '" + spec_.columns[col].name +
           "' of the row with key " + KeyOf(*batch, row);
  };
  if (iconv_ == nullptr) {
    for (size_t r = 0; r < batch->rows(); ++r) {
      for (size_t c = 0; c < columns; ++c) {
        if (!textual_[c] || batch->IsNull(r, c)) continue;
        std::string_view cell = batch->Cell(r, c);
        size_t bad = 0;
        if (!IsValidUtf8(cell, &bad)) {
          return InvalidArgument(where(r, c) + " is not valid UTF-8 (byte " +
                                 HexByte(static_cast<unsigned char>(cell[bad])) + " at offset " +
                                 std::to_string(bad) +
                                 "); if the source holds another encoding, set the source's "
                                 "encoding (e.g. encoding: gbk)");
        }
        if (check_round_trip_[c] && cell.find('?') != std::string_view::npos) {
          DX_ASSIGN_OR_RETURN(bool kept, RoundTrips(*batch, r, c));
          if (!kept) {
            return InvalidArgument(where(r, c) + " holds a character that " + spec_.charsets[c] +
                                   " cannot convert to UTF-8 (the source delivers it as '?')");
          }
        }
      }
    }
    return Status::Ok();
  }
  // Another encoding: every text cell is converted (ASCII is the same in every encoding iconv
  // is given here, so it is copied as is); keys must be ASCII to stay comparable at the source.
  RowBatch out(columns);
  auto cd = static_cast<iconv_t>(iconv_);
  for (size_t r = 0; r < batch->rows(); ++r) {
    for (size_t c = 0; c < columns; ++c) {
      if (batch->IsNull(r, c)) {
        out.AddNull();
        continue;
      }
      std::string_view cell = batch->Cell(r, c);
      if (!textual_[c] || IsAscii(cell)) {
        out.AddCell(cell);
        continue;
      }
      if (spec_.columns[c].primary_key) {
        return InvalidArgument(where(r, c) + " is a key that is not plain ASCII: keys of a " +
                               spec_.encoding + " source must be ASCII");
      }
      converted_.resize(cell.size() * 4 + 16);
      char* in = const_cast<char*>(cell.data());
      size_t in_left = cell.size();
      char* o = converted_.data();
      size_t out_left = converted_.size();
      iconv(cd, nullptr, nullptr, nullptr, nullptr);
      size_t rc = iconv(cd, &in, &in_left, &o, &out_left);
      if (rc == static_cast<size_t>(-1) || in_left != 0) {
        const size_t offset = cell.size() - in_left;
        return InvalidArgument(where(r, c) + " is not valid " + spec_.encoding + " (byte " +
                               HexByte(static_cast<unsigned char>(cell[offset])) + " at offset " +
                               std::to_string(offset) + ")");
      }
      std::string_view utf8(converted_.data(), converted_.size() - out_left);
      if (!IsValidUtf8(utf8)) {
        return InvalidArgument(where(r, c) + " did not convert from " + spec_.encoding +
                               " to valid UTF-8");
      }
      out.AddCell(utf8);
    }
  }
  *batch = std::move(out);
  return Status::Ok();
}

Status SourceText::CheckPosition(const Watermark& position) const {
  bool ok = IsValidUtf8(position.updatetime) && IsValidUtf8(position.full_load_until);
  for (const std::string& k : position.key) ok = ok && IsValidUtf8(k);
  if (!ok) {
    return InvalidArgument("source table '" + spec_.source_table +
                           "': the UPDATETIME or key of the last row read is not valid UTF-8");
  }
  return Status::Ok();
}

}  // namespace dx::scheduler
