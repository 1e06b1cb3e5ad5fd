// Store: the scheduler's durable state (sources, catalog, agents, subscriptions with their
// schedule state and acknowledged watermark, run history, audit log). One interface so that a
// PostgreSQL store can serve several scheduler replicas later; SqliteStore is the default.
// Implementations are thread-safe.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "scheduler/access/identity.h"
#include "scheduler/catalog/records.h"
#include "scheduler/model.h"

namespace dx::scheduler {

struct AuditEvent {
  int64_t at_ms = 0;
  std::string actor;   // operator token name, agent name, "scheduler"
  std::string action;  // e.g. apply, run, resync, agent.auth
  std::string target;
  std::string result;             // ok | refused | failed: why
  std::string from;               // peer address
  std::string role = {};          // the actor's role (provider, consumer, coordinator, admin)
  std::string organisation = {};  // the actor's organisation
};

// An audit event with its place in the log.
struct AuditRecord {
  int64_t id = 0;
  AuditEvent event;
};

// Which audit records to list; empty fields match everything.
struct AuditFilter {
  std::string actor = {};   // exactly this actor
  std::string action = {};  // actions starting with this (e.g. "application." for all of them)
  std::string target = {};  // targets containing this
  std::string organisation = {};
  int64_t since_ms = 0;  // at or after (unix ms); 0: from the start
  int64_t until_ms = 0;  // before (unix ms); 0: to the end
  int limit = 100;       // the newest `limit` matching records, oldest first
};

// What one subscription delivered over all its runs (usage, 附件一 第三条(七)).
struct DeliveryTotals {
  std::string subscription;
  int64_t runs = 0;  // successful runs that delivered something
  int64_t rows = 0;  // rows delivered; for a file subscription, files delivered
  int64_t bytes = 0;
  int64_t last_delivery_ms = 0;  // end of the latest run that delivered something
};

// A file the scheduler delivered to an agent (its view; the agent keeps its own record).
struct DeliveredFile {
  std::string subscription;
  std::string path;        // relative to the file resource's directory
  std::string agent_path;  // relative to the agent's shared root
  int64_t size = 0;
  int64_t mtime_ns = 0;  // source modification time, to skip re-hashing unchanged files
  std::string sha256;
  int64_t ctime_ns = 0;  // source change time and inode: with size and mtime, "unchanged"
  int64_t inode = 0;
};

// A file of a subscription that could not be delivered (or a folder that could not be
// listed), with its own back-off: it is tried again when it changes, when an operator runs the
// subscription, or at next_try_ms.
struct FileFailure {
  std::string subscription;
  std::string path;  // relative to the resource's directory; \xNN for undecodable bytes
  int64_t size = 0;  // its state when it failed
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  int64_t inode = 0;
  std::string error;
  int attempts = 0;
  int64_t next_try_ms = 0;
};

// One line of a run's receipt (回执): what happened to one file.
struct FileReceipt {
  std::string path;
  int64_t size = 0;
  std::string sha256;
  // sent | resumed | copied | unchanged | deleted | failed | refused | vanished (gone before
  // it was read) | unconfirmed (sent; the run ended before the agent answered) | created,
  // kept (folders)
  std::string outcome;
  std::string error;
  int64_t bytes_sent = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // Runs `body` atomically: every write inside commits together or not at all.
  virtual Status InTransaction(const std::function<Status()>& body) = 0;

  virtual Status PutSource(const Source& source) = 0;
  virtual Result<std::optional<Source>> GetSource(const std::string& name) = 0;
  virtual Result<std::vector<Source>> ListSources() = 0;

  virtual Status PutCatalogEntry(const CatalogEntry& entry) = 0;
  virtual Result<std::optional<CatalogEntry>> GetCatalogEntry(const std::string& name) = 0;
  virtual Result<std::vector<CatalogEntry>> ListCatalogEntries() = 0;

