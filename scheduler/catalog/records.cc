#include "scheduler/catalog/records.h"

#include <nlohmann/json.hpp>

namespace dx::scheduler {

using nlohmann::json;

// nlohmann serialisers for the model's types, so the records below can be defined by member
// lists (NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT).
void to_json(json& j, const CatalogEntry& e) { j = ToJson(e); }
void from_json(const json& j, CatalogEntry& e) {
  if (!FromJson(j, &e)) throw json::other_error::create(501, "bad catalog entry", &j);
}
void to_json(json& j, const RowCondition& c) {
  j = {{"column", c.column}, {"op", c.op}, {"values", c.values}};
}
void from_json(const json& j, RowCondition& c) {
  c.column = j.value("column", "");
  c.op = j.value("op", "=");
  c.values = j.value("values", std::vector<std::string>{});
}
void to_json(json& j, const MaskingRule& m) { j = ToJson(m); }
void from_json(const json& j, MaskingRule& m) {
  if (!FromJson(j, &m)) throw json::other_error::create(501, "bad masking rule", &j);
}

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(WorkflowStep, at, by, role, organisation, action,
                                                note)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(CatalogVersion, name, version, status, organisation,
                                                author, entry, reasons, history, created_at,
                                                updated_at)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ApprovedScope, columns, filter, masking)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(AgreementAcceptance, agreement, accepted_by,
                                                organisation, accepted_at, from)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Application, id, entry, entry_version, provider,
                                                organisation, applicant, purpose, scenario, columns,
                                                filter, agreement, state, technical_result,
                                                integration_task, refused_by, refused_step,
                                                arbitration_reason, approved, history, created_at,
                                                updated_at)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(DemandItem, item, meaning, format, example)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Demand, id, organisation, requester, title,
                                                description, purpose, method, frequency, time_range,
                                                scope, contact, items, state, comparison, provider,
                                                agreed_scope, agreed_method, plan,
                                                provider_confirmed, consumer_confirmed, integration,
                                                entry, application_id, subscription, closed_reason,
                                                history, created_at, updated_at)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Feedback, id, entry, provider, organisation,
                                                reporter, subscription, description, state,
                                                resolution, resolved_by, created_at, resolved_at)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Notice, id, at, kind, organisation, entry, version,
                                                subscription, text)

namespace {

template <typename T>
bool Decode(const json& j, T* out) {
  if (!j.is_object()) return false;
  try {
    *out = j.get<T>();
  } catch (const json::exception&) {
    return false;
  }
  return true;
}

}  // namespace

json ToJson(const WorkflowStep& s) { return s; }
json ToJson(const CatalogVersion& v) { return v; }
json ToJson(const ApprovedScope& s) { return s; }
json ToJson(const Application& a) { return a; }
json ToJson(const Demand& d) { return d; }
json ToJson(const Feedback& f) { return f; }
json ToJson(const Notice& n) { return n; }
bool FromJson(const json& j, CatalogVersion* v) { return Decode(j, v); }
bool FromJson(const json& j, ApprovedScope* s) { return Decode(j, s); }
bool FromJson(const json& j, Application* a) { return Decode(j, a); }
bool FromJson(const json& j, Demand* d) { return Decode(j, d); }
bool FromJson(const json& j, Feedback* f) { return Decode(j, f); }
bool FromJson(const json& j, Notice* n) { return Decode(j, n); }

json ToJson(const std::vector<RowCondition>& filter) { return filter; }
bool FromJson(const json& j, std::vector<RowCondition>* filter) {
  if (!j.is_array()) return false;
  try {
    *filter = j.get<std::vector<RowCondition>>();
  } catch (const json::exception&) {
    return false;
  }
  return true;
}

}  // namespace dx::scheduler
