#include "scheduler/model.h"

#include <nlohmann/json.hpp>

namespace dx::scheduler {

using nlohmann::json;

const Field* CatalogEntry::FindField(const std::string& column) const {
  for (const Field& f : fields) {
    if (f.column.name == column) return &f;
  }
  return nullptr;
}

json ToJson(const Source& s) { return {{"name", s.name}, {"connection", s.connection}}; }

json ToJson(const CatalogEntry& e) {
  json fields = json::array();
  for (const Field& f : e.fields) {
    fields.push_back({{"item_name", f.item_name},
                      {"column", f.column.name},
                      {"type", ColumnTypeName(f.column)},
                      {"not_null", f.column.not_null},
                      {"primary_key", f.column.primary_key},
                      {"meaning", f.meaning},
                      {"format", f.format},
                      {"example", f.example}});
  }
  nlohmann::json j = {{"kind", e.kind},
                      {"name", e.name},
                      {"provider", e.provider},
                      {"mounted", e.mounted},
                      {"summary", e.summary},
                      {"share_type", e.share_type},
                      {"security_level", e.security_level},
                      {"update_frequency", e.update_frequency},
                      {"time_range", e.time_range},
                      {"topic", e.topic},
                      {"scope", e.scope},
                      {"status", e.status},
                      {"source", e.source},
                      {"source_table", e.source_table},
                      {"updatetime_column", e.updatetime_column},
                      {"fields", fields}};
  if (e.is_file()) {
    j["directory"] = e.directory;
    j["include"] = e.include;
    j["exclude"] = e.exclude;
    j["recursive"] = e.recursive;
    if (e.name_encoding != "utf-8") j["name_encoding"] = e.name_encoding;
  }
  return j;
}

json ToJson(const Subscription& s) {
  json filter = json::array();
  for (const RowCondition& c : s.filter) {
    filter.push_back({{"column", c.column}, {"op", c.op}, {"values", c.values}});
  }
  json j = {{"name", s.name},
            {"agent", s.agent},
            {"entry", s.entry},
            {"columns", s.columns},
            {"filter", filter},
            {"target_table", s.target_table},
            {"target_path", s.target_path},
            {"propagate_deletes", s.propagate_deletes},
            {"schedule", s.schedule},
            {"status", s.status}};
  if (s.max_delete_percent >= 0) j["max_delete_percent"] = s.max_delete_percent;
  return j;
}

json ToJson(const RunRecord& r) {
  return {{"id", r.id},
          {"subscription", r.subscription},
          {"trigger", r.trigger},
          {"status", r.status},
          {"started_at_ms", r.started_at},
          {"finished_at_ms", r.finished_at},
          {"duration_ms", r.finished_at > 0 ? r.finished_at - r.started_at : 0},
          {"rows", r.rows},
          {"bytes", r.bytes},
          {"batches", r.batches},
          {"error", r.error}};
}

json ToJson(const AgentRecord& a) {
  return {{"name", a.name},
          {"description", a.description},
          {"online", a.online},
          {"last_seen", a.last_seen},
          {"address", a.address},
          {"version", a.version},
          {"target_dbms", a.target_dbms},
          {"bandwidth_kbps", a.bandwidth_kbps}};
}

bool FromJson(const json& j, Source* s) {
  if (!j.is_object()) return false;
  s->name = j.value("name", "");
  s->connection = j.value("connection", "");
  return true;
}

bool FromJson(const json& j, CatalogEntry* e) {
  if (!j.is_object()) return false;
  e->kind = j.value("kind", "table");
  e->name = j.value("name", "");
  e->provider = j.value("provider", "");
  e->mounted = j.value("mounted", "");
  e->summary = j.value("summary", "");
  e->share_type = j.value("share_type", "");
  e->security_level = j.value("security_level", "");
  e->update_frequency = j.value("update_frequency", "");
  e->time_range = j.value("time_range", "");
  e->topic = j.value("topic", "");
  e->scope = j.value("scope", "");
  e->status = j.value("status", "published");
  e->source = j.value("source", "");
  e->source_table = j.value("source_table", "");
  e->updatetime_column = j.value("updatetime_column", "");
  e->directory = j.value("directory", "");
  e->include = j.value("include", std::vector<std::string>{});
  e->exclude = j.value("exclude", std::vector<std::string>{});
  e->recursive = j.value("recursive", true);
  e->name_encoding = j.value("name_encoding", "utf-8");
  e->fields.clear();
  for (const json& f : j.value("fields", json::array())) {
    Field field;
    auto type = ParseColumnType(f.value("type", "text"));
    if (!type.ok()) return false;
    field.column = type.value();
    field.column.name = f.value("column", "");
    field.column.not_null = f.value("not_null", false);
    field.column.primary_key = f.value("primary_key", false);
    field.item_name = f.value("item_name", "");
    field.meaning = f.value("meaning", "");
    field.format = f.value("format", "");
    field.example = f.value("example", "");
    e->fields.push_back(std::move(field));
  }
  return true;
}

bool FromJson(const json& j, Subscription* s) {
  if (!j.is_object()) return false;
  s->name = j.value("name", "");
  s->agent = j.value("agent", "");
  s->entry = j.value("entry", "");
  s->columns = j.value("columns", std::vector<std::string>{});
  s->target_table = j.value("target_table", "");
  s->target_path = j.value("target_path", "");
  s->propagate_deletes = j.value("propagate_deletes", false);
  s->schedule = j.value("schedule", "manual");
  s->status = j.value("status", "active");
  s->max_delete_percent = j.value("max_delete_percent", -1);
  s->filter.clear();
  for (const json& c : j.value("filter", json::array())) {
    RowCondition cond;
    cond.column = c.value("column", "");
    cond.op = c.value("op", "=");
    cond.values = c.value("values", std::vector<std::string>{});
    s->filter.push_back(std::move(cond));
  }
  return true;
}

}  // namespace dx::scheduler
