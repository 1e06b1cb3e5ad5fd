#include "scheduler/catalog/catalog_workflow.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "common/log.h"

namespace dx::scheduler {
namespace {

struct Transition {
  CatalogOp op;
  std::vector<std::string> from;
  const char* to;
  const char* what;  // for messages
};

const std::vector<Transition>& Transitions() {
  static const auto* t = new std::vector<Transition>{
      {CatalogOp::kSaveDraft, {"", "draft", "returned"}, "draft", "changed"},
      {CatalogOp::kSubmit, {"draft", "returned"}, "submitted", "submitted"},
      {CatalogOp::kPass, {"submitted"}, "reviewed", "passed by the technical review"},
      {CatalogOp::kReturnByReviewer, {"submitted"}, "returned", "returned by the technical review"},
      {CatalogOp::kPublish, {"reviewed"}, "published", "published"},
      {CatalogOp::kReturnByCoordinator, {"reviewed"}, "returned", "returned by the coordinator"},
  };
  return *t;
}

std::string Join(const std::vector<std::string>& items, const std::string& sep = ", ") {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : sep) + s;
  return out;
}

bool SameContent(const CatalogEntry& a, const CatalogEntry& b) {
  nlohmann::json x = ToJson(a);
  nlohmann::json y = ToJson(b);
  x.erase("status");
  y.erase("status");
  return x == y;
}

// An entry published before versions were kept, as its version 0.
CatalogVersion LiveVersion(const CatalogEntry& published) {
  CatalogVersion v;
  v.name = published.name;
  v.version = 0;
  v.status = "published";
  v.organisation = published.provider;
  v.entry = published;
  return v;
}

bool IsUnder(const std::string& path, const std::string& root) {
  const std::filesystem::path p = std::filesystem::path(path).lexically_normal();
  const std::filesystem::path r = std::filesystem::path(root).lexically_normal();
  auto [rit, pit] = std::mismatch(r.begin(), r.end(), p.begin(), p.end());
  return rit == r.end() || (std::next(rit) == r.end() && rit->empty());
}

}  // namespace

Result<std::string> NextCatalogStatus(CatalogOp op, const std::string& status) {
  for (const Transition& t : Transitions()) {
    if (t.op != op) continue;
    if (std::find(t.from.begin(), t.from.end(), status) != t.from.end()) return std::string(t.to);
    std::vector<std::string> from;
    for (const std::string& f : t.from) from.push_back(f.empty() ? "new" : f);
    return FailedPrecondition("cannot be " + std::string(t.what) + " while it is " +
                              (status.empty() ? "not drafted" : status) + " (only when " +
                              Join(from, " or ") + ")");
  }
  return Internal("unknown catalog operation");
}

std::vector<std::string> BreakingChanges(const CatalogEntry& before, const CatalogEntry& after,
                                         const Subscription& sub) {
  std::vector<std::string> out;
  if (after.share_type == "not_shared" && before.share_type != "not_shared") {
    out.push_back("the resource is no longer shared (not_shared)");
  }
  if (after.share_type == "authorised" && before.share_type == "unconditional" &&
      sub.application_id == 0 && !sub.direct) {
    out.push_back("the resource now needs an approved application (authorised)");
  }
  if (after.kind != before.kind)
    out.push_back("the resource changed from " + before.kind + " to " + after.kind);
  std::vector<std::string> used = sub.columns;
  for (const RowCondition& c : sub.filter) used.push_back(c.column);
  std::set<std::string> reported;
  for (const std::string& column : used) {
    if (!reported.insert(column).second) continue;
    const Field* b = before.FindField(column);
    const Field* a = after.FindField(column);
    if (b == nullptr) continue;
    if (a == nullptr) {
      out.push_back("column '" + column + "' was removed");
      continue;
    }
    if (ColumnTypeName(a->column) != ColumnTypeName(b->column)) {
      out.push_back("column '" + column + "' was retyped from " + ColumnTypeName(b->column) +
                    " to " + ColumnTypeName(a->column));
    }
    if (a->column.primary_key != b->column.primary_key) {
      out.push_back("column '" + column + "' " +
                    (a->column.primary_key ? "became" : "is no longer") + " the primary key");
    }
  }
  if (!before.is_file() && after.updatetime_column != before.updatetime_column) {
    out.push_back("the update-time field changed from '" + before.updatetime_column + "' to '" +
                  after.updatetime_column + "'");
  }
  return out;
}

