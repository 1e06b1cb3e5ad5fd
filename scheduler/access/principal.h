// Principal: who is calling — a user of one organisation in one role (seed 004 第七条) — and
// Actor, the principal with the address the call came from (for the audit log).
#pragma once

#include <string>

namespace dx::scheduler {

// The four parties of the data-service specification.
enum class Role {
  kProvider,     // 数据提供部门: registers resources, decides on applications for them
  kConsumer,     // 数据使用部门: applies, subscribes its front-end machines, reports errors
  kCoordinator,  // 数据管理协调部门: publishes the catalog, decides applications, arbitrates
  kAdmin,  // 数据技术管理部门: runs the platform, reviews feasibility, answers for audit
};

// "provider", "consumer", "coordinator", "admin".
const char* RoleName(Role role);
// Accepts the names above; false for anything else.
bool ParseRole(const std::string& text, Role* role);

struct Principal {
  std::string user;  // user name; kBootstrapUser for the operator token of scheduler.yaml
  Role role = Role::kConsumer;
  std::string organisation;
  bool bootstrap = false;  // authenticated by the operator token of scheduler.yaml
  std::string token_id;    // the API token used (empty for the bootstrap admin)
};

// The user name of the bootstrap technical admin (reserved: no user may take it).
inline constexpr const char* kBootstrapUser = "operator";

struct Actor {
  Principal who;
  std::string from;  // peer address, for the audit log
};

}  // namespace dx::scheduler