  // Creates or updates the definition; keeps the online state.
  virtual Status PutAgent(const AgentRecord& agent) = 0;
  virtual Result<std::optional<AgentRecord>> GetAgent(const std::string& name) = 0;
  virtual Result<std::vector<AgentRecord>> ListAgents() = 0;
  virtual Status SetAgentOnline(const std::string& name, bool online, int64_t seen_at,
                                const std::string& address, const std::string& version,
                                const std::string& target_dbms) = 0;
  virtual Status TouchAgent(const std::string& name, int64_t seen_at) = 0;
  // Several agents' last-seen times at once (one transaction where the store has them).
  virtual Status TouchAgents(const std::vector<std::pair<std::string, int64_t>>& seen) {
    for (const auto& [name, at] : seen) DX_RETURN_IF_ERROR(TouchAgent(name, at));
    return Status::Ok();
  }
  virtual Status MarkAllAgentsOffline() = 0;
  // Sets the operator's disabled flag; kNotFound when there is no such agent.
  virtual Status SetAgentDisabled(const std::string& name, bool disabled) = 0;
  // Deletes the agent's row; kNotFound when there is none. Callers check it has no
  // subscriptions first (AdminApi refuses to remove one that has).
  virtual Status DeleteAgent(const std::string& name) = 0;
  // The agent's session credential as the hub keeps it (a keyed hash of the token the agent
  // holds; AgentHub), "" when it has none. Deleted with the agent. Set only while the agent
  // exists with `secret_hash` (a login that raced its removal or a new secret records nothing).
  virtual Result<std::string> GetAgentSessionCredential(const std::string& name) = 0;
  virtual Status SetAgentSessionCredential(const std::string& name, const std::string& secret_hash,
                                           const std::string& credential) = 0;

  // Creates or updates the definition; keeps the runtime state.
  virtual Status PutSubscriptionDefinition(const Subscription& sub) = 0;
  virtual Result<std::optional<Subscription>> GetSubscription(const std::string& name) = 0;
  virtual Result<std::vector<Subscription>> ListSubscriptions() = 0;
  virtual Status SetSchedule(const std::string& name, int64_t next_due, int failures) = 0;
  virtual Status SetPending(const std::string& name, bool manual, bool resync) = 0;
  // The last batch the agent acknowledged (scheduler's view; the agent's ledger is the truth).
  virtual Status SetProgress(const std::string& name, uint64_t acked_seq,
                             const std::string& watermark) = 0;
  virtual Status SetLastSuccess(const std::string& name, int64_t at) = 0;
  // Stops the subscription with `error` (a permanent failure) until an operator acts; an
  // empty error resumes it.
  virtual Status SetStopped(const std::string& name, const std::string& error, int64_t at) = 0;
  // Asks for a reload from scratch under a new resync id: the agent clears the table once per
  // id, so a resync interrupted by a crash resumes its load instead of starting over.
  virtual Status RequestResync(const std::string& name, bool manual) = 0;
  // Clears the "run now" request as a run starts (a resync request is left as it is).
  virtual Status ClearManualPending(const std::string& name) = 0;
  // Clears the resync request `resync_id` once its reload succeeded (a newer request stays).
  virtual Status FinishResync(const std::string& name, const std::string& resync_id) = 0;
  // Records the start (unix ms) of a run that succeeded: every source row stamped before it,
  // minus the safety lag, is at the agent.
  virtual Status SetCaughtUp(const std::string& name, int64_t run_started_ms) = 0;

  virtual Result<int64_t> StartRun(const RunRecord& run) = 0;
  virtual Status FinishRun(const RunRecord& run) = 0;
  virtual Result<std::vector<RunRecord>> ListRuns(const std::string& subscription, int limit) = 0;
  virtual Result<std::optional<RunRecord>> LastRun(const std::string& subscription) = 0;
  virtual Result<std::optional<RunRecord>> GetRun(int64_t id) = 0;
  // Marks runs left "running" by a previous process as interrupted; returns how many.
  virtual Result<int> MarkInterruptedRuns(int64_t now_ms) = 0;

