#include "common/wire.h"

#include <zstd.h>

namespace dx {

void ByteWriter::PutVarint(uint64_t v) {
  while (v >= 0x80) {
    out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out_.push_back(static_cast<char>(v));
}

void ByteWriter::PutString(std::string_view s) {
  PutVarint(s.size());
  out_.append(s.data(), s.size());
}

Status ByteReader::GetU8(uint8_t* v) {
  if (pos_ >= in_.size()) return DataLoss("truncated message (u8)");
  *v = static_cast<uint8_t>(in_[pos_++]);
  return Status::Ok();
}

Status ByteReader::GetVarint(uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos_ >= in_.size()) return DataLoss("truncated message (varint)");
    auto byte = static_cast<uint8_t>(in_[pos_++]);
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return Status::Ok();
    }
  }
  return DataLoss("malformed varint");
}

Status ByteReader::GetBytes(size_t n, std::string_view* s) {
  if (n > remaining()) return DataLoss("truncated message (bytes)");
  *s = in_.substr(pos_, n);
  pos_ += n;
  return Status::Ok();
}

Status ByteReader::GetStringView(std::string_view* s) {
  uint64_t len = 0;
  DX_RETURN_IF_ERROR(GetVarint(&len));
  return GetBytes(len, s);
}

Status ByteReader::GetString(std::string* s) {
  std::string_view view;
  DX_RETURN_IF_ERROR(GetStringView(&view));
  s->assign(view.data(), view.size());
  return Status::Ok();
}

namespace {

// One compression and one decompression context per thread, kept: a context made per call
// costs its tables' allocation and zeroing every time (a fresh process's page faults).
struct ZstdContexts {
  ZSTD_CCtx* compress = ZSTD_createCCtx();
  ZSTD_DCtx* decompress = ZSTD_createDCtx();
  ZstdContexts() = default;
  ZstdContexts(const ZstdContexts&) = delete;
  ZstdContexts& operator=(const ZstdContexts&) = delete;
  ~ZstdContexts() {
    ZSTD_freeCCtx(compress);
    ZSTD_freeDCtx(decompress);
  }
};

ZstdContexts& ThreadZstd() {
  thread_local ZstdContexts contexts;
  return contexts;
}

}  // namespace

Result<std::string> Compress(std::string_view raw, int level) {
  ZSTD_CCtx* cctx = ThreadZstd().compress;
  if (cctx == nullptr) return Internal("zstd: no memory for a compression context");
  std::string out(ZSTD_compressBound(raw.size()), '\0');
  size_t n = ZSTD_compressCCtx(cctx, out.data(), out.size(), raw.data(), raw.size(), level);
  if (ZSTD_isError(n)) return Internal(std::string("zstd compress: ") + ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

Result<std::string> Decompress(std::string_view in, size_t max_size) {
  unsigned long long size = ZSTD_getFrameContentSize(in.data(), in.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN) {
    return DataLoss("batch payload is not a zstd frame");
  }
  if (size > max_size) return DataLoss("batch payload larger than allowed");
  ZSTD_DCtx* dctx = ThreadZstd().decompress;
  if (dctx == nullptr) return Internal("zstd: no memory for a decompression context");
  std::string out(size, '\0');
  size_t n = ZSTD_decompressDCtx(dctx, out.data(), out.size(), in.data(), in.size());
  if (ZSTD_isError(n) || n != size) {
    return DataLoss(std::string("zstd decompress: ") + ZSTD_getErrorName(n));
  }
  return out;
}

}  // namespace dx
