#include "scheduler/manifest.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/config_value.h"
#include "common/file_path.h"
#include "scheduler/file_patterns.h"
#include "scheduler/name_encoding.h"
#include "scheduler/schedule.h"
#include "scheduler/secret.h"

namespace dx::scheduler {
namespace {

struct Parsed {
  std::vector<Source> sources;
  std::vector<CatalogEntry> entries;
  std::vector<AgentRecord> agents;
  std::vector<std::string> agent_secrets;  // plain secrets as given (hashed on apply)
  std::vector<Subscription> subscriptions;
  std::map<std::string, ConfigValue> where;  // "Kind/name" -> document, for error locations
};

bool OneOf(const std::string& v, std::initializer_list<const char*> options) {
  for (const char* o : options) {
    if (v == o) return true;
  }
  return false;
}

Status ParseSource(const ConfigValue& doc, Parsed* out) {
  DX_RETURN_IF_ERROR(doc.CheckKeys({"kind", "name", "connection"}));
  Source s;
  DX_RETURN_IF_ERROR(doc.GetString("name", &s.name, true));
  DX_RETURN_IF_ERROR(doc.GetString("connection", &s.connection, true));
  out->sources.push_back(s);
  return Status::Ok();
}

Status ParseField(const ConfigValue& f, Field* field) {
  DX_RETURN_IF_ERROR(f.CheckKeys(
      {"item", "column", "type", "not_null", "primary_key", "meaning", "format", "example"}));
  std::string type;
  DX_RETURN_IF_ERROR(f.GetString("type", &type, true));
  auto spec = ParseColumnType(type);
  if (!spec.ok()) return f["type"].Error(spec.status().message());
  field->column = spec.value();
  DX_RETURN_IF_ERROR(f.GetString("column", &field->column.name, true));
  if (!IsValidIdentifier(field->column.name)) {
    return f["column"].Error("'" + field->column.name +
                             "' is not a valid column name (letters, digits, _)");
  }
  DX_RETURN_IF_ERROR(f.GetString("item", &field->item_name, true));
  DX_RETURN_IF_ERROR(f.GetBool("not_null", &field->column.not_null));
  DX_RETURN_IF_ERROR(f.GetBool("primary_key", &field->column.primary_key));
  DX_RETURN_IF_ERROR(f.GetString("meaning", &field->meaning));
  DX_RETURN_IF_ERROR(f.GetString("format", &field->format));
  DX_RETURN_IF_ERROR(f.GetString("example", &field->example));
  if (field->column.primary_key) field->column.not_null = true;
  return Status::Ok();
}

// The description every catalog resource carries (第十七条, 附件三), table or file.
const std::vector<std::string> kDescriptionKeys = {
    "kind",       "name",       "provider",       "mounted",
    "summary",    "share_type", "security_level", "update_frequency",
    "time_range", "topic",      "scope"};

std::vector<std::string> WithDescriptionKeys(std::initializer_list<const char*> more) {
  std::vector<std::string> keys = kDescriptionKeys;
  keys.insert(keys.end(), more.begin(), more.end());
  return keys;
}

Status ParseCatalogDescription(const ConfigValue& doc, CatalogEntry* entry) {
  CatalogEntry& e = *entry;
  DX_RETURN_IF_ERROR(doc.GetString("name", &e.name, true));
  size_t dash = e.name.find('-');
  if (dash == std::string::npos || dash == 0 || dash + 1 == e.name.size()) {
    return doc["name"].Error("'" + e.name + "' must be named 机构名称-数据基本信息 (第十五条)");
  }
  DX_RETURN_IF_ERROR(doc.GetString("provider", &e.provider, true));
  DX_RETURN_IF_ERROR(doc.GetString("mounted", &e.mounted));
  DX_RETURN_IF_ERROR(doc.GetString("summary", &e.summary, true));
  DX_RETURN_IF_ERROR(doc.GetString("share_type", &e.share_type, true));
  if (!OneOf(e.share_type, {"unconditional", "authorised", "not_shared"})) {
    return doc["share_type"].Error("expected unconditional, authorised or not_shared");
  }
  DX_RETURN_IF_ERROR(doc.GetString("security_level", &e.security_level));
  DX_RETURN_IF_ERROR(doc.GetString("update_frequency", &e.update_frequency));
  DX_RETURN_IF_ERROR(doc.GetString("time_range", &e.time_range));
  DX_RETURN_IF_ERROR(doc.GetString("topic", &e.topic, true));
  if (!OneOf(e.topic, {"student", "teacher", "institution"})) {
    return doc["topic"].Error("expected student, teacher or institution");
  }
  DX_RETURN_IF_ERROR(doc.GetString("scope", &e.scope));
  return Status::Ok();
}

Status ParseEntry(const ConfigValue& doc, Parsed* out) {
  DX_RETURN_IF_ERROR(doc.CheckKeys(
      WithDescriptionKeys({"source", "source_table", "updatetime_column", "fields"})));
  CatalogEntry e;
  DX_RETURN_IF_ERROR(ParseCatalogDescription(doc, &e));
  DX_RETURN_IF_ERROR(doc.GetString("source", &e.source, true));
  DX_RETURN_IF_ERROR(doc.GetString("source_table", &e.source_table, true));
  if (!IsValidIdentifier(e.source_table)) {
    return doc["source_table"].Error("'" + e.source_table + "' is not a valid table name");
  }
  DX_RETURN_IF_ERROR(doc.GetString("updatetime_column", &e.updatetime_column, true));
  ConfigValue fields = doc["fields"];
  if (!fields.IsSequence() || fields.Items().empty()) {
    return fields.Error("is required: a list of fields");
  }
  std::set<std::string> seen;
  for (const ConfigValue& f : fields.Items()) {
    Field field;
    DX_RETURN_IF_ERROR(ParseField(f, &field));
    if (!seen.insert(field.column.name).second) {
      return f["column"].Error("column '" + field.column.name + "' appears twice");
    }
    e.fields.push_back(field);
  }
  if (std::none_of(e.fields.begin(), e.fields.end(),
                   [](const Field& f) { return f.column.primary_key; })) {
    return fields.Error("no field is marked primary_key");
  }
  const Field* ut = e.FindField(e.updatetime_column);
  if (ut == nullptr) {
    return doc["updatetime_column"].Error("'" + e.updatetime_column + "' is not one of the fields");
  }
  if (ut->column.type != ColumnType::kDatetime || !ut->column.not_null) {
    return doc["updatetime_column"].Error("'" + e.updatetime_column +
                                          "' must be a not-null datetime field");
  }
  out->entries.push_back(e);
  return Status::Ok();
}

// Include/exclude patterns that are malformed or can never match are refused, naming the
// pattern; so is an exclude pattern that takes away every file.
Status CheckFilePatterns(const ConfigValue& doc, const CatalogEntry& e) {
  for (const char* key : {"include", "exclude"}) {
    const std::vector<std::string>& patterns =
        std::string(key) == "include" ? e.include : e.exclude;
    for (const std::string& p : patterns) {
      Status st = CheckPattern(p, e.recursive);
      if (!st.ok()) return doc[key].Error(st.message());
      if (std::string(key) == "exclude" && MatchesEverything(p)) {
        return doc[key].Error("pattern '" + p + "' excludes every file");
      }
    }
  }
  return Status::Ok();
}

Status ParseFileResource(const ConfigValue& doc, Parsed* out) {
  DX_RETURN_IF_ERROR(doc.CheckKeys(
      WithDescriptionKeys({"directory", "include", "exclude", "recursive", "name_encoding"})));
  CatalogEntry e;
  e.kind = "file";
  DX_RETURN_IF_ERROR(ParseCatalogDescription(doc, &e));
  DX_RETURN_IF_ERROR(doc.GetString("directory", &e.directory, true));
  if (e.directory.empty() || e.directory[0] != '/') {
    return doc["directory"].Error("must be an absolute path");
  }
  DX_RETURN_IF_ERROR(doc.GetStringList("include", &e.include));
  DX_RETURN_IF_ERROR(doc.GetStringList("exclude", &e.exclude));
  DX_RETURN_IF_ERROR(doc.GetBool("recursive", &e.recursive));
  DX_RETURN_IF_ERROR(CheckFilePatterns(doc, e));
  DX_RETURN_IF_ERROR(doc.GetString("name_encoding", &e.name_encoding));
  auto encoding = NameEncoding::Open(e.name_encoding);
  if (!encoding.ok()) return doc["name_encoding"].Error(encoding.status().message());
  e.name_encoding = encoding->name();
  out->entries.push_back(e);
  return Status::Ok();
}

Status ParseAgent(const ConfigValue& doc, Parsed* out) {
  DX_RETURN_IF_ERROR(
      doc.CheckKeys({"kind", "name", "secret", "secret_hash", "description", "bandwidth_kbps"}));
  AgentRecord a;
  DX_RETURN_IF_ERROR(doc.GetInt("bandwidth_kbps", &a.bandwidth_kbps, 0, 100000000));
  std::string secret;
  DX_RETURN_IF_ERROR(doc.GetString("name", &a.name, true));
  DX_RETURN_IF_ERROR(doc.GetString("secret", &secret));
  DX_RETURN_IF_ERROR(doc.GetString("secret_hash", &a.secret_hash));
  DX_RETURN_IF_ERROR(doc.GetString("description", &a.description));
  if (secret.empty() == a.secret_hash.empty()) {
    return doc["secret"].Error("give exactly one of secret and secret_hash");
  }
  if (!secret.empty() && secret.size() < 12) {
    return doc["secret"].Error("must be at least 12 characters");
  }
  out->agents.push_back(a);
  out->agent_secrets.push_back(secret);
  return Status::Ok();
}

Status ParseSubscription(const ConfigValue& doc, Parsed* out) {
  DX_RETURN_IF_ERROR(doc.CheckKeys({"kind", "name", "agent", "entry", "columns", "filter",
                                    "target_table", "target_path", "propagate_deletes", "schedule",
                                    "status", "max_delete_percent"}));
  Subscription s;
  DX_RETURN_IF_ERROR(doc.GetString("name", &s.name, true));
  DX_RETURN_IF_ERROR(doc.GetString("agent", &s.agent, true));
  DX_RETURN_IF_ERROR(doc.GetString("entry", &s.entry, true));
  DX_RETURN_IF_ERROR(doc.GetStringList("columns", &s.columns));
  DX_RETURN_IF_ERROR(doc.GetString("target_table", &s.target_table));
  if (!s.target_table.empty() && !IsValidIdentifier(s.target_table)) {
    return doc["target_table"].Error("'" + s.target_table + "' is not a valid table name");
  }
  DX_RETURN_IF_ERROR(doc.GetString("target_path", &s.target_path));
  if (!s.target_path.empty() && !IsSafeRelativePath(s.target_path)) {
    return doc["target_path"].Error("'" + s.target_path +
                                    "' must be a relative path inside the shared root (no '..')");
  }
  DX_RETURN_IF_ERROR(doc.GetBool("propagate_deletes", &s.propagate_deletes));
  if (doc["max_delete_percent"].present()) {
    int64_t pct = 0;
    DX_RETURN_IF_ERROR(doc.GetInt("max_delete_percent", &pct, 0, 100));
    s.max_delete_percent = static_cast<int>(pct);
  }
  DX_RETURN_IF_ERROR(doc.GetString("schedule", &s.schedule));
  auto schedule = Schedule::Parse(s.schedule);
  if (!schedule.ok()) return doc["schedule"].Error(schedule.status().message());
  DX_RETURN_IF_ERROR(doc.GetString("status", &s.status));
  if (!OneOf(s.status, {"active", "suspended"})) {
    return doc["status"].Error("expected active or suspended");
  }
  ConfigValue filter = doc["filter"];
  if (filter.present() && !filter.IsSequence())
    return filter.Error("expected a list of conditions");
  for (const ConfigValue& c : filter.Items()) {
    DX_RETURN_IF_ERROR(c.CheckKeys({"column", "op", "value", "values"}));
    RowCondition cond;
    DX_RETURN_IF_ERROR(c.GetString("column", &cond.column, true));
    DX_RETURN_IF_ERROR(c.GetString("op", &cond.op));
    if (cond.op.empty()) cond.op = "=";
    if (!OneOf(cond.op, {"=", "!=", "<", "<=", ">", ">=", "in"})) {
      return c["op"].Error("expected one of = != < <= > >= in");
    }
    std::string value;
    DX_RETURN_IF_ERROR(c.GetString("value", &value));
    DX_RETURN_IF_ERROR(c.GetStringList("values", &cond.values));
    if (!value.empty()) cond.values.insert(cond.values.begin(), value);
    if (cond.values.empty() || (cond.op != "in" && cond.values.size() != 1)) {
      return c.Error(cond.op == "in" ? "'in' needs values: [...]" : "needs exactly one value");
    }
    s.filter.push_back(cond);
  }
  out->subscriptions.push_back(s);
  return Status::Ok();
}

template <typename T>
const T* FindByName(const std::vector<T>& items, const std::string& name) {
  for (const T& item : items) {
    if (item.name == name) return &item;
  }
  return nullptr;
}

// Two file subscriptions of one agent into the same folder, or one inside the other, would
// overwrite each other's files and delete them by propagation: refused, against this manifest
// and against the subscriptions in the store that it does not redefine.
Status CheckFileTargets(Store& store, Parsed& parsed) {
  struct Target {
    std::string subscription;
    std::string agent;
    std::string path;
  };
  std::vector<Target> known;
  DX_ASSIGN_OR_RETURN(std::vector<Subscription> stored, store.ListSubscriptions());
  for (const Subscription& s : stored) {
    if (s.target_path.empty() || FindByName(parsed.subscriptions, s.name) != nullptr) continue;
    known.push_back({s.name, s.agent, s.target_path});
  }
  for (const Subscription& s : parsed.subscriptions) {
    if (s.target_path.empty()) continue;
    for (const Target& other : known) {
      if (other.agent != s.agent || (!IsSameOrUnder(s.target_path, other.path) &&
                                     !IsSameOrUnder(other.path, s.target_path))) {
        continue;
      }
      const char* how = s.target_path == other.path                ? "is the folder of"
                        : IsSameOrUnder(s.target_path, other.path) ? "lies inside the folder of"
                                                                   : "holds the folder of";
      return parsed.where["Subscription/" + s.name]["target_path"].Error(
          "'" + s.target_path + "' " + how + " subscription '" + other.subscription + "' ('" +
          other.path + "') on agent '" + s.agent +
          "': each file subscription needs a folder of its own, or their files and deletions "
          "would mix");
    }
    known.push_back({s.name, s.agent, s.target_path});
  }
  return Status::Ok();
}

std::string Action(bool existed, bool same) {
  if (!existed) return "created";
  return same ? "unchanged" : "updated";
}

}  // namespace

Status CheckSubscriptionAgainstEntry(const Subscription& sub, const CatalogEntry& entry) {
  if (entry.share_type == "not_shared") {
    return InvalidArgument("catalog entry '" + entry.name + "' is not shared");
  }
  if (entry.is_file()) {
    if (!sub.columns.empty() || !sub.filter.empty() || !sub.target_table.empty()) {
      return InvalidArgument("'" + entry.name +
                             "' is a file resource: give target_path, not columns, filter or "
                             "target_table");
    }
    if (sub.target_path.empty()) return InvalidArgument("target_path is required for files");
    return Status::Ok();
  }
  if (sub.columns.empty()) return InvalidArgument("columns are required: the approved columns");
  if (sub.target_table.empty()) return InvalidArgument("target_table is required for tables");
  if (!sub.target_path.empty() || sub.propagate_deletes) {
    return InvalidArgument("target_path and propagate_deletes are for file resources");
  }
  for (const std::string& col : sub.columns) {
    if (entry.FindField(col) == nullptr) {
      return InvalidArgument("column '" + col + "' is not a field of '" + entry.name + "'");
    }
  }
  for (const Field& f : entry.fields) {
    if (f.column.primary_key &&
        std::find(sub.columns.begin(), sub.columns.end(), f.column.name) == sub.columns.end()) {
      return InvalidArgument("columns must include the primary key '" + f.column.name + "'");
    }
  }
  for (const RowCondition& c : sub.filter) {
    if (entry.FindField(c.column) == nullptr) {
      return InvalidArgument("filter column '" + c.column + "' is not a field of '" + entry.name +
                             "'");
    }
  }
  return Status::Ok();
}

Result<std::vector<ApplyOutcome>> ApplyManifest(Store& store, const std::string& text,
                                                const std::string& source_name) {
  DX_ASSIGN_OR_RETURN(auto docs, ConfigValue::LoadText(text, source_name));
  if (docs.empty()) return InvalidArgument(source_name + ": no documents");
  Parsed parsed;
  for (const ConfigValue& doc : docs) {
    if (!doc.IsMap()) return doc.Error("expected a mapping with 'kind'");
    std::string kind;
    DX_RETURN_IF_ERROR(doc.GetString("kind", &kind, true));
    std::string name;
    DX_RETURN_IF_ERROR(doc.GetString("name", &name, true));
    if (parsed.where.count(kind + "/" + name)) {
      return doc["name"].Error(kind + " '" + name + "' appears twice in this manifest");
    }
    parsed.where[kind + "/" + name] = doc;
    if (kind == "Source") {
      DX_RETURN_IF_ERROR(ParseSource(doc, &parsed));
    } else if (kind == "CatalogEntry") {
      DX_RETURN_IF_ERROR(ParseEntry(doc, &parsed));
    } else if (kind == "FileResource") {
      DX_RETURN_IF_ERROR(ParseFileResource(doc, &parsed));
    } else if (kind == "Agent") {
      DX_RETURN_IF_ERROR(ParseAgent(doc, &parsed));
    } else if (kind == "Subscription") {
      DX_RETURN_IF_ERROR(ParseSubscription(doc, &parsed));
    } else {
      return doc["kind"].Error(
          "unknown kind '" + kind +
          "' (expected Source, CatalogEntry, FileResource, Agent or Subscription)");
    }
  }

  // Cross-references: against this manifest first, then the store.
  for (const CatalogEntry& e : parsed.entries) {
    if (e.is_file()) continue;
    if (FindByName(parsed.sources, e.source) == nullptr) {
      DX_ASSIGN_OR_RETURN(auto src, store.GetSource(e.source));
      if (!src)
        return parsed.where["CatalogEntry/" + e.name]["source"].Error("no source named '" +
                                                                      e.source + "'");
    }
  }
  for (const Subscription& s : parsed.subscriptions) {
    ConfigValue doc = parsed.where["Subscription/" + s.name];
    if (FindByName(parsed.agents, s.agent) == nullptr) {
      DX_ASSIGN_OR_RETURN(auto agent, store.GetAgent(s.agent));
      if (!agent) return doc["agent"].Error("no agent named '" + s.agent + "'");
    }
    std::optional<CatalogEntry> entry;
    if (const CatalogEntry* e = FindByName(parsed.entries, s.entry)) {
      entry = *e;
    } else {
      DX_ASSIGN_OR_RETURN(entry, store.GetCatalogEntry(s.entry));
    }
    if (!entry) return doc["entry"].Error("no catalog entry named '" + s.entry + "'");
    Status st = CheckSubscriptionAgainstEntry(s, *entry);
    if (!st.ok()) return doc.Error(st.message());
  }
  DX_RETURN_IF_ERROR(CheckFileTargets(store, parsed));

  std::vector<ApplyOutcome> outcomes;
  Status st = store.InTransaction([&]() -> Status {
    for (const Source& s : parsed.sources) {
      DX_ASSIGN_OR_RETURN(auto old, store.GetSource(s.name));
      bool same = old && ToJson(*old) == ToJson(s);
      if (!same) DX_RETURN_IF_ERROR(store.PutSource(s));
      outcomes.push_back({"Source", s.name, Action(old.has_value(), same)});
    }
    for (const CatalogEntry& e : parsed.entries) {
      DX_ASSIGN_OR_RETURN(auto old, store.GetCatalogEntry(e.name));
      bool same = old && ToJson(*old) == ToJson(e);
      if (!same) DX_RETURN_IF_ERROR(store.PutCatalogEntry(e));
      outcomes.push_back(
          {e.is_file() ? "FileResource" : "CatalogEntry", e.name, Action(old.has_value(), same)});
    }
    for (size_t i = 0; i < parsed.agents.size(); ++i) {
      AgentRecord a = parsed.agents[i];
      const std::string& secret = parsed.agent_secrets[i];
      DX_ASSIGN_OR_RETURN(auto old, store.GetAgent(a.name));
      bool same_secret = old && (secret.empty() ? old->secret_hash == a.secret_hash
                                                : VerifySecret(secret, old->secret_hash));
      if (same_secret) {
        a.secret_hash = old->secret_hash;
      } else if (!secret.empty()) {
        a.secret_hash = HashSecret(secret);
      }
      bool same = same_secret && old->description == a.description &&
                  old->bandwidth_kbps == a.bandwidth_kbps;
      if (!same) DX_RETURN_IF_ERROR(store.PutAgent(a));
      outcomes.push_back({"Agent", a.name, Action(old.has_value(), same)});
    }
    for (const Subscription& s : parsed.subscriptions) {
      DX_ASSIGN_OR_RETURN(auto old, store.GetSubscription(s.name));
      bool same = old && ToJson(*old) == ToJson(s);
      if (!same) DX_RETURN_IF_ERROR(store.PutSubscriptionDefinition(s));
      // What the agent holds was selected under the old definition: reload it from scratch
      // so it holds exactly what the new one allows.
      if (old && (old->entry != s.entry || old->columns != s.columns ||
                  ToJson(*old)["filter"] != ToJson(s)["filter"] ||
                  old->target_table != s.target_table || old->target_path != s.target_path)) {
        DX_RETURN_IF_ERROR(store.SetPending(s.name, old->manual_pending, true));
      }
      outcomes.push_back({"Subscription", s.name, Action(old.has_value(), same)});
    }
    return Status::Ok();
  });
  DX_RETURN_IF_ERROR(st);
  return outcomes;
}

}  // namespace dx::scheduler
