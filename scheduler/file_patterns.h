// The include/exclude globs of a file resource. A pattern is a path relative to the
// resource's directory, matched one folder level at a time: '*' and '?' stay within one name
// (and match a leading '.'), '[...]' is a set of characters ('[!...]' its complement), '\'
// takes the next character literally, and a level that is exactly '**' matches zero or more
// folders. A pattern without '/' matches a name at any depth ("*.pdf" is "**/*.pdf"); a
// trailing '/' is ignored. An entry is excluded when it or one of its folders matches an
// exclude pattern, and - when there are include patterns - taken when it or one of its
// folders matches one of them (so "课件" or "课件/**" takes the whole folder). Characters are
// UTF-8 code points, whatever the process locale.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace dx::scheduler {

// True when `pattern` matches the whole of `path` ("a/b/c.pdf"); see above.
bool GlobMatch(std::string_view pattern, std::string_view path);

// True when `path` or one of its folders matches one of `patterns`.
bool MatchesAny(const std::vector<std::string>& patterns, std::string_view path);

// Whether an entry at `path` is taken by a resource with these patterns.
bool IsIncluded(std::string_view path, const std::vector<std::string>& include,
                const std::vector<std::string>& exclude);

// InvalidArgument (naming the pattern and why) for a pattern that is malformed or can never
// match: empty, absolute, with an empty, '.' or '..' level, an unclosed '[', a trailing '\',
// or (when the resource is not recursive) one that needs a folder.
Status CheckPattern(const std::string& pattern, bool recursive);
// True for an exclude pattern that takes away every file ("*", "**", "**/*").
bool MatchesEverything(const std::string& pattern);

}  // namespace dx::scheduler