  virtual Result<std::vector<DeliveredFile>> ListDeliveredFiles(
      const std::string& subscription) = 0;
  // A file of `agent` (any subscription) with this content, if the scheduler delivered one.
  virtual Result<std::optional<DeliveredFile>> FindDeliveredContent(const std::string& agent,
                                                                    const std::string& sha256) = 0;
  // True when `agent` was sent a file of this size and modification time (a rename keeps
  // both): worth hashing to look for the same content.
  virtual Result<bool> HasDeliveredLike(const std::string& agent, int64_t size,
                                        int64_t mtime_ns) = 0;
  virtual Status PutDeliveredFile(const std::string& agent, const DeliveredFile& file) = 0;
  virtual Status DeleteDeliveredFile(const std::string& subscription, const std::string& path) = 0;
  virtual Status ClearDeliveredFiles(const std::string& subscription) = 0;
  virtual Status AddReceipt(int64_t run_id, const FileReceipt& receipt) = 0;
  virtual Result<std::vector<FileReceipt>> ListReceipts(int64_t run_id) = 0;
  virtual Result<std::vector<FileFailure>> ListFileFailures(const std::string& subscription) = 0;
  virtual Status PutFileFailure(const FileFailure& failure) = 0;
  virtual Status DeleteFileFailure(const std::string& subscription, const std::string& path) = 0;
  virtual Status ClearFileFailures(const std::string& subscription) = 0;

  // Reconciliation (对账): per-subscription state (subscriptions without a record have none
  // pending and none scheduled) and the counts of each reconciliation run.
  virtual Result<std::vector<ReconcileState>> ListReconcileStates() = 0;
  virtual Status PutReconcileState(const ReconcileState& state) = 0;
  virtual Status PutReconcileCounts(const ReconcileCounts& counts) = 0;
  virtual Result<std::optional<ReconcileCounts>> GetReconcileCounts(int64_t run_id) = 0;

  // Appends to the hash-chained audit log.
  virtual Status Audit(const AuditEvent& event) = 0;
  // Recomputes the chain; kDataLoss names the first record that does not match.
  virtual Status VerifyAudit() = 0;
  virtual Result<std::vector<AuditRecord>> ListAudit(const AuditFilter& filter) = 0;

  // Governance: organisations, users and their API tokens.
  virtual Status PutOrganisation(const Organisation& org) = 0;
  virtual Result<std::optional<Organisation>> GetOrganisation(const std::string& name) = 0;
  virtual Result<std::vector<Organisation>> ListOrganisations() = 0;
  virtual Status PutUser(const User& user) = 0;
  virtual Result<std::optional<User>> GetUser(const std::string& name) = 0;
  virtual Result<std::vector<User>> ListUsers() = 0;
  virtual Status PutApiToken(const ApiTokenRecord& token) = 0;  // creates or updates by id
  virtual Result<std::optional<ApiTokenRecord>> GetApiToken(const std::string& id) = 0;
  // The tokens of `user` (every user's when empty), newest first.
  virtual Result<std::vector<ApiTokenRecord>> ListApiTokens(const std::string& user) = 0;

  // Catalog entry versions (the published one is also the entry of Get/ListCatalogEntries).
  virtual Status PutCatalogVersion(const CatalogVersion& version) = 0;  // by (name, version)
  // `version` 0: the newest version.
  virtual Result<std::optional<CatalogVersion>> GetCatalogVersion(const std::string& name,
                                                                  int version) = 0;
  // The versions of `name` (of every entry when empty), oldest first.
  virtual Result<std::vector<CatalogVersion>> ListCatalogVersions(const std::string& name) = 0;

  // Applications, demands, error reports, notices: Add assigns the id.
  virtual Result<int64_t> AddApplication(const Application& application) = 0;
  virtual Status PutApplication(const Application& application) = 0;
  virtual Result<std::optional<Application>> GetApplication(int64_t id) = 0;
  virtual Result<std::vector<Application>> ListApplications() = 0;
  virtual Result<int64_t> AddDemand(const Demand& demand) = 0;
  virtual Status PutDemand(const Demand& demand) = 0;
  virtual Result<std::optional<Demand>> GetDemand(int64_t id) = 0;
  virtual Result<std::vector<Demand>> ListDemands() = 0;
  virtual Result<int64_t> AddFeedback(const Feedback& feedback) = 0;
  virtual Status PutFeedback(const Feedback& feedback) = 0;
  virtual Result<std::optional<Feedback>> GetFeedback(int64_t id) = 0;
  virtual Result<std::vector<Feedback>> ListFeedback() = 0;
  virtual Result<int64_t> AddNotice(const Notice& notice) = 0;
  virtual Result<std::vector<Notice>> ListNotices() = 0;

