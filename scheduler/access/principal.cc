#include "scheduler/access/principal.h"

namespace dx::scheduler {

const char* RoleName(Role role) {
  switch (role) {
    case Role::kProvider:
      return "provider";
    case Role::kConsumer:
      return "consumer";
    case Role::kCoordinator:
      return "coordinator";
    case Role::kAdmin:
      return "admin";
  }
  return "?";
}

bool ParseRole(const std::string& text, Role* role) {
  for (Role r : {Role::kProvider, Role::kConsumer, Role::kCoordinator, Role::kAdmin}) {
    if (text == RoleName(r)) {
      *role = r;
      return true;
    }
  }
  return false;
}

}  // namespace dx::scheduler
