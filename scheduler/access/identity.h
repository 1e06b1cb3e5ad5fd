// The records of who may use the admin API: organisations (the departments of 第七条), their
// users with one role each, and the users' API tokens (stored hashed; see api_token.h).
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "scheduler/access/principal.h"

namespace dx::scheduler {

struct Organisation {
  std::string name;  // e.g. 市教委基础教育处, 徐汇区教育局
  std::string description;
  // Directories on the scheduler's machine that this organisation's file resources may
  // serve (a provider cannot publish a directory outside them). Set by the technical admin.
  std::vector<std::string> file_roots;
  int64_t created_at = 0;  // unix seconds
  std::string created_by;
};

struct User {
  std::string name;  // login name: letters, digits, '.', '_', '-' (kBootstrapUser is reserved)
  std::string display_name;
  std::string organisation;
  Role role = Role::kConsumer;
  bool disabled = false;  // a disabled user's tokens are refused
  int64_t created_at = 0;
  std::string created_by;
};

struct ApiTokenRecord {
  std::string id;  // public part of the token
  std::string user;
  std::string secret_hash;  // HashTokenSecret() of the secret part
  std::string label;        // what the user called it, e.g. "laptop", "nightly script"
  int64_t created_at = 0;   // unix seconds
  int64_t expires_at = 0;   // unix seconds; the token is refused from then on
  int64_t revoked_at = 0;   // unix seconds; 0: not revoked
  std::string revoked_by;
  std::string created_by;  // the user who issued it (an admin may issue for others)

  // "active", "expired" or "revoked" at `now` (unix seconds).
  std::string StateAt(int64_t now) const;
};

// True for names a user may have.
bool IsValidUserName(const std::string& name);

nlohmann::json ToJson(const Organisation& o);
nlohmann::json ToJson(const User& u);
// Without the secret's hash (for listings); the store keeps it apart.
nlohmann::json ToJson(const ApiTokenRecord& t);
bool FromJson(const nlohmann::json& j, Organisation* o);
bool FromJson(const nlohmann::json& j, User* u);
bool FromJson(const nlohmann::json& j, ApiTokenRecord* t);

}  // namespace dx::scheduler
