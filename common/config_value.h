// ConfigValue: read-only view of a YAML document (config files, catalog manifests) whose
// every error names the file, the line and the key path ("conf/agent.yaml:7: key 'target.x'").
// yaml-cpp stays behind this header.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace dx {

class ConfigValue {
 public:
  ConfigValue();
  ~ConfigValue();
  ConfigValue(const ConfigValue&);
  ConfigValue& operator=(const ConfigValue&);

  // Loads every document of a YAML file or text; a syntax error names file and line.
  static Result<std::vector<ConfigValue>> LoadFile(const std::string& path);
  static Result<std::vector<ConfigValue>> LoadText(const std::string& text,
                                                   const std::string& source_name);

  bool present() const;
  bool IsMap() const;
  bool IsSequence() const;
  bool IsScalar() const;
  // The child at `key` of a map (not present() when missing).
  ConfigValue operator[](const std::string& key) const;
  std::vector<ConfigValue> Items() const;  // sequence elements
  std::vector<std::string> Keys() const;   // map keys in document order
  int line() const;                        // 1-based; 0 when unknown
  const std::string& path() const;         // key path, e.g. "exchange.batch_rows"

  // An InvalidArgument status "file:line: key 'path': message".
  Status Error(const std::string& message) const;
  // Refuses keys outside `allowed` (catches typos).
  Status CheckKeys(const std::vector<std::string>& allowed) const;

  // Typed reads of child `key`: when missing, `*out` keeps its value (the default) unless
  // required; a value of the wrong type is an error naming the key.
  Status GetString(const std::string& key, std::string* out, bool required = false) const;
  Status GetInt(const std::string& key, int64_t* out, int64_t min, int64_t max,
                bool required = false) const;
  Status GetBool(const std::string& key, bool* out) const;
  Status GetStringList(const std::string& key, std::vector<std::string>* out) const;
  // This node's own scalar text.
  Result<std::string> AsString() const;

 private:
  struct Impl;
  explicit ConfigValue(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace dx
