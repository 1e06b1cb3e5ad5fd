// DemandWorkflow: demand for data not in the catalog (第二十六条, 附件五), moved through its six
// steps by the parties each names: (一) the consumer files the 数据共享需求表 and the technical
// admin records the field comparison; (二) the coordinator records the scope and method agreed
// with the provider; (三) the technical admin writes the sharing plan, which provider and
// consumer both confirm; (四) the provider or the technical admin records the integration;
// (五) the technical admin names the catalog entry made for it; (六) the consumer records the
// application (or subscription) made from it. The coordinator may close an open demand.
#pragma once

#include <string>

#include "common/clock.h"
#include "scheduler/access/authorizer.h"
#include "scheduler/store.h"

namespace dx::scheduler {

// One step's input; which fields matter depends on the step.
struct DemandStepInput {
  std::string step;  // compare | negotiate | plan | confirm | integrate | catalogue | apply | close
  std::string note;
  std::string provider;        // negotiate: the providing organisation
  std::string scope;           // negotiate
  std::string method;          // negotiate
  std::string entry;           // catalogue
  int64_t application_id = 0;  // apply (authorised entry)
  std::string subscription;    // apply (unconditional entry)
};

// The state a step leads to from `state` (confirm depends on who has confirmed), and the
// Action whose grant it needs; kFailedPrecondition or kInvalidArgument otherwise.
struct DemandStepRule {
  Action action;
  std::string to;
};
Result<DemandStepRule> DemandStep(const std::string& step, const std::string& state);

class DemandWorkflow {
 public:
  DemandWorkflow(Store& store, const Authorizer& authz, const Clock& clock)
      : store_(store), authz_(authz), clock_(clock) {}

  // (一) The consumer files its demand (附件五).
  Result<Demand> File(const Actor& actor, Demand demand);
  Result<Demand> Advance(const Actor& actor, int64_t id, const DemandStepInput& input);
  Result<Demand> Get(const Actor& actor, int64_t id);
  static Target DemandTarget(const Demand& d);

 private:
  Store& store_;
  const Authorizer& authz_;
  const Clock& clock_;
};

}  // namespace dx::scheduler
