// Paths of delivered files: relative to a root, never allowed to leave it, and always UTF-8
// on the wire (names in other encodings are converted or refused at the scheduler).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace dx {

// True for "a/b.pdf": not absolute, no "." or ".." or empty parts, no NUL.
bool IsSafeRelativePath(std::string_view path);
// "a/b/c.pdf" -> {"a", "b", "c.pdf"}.
std::vector<std::string> SplitPath(std::string_view path);
// True when `text` is well-formed UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF).
bool IsValidUtf8(std::string_view text);
// `text` with every byte that is not part of well-formed UTF-8 written as \xNN, so that a
// name in an unknown encoding can be shown (receipts, logs, JSON) without breaking anything.
std::string EscapeInvalidUtf8(std::string_view text);
// True when `path` is `folder` or lies under it ("a/b" is under "a", "ab" is not).
bool IsSameOrUnder(std::string_view path, std::string_view folder);

}  // namespace dx
