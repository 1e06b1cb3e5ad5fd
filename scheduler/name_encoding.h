// NameEncoding: how a provider share spells its file names. Names travel as UTF-8; a share fed
// from Windows often writes them in GBK/GB18030 instead, which the file resource declares
// (name_encoding: gb18030) so names are converted. A name that is not valid in the declared
// encoding is refused for that file alone, with the name shown with \xNN escapes.
// Not thread-safe (iconv state): one per run.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace dx::scheduler {

class NameEncoding {
 public:
  // "utf-8" (or empty: names must be UTF-8 already) or an iconv name such as "gb18030",
  // "gbk", "big5"; InvalidArgument when the system does not know it.
  static Result<NameEncoding> Open(const std::string& encoding);
  NameEncoding(NameEncoding&&) noexcept;
  NameEncoding& operator=(NameEncoding&&) noexcept;
  ~NameEncoding();

  // One name (no '/') as UTF-8; InvalidArgument when it is not valid in the encoding.
  Result<std::string> ToUtf8(std::string_view raw) const;
  const std::string& name() const { return name_; }

 private:
  NameEncoding() = default;
  std::string name_;
  void* cd_ = nullptr;  // iconv_t; null for UTF-8
};

}  // namespace dx::scheduler
