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

MaskingRule Subscription::MaskingFor(const std::string& column) const {
  for (const MaskingRule& m : masking) {
    if (m.column == column) return m;
  }
  MaskingRule keep;
  keep.column = column;
  return keep;
}

json ToJson(const Source& s) {
  json j = {{"name", s.name}, {"connection", s.connection}};
  if (!s.encoding.empty()) j["encoding"] = s.encoding;
  if (!s.organisation.empty()) j["organisation"] = s.organisation;
  return j;
}

json ToJson(const MaskingRule& m) {
  json j = {{"column", m.column}, {"method", m.method}};
  if (m.method == "partial") {
    j["keep_first"] = m.keep_first;
    j["keep_last"] = m.keep_last;
  }
  return j;
}

bool FromJson(const json& j, MaskingRule* m) {
  if (!j.is_object()) return false;
  try {
    m->column = j.value("column", "");
    m->method = j.value("method", "keep");
    m->keep_first = j.value("keep_first", 0);
    m->keep_last = j.value("keep_last", 0);
  } catch (const json::exception&) {
    return false;
  }
  return true;
}

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
                      {"fields", fields},
                      {"data_format", e.data_format},
                      {"provision", e.provision},
                      {"stages", e.stages},
                      {"district", e.district},
                      {"school", e.school},
                      {"contact", e.contact}};
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
  // Governance: always written, so that a stored definition says how it was granted.
  j["application"] = s.application_id;
  j["direct"] = s.direct;
  j["organisation"] = s.organisation;
  json masking = json::array();
  for (const MaskingRule& m : s.masking) masking.push_back(ToJson(m));
  j["masking"] = masking;
  j["reconcile"] = s.reconcile;
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
          {"error", r.error},
          {"note", r.note}};
}

json ToJson(const AgentRecord& a) {
  return {{"name", a.name},
          {"description", a.description},
          {"online", a.online},
          {"last_seen", a.last_seen},
          {"address", a.address},
          {"version", a.version},
          {"target_dbms", a.target_dbms},
          {"bandwidth_kbps", a.bandwidth_kbps},
          {"organisation", a.organisation},
          {"disabled", a.disabled}};
}

json ToJson(const ReconcileCounts& c) {
  return {{"dry_run", c.dry_run},  {"compared", c.compared}, {"target_rows", c.target_rows},
          {"missing", c.missing},  {"extra", c.extra},       {"changed", c.changed},
          {"repaired", c.repaired}};
}

bool FromJson(const json& j, Source* s) {
  if (!j.is_object()) return false;
  s->name = j.value("name", "");
  s->connection = j.value("connection", "");
  s->encoding = j.value("encoding", "");
  s->organisation = j.value("organisation", "");
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
  e->data_format = j.value("data_format", "");
  e->provision = j.value("provision", std::vector<std::string>{});
  e->stages = j.value("stages", std::vector<std::string>{});
  e->district = j.value("district", "");
  e->school = j.value("school", "");
  e->contact = j.value("contact", "");
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
  s->reconcile = j.value("reconcile", "");
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
  s->application_id = j.value("application", int64_t{0});
  // A definition stored before the sharing workflow existed was the operator's own grant.
  s->direct = j.contains("direct") ? j.value("direct", false) : s->application_id == 0;
  s->organisation = j.value("organisation", "");
  s->masking.clear();
  for (const json& m : j.value("masking", json::array())) {
    MaskingRule rule;
    if (!FromJson(m, &rule)) return false;
    s->masking.push_back(std::move(rule));
  }
  return true;
}

}  // namespace dx::scheduler
