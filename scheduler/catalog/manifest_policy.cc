#include "scheduler/catalog/manifest_policy.h"

namespace dx::scheduler {
namespace {

std::string Fields(const std::vector<Problem>& problems) {
  std::string out;
  for (const Problem& p : problems) out += (out.empty() ? "" : ", ") + p.field;
  return out;
}

}  // namespace

Status GovernedApplyPolicy::AdmitSource(const Source& source) {
  Target t;
  t.kind = "source";
  t.name = source.name;
  t.provider_org = source.organisation;
  return authz_.Check(actor_.who, Action::kSourceManage, t);
}

Status GovernedApplyPolicy::AdmitEntry(const CatalogEntry& entry) {
  return authz_.Check(actor_.who, Action::kCatalogEdit,
                      CatalogWorkflow::EntryTarget(entry.name, entry.provider));
}

Status GovernedApplyPolicy::AdmitAgent(AgentRecord* agent,
                                       const std::optional<AgentRecord>& stored) {
  // A consumer registers its own front-end machines; an organisation once given is kept.
  if (agent->organisation.empty() && stored) agent->organisation = stored->organisation;
  if (agent->organisation.empty() && actor_.who.role == Role::kConsumer) {
    agent->organisation = actor_.who.organisation;
  }
  Target t;
  t.kind = "agent";
  t.name = agent->name;
  t.consumer_org = agent->organisation;
  DX_RETURN_IF_ERROR(authz_.Check(actor_.who, Action::kAgentRegister, t));
  // Disabling or enabling is the technical admin's, as on the API.
  if (agent->disabled != (stored && stored->disabled)) {
    DX_RETURN_IF_ERROR(authz_.Check(actor_.who, Action::kAgentManage, t));
  }
  if (stored && !stored->organisation.empty() && stored->organisation != agent->organisation) {
    t.consumer_org = stored->organisation;
    DX_RETURN_IF_ERROR(authz_.Check(actor_.who, Action::kAgentRegister, t));
  }
  return Status::Ok();
}

Status GovernedApplyPolicy::AdmitSubscription(Subscription* sub,
                                              const std::optional<Subscription>& stored,
                                              const CatalogEntry& entry, const AgentRecord& agent) {
  return sharing_.AdmitSubscription(actor_, sub, stored, entry, agent,
                                    mode_ == EntryMode::kPublishDirect);
}

Result<ApplyOutcome> GovernedApplyPolicy::WriteEntry(const CatalogEntry& entry,
                                                     const std::vector<Problem>& notes) {
  ApplyOutcome o{entry.is_file() ? "FileResource" : "CatalogEntry", entry.name, "", ""};
  bool unchanged = false;
  const std::string incomplete = notes.empty() ? "" : "incomplete for review: " + Fields(notes);
  if (mode_ == EntryMode::kPublishDirect) {
    const std::string note =
        "published directly by the bootstrap admin (admin.bootstrap_direct), not reviewed";
    DX_ASSIGN_OR_RETURN(CatalogVersion v, catalog_.PublishDirect(actor_, entry, note, &unchanged));
    o.action = unchanged ? "unchanged" : "published";
    if (!unchanged) {
      o.note = note + " (version " + std::to_string(v.version) + ")" +
               (incomplete.empty() ? "" : "; " + incomplete);
    }
    return o;
  }
  DX_ASSIGN_OR_RETURN(CatalogVersion v, catalog_.SaveDraft(actor_, entry, &unchanged));
  if (mode_ == EntryMode::kDraft || !(v.status == "draft" || v.status == "returned")) {
    o.action = unchanged ? "unchanged" : "drafted";
    o.note = "version " + std::to_string(v.version) + " is " + v.status +
             (incomplete.empty() ? "" : "; " + incomplete);
    return o;
  }
  DX_ASSIGN_OR_RETURN(v, catalog_.Submit(actor_, entry.name));
  o.action = "submitted";
  o.note = "version " + std::to_string(v.version) + " awaits the technical review";
  return o;
}

}  // namespace dx::scheduler
