#include "scheduler/name_encoding.h"

#include <iconv.h>

#include <cerrno>
#include <cstring>

#include "common/ascii.h"
#include "common/file_path.h"

namespace dx::scheduler {

Result<NameEncoding> NameEncoding::Open(const std::string& encoding) {
  NameEncoding e;
  std::string lower = AsciiLower(encoding);
  if (lower.empty() || lower == "utf-8" || lower == "utf8") {
    e.name_ = "utf-8";
    return e;
  }
  iconv_t cd = ::iconv_open("UTF-8", encoding.c_str());
  if (cd == reinterpret_cast<iconv_t>(-1)) {
    return InvalidArgument("unknown name encoding '" + encoding + "' (e.g. utf-8, gb18030, big5)");
  }
  e.name_ = encoding;
  e.cd_ = cd;
  return e;
}

NameEncoding::NameEncoding(NameEncoding&& o) noexcept : name_(std::move(o.name_)), cd_(o.cd_) {
  o.cd_ = nullptr;
}

NameEncoding& NameEncoding::operator=(NameEncoding&& o) noexcept {
  if (this != &o) {
    if (cd_ != nullptr) ::iconv_close(static_cast<iconv_t>(cd_));
    name_ = std::move(o.name_);
    cd_ = o.cd_;
    o.cd_ = nullptr;
  }
  return *this;
}

NameEncoding::~NameEncoding() {
  if (cd_ != nullptr) ::iconv_close(static_cast<iconv_t>(cd_));
}

Result<std::string> NameEncoding::ToUtf8(std::string_view raw) const {
  auto refuse = [&]() {
    return InvalidArgument("the name '" + EscapeInvalidUtf8(raw) + "' is not valid " +
                           (cd_ == nullptr ? std::string("UTF-8 (if the share writes names in "
                                                         "GBK, set name_encoding: gb18030 on "
                                                         "the file resource)")
                                           : name_));
  };
  if (cd_ == nullptr) {
    if (!IsValidUtf8(raw)) return refuse();
    return std::string(raw);
  }
  auto cd = static_cast<iconv_t>(cd_);
  ::iconv(cd, nullptr, nullptr, nullptr, nullptr);  // reset the shift state
  std::string in(raw);
  std::string out(raw.size() * 4 + 16, '\0');
  char* in_p = in.data();
  size_t in_left = in.size();
  char* out_p = out.data();
  size_t out_left = out.size();
  if (::iconv(cd, &in_p, &in_left, &out_p, &out_left) == static_cast<size_t>(-1) ||
      ::iconv(cd, nullptr, nullptr, &out_p, &out_left) == static_cast<size_t>(-1)) {
    return refuse();
  }
  out.resize(out.size() - out_left);
  if (!IsValidUtf8(out) || out.find('/') != std::string::npos || out.empty()) return refuse();
  return out;
}

}  // namespace dx::scheduler
