#include "common/config_value.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace dx {

struct ConfigValue::Impl {
  YAML::Node node;
  std::string file;
  std::string path;
  int parent_line = 0;  // used when the node itself is missing
};

ConfigValue::ConfigValue() : impl_(std::make_shared<Impl>()) {}
ConfigValue::~ConfigValue() = default;
ConfigValue::ConfigValue(const ConfigValue&) = default;
ConfigValue& ConfigValue::operator=(const ConfigValue&) = default;
ConfigValue::ConfigValue(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

namespace {

Result<std::vector<YAML::Node>> ParseAll(const std::string& text, const std::string& name) {
  try {
    return YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(name + ":" + std::to_string(e.mark.line + 1) +
                           ": YAML syntax: " + e.msg);
  }
}

}  // namespace

Result<std::vector<ConfigValue>> ConfigValue::LoadText(const std::string& text,
                                                       const std::string& source_name) {
  DX_ASSIGN_OR_RETURN(std::vector<YAML::Node> docs, ParseAll(text, source_name));
  std::vector<ConfigValue> out;
  for (YAML::Node& d : docs) {
    if (d.IsNull()) continue;  // an empty document between separators
    auto impl = std::make_shared<Impl>();
    impl->node = d;
    impl->file = source_name;
    out.push_back(ConfigValue(impl));
  }
  return out;
}

Result<std::vector<ConfigValue>> ConfigValue::LoadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return InvalidArgument(path + ": cannot read file");
  std::stringstream ss;
  ss << in.rdbuf();
  return LoadText(ss.str(), path);
}

bool ConfigValue::present() const { return impl_->node.IsDefined() && !impl_->node.IsNull(); }
bool ConfigValue::IsMap() const { return impl_->node.IsDefined() && impl_->node.IsMap(); }
bool ConfigValue::IsSequence() const { return impl_->node.IsDefined() && impl_->node.IsSequence(); }
bool ConfigValue::IsScalar() const { return impl_->node.IsDefined() && impl_->node.IsScalar(); }
const std::string& ConfigValue::path() const { return impl_->path; }

int ConfigValue::line() const {
  if (impl_->node.IsDefined() && !impl_->node.Mark().is_null()) return impl_->node.Mark().line + 1;
  return impl_->parent_line;
}

ConfigValue ConfigValue::operator[](const std::string& key) const {
  auto impl = std::make_shared<Impl>();
  impl->file = impl_->file;
  impl->path = impl_->path.empty() ? key : impl_->path + "." + key;
  impl->parent_line = line();
  if (IsMap()) {
    // yaml-cpp's const operator[] does not insert; it returns an invalid node when the key is
    // missing, and assigning or inspecting that node throws. Keep the default (null) then.
    const YAML::Node& parent = impl_->node;
    YAML::Node child = parent[key];
    if (child.IsDefined()) impl->node.reset(child);
  }
  return ConfigValue(impl);
}

std::vector<ConfigValue> ConfigValue::Items() const {
  std::vector<ConfigValue> out;
  if (!IsSequence()) return out;
  for (size_t i = 0; i < impl_->node.size(); ++i) {
    auto impl = std::make_shared<Impl>();
    impl->file = impl_->file;
    impl->path = impl_->path + "[" + std::to_string(i) + "]";
    impl->node = impl_->node[i];
    impl->parent_line = line();
    out.push_back(ConfigValue(impl));
  }
  return out;
}

std::vector<std::string> ConfigValue::Keys() const {
  std::vector<std::string> keys;
  if (!IsMap()) return keys;
  for (const auto& kv : impl_->node) keys.push_back(kv.first.as<std::string>());
  return keys;
}

Status ConfigValue::Error(const std::string& message) const {
  std::string where = impl_->file + ":" + std::to_string(line()) + ": ";
  if (!impl_->path.empty()) where += "key '" + impl_->path + "': ";
  return InvalidArgument(where + message);
}

Status ConfigValue::CheckKeys(const std::vector<std::string>& allowed) const {
  if (!IsMap()) return present() ? Error("expected a mapping") : Status::Ok();
  for (const auto& kv : impl_->node) {
    std::string key = kv.first.as<std::string>();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return (*this)[key].Error("unknown key");
    }
  }
  return Status::Ok();
}

Result<std::string> ConfigValue::AsString() const {
  if (!IsScalar()) return Error("expected a text value");
  return impl_->node.Scalar();
}

Status ConfigValue::GetString(const std::string& key, std::string* out, bool required) const {
  ConfigValue v = (*this)[key];
  if (!v.present()) return required ? v.Error("is required") : Status::Ok();
  DX_ASSIGN_OR_RETURN(*out, v.AsString());
  return Status::Ok();
}

Status ConfigValue::GetInt(const std::string& key, int64_t* out, int64_t min, int64_t max,
                           bool required) const {
  ConfigValue v = (*this)[key];
  if (!v.present()) return required ? v.Error("is required") : Status::Ok();
  int64_t value = 0;
  try {
    value = v.impl_->node.as<int64_t>();
  } catch (const YAML::Exception&) {
    return v.Error("expected a whole number");
  }
  if (value < min || value > max) {
    return v.Error("must be between " + std::to_string(min) + " and " + std::to_string(max));
  }
  *out = value;
  return Status::Ok();
}

Status ConfigValue::GetBool(const std::string& key, bool* out) const {
  ConfigValue v = (*this)[key];
  if (!v.present()) return Status::Ok();
  try {
    *out = v.impl_->node.as<bool>();
  } catch (const YAML::Exception&) {
    return v.Error("expected true or false");
  }
  return Status::Ok();
}

Status ConfigValue::GetStringList(const std::string& key, std::vector<std::string>* out) const {
  ConfigValue v = (*this)[key];
  if (!v.present()) return Status::Ok();
  if (!v.IsSequence()) return v.Error("expected a list");
  out->clear();
  for (const ConfigValue& item : v.Items()) {
    DX_ASSIGN_OR_RETURN(std::string s, item.AsString());
    out->push_back(std::move(s));
  }
  return Status::Ok();
}

}  // namespace dx
