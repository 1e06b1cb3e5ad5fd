// UserDirectory: organisations, users and API tokens, managed through the admin API by the
// technical admin (tokens also by each user for themselves), and the Authenticator that turns
// a request's Authorization header into a Principal: the bootstrap admin (the operator token
// of scheduler.yaml) or the user of a valid API token.
#pragma once

#include <string>
#include <vector>

#include "common/clock.h"
#include "scheduler/access/api_token.h"
#include "scheduler/access/authorizer.h"
#include "scheduler/store.h"

namespace dx::scheduler {

inline constexpr int64_t kDefaultTokenLifetimeS = 90 * 86400;
inline constexpr int64_t kMaxTokenLifetimeS = 366 * 86400;

class UserDirectory {
 public:
  UserDirectory(Store& store, const Authorizer& authz, const Clock& clock)
      : store_(store), authz_(authz), clock_(clock) {}

  // Creates an organisation or updates its description and file roots.
  Result<Organisation> PutOrganisation(const Actor& actor, Organisation org);
  Result<std::vector<Organisation>> Organisations(const Actor& actor);
  Result<User> AddUser(const Actor& actor, User user);
  Result<User> SetDisabled(const Actor& actor, const std::string& name, bool disabled);
  // Every user for the admin and coordinators; one's own record for others.
  Result<std::vector<User>> Users(const Actor& actor);

  // Issues a token for `user` valid for `lifetime_s` seconds; the returned text is its only
  // copy. `record` receives what is stored.
  Result<NewToken> IssueToken(const Actor& actor, const std::string& user, const std::string& label,
                              int64_t lifetime_s, ApiTokenRecord* record);
  Result<std::vector<ApiTokenRecord>> Tokens(const Actor& actor, const std::string& user);
  Result<ApiTokenRecord> RevokeToken(const Actor& actor, const std::string& id);

 private:
  Store& store_;
  const Authorizer& authz_;
  const Clock& clock_;
};

class Authenticator {
 public:
  // `bootstrap_token`: the operator token of scheduler.yaml, whose holder is the bootstrap
  // technical admin of `bootstrap_org`.
  Authenticator(Store& store, const Clock& clock, std::string bootstrap_token,
                std::string bootstrap_org)
      : store_(store),
        clock_(clock),
        bootstrap_token_(std::move(bootstrap_token)),
        bootstrap_org_(std::move(bootstrap_org)) {}

  // The caller of a request with this Authorization header; kPermissionDenied saying why not
  // (missing, malformed, unknown, expired or revoked token, disabled user).
  Result<Principal> Authenticate(const std::string& authorization) const;

 private:
  Store& store_;
  const Clock& clock_;
  const std::string bootstrap_token_;
  const std::string bootstrap_org_;
};

}  // namespace dx::scheduler