Target CatalogWorkflow::EntryTarget(const std::string& name, const std::string& provider) {
  Target t;
  t.kind = "catalog entry";
  t.name = name;
  t.provider_org = provider;
  return t;
}

WorkflowStep CatalogWorkflow::Step(const Actor& actor, const std::string& action,
                                   const std::string& note) const {
  return {ToUnixSeconds(clock_.Now()), actor.who.user, RoleName(actor.who.role),
          actor.who.organisation,      action,         note};
}

Result<CatalogVersion> CatalogWorkflow::OpenVersion(const std::string& name) {
  DX_ASSIGN_OR_RETURN(auto latest, store_.GetCatalogVersion(name, 0));
  if (!latest) return NotFound("no catalog entry named '" + name + "' has been drafted");
  if (!latest->open()) {
    return FailedPrecondition("catalog entry '" + name + "' has no version under way (version " +
                              std::to_string(latest->version) + " is " + latest->status + ")");
  }
  return std::move(*latest);
}

Result<CatalogVersion> CatalogWorkflow::SaveDraft(const Actor& actor, const CatalogEntry& entry,
                                                  bool* unchanged) {
  if (unchanged) *unchanged = false;
  DX_RETURN_IF_ERROR(
      authz_.Check(actor.who, Action::kCatalogEdit, EntryTarget(entry.name, entry.provider)));
  DX_ASSIGN_OR_RETURN(auto published, store_.GetCatalogEntry(entry.name));
  DX_ASSIGN_OR_RETURN(auto latest, store_.GetCatalogVersion(entry.name, 0));
  // The entry's owner is who provides it now: a provider may not take over another's entry.
  const std::string owner = latest ? latest->organisation : published ? published->provider : "";
  if (!owner.empty()) {
    DX_RETURN_IF_ERROR(
        authz_.Check(actor.who, Action::kCatalogEdit, EntryTarget(entry.name, owner)));
  }
  if (actor.who.role != Role::kAdmin) {
    // What a provider's entry may read: a source, or directories, of its own organisation.
    if (!entry.is_file()) {
      DX_ASSIGN_OR_RETURN(auto source, store_.GetSource(entry.source));
      if (source && source->organisation != entry.provider) {
        return PermissionDenied(
            "source '" + entry.source + "' " +
            (source->organisation.empty() ? "is the technical admin's"
                                          : "belongs to '" + source->organisation + "'") +
            ": a provider's entry may only read a source of its own organisation");
      }
    } else {
      DX_ASSIGN_OR_RETURN(auto org, store_.GetOrganisation(entry.provider));
      const std::vector<std::string> roots = org ? org->file_roots : std::vector<std::string>{};
      if (std::none_of(roots.begin(), roots.end(),
                       [&](const std::string& r) { return IsUnder(entry.directory, r); })) {
        return PermissionDenied(
            "directory '" + entry.directory + "' is outside the file roots of '" + entry.provider +
            "' (" + Join(roots) + "); the technical admin sets them (dxctl org add --file-root)");
      }
    }
  }
  const int64_t now = ToUnixSeconds(clock_.Now());
  CatalogVersion v;
  if (latest && latest->open()) {
    if (SameContent(latest->entry, entry)) {
      if (unchanged) *unchanged = true;
      return std::move(*latest);
    }
    DX_ASSIGN_OR_RETURN(std::string next, NextCatalogStatus(CatalogOp::kSaveDraft, latest->status));
    v = std::move(*latest);
    v.status = next;
    v.history.push_back(Step(actor, "changed", ""));
  } else {
    if (published && SameContent(*published, entry)) {
      if (unchanged) *unchanged = true;
      return latest ? std::move(*latest) : LiveVersion(*published);
    }
    v.name = entry.name;
    v.version = latest ? latest->version + 1 : 1;
    v.status = "draft";
    v.author = actor.who.user;
    v.created_at = now;
    v.history.push_back(Step(actor, "drafted", ""));
  }
  v.organisation = entry.provider;
  v.entry = entry;
  v.entry.status = "draft";
  v.reasons.clear();
  v.updated_at = now;
  DX_RETURN_IF_ERROR(store_.PutCatalogVersion(v));
  return v;
}

