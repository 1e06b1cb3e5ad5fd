// The Authorizer's grants, one case per row: who (role, organisation, user), what, on which
// object, and whether it is allowed (and why not).
#include "scheduler/access/authorizer.h"

#include <doctest/doctest.h>

namespace dx::scheduler {
namespace {

struct Case {
  Role role;
  const char* org;
  const char* user;
  Action action;
  Target target;
  bool allowed;
  const char* why = "";  // part of the refusal
};

Target Obj(const char* provider, const char* consumer, const char* user = "",
           const char* halted = "", const char* refused = "") {
  Target t;
  t.kind = "object";
  t.name = "x";
  t.provider_org = provider;
  t.consumer_org = consumer;
  t.user = user;
  t.halted_by_org = halted;
  t.refused_by = refused;
  return t;
}

constexpr Role P = Role::kProvider;
constexpr Role C = Role::kConsumer;
constexpr Role K = Role::kCoordinator;
constexpr Role A = Role::kAdmin;

TEST_CASE("authorisation rules, role by role and organisation by organisation") {
  const char* jw = "市教委基础教育处";
  const char* rs = "市教委人事处";
  const char* xh = "徐汇区教育局";
  const char* pd = "浦东新区教育局";
  const Case cases[] = {
      // The catalog: a provider edits only its own organisation's entries; the admin any.
      {P, jw, "p1", Action::kCatalogEdit, Obj(jw, ""), true},
      {P, rs, "p2", Action::kCatalogEdit, Obj(jw, ""), false,
       "provided by '市教委基础教育处', not by '市教委人事处'"},
      {A, "信息中心", "t1", Action::kCatalogEdit, Obj(jw, ""), true},
      {C, xh, "c1", Action::kCatalogEdit, Obj(jw, ""), false, "only admin, provider may"},
      {K, "信息中心", "k1", Action::kCatalogEdit, Obj(jw, ""), false, "only admin, provider may"},
      {P, jw, "p1", Action::kCatalogSubmit, Obj(jw, ""), true},
      {A, "信息中心", "t1", Action::kCatalogReview, Obj(jw, ""), true},
      {P, jw, "p1", Action::kCatalogReview, Obj(jw, ""), false, "only admin may"},
      {K, "信息中心", "k1", Action::kCatalogPublish, Obj(jw, ""), true},
      {A, "信息中心", "t1", Action::kCatalogPublish, Obj(jw, ""), false, "only coordinator may"},
      {P, jw, "p1", Action::kCatalogPublish, Obj(jw, ""), false, "only coordinator may"},
      {C, xh, "c1", Action::kCatalogRead, Obj(jw, ""), true},
      {C, xh, "c1", Action::kCatalogReadDraft, Obj(jw, ""), false},
      {P, jw, "p1", Action::kCatalogReadDraft, Obj(jw, ""), true},
      {P, rs, "p2", Action::kCatalogReadDraft, Obj(jw, ""), false},
      {K, "信息中心", "k1", Action::kCatalogReadDraft, Obj(jw, ""), true},
      // Applications: the consumer applies for its own organisation; each step by its party.
      {C, xh, "c1", Action::kApplicationCreate, Obj("", xh), true},
      {C, xh, "c1", Action::kApplicationCreate, Obj("", pd), false, "belongs to '浦东新区教育局'"},
      {P, jw, "p1", Action::kApplicationCreate, Obj("", jw), false, "only consumer may"},
      {C, xh, "c1", Action::kProviderDecision, Obj(jw, xh), false, "only provider may"},
      {P, jw, "p1", Action::kProviderDecision, Obj(jw, xh), true},
      {P, rs, "p2", Action::kProviderDecision, Obj(jw, xh), false, "provided by"},
      {A, "信息中心", "t1", Action::kTechnicalReview, Obj(jw, xh), true},
      {K, "信息中心", "k1", Action::kTechnicalReview, Obj(jw, xh), false},
      {C, xh, "c1", Action::kCoordinatorDecision, Obj(jw, xh), false, "only coordinator may"},
      {K, "信息中心", "k1", Action::kCoordinatorDecision, Obj(jw, xh), true},
      {C, xh, "c1", Action::kApplicationRead, Obj(jw, xh), true},
      {C, pd, "c2", Action::kApplicationRead, Obj(jw, xh), false},
      {P, jw, "p1", Action::kApplicationRead, Obj(jw, xh), true},
      {P, rs, "p2", Action::kApplicationRead, Obj(jw, xh), false},
      // Arbitration: the applicant asks; a coordinator other than the refusing one decides.
      {C, xh, "c1", Action::kArbitrationRequest, Obj(jw, xh), true},
      {C, pd, "c2", Action::kArbitrationRequest, Obj(jw, xh), false},
      {K, "信息中心", "k1", Action::kArbitrationDecision, Obj(jw, xh, "", "", "k2"), true},
      {K, "信息中心", "k2", Action::kArbitrationDecision, Obj(jw, xh, "", "", "k2"), false,
       "may not arbitrate it"},
      {P, jw, "p1", Action::kArbitrationDecision, Obj(jw, xh, "", "", "k2"), false,
       "only coordinator may"},
      // Subscriptions: the consumer's own agents; suspension and termination by the parties.
      {C, xh, "c1", Action::kSubscriptionCreate, Obj(jw, xh), true},
      {C, pd, "c2", Action::kSubscriptionCreate, Obj(jw, xh), false, "belongs to '徐汇区教育局'"},
      {P, jw, "p1", Action::kSubscriptionCreate, Obj(jw, xh), false},
      {P, jw, "p1", Action::kSubscriptionSuspend, Obj(jw, xh), true},
      {P, rs, "p2", Action::kSubscriptionSuspend, Obj(jw, xh), false},
      {A, "信息中心", "t1", Action::kSubscriptionSuspend, Obj(jw, xh), true},
      {A, "信息中心", "t1", Action::kSubscriptionTerminate, Obj(jw, xh), false},
      {P, jw, "p1", Action::kSubscriptionTerminate, Obj(jw, xh), true},
      {C, xh, "c1", Action::kSubscriptionTerminate, Obj(jw, xh), true},
      {K, "信息中心", "k1", Action::kSubscriptionResume, Obj(jw, xh, "", jw), true},
      {P, jw, "p1", Action::kSubscriptionResume, Obj(jw, xh, "", jw), true},
      {C, xh, "c1", Action::kSubscriptionResume, Obj(jw, xh, "", jw), false,
       "suspended by '市教委基础教育处'"},
      {C, xh, "c1", Action::kSubscriptionResume, Obj(jw, xh, "", xh), true},
      {P, jw, "p1", Action::kSubscriptionResume, Obj(jw, xh, "", xh), false},
      {A, "信息中心", "t1", Action::kSubscriptionResume, Obj(jw, xh, "", "信息中心"), true},
      {A, "信息中心", "t1", Action::kSubscriptionResume, Obj(jw, xh, "", jw), false},
      {C, xh, "c1", Action::kSubscriptionOperate, Obj(jw, xh), true},
      {P, jw, "p1", Action::kSubscriptionOperate, Obj(jw, xh), false},
      // Identities: the admin manages users; everyone their own tokens.
      {A, "信息中心", "t1", Action::kUserManage, Obj("", ""), true},
      {K, "信息中心", "k1", Action::kUserManage, Obj("", ""), false},
      {C, xh, "c1", Action::kTokenIssue, Obj("", "", "c1"), true},
      {C, xh, "c1", Action::kTokenIssue, Obj("", "", "c2"), false, "belongs to user 'c2'"},
      {A, "信息中心", "t1", Action::kTokenRevoke, Obj("", "", "c2"), true},
      {A, "信息中心", "t1", Action::kSourceManage, Obj(jw, ""), true},
      {P, jw, "p1", Action::kSourceManage, Obj(jw, ""), false},
      {C, xh, "c1", Action::kAgentRegister, Obj("", xh), true},
      {C, pd, "c2", Action::kAgentRegister, Obj("", xh), false},
      // Oversight.
      {P, jw, "p1", Action::kFeedbackResolve, Obj(jw, xh), true},
      {C, xh, "c1", Action::kFeedbackResolve, Obj(jw, xh), false},
      {P, jw, "p1", Action::kUsageRead, Obj(jw, ""), true},
      {P, rs, "p2", Action::kUsageRead, Obj(jw, ""), false},
      {C, xh, "c1", Action::kUsageRead, Obj(jw, ""), false},
      {K, "信息中心", "k1", Action::kListsRead, Obj("", ""), true},
      {P, jw, "p1", Action::kListsRead, Obj("", ""), false},
      {K, "信息中心", "k1", Action::kAuditRead, Obj("", ""), true},
      {K, "信息中心", "k1", Action::kAuditVerify, Obj("", ""), false},
      {C, xh, "c1", Action::kAuditRead, Obj("", ""), false},
      // Demands: each of the six steps by its party.
      {A, "信息中心", "t1", Action::kDemandCompare, Obj(jw, xh), true},
      {C, xh, "c1", Action::kDemandCompare, Obj(jw, xh), false},
      {K, "信息中心", "k1", Action::kDemandNegotiate, Obj(jw, xh), true},
      {P, jw, "p1", Action::kDemandConfirm, Obj(jw, xh), true},
      {C, xh, "c1", Action::kDemandConfirm, Obj(jw, xh), true},
      {C, pd, "c2", Action::kDemandConfirm, Obj(jw, xh), false},
      {P, jw, "p1", Action::kDemandIntegrate, Obj(jw, xh), true},
      {A, "信息中心", "t1", Action::kDemandCatalogue, Obj(jw, xh), true},
      {P, jw, "p1", Action::kDemandCatalogue, Obj(jw, xh), false},
      {C, xh, "c1", Action::kDemandApply, Obj(jw, xh), true},
      {K, "信息中心", "k1", Action::kDemandClose, Obj(jw, xh), true},
      {C, xh, "c1", Action::kDemandClose, Obj(jw, xh), false},
  };
  Authorizer authz;
  int row = 0;
  for (const Case& c : cases) {
    ++row;
    Principal p;
    p.role = c.role;
    p.organisation = c.org;
    p.user = c.user;
    CAPTURE(row);
    CAPTURE(ActionName(c.action));
    CAPTURE(RoleName(c.role));
    Status st = authz.Check(p, c.action, c.target);
    CHECK(st.ok() == c.allowed);
    if (!c.allowed) {
      CHECK(st.code() == StatusCode::kPermissionDenied);
      CHECK(st.message().find(c.why) != std::string::npos);
      CHECK(st.message().find(std::string("user '") + c.user + "'") == 0);
    }
  }
}

TEST_CASE("an empty organisation never matches, and every action has a rule") {
  Authorizer authz;
  Principal p;
  p.role = Role::kProvider;
  p.user = "p";
  Target t;  // an object without a provider
  CHECK_FALSE(authz.Allows(p, Action::kCatalogEdit, t));
  for (int a = 0; a <= static_cast<int>(Action::kAuditVerify); ++a) {
    CAPTURE(a);
    CHECK(std::string(ActionName(static_cast<Action>(a))) != "?");
  }
  CHECK(authz.RoleMayEver(Role::kProvider, Action::kUsageRead));
  CHECK_FALSE(authz.RoleMayEver(Role::kConsumer, Action::kUsageRead));
}

}  // namespace
}  // namespace dx::scheduler
