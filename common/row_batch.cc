#include "common/row_batch.h"

#include "common/wire.h"

namespace dx {

void RowBatch::AddCell(std::string_view value) {
  data_.append(value.data(), value.size());
  ends_.push_back(static_cast<uint32_t>(data_.size()));
  nulls_.push_back(0);
}

void RowBatch::AddNull() {
  ends_.push_back(static_cast<uint32_t>(data_.size()));
  nulls_.push_back(1);
}

std::string_view RowBatch::Cell(size_t row, size_t col) const {
  size_t i = row * columns_ + col;
  uint32_t begin = i == 0 ? 0 : ends_[i - 1];
  return std::string_view(data_).substr(begin, ends_[i] - begin);
}

void RowBatch::Clear() {
  data_.clear();
  ends_.clear();
  nulls_.clear();
}

void RowBatch::EncodeTo(std::string* out) const {
  ByteWriter w;
  w.buffer().swap(*out);
  w.PutVarint(rows());
  w.PutVarint(columns_);
  for (size_t i = 0; i < ends_.size(); ++i) {
    if (nulls_[i]) {
      w.PutVarint(0);
      continue;
    }
    uint32_t begin = i == 0 ? 0 : ends_[i - 1];
    w.PutVarint(static_cast<uint64_t>(ends_[i] - begin) + 1);
    w.buffer().append(data_, begin, ends_[i] - begin);
  }
  w.buffer().swap(*out);
}

Result<RowBatch> RowBatch::Decode(std::string_view in) {
  ByteReader r(in);
  uint64_t rows = 0;
  uint64_t cols = 0;
  DX_RETURN_IF_ERROR(r.GetVarint(&rows));
  DX_RETURN_IF_ERROR(r.GetVarint(&cols));
  if (cols == 0 || cols > 4096)
    return DataLoss("batch declares " + std::to_string(cols) + " columns");
  // rows × cols could overflow: compare by division.
  if (rows > in.size() / cols) return DataLoss("batch declares more cells than it holds");
  RowBatch batch(cols);
  batch.data_.reserve(in.size());
  batch.ends_.reserve(rows * cols);
  batch.nulls_.reserve(rows * cols);
  std::string_view cell;
  for (uint64_t i = 0; i < rows * cols; ++i) {
    uint64_t len1 = 0;
    DX_RETURN_IF_ERROR(r.GetVarint(&len1));
    if (len1 == 0) {
      batch.AddNull();
      continue;
    }
    DX_RETURN_IF_ERROR(r.GetBytes(len1 - 1, &cell));
    batch.AddCell(cell);
  }
  if (!r.done()) return DataLoss("trailing bytes after batch");
  return batch;
}

}  // namespace dx
