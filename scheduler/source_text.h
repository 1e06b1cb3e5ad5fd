// SourceText: makes sure the text a run sends is UTF-8, converted correctly from whatever the
// source holds, or fails the run before the batch leaves the scheduler.
//
//  - A source whose driver delivers another encoding (Source.encoding, e.g. a SQLite file that
//    a GBK application wrote) is converted strictly with iconv; a byte sequence that is not
//    valid in that encoding fails the run.
//  - MariaDB/MySQL convert a column of another character set (gbk, gb2312, latin1, ...) to the
//    connection's utf8mb4 themselves, and deliver '?' for a character they cannot convert (GBK's
//    user-defined area, where rare name characters live). A cell of such a column that holds
//    '?' is checked at the source (the stored value against its round trip through utf8mb4), so
//    a lost character fails the run instead of arriving as '?'.
//  - Whatever the source, no cell of a text-carrying column that is not valid UTF-8 is sent.
// Errors (kInvalidArgument) name the source table, the row's key and the column. Not
// thread-safe: one per run.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/odbc.h"
#include "common/row_batch.h"
#include "common/sql_dialect.h"
#include "common/table_spec.h"
#include "common/watermark.h"

namespace dx::scheduler {

struct TextSpec {
  Dbms dbms = Dbms::kGeneric;
  std::string connection;             // the source's connection string (round-trip checks)
  std::string source_table;           // the source's spelling
  std::vector<ColumnSpec> columns;    // delivered columns in wire order, source spelling
  std::vector<std::string> charsets;  // per column: MariaDB character set ("" = not known)
  std::string encoding;               // Source.encoding; "" = the driver delivers UTF-8
};

class SourceText {
 public:
  // kInvalidArgument when `spec.encoding` is unknown to iconv.
  static Result<std::unique_ptr<SourceText>> Make(TextSpec spec);
  ~SourceText();
  SourceText(const SourceText&) = delete;
  SourceText& operator=(const SourceText&) = delete;

  // Converts and checks every cell of `batch` in place (rows in the batch's order).
  Status Normalize(RowBatch* batch);
  // The watermark travels as JSON: its text must be UTF-8 too.
  Status CheckPosition(const Watermark& position) const;

 private:
  explicit SourceText(TextSpec spec) : spec_(std::move(spec)) {}
  std::string KeyOf(const RowBatch& batch, size_t row) const;
  // True when MariaDB delivered the cell without losing a character (round trip at the source).
  Result<bool> RoundTrips(const RowBatch& batch, size_t row, size_t col);

  TextSpec spec_;
  void* iconv_ = nullptr;               // iconv_t from spec_.encoding to UTF-8
  std::vector<bool> textual_;           // per column: carries text (checked / converted)
  std::vector<bool> check_round_trip_;  // per column: MariaDB converted it from a charset
  std::vector<size_t> keys_;
  std::unique_ptr<OdbcConnection> verify_;  // opened on the first '?' in such a column
  std::string converted_;
};

// Refuses an encoding name iconv does not know (for manifests: Source.encoding).
Status CheckSourceEncoding(const std::string& encoding);

// True when `text` is well-formed UTF-8 (no overlongs, surrogates or code points past
// U+10FFFF); `*bad_offset` gets the offset of the first bad byte otherwise.
bool IsValidUtf8(std::string_view text, size_t* bad_offset = nullptr);

}  // namespace dx::scheduler
