#include "scheduler/file_patterns.h"

#include <cstdint>

#include "common/file_path.h"

namespace dx::scheduler {
namespace {

// Length of the character (UTF-8 sequence, or one stray byte) at s[i].
size_t CharLength(std::string_view s, size_t i) {
  auto b = static_cast<uint8_t>(s[i]);
  size_t n = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
  if (i + n > s.size()) return 1;
  for (size_t k = 1; k < n; ++k) {
    if ((static_cast<uint8_t>(s[i + k]) & 0xC0) != 0x80) return 1;
  }
  return n;
}

// The code point at s[i] (a stray byte stands for itself); *len gets its length.
uint32_t CodePoint(std::string_view s, size_t i, size_t* len) {
  *len = CharLength(s, i);
  auto b = static_cast<uint8_t>(s[i]);
  if (*len == 1) return b;
  uint32_t cp = b & (0xFF >> (*len + 1));
  for (size_t k = 1; k < *len; ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3F);
  return cp;
}

// Reads the set starting at pat[p] == '['; returns the index after its ']' (or npos when it
// is not closed) and whether `cp` is in it.
size_t MatchSet(std::string_view pat, size_t p, uint32_t cp, bool* in) {
  size_t i = p + 1;
  bool negate = i < pat.size() && (pat[i] == '!' || pat[i] == '^');
  if (negate) ++i;
  bool found = false;
  bool first = true;
  while (i < pat.size() && (first || pat[i] != ']')) {
    first = false;
    if (pat[i] == '\\' && i + 1 < pat.size()) ++i;
    size_t len = 0;
    uint32_t lo = CodePoint(pat, i, &len);
    i += len;
    uint32_t hi = lo;
    if (i + 1 < pat.size() && pat[i] == '-' && pat[i + 1] != ']') {
      ++i;
      if (pat[i] == '\\' && i + 1 < pat.size()) ++i;
      hi = CodePoint(pat, i, &len);
      i += len;
    }
    if (cp >= lo && cp <= hi) found = true;
  }
  if (i >= pat.size()) return std::string_view::npos;
  *in = found != negate;
  return i + 1;
}

// Matches one level: `name` has no '/'.
bool MatchName(std::string_view pat, std::string_view name) {
  size_t p = 0;
  size_t n = 0;
  size_t star_p = std::string_view::npos;
  size_t star_n = 0;
  while (n < name.size()) {
    if (p < pat.size()) {
      char c = pat[p];
      if (c == '*') {
        while (p < pat.size() && pat[p] == '*') ++p;
        star_p = p;
        star_n = n;
        continue;
      }
      size_t name_len = 0;
      uint32_t cp = CodePoint(name, n, &name_len);
      if (c == '?') {
        ++p;
        n += name_len;
        continue;
      }
      if (c == '[') {
        bool in = false;
        size_t end = MatchSet(pat, p, cp, &in);
        if (end != std::string_view::npos) {
          if (in) {
            p = end;
            n += name_len;
            continue;
          }
        } else if (name[n] == '[') {  // an unclosed '[' is an ordinary character
          ++p;
          ++n;
          continue;
        }
      } else {
        if (c == '\\' && p + 1 < pat.size()) ++p;
        size_t pat_len = CharLength(pat, p);
        if (pat.substr(p, pat_len) == name.substr(n, name_len)) {
          p += pat_len;
          n += name_len;
          continue;
        }
      }
    }
    if (star_p == std::string_view::npos) return false;
    p = star_p;
    star_n += CharLength(name, star_n);
    n = star_n;
  }
  while (p < pat.size() && pat[p] == '*') ++p;
  return p == pat.size();
}

bool MatchLevels(const std::vector<std::string>& pat, size_t i,
                 const std::vector<std::string>& path, size_t j) {
  while (i < pat.size() && pat[i] != "**") {
    if (j == path.size() || !MatchName(pat[i], path[j])) return false;
    ++i;
    ++j;
  }
  if (i == pat.size()) return j == path.size();
  while (i < pat.size() && pat[i] == "**") ++i;  // '**/**' is '**'
  for (size_t k = j; k <= path.size(); ++k) {
    if (MatchLevels(pat, i, path, k)) return true;
  }
  return false;
}

std::string_view TrimTrailingSlashes(std::string_view pattern) {
  while (pattern.size() > 1 && pattern.back() == '/') pattern.remove_suffix(1);
  return pattern;
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view path) {
  pattern = TrimTrailingSlashes(pattern);
  if (pattern.find('/') == std::string_view::npos) {
    size_t slash = path.rfind('/');
    return MatchName(pattern, slash == std::string_view::npos ? path : path.substr(slash + 1));
  }
  return MatchLevels(SplitPath(pattern), 0, SplitPath(path), 0);
}

bool MatchesAny(const std::vector<std::string>& patterns, std::string_view path) {
  for (size_t end = path.find('/');; end = path.find('/', end + 1)) {
    std::string_view prefix = path.substr(0, end);
    for (const std::string& p : patterns) {
      if (GlobMatch(p, prefix)) return true;
    }
    if (end == std::string_view::npos) return false;
  }
}

bool IsIncluded(std::string_view path, const std::vector<std::string>& include,
                const std::vector<std::string>& exclude) {
  if (!include.empty() && !MatchesAny(include, path)) return false;
  return !MatchesAny(exclude, path);
}

Status CheckPattern(const std::string& pattern, bool recursive) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("pattern '" + pattern + "' " + why);
  };
  if (pattern.empty()) return bad("is empty");
  if (pattern[0] == '/') {
    return bad("starts with '/': patterns are relative to the resource's directory");
  }
  if (!IsValidUtf8(pattern)) return bad("is not UTF-8");
  std::string_view trimmed = TrimTrailingSlashes(pattern);
  std::vector<std::string> levels = SplitPath(trimmed);
  size_t named = 0;
  for (const std::string& level : levels) {
    if (level.empty()) return bad("has an empty folder level ('//')");
    if (level == "." || level == "..")
      return bad("has a '" + level + "' level, which never matches");
    if (level != "**") ++named;
    for (size_t i = 0; i < level.size(); ++i) {
      if (level[i] == '\\') {
        if (i + 1 == level.size()) return bad("ends with a lone '\\'");
        ++i;
      } else if (level[i] == '[') {
        bool unused = false;
        if (MatchSet(level, i, 0, &unused) == std::string_view::npos) {
          return bad("has a '[' that is never closed (write '\\[' for the character)");
        }
      }
    }
  }
  if (!recursive && levels.size() > 1 && named > 1) {
    return bad("needs a folder, but the resource is not recursive (recursive: false)");
  }
  return Status::Ok();
}

bool MatchesEverything(const std::string& pattern) {
  for (const std::string& level : SplitPath(TrimTrailingSlashes(pattern))) {
    if (level.empty() || level.find_first_not_of('*') != std::string::npos) return false;
  }
  return true;
}

}  // namespace dx::scheduler
