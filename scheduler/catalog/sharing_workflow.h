// SharingWorkflow: how data is granted (第二十四、二十五条, 附件一, 附件四). Unconditional
// resources are subscribed at once; an authorised resource needs an application — purpose,
// scenario, requested columns and rows, acceptance of the confidentiality agreement — decided
// by the provider, reviewed by the technical admin (the data exists, partly exists or does not
// exist: an integration task), and decided by the coordinator. A refusal may go to
// arbitration, which passes or fails. The approved scope (columns, rows, masking) bounds every
// subscription made from it. Subscriptions are suspended, terminated and resumed here, with
// who and why.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "scheduler/access/authorizer.h"
#include "scheduler/store.h"

namespace dx::scheduler {

// The confidentiality agreement an applicant accepts (seed 004, 附件一).
inline constexpr const char* kAgreementText = "附件一 数据共享保密协议 (上海教育数据服务规范) v1";

struct ApplicationRequest {
  std::string entry;
  std::string purpose;
  std::string scenario;
  std::vector<std::string> columns;  // tables: the columns wanted (the key is always included)
  std::vector<RowCondition> filter;  // the rows wanted
  bool accept_agreement = false;     // 附件一 accepted
};

// A decision on an application. Approvals may narrow the scope: fewer columns, more row
// conditions; and set the masking of columns.
struct Decision {
  bool approve = false;
  std::string reason;  // required for a refusal
  std::optional<std::vector<std::string>> columns;
  std::vector<RowCondition> extra_filter;
  std::optional<std::vector<MaskingRule>> masking;
};

// The application's operations and the state each leads to (table-tested).
enum class ApplicationOp {
  kProviderApprove,
  kProviderRefuse,
  kFoundExisting,  // technical review: the data exists
  kFoundPartly,    // partly exists: integration first
  kFoundMissing,   // does not exist: integration first
  kIntegrated,
  kCoordinatorApprove,
  kCoordinatorRefuse,
  kRequestArbitration,
  kArbitrationPass,
  kArbitrationFail,
  kWithdraw,
};
// The state after `op` on an application in `state`; `refused_step` ("provider" or
// "coordinator") decides where a passed arbitration resumes.
Result<std::string> NextApplicationState(ApplicationOp op, const std::string& state,
                                         const std::string& refused_step = "");

class SharingWorkflow {
 public:
  SharingWorkflow(Store& store, const Authorizer& authz, const Clock& clock)
      : store_(store), authz_(authz), clock_(clock) {}

  Result<Application> Apply(const Actor& actor, const ApplicationRequest& request);
  Result<Application> ProviderDecision(const Actor& actor, int64_t id, const Decision& d);
  // result: exists | partly_exists | missing; `note` is the integration task for the last two.
  Result<Application> TechnicalReview(const Actor& actor, int64_t id, const std::string& result,
                                      const std::string& note);
  Result<Application> IntegrationDone(const Actor& actor, int64_t id, const std::string& note);
  Result<Application> CoordinatorDecision(const Actor& actor, int64_t id, const Decision& d);
  Result<Application> RequestArbitration(const Actor& actor, int64_t id, const std::string& reason);
  // The arbiter (a coordinator who did not make the refusal) passes or fails it; a passing
  // decision may carry the scope and masking like an approval.
  Result<Application> Arbitrate(const Actor& actor, int64_t id, const Decision& d);
  Result<Application> Withdraw(const Actor& actor, int64_t id, const std::string& reason);
  // The application, if `actor` may read it.
  Result<Application> Get(const Actor& actor, int64_t id);

  // Checks a subscription being created or changed by `actor` (through a manifest or the
  // API) and fills in what the grant decides: its organisation (its agent's), its masking
  // (the approval's), whether it is a direct grant. `agent` is the subscription's agent;
  // `direct` allows the bootstrap admin's grant without an application.
  Status AdmitSubscription(const Actor& actor, Subscription* sub,
                           const std::optional<Subscription>& stored, const CatalogEntry& entry,
                           const AgentRecord& agent, bool direct);

  Result<Subscription> Suspend(const Actor& actor, const std::string& name,
                               const std::string& reason);
  Result<Subscription> Terminate(const Actor& actor, const std::string& name,
                                 const std::string& reason);
  Result<Subscription> Resume(const Actor& actor, const std::string& name,
                              const std::string& reason);

  static Target ApplicationTarget(const Application& a);
  // Describes `sub` (its entry's provider from the store) to the Authorizer.
  Result<Target> SubscriptionTarget(const Subscription& sub);
  // The same for many subscriptions, reading each entry and agent once (listings).
  Result<std::vector<Target>> SubscriptionTargets(const std::vector<Subscription>& subs);

 private:
  Result<Application> Load(int64_t id);
  Result<Application> Step(const Actor& actor, Application a, ApplicationOp op,
                           const std::string& action, const std::string& note);
  // Applies an approval's narrowing to `scope`; checks it against the entry.
  Status Narrow(const Application& a, const Decision& d, ApprovedScope* scope);
  Result<Subscription> Halt(const Actor& actor, const std::string& name, const std::string& status,
                            const std::string& reason);

  Store& store_;
  const Authorizer& authz_;
  const Clock& clock_;
};

}  // namespace dx::scheduler
