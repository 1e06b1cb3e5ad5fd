// Paths of delivered files: relative to a root, and never allowed to leave it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace dx {

// True for "a/b.pdf": not absolute, no "." or ".." or empty parts, no NUL.
bool IsSafeRelativePath(std::string_view path);
// "a/b/c.pdf" -> {"a", "b", "c.pdf"}.
std::vector<std::string> SplitPath(std::string_view path);

}  // namespace dx
