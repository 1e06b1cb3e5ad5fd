// CatalogWorkflow: the life of a catalog entry (第十三、十四、二十一条). A provider drafts an
// entry of its own organisation and submits it; the technical admin reviews it (technical
// review: complete, consistent, well named) and passes or returns it with reasons; the
// coordinator publishes a reviewed version or returns it. Returned versions are changed and
// resubmitted. Every version is kept; the published one is the entry runs read. Publishing a
// change that breaks a subscription (a column it uses removed or retyped, the entry no longer
// shared) leaves a notice for the technical admins and the subscriber.
#pragma once

#include <string>
#include <vector>

#include "common/clock.h"
#include "scheduler/access/authorizer.h"
#include "scheduler/catalog/entry_validator.h"
#include "scheduler/store.h"

namespace dx::scheduler {

// The lifecycle's operations and the status each leads to (table-tested).
enum class CatalogOp {
  kSaveDraft,
  kSubmit,
  kPass,
  kReturnByReviewer,
  kPublish,
  kReturnByCoordinator
};
// The status after `op` on a version in `status` ("" for an entry without an open version);
// kFailedPrecondition names what the status allows.
Result<std::string> NextCatalogStatus(CatalogOp op, const std::string& status);

// Why publishing `after` in place of `before` breaks `sub` (empty: it does not).
std::vector<std::string> BreakingChanges(const CatalogEntry& before, const CatalogEntry& after,
                                         const Subscription& sub);

class CatalogWorkflow {
 public:
  CatalogWorkflow(Store& store, const Authorizer& authz, const Clock& clock)
      : store_(store), authz_(authz), clock_(clock) {}

  // Creates the entry's open version, or replaces the content of a draft or returned one
  // (which becomes a draft). Returns it; `unchanged` tells when it held this already.
  Result<CatalogVersion> SaveDraft(const Actor& actor, const CatalogEntry& entry,
                                   bool* unchanged = nullptr);
  // Checks the open version (every problem at once: kInvalidArgument listing them) and
  // submits it for technical review.
  Result<CatalogVersion> Submit(const Actor& actor, const std::string& name);
  // The technical review: pass, or return with reasons.
  Result<CatalogVersion> Review(const Actor& actor, const std::string& name, bool pass,
                                const std::vector<std::string>& reasons);
  // The coordinator publishes a reviewed version, or returns it with reasons.
  Result<CatalogVersion> Publish(const Actor& actor, const std::string& name);
  Result<CatalogVersion> ReturnToProvider(const Actor& actor, const std::string& name,
                                          const std::vector<std::string>& reasons);
  // The bootstrap admin's direct path (explicit in scheduler.yaml): publishes `entry` at once
  // as a new version, recording `note` in its history.
  Result<CatalogVersion> PublishDirect(const Actor& actor, const CatalogEntry& entry,
                                       const std::string& note, bool* unchanged = nullptr);
  // The versions of `name` `actor` may see (published ones to everyone).
  Result<std::vector<CatalogVersion>> Versions(const Actor& actor, const std::string& name);

  // The target describing an entry to the Authorizer.
  static Target EntryTarget(const std::string& name, const std::string& provider);

 private:
  Result<CatalogVersion> OpenVersion(const std::string& name);
  Result<CatalogVersion> Advance(const Actor& actor, const std::string& name, CatalogOp op,
                                 Action action, const std::vector<std::string>& reasons);
  // Makes `v` the entry runs read: supersedes the published version, leaves notices.
  Status MakeLive(const Actor& actor, CatalogVersion* v);
  WorkflowStep Step(const Actor& actor, const std::string& action, const std::string& note) const;

  Store& store_;
  const Authorizer& authz_;
  const Clock& clock_;
};

}  // namespace dx::scheduler
