#include "scheduler/access/identity.h"

#include <nlohmann/json.hpp>

namespace dx::scheduler {

using nlohmann::json;

std::string ApiTokenRecord::StateAt(int64_t now) const {
  if (revoked_at > 0) return "revoked";
  if (now >= expires_at) return "expired";
  return "active";
}

bool IsValidUserName(const std::string& name) {
  if (name.empty() || name.size() > 64 || name == kBootstrapUser) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

json ToJson(const Organisation& o) {
  return {{"name", o.name},
          {"description", o.description},
          {"file_roots", o.file_roots},
          {"created_at", o.created_at},
          {"created_by", o.created_by}};
}

json ToJson(const User& u) {
  return {{"name", u.name},
          {"display_name", u.display_name},
          {"organisation", u.organisation},
          {"role", RoleName(u.role)},
          {"disabled", u.disabled},
          {"created_at", u.created_at},
          {"created_by", u.created_by}};
}

json ToJson(const ApiTokenRecord& t) {
  return {{"id", t.id},
          {"user", t.user},
          {"label", t.label},
          {"created_at", t.created_at},
          {"created_by", t.created_by},
          {"expires_at", t.expires_at},
          {"revoked_at", t.revoked_at},
          {"revoked_by", t.revoked_by}};
}

bool FromJson(const json& j, Organisation* o) {
  if (!j.is_object()) return false;
  try {
    o->name = j.value("name", "");
    o->description = j.value("description", "");
    o->file_roots = j.value("file_roots", std::vector<std::string>{});
    o->created_at = j.value("created_at", int64_t{0});
    o->created_by = j.value("created_by", "");
  } catch (const json::exception&) {
    return false;
  }
  return true;
}

bool FromJson(const json& j, User* u) {
  if (!j.is_object()) return false;
  try {
    u->name = j.value("name", "");
    u->display_name = j.value("display_name", "");
    u->organisation = j.value("organisation", "");
    if (!ParseRole(j.value("role", ""), &u->role)) return false;
    u->disabled = j.value("disabled", false);
    u->created_at = j.value("created_at", int64_t{0});
    u->created_by = j.value("created_by", "");
  } catch (const json::exception&) {
    return false;
  }
  return true;
}

bool FromJson(const json& j, ApiTokenRecord* t) {
  if (!j.is_object()) return false;
  try {
    t->id = j.value("id", "");
    t->user = j.value("user", "");
    t->label = j.value("label", "");
    t->created_at = j.value("created_at", int64_t{0});
    t->created_by = j.value("created_by", "");
    t->expires_at = j.value("expires_at", int64_t{0});
    t->revoked_at = j.value("revoked_at", int64_t{0});
    t->revoked_by = j.value("revoked_by", "");
  } catch (const json::exception&) {
    return false;
  }
  return true;
}

}  // namespace dx::scheduler
