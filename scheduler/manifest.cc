#include "scheduler/manifest.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/ascii.h"
#include "common/config_value.h"
#include "common/file_path.h"
#include "scheduler/file_patterns.h"
#include "scheduler/name_encoding.h"
#include "scheduler/schedule.h"
#include "scheduler/secret.h"
#include "scheduler/source_text.h"

namespace dx::scheduler {
namespace {

struct Parsed {
  std::vector<Source> sources;
  std::vector<CatalogEntry> entries;
  std::vector<AgentRecord> agents;
  std::vector<std::string> agent_secrets;  // plain secrets as given (hashed on apply)
  std::vector<bool> agent_disabled_given;  // whether `disabled` was given (else: kept as is)
  std::vector<Subscription> subscriptions;
  std::map<std::string, ConfigValue> where;  // "Kind/name" -> document, for error locations
  // Problems found while reading an entry's fields (unknown types, bad names), by entry name;
  // reported with the validator's, all at once.
  std::map<std::string, std::vector<Problem>> field_problems;
};

// The keys each kind accepts (ManifestKeys); docs/MANIFEST.md documents every one.
const std::vector<std::string> kSourceKeys = {"kind", "name", "connection", "encoding",
                                              "organisation"};
const std::vector<std::string> kFieldKeys = {"item",        "column",  "type",   "not_null",
                                             "primary_key", "meaning", "format", "example"};
// The description every catalog resource carries (第十七条, 附件三), table or file.
const std::vector<std::string> kDescriptionKeys = {
    "kind",       "name",           "provider",         "mounted",    "summary",
    "share_type", "security_level", "update_frequency", "time_range", "topic",
    "scope",      "data_format",    "provision",        "stages",     "district",
    "school",     "contact"};
const std::vector<std::string> kEntryOnlyKeys = {"source", "source_table", "updatetime_column",
                                                 "fields"};
const std::vector<std::string> kFileOnlyKeys = {"directory", "include", "exclude", "recursive",
                                                "name_encoding"};
const std::vector<std::string> kAgentKeys = {"kind",         "name",        "secret",
                                             "secret_hash",  "description", "bandwidth_kbps",
                                             "organisation", "disabled"};
const std::vector<std::string> kSubscriptionKeys = {"kind",
                                                    "name",
                                                    "agent",
                                                    "entry",
                                                    "columns",
                                                    "filter",
                                                    "target_table",
                                                    "target_path",
                                                    "propagate_deletes",
                                                    "schedule",
                                                    "status",
                                                    "reconcile",
                                                    "application",
                                                    "max_delete_percent"};
const std::vector<std::string> kFilterKeys = {"column", "op", "value", "values"};

std::vector<std::string> Concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

bool OneOf(const std::string& v, std::initializer_list<const char*> options) {
  for (const char* o : options) {
    if (v == o) return true;
  }
  return false;
}

Status ParseSource(const ConfigValue& doc, Parsed* out) {
  DX_RETURN_IF_ERROR(doc.CheckKeys(kSourceKeys));
  Source s;
  DX_RETURN_IF_ERROR(doc.GetString("name", &s.name, true));
  DX_RETURN_IF_ERROR(doc.GetString("connection", &s.connection, true));
  DX_RETURN_IF_ERROR(doc.GetString("encoding", &s.encoding));
  DX_RETURN_IF_ERROR(doc.GetString("organisation", &s.organisation));
  s.encoding = AsciiLower(s.encoding);
  if (s.encoding == "utf-8" || s.encoding == "utf8") s.encoding.clear();
  if (!s.encoding.empty()) {
    Status st = CheckSourceEncoding(s.encoding);
    if (!st.ok()) return doc["encoding"].Error(st.message());
  }
  out->sources.push_back(s);
  return Status::Ok();
}

// Reads one field; an unknown type is a problem of `at` (e.g. "fields[2]"), reported with the
// entry's other problems.
Status ParseField(const ConfigValue& f, Field* field, const std::string& at,
                  std::vector<Problem>* problems) {
  DX_RETURN_IF_ERROR(f.CheckKeys(kFieldKeys));
  std::string type;
  DX_RETURN_IF_ERROR(f.GetString("type", &type));
  auto spec = ParseColumnType(type);
  if (type.empty()) {
    problems->push_back({at + ".type", "is required: 类型及长度", true});
  } else if (!spec.ok()) {
    problems->push_back({at + ".type", spec.status().message(), true});
  } else {
    field->column = spec.value();
  }
  DX_RETURN_IF_ERROR(f.GetString("column", &field->column.name));
  DX_RETURN_IF_ERROR(f.GetString("item", &field->item_name));
  DX_RETURN_IF_ERROR(f.GetBool("not_null", &field->column.not_null));
  DX_RETURN_IF_ERROR(f.GetBool("primary_key", &field->column.primary_key));
  DX_RETURN_IF_ERROR(f.GetString("meaning", &field->meaning));
  DX_RETURN_IF_ERROR(f.GetString("format", &field->format));
  DX_RETURN_IF_ERROR(f.GetString("example", &field->example));
  if (field->column.primary_key) field->column.not_null = true;
  if (field->column.primary_key && IsBinaryType(field->column.type)) {
    // Keys travel in watermarks and comparisons as text; binary values cannot.
    return f["primary_key"].Error("a " + ColumnTypeName(field->column) +
                                  " column cannot be part of the primary key");
  }
  return Status::Ok();
}

// Reads the description; what it must hold is checked afterwards by ValidateEntry, which
// reports every problem at once.
Status ParseCatalogDescription(const ConfigValue& doc, CatalogEntry* entry) {
  CatalogEntry& e = *entry;
  DX_RETURN_IF_ERROR(doc.GetString("name", &e.name, true));
  DX_RETURN_IF_ERROR(doc.GetString("provider", &e.provider));
  DX_RETURN_IF_ERROR(doc.GetString("mounted", &e.mounted));
  DX_RETURN_IF_ERROR(doc.GetString("summary", &e.summary));
  DX_RETURN_IF_ERROR(doc.GetString("share_type", &e.share_type));
  DX_RETURN_IF_ERROR(doc.GetString("security_level", &e.security_level));
  DX_RETURN_IF_ERROR(doc.GetString("update_frequency", &e.update_frequency));
  DX_RETURN_IF_ERROR(doc.GetString("time_range", &e.time_range));
  DX_RETURN_IF_ERROR(doc.GetString("topic", &e.topic));
  DX_RETURN_IF_ERROR(doc.GetString("scope", &e.scope));
  DX_RETURN_IF_ERROR(doc.GetString("data_format", &e.data_format));
  DX_RETURN_IF_ERROR(doc.GetStringList("provision", &e.provision));
  for (std::string& p : e.provision) {
    if (std::string code = CanonicalProvision(p); !code.empty()) p = code;
  }
  DX_RETURN_IF_ERROR(doc.GetStringList("stages", &e.stages));
  for (std::string& st : e.stages) {
    if (std::string code = CanonicalStage(st); !code.empty()) st = code;
  }
  DX_RETURN_IF_ERROR(doc.GetString("district", &e.district));
  DX_RETURN_IF_ERROR(doc.GetString("school", &e.school));
  DX_RETURN_IF_ERROR(doc.GetString("contact", &e.contact));
  return Status::Ok();
}

Status ParseEntry(const ConfigValue& doc, Parsed* out) {
  DX_RETURN_IF_ERROR(doc.CheckKeys(Concat(kDescriptionKeys, kEntryOnlyKeys)));
  CatalogEntry e;
  DX_RETURN_IF_ERROR(ParseCatalogDescription(doc, &e));
  DX_RETURN_IF_ERROR(doc.GetString("source", &e.source));
  DX_RETURN_IF_ERROR(doc.GetString("source_table", &e.source_table));
  DX_RETURN_IF_ERROR(doc.GetString("updatetime_column", &e.updatetime_column));
  ConfigValue fields = doc["fields"];
  if (fields.present() && !fields.IsSequence()) return fields.Error("expected a list of fields");
  std::vector<Problem>& problems = out->field_problems[e.name];
  for (size_t i = 0; i < fields.Items().size(); ++i) {
    Field field;
    DX_RETURN_IF_ERROR(
        ParseField(fields.Items()[i], &field, "fields[" + std::to_string(i) + "]", &problems));
    e.fields.push_back(field);
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
  DX_RETURN_IF_ERROR(doc.CheckKeys(Concat(kDescriptionKeys, kFileOnlyKeys)));
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
  DX_RETURN_IF_ERROR(doc.CheckKeys(kAgentKeys));
  AgentRecord a;
  DX_RETURN_IF_ERROR(doc.GetInt("bandwidth_kbps", &a.bandwidth_kbps, 0, 100000000));
  std::string secret;
  DX_RETURN_IF_ERROR(doc.GetString("name", &a.name, true));
  DX_RETURN_IF_ERROR(doc.GetString("secret", &secret));
  DX_RETURN_IF_ERROR(doc.GetString("secret_hash", &a.secret_hash));
  DX_RETURN_IF_ERROR(doc.GetString("description", &a.description));
  DX_RETURN_IF_ERROR(doc.GetString("organisation", &a.organisation));
  if (secret.empty() == a.secret_hash.empty()) {
    return doc["secret"].Error("give exactly one of secret and secret_hash");
  }
  if (!secret.empty() && secret.size() < 12) {
    return doc["secret"].Error("must be at least 12 characters");
  }
  const bool disabled_given = doc["disabled"].present();
  if (disabled_given) DX_RETURN_IF_ERROR(doc.GetBool("disabled", &a.disabled));
  out->agents.push_back(a);
  out->agent_secrets.push_back(secret);
  out->agent_disabled_given.push_back(disabled_given);
  return Status::Ok();
}

Status ParseSubscription(const ConfigValue& doc, Parsed* out) {
  DX_RETURN_IF_ERROR(doc.CheckKeys(kSubscriptionKeys));
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
  if (!schedule->manual() && schedule->NextAfter(static_cast<int64_t>(std::time(nullptr))) == 0) {
    return doc["schedule"].Error("'" + s.schedule +
                                 "' never fires (no such date in the next five years)");
  }
  DX_RETURN_IF_ERROR(doc.GetString("reconcile", &s.reconcile));
  if (!s.reconcile.empty()) {
    auto when = Schedule::Parse(s.reconcile);
    if (!when.ok()) return doc["reconcile"].Error(when.status().message());
    if (!when->manual() && when->NextAfter(static_cast<int64_t>(std::time(nullptr))) == 0) {
      return doc["reconcile"].Error("'" + s.reconcile +
                                    "' never fires (no such date in the next five years)");
    }
  }
  DX_RETURN_IF_ERROR(doc.GetInt("application", &s.application_id, 0, INT64_MAX));
  DX_RETURN_IF_ERROR(doc.GetString("status", &s.status));
  if (!OneOf(s.status, {"active", "suspended"})) {
    return doc["status"].Error("expected active or suspended");
  }
  ConfigValue filter = doc["filter"];
  if (filter.present() && !filter.IsSequence())
    return filter.Error("expected a list of conditions");
  for (const ConfigValue& c : filter.Items()) {
    DX_RETURN_IF_ERROR(c.CheckKeys(kFilterKeys));
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

// The node a validator problem's field path names ("fields[2].type", "provision[0]", "name").
ConfigValue Locate(const ConfigValue& doc, const std::string& field) {
  ConfigValue at = doc;
  size_t start = 0;
  while (start < field.size()) {
    size_t end = field.find('.', start);
    if (end == std::string::npos) end = field.size();
    std::string part = field.substr(start, end - start);
    size_t index = std::string::npos;
    if (size_t bracket = part.find('['); bracket != std::string::npos) {
      index = static_cast<size_t>(std::atoi(part.c_str() + bracket + 1));
      part.resize(bracket);
    }
    at = at[part];
    if (index != std::string::npos) {
      std::vector<ConfigValue> items = at.Items();
      if (index < items.size()) at = items[index];
    }
    start = end + 1;
  }
  return at;
}

// `st` located at `doc` (file, line and key), keeping its code (a refusal stays one).
Status Located(const ConfigValue& doc, const Status& st) {
  return Status(st.code(), doc.Error(st.message()).message());
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
    if (!sub.reconcile.empty()) {
      return InvalidArgument("reconcile is for table subscriptions ('" + entry.name +
                             "' is a file resource)");
    }
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

Status CheckTargetTableFree(const Subscription& sub, const std::vector<Subscription>& all) {
  if (sub.target_table.empty()) return Status::Ok();
  const std::string table = AsciiLower(sub.target_table);
  for (const Subscription& other : all) {
    if (other.name == sub.name || other.agent != sub.agent || other.target_table.empty()) continue;
    if (AsciiLower(other.target_table) == table) {
      return FailedPrecondition("subscription '" + other.name + "' already writes table '" +
                                other.target_table + "' at agent '" + sub.agent +
                                "': two subscriptions may not write one table (a resync of one "
                                "would delete the other's rows); choose another target_table");
    }
  }
  return Status::Ok();
}

const std::map<std::string, std::vector<std::string>>& ManifestKeys() {
  static const auto* keys = new std::map<std::string, std::vector<std::string>>{
      {"Source", kSourceKeys},
      {"CatalogEntry", Concat(kDescriptionKeys, kEntryOnlyKeys)},
      {"CatalogEntry.fields", kFieldKeys},
      {"FileResource", Concat(kDescriptionKeys, kFileOnlyKeys)},
      {"Agent", kAgentKeys},
      {"Subscription", kSubscriptionKeys},
      {"Subscription.filter", kFilterKeys}};
  return *keys;
}

Result<std::vector<ApplyOutcome>> ApplyManifest(Store& store, const std::string& text,
                                                const std::string& source_name,
                                                SourceReader* reader, ApplyPolicy* policy) {
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

  // Every entry's description, every problem at once. The bootstrap admin's direct path and
  // drafts refuse only what would break an exchange; a submission refuses every problem.
  using EntryMode = ApplyPolicy::EntryMode;
  const EntryMode mode = policy ? policy->entry_mode() : EntryMode::kPublishDirect;
  const bool publish_now = mode == EntryMode::kPublishDirect;
  std::map<std::string, std::vector<Problem>> entry_notes;
  std::string refusals;
  for (const CatalogEntry& e : parsed.entries) {
    const ConfigValue doc =
        parsed.where[(e.is_file() ? "FileResource/" : "CatalogEntry/") + e.name];
    std::vector<Problem> problems = parsed.field_problems[e.name];
    for (Problem& p : ValidateEntry(e)) problems.push_back(std::move(p));
    for (const Problem& p : problems) {
      if (mode == EntryMode::kSubmit || p.blocking) {
        refusals +=
            (refusals.empty() ? "" : "\n") + Locate(doc, p.field).Error(p.message).message();
      } else {
        entry_notes[e.name].push_back(p);
      }
    }
  }
  if (!refusals.empty()) return InvalidArgument(refusals);

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
    const CatalogEntry* in_manifest = FindByName(parsed.entries, s.entry);
    if (in_manifest != nullptr && publish_now) {
      entry = *in_manifest;
    } else {
      DX_ASSIGN_OR_RETURN(entry, store.GetCatalogEntry(s.entry));
    }
    if (!entry) {
      return doc["entry"].Error(in_manifest ? "catalog entry '" + s.entry +
                                                  "' is not published yet (it is submitted by "
                                                  "this manifest)"
                                            : "no catalog entry named '" + s.entry + "'");
    }
    Status st = CheckSubscriptionAgainstEntry(s, *entry);
    if (!st.ok()) return doc.Error(st.message());
  }
  DX_RETURN_IF_ERROR(CheckFileTargets(store, parsed));

  // The workflow's say: who may apply each document, within what it was granted.
  if (policy != nullptr) {
    for (const Source& src : parsed.sources) {
      Status st = policy->AdmitSource(src);
      if (!st.ok()) return Located(parsed.where["Source/" + src.name], st);
    }
    for (const CatalogEntry& e : parsed.entries) {
      Status st = policy->AdmitEntry(e);
      if (!st.ok()) {
        return Located(parsed.where[(e.is_file() ? "FileResource/" : "CatalogEntry/") + e.name],
                       st);
      }
    }
    for (size_t i = 0; i < parsed.agents.size(); ++i) {
      AgentRecord& a = parsed.agents[i];
      DX_ASSIGN_OR_RETURN(auto stored, store.GetAgent(a.name));
      if (!parsed.agent_disabled_given[i]) a.disabled = stored && stored->disabled;
      Status st = policy->AdmitAgent(&a, stored);
      if (!st.ok()) return Located(parsed.where["Agent/" + a.name], st);
    }
    for (Subscription& s : parsed.subscriptions) {
      ConfigValue doc = parsed.where["Subscription/" + s.name];
      DX_ASSIGN_OR_RETURN(auto stored, store.GetSubscription(s.name));
      std::optional<CatalogEntry> entry;
      if (const CatalogEntry* e = FindByName(parsed.entries, s.entry); e && publish_now) {
        entry = *e;
      } else {
        DX_ASSIGN_OR_RETURN(entry, store.GetCatalogEntry(s.entry));
      }
      std::optional<AgentRecord> agent;
      if (const AgentRecord* a = FindByName(parsed.agents, s.agent)) {
        agent = *a;
      } else {
        DX_ASSIGN_OR_RETURN(agent, store.GetAgent(s.agent));
      }
      if (!entry || !agent) return Internal("subscription references vanished");
      Status st = policy->AdmitSubscription(&s, stored, *entry, *agent);
      if (!st.ok()) return Located(doc, st);
    }
  } else {
    // The first release's semantics: the operator's own grant.
    for (Subscription& s : parsed.subscriptions) s.direct = s.application_id == 0;
  }

  // Two subscriptions may not write one table at one agent, in this manifest or with what
  // the store already has (a subscription redefined here replaces its stored definition).
  DX_ASSIGN_OR_RETURN(auto stored_subs, store.ListSubscriptions());
  std::vector<Subscription> all = parsed.subscriptions;
  for (const Subscription& s : stored_subs) {
    if (FindByName(parsed.subscriptions, s.name) == nullptr) all.push_back(s);
  }
  for (const Subscription& s : parsed.subscriptions) {
    Status st = CheckTargetTableFree(s, all);
    if (!st.ok()) return parsed.where["Subscription/" + s.name]["target_table"].Error(st.message());
  }

  // Every table entry against its source: in this manifest, and already applied ones whose
  // source this manifest redefines. Nothing is applied when one does not match.
  std::map<std::string, std::string> unchecked;  // entry -> why it was not checked
  if (reader != nullptr) {
    std::vector<std::pair<CatalogEntry, bool>> to_check;  // entry, in this manifest
    for (const CatalogEntry& e : parsed.entries) {
      if (!e.is_file()) to_check.emplace_back(e, true);
    }
    if (!parsed.sources.empty()) {
      DX_ASSIGN_OR_RETURN(auto stored_entries, store.ListCatalogEntries());
      for (const CatalogEntry& e : stored_entries) {
        if (!e.is_file() && FindByName(parsed.entries, e.name) == nullptr &&
            FindByName(parsed.sources, e.source) != nullptr) {
          to_check.emplace_back(e, false);
        }
      }
    }
    for (const auto& [e, in_manifest] : to_check) {
      std::optional<Source> source;
      if (const Source* src = FindByName(parsed.sources, e.source)) {
        source = *src;
      } else {
        DX_ASSIGN_OR_RETURN(source, store.GetSource(e.source));
      }
      if (!source) continue;  // refused above
      ConfigValue doc = in_manifest ? parsed.where["CatalogEntry/" + e.name]
                                    : parsed.where["Source/" + e.source]["connection"];
      const std::string context =
          in_manifest ? "" : "catalog entry '" + e.name + "' (already applied): ";
      auto table = reader->ReadTable(*source, e.source_table);
      if (!table.ok()) {
        if (table.status().code() == StatusCode::kUnavailable) {
          unchecked[e.name] = "not checked: source '" + e.source + "' is unreachable (" +
                              table.status().message() + "); every run checks before it reads";
          unchecked["Source/" + e.source] = unchecked[e.name];
          continue;
        }
        ConfigValue at = in_manifest ? doc["source_table"] : doc;
        return at.Error(context + "source '" + e.source + "': " + table.status().message());
      }
      const auto& [dbms, source_table] = table.value();
      for (size_t i = 0; i < e.fields.size(); ++i) {
        auto checked = CheckEntryColumns(e, source_table, dbms, {e.fields[i].column.name});
        if (checked.ok()) continue;
        ConfigValue at = in_manifest ? doc["fields"].Items()[i]["column"] : doc;
        return at.Error(context + checked.status().message());
      }
    }
  }

  std::vector<ApplyOutcome> outcomes;
  Status st = store.InTransaction([&]() -> Status {
    for (const Source& s : parsed.sources) {
      DX_ASSIGN_OR_RETURN(auto old, store.GetSource(s.name));
      bool same = old && ToJson(*old) == ToJson(s);
      if (!same) DX_RETURN_IF_ERROR(store.PutSource(s));
      outcomes.push_back(
          {"Source", s.name, Action(old.has_value(), same), unchecked["Source/" + s.name]});
    }
    for (const CatalogEntry& e : parsed.entries) {
      if (policy != nullptr) {
        DX_ASSIGN_OR_RETURN(ApplyOutcome o, policy->WriteEntry(e, entry_notes[e.name]));
        if (!unchecked[e.name].empty()) {
          o.note = unchecked[e.name] + (o.note.empty() ? "" : "; " + o.note);
        }
        outcomes.push_back(o);
        continue;
      }
      DX_ASSIGN_OR_RETURN(auto old, store.GetCatalogEntry(e.name));
      bool same = old && ToJson(*old) == ToJson(e);
      if (!same) DX_RETURN_IF_ERROR(store.PutCatalogEntry(e));
      outcomes.push_back({e.is_file() ? "FileResource" : "CatalogEntry", e.name,
                          Action(old.has_value(), same), unchecked[e.name]});
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
      if (!parsed.agent_disabled_given[i]) a.disabled = old && old->disabled;
      bool same = same_secret && old->description == a.description &&
                  old->bandwidth_kbps == a.bandwidth_kbps && old->disabled == a.disabled;
      if (!same) DX_RETURN_IF_ERROR(store.PutAgent(a));
      if ((old && old->disabled) != a.disabled) {
        DX_RETURN_IF_ERROR(store.SetAgentDisabled(a.name, a.disabled));
      }
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
                  ToJson(*old)["masking"] != ToJson(s)["masking"] ||
                  old->target_table != s.target_table || old->target_path != s.target_path)) {
        DX_RETURN_IF_ERROR(store.RequestResync(s.name, old->manual_pending));
      }
      // A suspension this manifest's status lifts: the agent was told to delete the data, so
      // it reloads, and the confirmation no longer describes it (the next halt deletes again).
      if (old && old->halted() && !s.halted()) {
        DX_RETURN_IF_ERROR(store.RecordDeletionConfirmation(s.name, 0, ""));
        DX_RETURN_IF_ERROR(store.RequestResync(s.name, old->manual_pending));
      }
      outcomes.push_back({"Subscription", s.name, Action(old.has_value(), same)});
    }
    // The operator acted: stopped subscriptions this manifest concerns run again (and stop
    // again if the cause is still there).
    DX_ASSIGN_OR_RETURN(auto subs, store.ListSubscriptions());
    for (const Subscription& s : subs) {
      if (!s.stopped()) continue;
      bool concerned = FindByName(parsed.subscriptions, s.name) != nullptr ||
                       FindByName(parsed.entries, s.entry) != nullptr;
      if (!concerned && !parsed.sources.empty()) {
        DX_ASSIGN_OR_RETURN(auto entry, store.GetCatalogEntry(s.entry));
        concerned = entry && FindByName(parsed.sources, entry->source) != nullptr;
      }
      if (!concerned) continue;
      DX_RETURN_IF_ERROR(store.SetStopped(s.name, "", 0));
      const std::string note = "resumed (was stopped: " + s.stopped_error + ")";
      auto it = std::find_if(outcomes.begin(), outcomes.end(), [&](const ApplyOutcome& o) {
        return o.kind == "Subscription" && o.name == s.name;
      });
      if (it != outcomes.end()) {
        it->note = note;
      } else {
        outcomes.push_back({"Subscription", s.name, "resumed", note});
      }
    }
    return Status::Ok();
  });
  DX_RETURN_IF_ERROR(st);
  return outcomes;
}

}  // namespace dx::scheduler
