#include "scheduler/api/router.h"

#include <cctype>

namespace dx::scheduler {
namespace {

std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    out.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return out;
}

bool IsParam(const std::string& segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

}  // namespace

bool PercentDecode(const std::string& in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size() || !std::isxdigit(static_cast<unsigned char>(in[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      return false;
    }
    out->push_back(static_cast<char>(std::stoi(in.substr(i + 1, 2), nullptr, 16)));
    i += 2;
  }
  return true;
}

void Router::Add(Route route) { routes_.push_back(std::move(route)); }

const Route* Router::Match(const std::string& method, const std::string& raw_path,
                           std::map<std::string, std::string>* params,
                           std::vector<std::string>* methods) const {
  const std::vector<std::string> got = Split(raw_path);
  const Route* found = nullptr;
  for (const Route& r : routes_) {
    const std::vector<std::string> want = Split(r.pattern);
    if (want.size() != got.size()) continue;
    std::map<std::string, std::string> values;
    bool ok = true;
    for (size_t i = 0; i < want.size() && ok; ++i) {
      if (IsParam(want[i])) {
        std::string decoded;
        ok = !got[i].empty() && PercentDecode(got[i], &decoded);
        values[want[i].substr(1, want[i].size() - 2)] = decoded;
      } else {
        std::string decoded;
        ok = PercentDecode(got[i], &decoded) && decoded == want[i];
      }
    }
    if (!ok) continue;
    if (methods) methods->push_back(r.method);
    if (r.method == method && found == nullptr) {
      found = &r;
      if (params) *params = std::move(values);
    }
  }
  return found;
}

}  // namespace dx::scheduler
