// Oversight: what the parties watch once data flows. Consumers report data errors on a
// resource (第九条), which land in the provider's queue (open, corrected, rejected); providers
// see per-consumer usage of their resources (rows and files delivered, last delivery; 附件一
// 第三条(七)); coordinators see, per organisation, the three lists of the governance plan
// (seed 000, 工作任务 10): the demand list, the responsibility list and the negative list.
// Notices (e.g. a published change that breaks a subscription) are listed here too.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "common/clock.h"
#include "scheduler/access/authorizer.h"
#include "scheduler/store.h"

namespace dx::scheduler {

// What one consumer organisation received of one resource.
struct UsageRow {
  std::string entry;
  std::string provider;
  std::string consumer;  // the subscribing organisation ("" for subscriptions without one)
  std::vector<std::string> subscriptions;
  int64_t rows = 0;   // table rows delivered
  int64_t files = 0;  // files delivered
  int64_t bytes = 0;
  int64_t last_delivery_ms = 0;
};

class Oversight {
 public:
  Oversight(Store& store, const Authorizer& authz, const Clock& clock)
      : store_(store), authz_(authz), clock_(clock) {}

  // A consumer reports an error in a resource its organisation subscribes to.
  Result<Feedback> Report(const Actor& actor, const std::string& entry,
                          const std::string& subscription, const std::string& description);
  // The provider marks it corrected or rejected, with a note.
  Result<Feedback> Resolve(const Actor& actor, int64_t id, const std::string& state,
                           const std::string& note);
  // The reports `actor` may see (a provider: those on its resources, its queue).
  Result<std::vector<Feedback>> Feedbacks(const Actor& actor);
  // Usage by (resource, consumer organisation) of the resources `actor` may watch.
  Result<std::vector<UsageRow>> Usage(const Actor& actor);
  // The demand, responsibility and negative lists of `organisation` (every one when empty):
  // [{organisation, demand: [...], responsibility: [...], negative: [...]}].
  Result<nlohmann::json> Lists(const Actor& actor, const std::string& organisation);
  Result<std::vector<Notice>> Notices(const Actor& actor);

 private:
  Store& store_;
  const Authorizer& authz_;
  const Clock& clock_;
};

}  // namespace dx::scheduler
