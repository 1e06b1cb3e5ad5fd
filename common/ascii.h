// ASCII case folding for identifiers, driver names, SQL states and file extensions (bytes
// outside ASCII, such as UTF-8 Chinese, pass through unchanged).
#pragma once

#include <string>
#include <string_view>

namespace dx {

std::string AsciiLower(std::string_view text);

}  // namespace dx