  // Suspends, terminates or resumes (status active) a subscription, recording who did it and
  // why; the dispatcher starts no run of a subscription that is not active, and a run under
  // way stops at its next batch.
  virtual Status SetSubscriptionStatus(const std::string& name, const std::string& status,
                                       const Principal& by, const std::string& reason,
                                       int64_t at) = 0;
  // The agent confirmed it deleted a terminated subscription's rows and files (unix ms, and
  // what it reported, e.g. "1234 rows, 17 files"). For the data plane.
  virtual Status RecordDeletionConfirmation(const std::string& name, int64_t at_ms,
                                            const std::string& detail) = 0;
  // What every subscription delivered (usage).
  virtual Result<std::vector<DeliveryTotals>> ListDeliveryTotals() = 0;
  // Removes a subscription: its row with its schedule, position and governance state, its
  // reconciliation state, delivered files and file failures, all in one transaction; kNotFound
  // when there is none. Its run history (runs, receipts, reconciliation counts) and the audit
  // log stay. Callers check that it may go first (AdminApi::RemoveSubscription).
  virtual Status DeleteSubscription(const std::string& name) = 0;

  // The subscriptions whose row or reconciliation state changed since the last call (any
  // writer), so that the dispatcher keeps its in-memory view current without scanning the
  // store. Sets `*all` when the changes cannot be named (reload everything); a store that does
  // not track changes always says so.
  virtual std::vector<std::string> TakeChangedSubscriptions(bool* all) {
    *all = true;
    return {};
  }
  // Pages of the admin API's lists, each answered with one query: names after `after` in
  // name order, at most `limit` (<= 0: all).
  virtual Result<std::vector<Subscription>> ListSubscriptionsPage(const std::string& after,
                                                                  int limit) {
    DX_ASSIGN_OR_RETURN(std::vector<Subscription> all, ListSubscriptions());
    std::vector<Subscription> out;
    for (Subscription& s : all) {
      if (s.name <= after && !after.empty()) continue;
      if (limit > 0 && static_cast<int>(out.size()) >= limit) break;
      out.push_back(std::move(s));
    }
    return out;
  }
  virtual Result<std::vector<AgentRecord>> ListAgentsPage(const std::string& after, int limit) {
    DX_ASSIGN_OR_RETURN(std::vector<AgentRecord> all, ListAgents());
    std::vector<AgentRecord> out;
    for (AgentRecord& a : all) {
      if (a.name <= after && !after.empty()) continue;
      if (limit > 0 && static_cast<int>(out.size()) >= limit) break;
      out.push_back(std::move(a));
    }
    return out;
  }
  // Runs newest first with an id below `before` (0: from the newest), of `subscription` (all
  // when empty), at most `limit`.
  virtual Result<std::vector<RunRecord>> ListRunsBefore(const std::string& subscription,
                                                        int64_t before, int limit) {
    if (before == 0) return ListRuns(subscription, limit);
    DX_ASSIGN_OR_RETURN(std::vector<RunRecord> all, ListRuns(subscription, 1000000));
    std::vector<RunRecord> out;
    for (RunRecord& r : all) {
      if (r.id >= before) continue;
      if (static_cast<int>(out.size()) >= limit) break;
      out.push_back(std::move(r));
    }
    return out;
  }
  // The latest run of each of `subscriptions` that has one (one query).
  virtual Result<std::map<std::string, RunRecord>> LastRuns(
      const std::vector<std::string>& subscriptions) {
    std::map<std::string, RunRecord> out;
    for (const std::string& name : subscriptions) {
      DX_ASSIGN_OR_RETURN(auto last, LastRun(name));
      if (last) out[name] = std::move(*last);
    }
    return out;
  }
  // The subscriptions delivered to `agent` (one query, for the target-table check of a run).
  virtual Result<std::vector<Subscription>> ListSubscriptionsOfAgent(const std::string& agent) {
    DX_ASSIGN_OR_RETURN(std::vector<Subscription> all, ListSubscriptions());
    std::vector<Subscription> out;
    for (Subscription& s : all) {
      if (s.agent == agent) out.push_back(std::move(s));
    }
    return out;
  }
};

}  // namespace dx::scheduler
