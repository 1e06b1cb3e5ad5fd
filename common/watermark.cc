#include "common/watermark.h"

#include <nlohmann/json.hpp>

namespace dx {

std::string Watermark::Encode() const {
  if (empty()) return "";
  nlohmann::json j = nlohmann::json::array();
  j.push_back(updatetime);
  for (const std::string& k : key) j.push_back(k);
  return j.dump();
}

Result<Watermark> Watermark::Decode(const std::string& text) {
  Watermark w;
  if (text.empty()) return w;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array() || j.empty()) return DataLoss("malformed watermark '" + text + "'");
  for (size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_string()) return DataLoss("malformed watermark '" + text + "'");
    if (i == 0) {
      w.updatetime = j[i].get<std::string>();
    } else {
      w.key.push_back(j[i].get<std::string>());
    }
  }
  return w;
}

}  // namespace dx
