#include "common/watermark.h"

#include <nlohmann/json.hpp>

namespace dx {

std::string Watermark::Encode() const {
  if (empty() && resync.empty()) return "";
  nlohmann::json j = nlohmann::json::object();
  if (in_full_load()) {
    j["full_load_until"] = full_load_until;
  } else if (!empty()) {
    j["after"] = updatetime;
  }
  j["key"] = key;
  if (!resync.empty()) j["resync"] = resync;
  return j.dump();
}

Result<Watermark> Watermark::Decode(const std::string& text) {
  Watermark w;
  if (text.empty()) return w;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  auto bad = [&] { return DataLoss("malformed watermark '" + text + "'"); };
  if (!j.is_object() || !j.contains("key") || !j["key"].is_array()) return bad();
  if (j.contains("full_load_until") && j["full_load_until"].is_string()) {
    w.full_load_until = j["full_load_until"].get<std::string>();
  } else if (j.contains("after") && j["after"].is_string()) {
    w.updatetime = j["after"].get<std::string>();
  } else if (!j.contains("resync") || !j["key"].empty()) {
    return bad();  // only a reset (resync, no position yet) has neither
  }
  if (j.contains("resync")) {
    if (!j["resync"].is_string()) return bad();
    w.resync = j["resync"].get<std::string>();
  }
  for (const auto& k : j["key"]) {
    if (!k.is_string()) return bad();
    w.key.push_back(k.get<std::string>());
  }
  return w;
}

bool SpelledToTheSecond(std::string_view t) {
  if (t.size() < 19) return false;
  for (size_t i = 0; i < 19; ++i) {
    const char want = i == 4 || i == 7 ? '-' : i == 10 ? ' ' : i == 13 || i == 16 ? ':' : '0';
    if (want == '0' ? (t[i] < '0' || t[i] > '9') : t[i] != want) return false;
  }
  return true;
}

}  // namespace dx