Result<CatalogVersion> CatalogWorkflow::Submit(const Actor& actor, const std::string& name) {
  DX_ASSIGN_OR_RETURN(CatalogVersion v, OpenVersion(name));
  DX_RETURN_IF_ERROR(
      authz_.Check(actor.who, Action::kCatalogSubmit, EntryTarget(name, v.organisation)));
  DX_ASSIGN_OR_RETURN(std::string next, NextCatalogStatus(CatalogOp::kSubmit, v.status));
  const std::vector<Problem> problems = ValidateEntry(v.entry);
  if (!problems.empty()) {
    return InvalidArgument("catalog entry '" + name + "' is not ready for review (" +
                           std::to_string(problems.size()) + " problems):\n" +
                           FormatProblems(problems));
  }
  v.status = next;
  v.entry.status = next;
  v.updated_at = ToUnixSeconds(clock_.Now());
  v.history.push_back(Step(actor, "submitted", ""));
  DX_RETURN_IF_ERROR(store_.PutCatalogVersion(v));
  return v;
}

Result<CatalogVersion> CatalogWorkflow::Advance(const Actor& actor, const std::string& name,
                                                CatalogOp op, Action action,
                                                const std::vector<std::string>& reasons) {
  DX_ASSIGN_OR_RETURN(CatalogVersion v, OpenVersion(name));
  DX_RETURN_IF_ERROR(authz_.Check(actor.who, action, EntryTarget(name, v.organisation)));
  DX_ASSIGN_OR_RETURN(std::string next, NextCatalogStatus(op, v.status));
  const bool returning = next == "returned";
  if (returning && reasons.empty()) {
    return InvalidArgument("returning catalog entry '" + name +
                           "' needs the reasons the provider must address");
  }
  v.status = next;
  v.entry.status = next;
  v.updated_at = ToUnixSeconds(clock_.Now());
  if (returning) v.reasons = reasons;
  v.history.push_back(Step(actor, next, Join(reasons, "; ")));
  if (next == "published") {
    DX_RETURN_IF_ERROR(store_.InTransaction([&] { return MakeLive(actor, &v); }));
    return v;
  }
  DX_RETURN_IF_ERROR(store_.PutCatalogVersion(v));
  return v;
}

Result<CatalogVersion> CatalogWorkflow::Review(const Actor& actor, const std::string& name,
                                               bool pass, const std::vector<std::string>& reasons) {
  return Advance(actor, name, pass ? CatalogOp::kPass : CatalogOp::kReturnByReviewer,
                 Action::kCatalogReview, pass ? std::vector<std::string>{} : reasons);
}

Result<CatalogVersion> CatalogWorkflow::Publish(const Actor& actor, const std::string& name) {
  return Advance(actor, name, CatalogOp::kPublish, Action::kCatalogPublish, {});
}

Result<CatalogVersion> CatalogWorkflow::ReturnToProvider(const Actor& actor,
                                                         const std::string& name,
                                                         const std::vector<std::string>& reasons) {
  return Advance(actor, name, CatalogOp::kReturnByCoordinator, Action::kCatalogPublish, reasons);
}

