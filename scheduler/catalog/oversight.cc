#include "scheduler/catalog/oversight.h"

#include <map>
#include <nlohmann/json.hpp>
#include <set>

namespace dx::scheduler {

using nlohmann::json;

namespace {

Target FeedbackTarget(const Feedback& f) {
  Target t;
  t.kind = "error report";
  t.name = std::to_string(f.id) + " (" + f.entry + ")";
  t.provider_org = f.provider;
  t.consumer_org = f.organisation;
  return t;
}

}  // namespace

Result<Feedback> Oversight::Report(const Actor& actor, const std::string& entry_name,
                                   const std::string& subscription,
                                   const std::string& description) {
  Target t;
  t.kind = "organisation";
  t.name = actor.who.organisation;
  t.consumer_org = actor.who.organisation;
  DX_RETURN_IF_ERROR(authz_.Check(actor.who, Action::kFeedbackCreate, t));
  DX_ASSIGN_OR_RETURN(auto entry, store_.GetCatalogEntry(entry_name));
  if (!entry) return NotFound("no published catalog entry named '" + entry_name + "'");
  if (description.empty()) return InvalidArgument("describe the error: which rows, what is wrong");
  // 第九条: the data the consumer obtained, i.e. through a subscription of its organisation.
  DX_ASSIGN_OR_RETURN(auto subs, store_.ListSubscriptions());
  bool holds = false;
  for (const Subscription& s : subs) {
    if (s.entry != entry_name || s.organisation != actor.who.organisation) continue;
    if (subscription.empty() || s.name == subscription) holds = true;
  }
  if (!holds) {
    return FailedPrecondition("'" + actor.who.organisation + "' has no subscription" +
                              (subscription.empty() ? "" : " '" + subscription + "'") + " of '" +
                              entry_name + "': errors are reported on data received");
  }
  Feedback f;
  f.entry = entry_name;
  f.provider = entry->provider;
  f.organisation = actor.who.organisation;
  f.reporter = actor.who.user;
  f.subscription = subscription;
  f.description = description;
  f.state = "open";
  f.created_at = ToUnixSeconds(clock_.Now());
  DX_ASSIGN_OR_RETURN(f.id, store_.AddFeedback(f));
  return f;
}

Result<Feedback> Oversight::Resolve(const Actor& actor, int64_t id, const std::string& state,
                                    const std::string& note) {
  DX_ASSIGN_OR_RETURN(auto found, store_.GetFeedback(id));
  if (!found) return NotFound("no error report " + std::to_string(id));
  Feedback f = std::move(*found);
  DX_RETURN_IF_ERROR(authz_.Check(actor.who, Action::kFeedbackResolve, FeedbackTarget(f)));
  if (state != "corrected" && state != "rejected") {
    return InvalidArgument("state '" + state + "': expected corrected or rejected");
  }
  if (f.state != "open")
    return FailedPrecondition("error report " + std::to_string(id) + " is " + f.state + " already");
  if (note.empty()) return InvalidArgument("say what was corrected, or why the report is rejected");
  f.state = state;
  f.resolution = note;
  f.resolved_by = actor.who.user;
  f.resolved_at = ToUnixSeconds(clock_.Now());
  DX_RETURN_IF_ERROR(store_.PutFeedback(f));
  return f;
}

Result<std::vector<Feedback>> Oversight::Feedbacks(const Actor& actor) {
  DX_ASSIGN_OR_RETURN(auto all, store_.ListFeedback());
  std::vector<Feedback> out;
  for (Feedback& f : all) {
    if (authz_.Allows(actor.who, Action::kFeedbackRead, FeedbackTarget(f)))
      out.push_back(std::move(f));
  }
  return out;
}

Result<std::vector<UsageRow>> Oversight::Usage(const Actor& actor) {
  if (!authz_.RoleMayEver(actor.who.role, Action::kUsageRead)) {
    return authz_.Check(actor.who, Action::kUsageRead, {});
  }
  DX_ASSIGN_OR_RETURN(auto totals, store_.ListDeliveryTotals());
  DX_ASSIGN_OR_RETURN(auto subs, store_.ListSubscriptions());
  DX_ASSIGN_OR_RETURN(auto entries, store_.ListCatalogEntries());
  std::map<std::string, const CatalogEntry*> by_name;
  for (const CatalogEntry& e : entries) by_name[e.name] = &e;
  std::map<std::string, const DeliveryTotals*> delivered;
  for (const DeliveryTotals& t : totals) delivered[t.subscription] = &t;
  std::map<std::pair<std::string, std::string>, UsageRow> rows;
  for (const Subscription& s : subs) {
    auto e = by_name.find(s.entry);
    if (e == by_name.end()) continue;
    Target t;
    t.kind = "catalog entry";
    t.name = s.entry;
    t.provider_org = e->second->provider;
    if (!authz_.Allows(actor.who, Action::kUsageRead, t)) continue;
    UsageRow& row = rows[{s.entry, s.organisation}];
    row.entry = s.entry;
    row.provider = e->second->provider;
    row.consumer = s.organisation;
    row.subscriptions.push_back(s.name);
    auto d = delivered.find(s.name);
    if (d == delivered.end()) continue;
    (e->second->is_file() ? row.files : row.rows) += d->second->rows;
    row.bytes += d->second->bytes;
    row.last_delivery_ms = std::max(row.last_delivery_ms, d->second->last_delivery_ms);
  }
  std::vector<UsageRow> out;
  for (auto& [key, row] : rows) out.push_back(std::move(row));
  return out;
}

Result<json> Oversight::Lists(const Actor& actor, const std::string& organisation) {
  DX_RETURN_IF_ERROR(authz_.Check(actor.who, Action::kListsRead, {}));
  DX_ASSIGN_OR_RETURN(auto orgs, store_.ListOrganisations());
  DX_ASSIGN_OR_RETURN(auto entries, store_.ListCatalogEntries());
  DX_ASSIGN_OR_RETURN(auto demands, store_.ListDemands());
  DX_ASSIGN_OR_RETURN(auto apps, store_.ListApplications());
  DX_ASSIGN_OR_RETURN(auto feedback, store_.ListFeedback());
  std::set<std::string> names;
  for (const Organisation& o : orgs) names.insert(o.name);
  for (const CatalogEntry& e : entries) names.insert(e.provider);
  for (const Demand& d : demands) names.insert(d.organisation);
  for (const Application& a : apps) names.insert(a.organisation);
  if (!organisation.empty()) {
    if (!names.count(organisation)) return NotFound("no organisation named '" + organisation + "'");
    names = {organisation};
  }
  json out = json::array();
  for (const std::string& org : names) {
    json demand = json::array();  // 需求清单: what it asked for
    for (const Demand& d : demands) {
      if (d.organisation != org) continue;
      demand.push_back({{"kind", "demand"}, {"id", d.id}, {"what", d.title}, {"state", d.state}});
    }
    for (const Application& a : apps) {
      if (a.organisation != org) continue;
      demand.push_back(
          {{"kind", "application"}, {"id", a.id}, {"what", a.entry}, {"state", a.state}});
    }
    json responsibility = json::array();  // 责任清单: what it must provide and keep right
    json negative = json::array();        // 负面清单: what may not be shared
    for (const CatalogEntry& e : entries) {
      if (e.provider != org) continue;
      int open_reports = 0;
      for (const Feedback& f : feedback) open_reports += f.entry == e.name && f.state == "open";
      if (e.share_type == "not_shared") {
        negative.push_back({{"entry", e.name}, {"topic", e.topic}, {"summary", e.summary}});
      } else {
        responsibility.push_back({{"kind", "resource"},
                                  {"what", e.name},
                                  {"share_type", e.share_type},
                                  {"update_frequency", e.update_frequency},
                                  {"open_error_reports", open_reports}});
      }
    }
    for (const Demand& d : demands) {
      if (d.provider != org || d.state == "closed") continue;
      responsibility.push_back(
          {{"kind", "demand"}, {"id", d.id}, {"what", d.title}, {"state", d.state}});
    }
    out.push_back({{"organisation", org},
                   {"demand", demand},
                   {"responsibility", responsibility},
                   {"negative", negative}});
  }
  return out;
}

Result<std::vector<Notice>> Oversight::Notices(const Actor& actor) {
  DX_ASSIGN_OR_RETURN(auto all, store_.ListNotices());
  std::vector<Notice> out;
  for (Notice& n : all) {
    Target t;
    t.kind = "notice";
    t.consumer_org = n.organisation;  // the recipient
    if (authz_.Allows(actor.who, Action::kNoticeRead, t)) out.push_back(std::move(n));
  }
  return out;
}

}  // namespace dx::scheduler
