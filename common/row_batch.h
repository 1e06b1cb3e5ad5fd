// RowBatch: a block of rows of text cells (UTF-8, NULL-aware) stored contiguously, and its
// compact binary encoding (row count, column count, then per cell a varint length+1, 0 = NULL).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace dx {

class RowBatch {
 public:
  explicit RowBatch(size_t columns = 0) : columns_(columns) {}

  // Cells are appended row-major; a row is complete after `columns()` cells.
  void AddCell(std::string_view value);
  void AddNull();
  size_t columns() const { return columns_; }
  size_t rows() const { return columns_ == 0 ? 0 : ends_.size() / columns_; }
  bool IsNull(size_t row, size_t col) const { return nulls_[row * columns_ + col] != 0; }
  std::string_view Cell(size_t row, size_t col) const;
  size_t payload_bytes() const { return data_.size(); }
  // The same rows, cell for cell (NULLs included).
  bool operator==(const RowBatch& other) const = default;
  void Clear();

  // Appends the encoding of this batch to `out`.
  void EncodeTo(std::string* out) const;
  // Decodes a batch, checking every length; a malformed batch is kDataLoss.
  static Result<RowBatch> Decode(std::string_view in);

 private:
  size_t columns_;
  std::string data_;
  std::vector<uint32_t> ends_;  // end offset of each cell in data_
  std::vector<uint8_t> nulls_;
};

}  // namespace dx