Result<CatalogVersion> CatalogWorkflow::PublishDirect(const Actor& actor, const CatalogEntry& entry,
                                                      const std::string& note, bool* unchanged) {
  if (unchanged) *unchanged = false;
  if (!actor.who.bootstrap) {
    return PermissionDenied("only the bootstrap admin publishes without review");
  }
  DX_ASSIGN_OR_RETURN(auto latest, store_.GetCatalogVersion(entry.name, 0));
  DX_ASSIGN_OR_RETURN(auto published, store_.GetCatalogEntry(entry.name));
  if (published && SameContent(*published, entry) && !(latest && latest->open())) {
    if (unchanged) *unchanged = true;
    return latest ? std::move(*latest) : LiveVersion(*published);
  }
  CatalogVersion v;
  Status st = store_.InTransaction([&]() -> Status {
    const int64_t now = ToUnixSeconds(clock_.Now());
    if (latest && latest->open()) {  // a version under way is overtaken
      latest->status = "superseded";
      latest->history.push_back(Step(actor, "superseded", "overtaken by a direct publication"));
      DX_RETURN_IF_ERROR(store_.PutCatalogVersion(*latest));
    }
    v.name = entry.name;
    v.version = latest ? latest->version + 1 : 1;
    v.organisation = entry.provider;
    v.author = actor.who.user;
    v.entry = entry;
    v.created_at = now;
    v.updated_at = now;
    v.history.push_back(Step(actor, "published_directly", note));
    return MakeLive(actor, &v);
  });
  DX_RETURN_IF_ERROR(st);
  return v;
}

Status CatalogWorkflow::MakeLive(const Actor& actor, CatalogVersion* v) {
  DX_ASSIGN_OR_RETURN(auto before, store_.GetCatalogEntry(v->name));
  if (before) {
    DX_ASSIGN_OR_RETURN(auto subs, store_.ListSubscriptions());
    for (const Subscription& sub : subs) {
      if (sub.entry != v->name || sub.status == "terminated") continue;
      const std::vector<std::string> changes = BreakingChanges(*before, v->entry, sub);
      if (changes.empty()) continue;
      Notice n;
      n.at = ToUnixSeconds(clock_.Now());
      n.kind = "breaking_change";
      n.organisation = sub.organisation;
      n.entry = v->name;
      n.version = v->version;
      n.subscription = sub.name;
      n.text = "version " + std::to_string(v->version) + " of '" + v->name + "' published by " +
               actor.who.user + " breaks subscription '" + sub.name + "': " + Join(changes, "; ");
      DX_RETURN_IF_ERROR(store_.AddNotice(n).status());
      LOG_WARN(n.text);
    }
  }
  DX_ASSIGN_OR_RETURN(auto versions, store_.ListCatalogVersions(v->name));
  for (CatalogVersion& old : versions) {
    if (old.status != "published" || old.version == v->version) continue;
    old.status = "superseded";
    old.history.push_back(Step(actor, "superseded", "by version " + std::to_string(v->version)));
    DX_RETURN_IF_ERROR(store_.PutCatalogVersion(old));
  }
  v->status = "published";
  v->entry.status = "published";
  v->reasons.clear();
  DX_RETURN_IF_ERROR(store_.PutCatalogEntry(v->entry));
  return store_.PutCatalogVersion(*v);
}

Result<std::vector<CatalogVersion>> CatalogWorkflow::Versions(const Actor& actor,
                                                              const std::string& name) {
  DX_ASSIGN_OR_RETURN(auto all, store_.ListCatalogVersions(name));
  std::vector<CatalogVersion> out;
  for (CatalogVersion& v : all) {
    const bool seen_by_all = v.status == "published" || v.status == "superseded";
    if (seen_by_all ||
        authz_.Allows(actor.who, Action::kCatalogReadDraft, EntryTarget(v.name, v.organisation))) {
      out.push_back(std::move(v));
    }
  }
  return out;
}

}  // namespace dx::scheduler
