#include "scheduler/access/user_directory.h"

#include <openssl/crypto.h>

namespace dx::scheduler {
namespace {

Target UserTarget(const std::string& user, const std::string& organisation = "") {
  Target t;
  t.kind = "user";
  t.name = user;
  t.user = user;
  t.consumer_org = organisation;
  return t;
}

}  // namespace

Result<Organisation> UserDirectory::PutOrganisation(const Actor& actor, Organisation org) {
  Target t;
  t.kind = "organisation";
  t.name = org.name;
  DX_RETURN_IF_ERROR(authz_.Check(actor.who, Action::kOrganisationManage, t));
  if (org.name.empty() || org.name.size() > 200 || org.name.find('/') != std::string::npos) {
    return InvalidArgument("an organisation needs a name (at most 200 bytes, no '/')");
  }
  for (const std::string& root : org.file_roots) {
    if (root.empty() || root[0] != '/') {
      return InvalidArgument("file root '" + root + "' must be an absolute path");
    }
  }
  DX_ASSIGN_OR_RETURN(auto old, store_.GetOrganisation(org.name));
  org.created_at = old ? old->created_at : ToUnixSeconds(clock_.Now());
  org.created_by = old ? old->created_by : actor.who.user;
  DX_RETURN_IF_ERROR(store_.PutOrganisation(org));
  return org;
}

Result<std::vector<Organisation>> UserDirectory::Organisations(const Actor& actor) {
  DX_RETURN_IF_ERROR(authz_.Check(actor.who, Action::kOrganisationRead, {}));
  return store_.ListOrganisations();
}

Result<User> UserDirectory::AddUser(const Actor& actor, User user) {
  DX_RETURN_IF_ERROR(authz_.Check(actor.who, Action::kUserManage, UserTarget(user.name)));
  if (!IsValidUserName(user.name)) {
    return InvalidArgument("user name '" + user.name +
                           "': letters, digits, '.', '_' and '-', at most 64 ('" + kBootstrapUser +
                           "' is reserved)");
  }
  DX_ASSIGN_OR_RETURN(auto org, store_.GetOrganisation(user.organisation));
  if (!org) {
    return NotFound("no organisation named '" + user.organisation + "' (dxctl org add first)");
  }
  DX_ASSIGN_OR_RETURN(auto old, store_.GetUser(user.name));
  if (old) return FailedPrecondition("user '" + user.name + "' exists already");
  user.disabled = false;
  user.created_at = ToUnixSeconds(clock_.Now());
  user.created_by = actor.who.user;
  DX_RETURN_IF_ERROR(store_.PutUser(user));
  return user;
}

Result<User> UserDirectory::SetDisabled(const Actor& actor, const std::string& name,
                                        bool disabled) {
  DX_RETURN_IF_ERROR(authz_.Check(actor.who, Action::kUserManage, UserTarget(name)));
  DX_ASSIGN_OR_RETURN(auto user, store_.GetUser(name));
  if (!user) return NotFound("no user named '" + name + "'");
  user->disabled = disabled;
  DX_RETURN_IF_ERROR(store_.PutUser(*user));
  return std::move(*user);
}

Result<std::vector<User>> UserDirectory::Users(const Actor& actor) {
  DX_ASSIGN_OR_RETURN(auto all, store_.ListUsers());
  std::vector<User> out;
  for (User& u : all) {
    if (authz_.Allows(actor.who, Action::kUserRead, UserTarget(u.name)))
      out.push_back(std::move(u));
  }
  return out;
}

Result<NewToken> UserDirectory::IssueToken(const Actor& actor, const std::string& user,
                                           const std::string& label, int64_t lifetime_s,
                                           ApiTokenRecord* record) {
  DX_RETURN_IF_ERROR(authz_.Check(actor.who, Action::kTokenIssue, UserTarget(user)));
  DX_ASSIGN_OR_RETURN(auto owner, store_.GetUser(user));
  if (!owner) {
    return NotFound(
        "no user named '" + user + "'" +
        (user == kBootstrapUser ? " (the bootstrap admin uses the operator token)" : ""));
  }
  if (owner->disabled) return FailedPrecondition("user '" + user + "' is disabled");
  if (lifetime_s <= 0 || lifetime_s > kMaxTokenLifetimeS) {
    return InvalidArgument("a token lives between 1 second and " +
                           std::to_string(kMaxTokenLifetimeS / 86400) + " days");
  }
  DX_ASSIGN_OR_RETURN(NewToken token, GenerateApiToken());
  const int64_t now = ToUnixSeconds(clock_.Now());
  ApiTokenRecord r;
  r.id = token.id;
  r.user = user;
  r.secret_hash = HashTokenSecret(token.secret);
  r.label = label;
  r.created_at = now;
  r.created_by = actor.who.user;
  r.expires_at = now + lifetime_s;
  DX_RETURN_IF_ERROR(store_.PutApiToken(r));
  if (record) *record = r;
  return token;
}

Result<std::vector<ApiTokenRecord>> UserDirectory::Tokens(const Actor& actor,
                                                          const std::string& user) {
  if (user.empty()) {  // everyone's: the admin's view
    DX_RETURN_IF_ERROR(authz_.Check(actor.who, Action::kTokenRead, UserTarget("")));
  } else {
    DX_RETURN_IF_ERROR(authz_.Check(actor.who, Action::kTokenRead, UserTarget(user)));
  }
  return store_.ListApiTokens(user);
}

Result<ApiTokenRecord> UserDirectory::RevokeToken(const Actor& actor, const std::string& id) {
  DX_ASSIGN_OR_RETURN(auto token, store_.GetApiToken(id));
  if (!token) return NotFound("no API token " + id);
  DX_RETURN_IF_ERROR(authz_.Check(actor.who, Action::kTokenRevoke, UserTarget(token->user)));
  if (token->revoked_at > 0) return FailedPrecondition("API token " + id + " is revoked already");
  token->revoked_at = ToUnixSeconds(clock_.Now());
  token->revoked_by = actor.who.user;
  DX_RETURN_IF_ERROR(store_.PutApiToken(*token));
  return std::move(*token);
}

Result<Principal> Authenticator::Authenticate(const std::string& authorization) const {
  static const std::string kBearer = "Bearer ";
  const std::string kHint = " (Authorization: Bearer TOKEN)";
  if (authorization.compare(0, kBearer.size(), kBearer) != 0) {
    return PermissionDenied("missing or wrong operator token or API token" + kHint);
  }
  const std::string presented = authorization.substr(kBearer.size());
  if (!bootstrap_token_.empty() && presented.size() == bootstrap_token_.size() &&
      CRYPTO_memcmp(presented.data(), bootstrap_token_.data(), presented.size()) == 0) {
    Principal p;
    p.user = kBootstrapUser;
    p.role = Role::kAdmin;
    p.organisation = bootstrap_org_;
    p.bootstrap = true;
    return p;
  }
  std::string id;
  std::string secret;
  if (!ParseApiToken(presented, &id, &secret)) {
    return PermissionDenied("missing or wrong operator token or API token" + kHint);
  }
  DX_ASSIGN_OR_RETURN(auto token, store_.GetApiToken(id));
  if (!token || !TokenSecretMatches(secret, token->secret_hash)) {
    return PermissionDenied("missing or wrong operator token or API token" + kHint);
  }
  const int64_t now = ToUnixSeconds(clock_.Now());
  const std::string state = token->StateAt(now);
  if (state == "revoked") {
    return PermissionDenied("API token " + id + " was revoked by " + token->revoked_by);
  }
  if (state == "expired") {
    return PermissionDenied("API token " + id + " expired at " +
                            FormatLocalTime(token->expires_at) +
                            "; ask for a new one (dxctl token issue)");
  }
  DX_ASSIGN_OR_RETURN(auto user, store_.GetUser(token->user));
  if (!user) return PermissionDenied("the user of API token " + id + " no longer exists");
  if (user->disabled) return PermissionDenied("user '" + user->name + "' is disabled");
  Principal p;
  p.user = user->name;
  p.role = user->role;
  p.organisation = user->organisation;
  p.token_id = id;
  return p;
}

}  // namespace dx::scheduler
