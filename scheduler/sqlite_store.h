// SqliteStore: the embedded default Store, one SQLite database in WAL mode. Calls are
// serialised by a mutex; InTransaction may nest Store calls from the same thread.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "scheduler/store.h"

struct sqlite3;

namespace dx::scheduler {

class SqliteStore : public Store {
 public:
  // Opens (creating when missing) the store and migrates its schema.
  // The file is created mode 0600 (it holds connection strings and personal data); an existing
  // store readable by group or others is tightened to 0600 with a warning.
  static Result<std::unique_ptr<SqliteStore>> Open(const std::string& path);
  // kDataLoss when the store's path no longer names the file this store has open (deleted or
  // replaced): writing on would go into a file nobody can read again.
  Status CheckFileIdentity() const;
  ~SqliteStore() override;

  Status InTransaction(const std::function<Status()>& body) override;

  Status PutSource(const Source& source) override;
  Result<std::optional<Source>> GetSource(const std::string& name) override;
  Result<std::vector<Source>> ListSources() override;

  Status PutCatalogEntry(const CatalogEntry& entry) override;
  Result<std::optional<CatalogEntry>> GetCatalogEntry(const std::string& name) override;
  Result<std::vector<CatalogEntry>> ListCatalogEntries() override;

  Status PutAgent(const AgentRecord& agent) override;
  Result<std::optional<AgentRecord>> GetAgent(const std::string& name) override;
  Result<std::vector<AgentRecord>> ListAgents() override;
  Status SetAgentOnline(const std::string& name, bool online, int64_t seen_at,
                        const std::string& address, const std::string& version,
                        const std::string& target_dbms) override;
  Status TouchAgent(const std::string& name, int64_t seen_at) override;
  Status TouchAgents(const std::vector<std::pair<std::string, int64_t>>& seen) override;
  Status MarkAllAgentsOffline() override;
  Status SetAgentDisabled(const std::string& name, bool disabled) override;
  Status DeleteAgent(const std::string& name) override;
  Result<std::string> GetAgentSessionCredential(const std::string& name) override;
  Status SetAgentSessionCredential(const std::string& name, const std::string& secret_hash,
                                   const std::string& credential) override;

  Status PutSubscriptionDefinition(const Subscription& sub) override;
  Result<std::optional<Subscription>> GetSubscription(const std::string& name) override;
  Result<std::vector<Subscription>> ListSubscriptions() override;
  Status SetSchedule(const std::string& name, int64_t next_due, int failures) override;
  Status SetPending(const std::string& name, bool manual, bool resync) override;
  Status SetProgress(const std::string& name, uint64_t acked_seq,
                     const std::string& watermark) override;
  Status SetLastSuccess(const std::string& name, int64_t at) override;
  Status SetStopped(const std::string& name, const std::string& error, int64_t at) override;
  Status RequestResync(const std::string& name, bool manual) override;
  Status ClearManualPending(const std::string& name) override;
  Status FinishResync(const std::string& name, const std::string& resync_id) override;
  Status SetCaughtUp(const std::string& name, int64_t run_started_ms) override;

  Result<int64_t> StartRun(const RunRecord& run) override;
  Status FinishRun(const RunRecord& run) override;
  Result<std::vector<RunRecord>> ListRuns(const std::string& subscription, int limit) override;
  Result<std::optional<RunRecord>> LastRun(const std::string& subscription) override;
  Result<std::optional<RunRecord>> GetRun(int64_t id) override;
  Result<int> MarkInterruptedRuns(int64_t now_ms) override;

  Result<std::vector<DeliveredFile>> ListDeliveredFiles(const std::string& subscription) override;
  Result<std::optional<DeliveredFile>> FindDeliveredContent(const std::string& agent,
                                                            const std::string& sha256) override;
  Result<bool> HasDeliveredLike(const std::string& agent, int64_t size, int64_t mtime_ns) override;
  Status PutDeliveredFile(const std::string& agent, const DeliveredFile& file) override;
  Status DeleteDeliveredFile(const std::string& subscription, const std::string& path) override;
  Status ClearDeliveredFiles(const std::string& subscription) override;
  Status AddReceipt(int64_t run_id, const FileReceipt& receipt) override;
  Result<std::vector<FileReceipt>> ListReceipts(int64_t run_id) override;
  Result<std::vector<FileFailure>> ListFileFailures(const std::string& subscription) override;
  Status PutFileFailure(const FileFailure& failure) override;
  Status DeleteFileFailure(const std::string& subscription, const std::string& path) override;
  Status ClearFileFailures(const std::string& subscription) override;

  Result<std::vector<ReconcileState>> ListReconcileStates() override;
  Status PutReconcileState(const ReconcileState& state) override;
  Status PutReconcileCounts(const ReconcileCounts& counts) override;
  Result<std::optional<ReconcileCounts>> GetReconcileCounts(int64_t run_id) override;

  Status Audit(const AuditEvent& event) override;
  Status VerifyAudit() override;
  Result<std::vector<AuditRecord>> ListAudit(const AuditFilter& filter) override;
  // Keys the audit chain (HMAC-SHA256 under `key`, kept outside the store) from now on, and
  // notes the newest record in `head_path` after each append, so that records deleted from the
  // end of the log are detected too. Without a key the chain is plain SHA-256 (tests, tools).
  void SetAuditKey(const std::string& key, const std::string& head_path);

  Status PutOrganisation(const Organisation& org) override;
  Result<std::optional<Organisation>> GetOrganisation(const std::string& name) override;
  Result<std::vector<Organisation>> ListOrganisations() override;
  Status PutUser(const User& user) override;
  Result<std::optional<User>> GetUser(const std::string& name) override;
  Result<std::vector<User>> ListUsers() override;
  Status PutApiToken(const ApiTokenRecord& token) override;
  Result<std::optional<ApiTokenRecord>> GetApiToken(const std::string& id) override;
  Result<std::vector<ApiTokenRecord>> ListApiTokens(const std::string& user) override;
  Status PutCatalogVersion(const CatalogVersion& version) override;
  Result<std::optional<CatalogVersion>> GetCatalogVersion(const std::string& name,
                                                          int version) override;
  Result<std::vector<CatalogVersion>> ListCatalogVersions(const std::string& name) override;
  Result<int64_t> AddApplication(const Application& application) override;
  Status PutApplication(const Application& application) override;
  Result<std::optional<Application>> GetApplication(int64_t id) override;
  Result<std::vector<Application>> ListApplications() override;
  Result<int64_t> AddDemand(const Demand& demand) override;
  Status PutDemand(const Demand& demand) override;
  Result<std::optional<Demand>> GetDemand(int64_t id) override;
  Result<std::vector<Demand>> ListDemands() override;
  Result<int64_t> AddFeedback(const Feedback& feedback) override;
  Status PutFeedback(const Feedback& feedback) override;
  Result<std::optional<Feedback>> GetFeedback(int64_t id) override;
  Result<std::vector<Feedback>> ListFeedback() override;
  Result<int64_t> AddNotice(const Notice& notice) override;
  Result<std::vector<Notice>> ListNotices() override;
  Status SetSubscriptionStatus(const std::string& name, const std::string& status,
                               const Principal& by, const std::string& reason, int64_t at) override;
  Status RecordDeletionConfirmation(const std::string& name, int64_t at_ms,
                                    const std::string& detail) override;
  Result<std::vector<DeliveryTotals>> ListDeliveryTotals() override;
  Status DeleteSubscription(const std::string& name) override;
  std::vector<std::string> TakeChangedSubscriptions(bool* all) override;
  Result<std::vector<Subscription>> ListSubscriptionsOfAgent(const std::string& agent) override;
  Result<std::vector<Subscription>> ListSubscriptionsPage(const std::string& after,
                                                          int limit) override;
  Result<std::vector<RunRecord>> ListRunsBefore(const std::string& subscription, int64_t before,
                                                int limit) override;
  Result<std::map<std::string, RunRecord>> LastRuns(
      const std::vector<std::string>& subscriptions) override;

 private:
  explicit SqliteStore(sqlite3* db);
  class Statements;
  class Query;
  // A run from a row of `SELECT kRunColumns` (sqlite_store.cc).
  static RunRecord RunFrom(Query& q);
  Status Exec(const std::string& sql);
  Status Migrate();
  // Adds `column` (with its SQL declaration) to `table` unless the table already has it.
  Status AddColumnIfMissing(const std::string& table, const std::string& column,
                            const std::string& declaration);
  Status MigrateGovernance();
  static void ReadGovernanceState(Query& q, int first, Subscription* s);
  template <typename T>
  Result<std::vector<T>> ReadSpecs(Query& q, const char* what);
  template <typename T>
  Result<std::optional<T>> ReadSpec(Query& q, const char* what);
  // Notes the newest audit record outside the store (called once it is committed).
  void WriteAuditHead();

  sqlite3* db_;
  std::unique_ptr<Statements> statements_;  // prepared statements kept for reuse
  std::string path_;
  uint64_t dev_ = 0;  // st_dev and st_ino of the file opened
  uint64_t ino_ = 0;
  std::recursive_mutex mu_;
  int tx_depth_ = 0;
  std::string audit_key_;
  std::string audit_head_path_;
  std::optional<std::pair<int64_t, std::string>> pending_head_;  // (id, hash) to note
  // Notes that subscription `name` changed (TakeChangedSubscriptions); "" for all of them.
  // Inside a transaction the note waits for its commit (and a rollback drops it), so that the
  // dispatcher sees a manifest's subscriptions together, due in one shared read.
  void MarkChanged(const std::string& name);
  void PublishChanges();              // the committed transaction's notes (holding mu_)
  std::set<std::string> tx_changed_;  // guarded by mu_
  bool tx_changed_all_ = false;       // guarded by mu_
  // Subscriptions from a `SELECT kSubscriptionColumns` query (sqlite_store.cc).
  Result<std::vector<Subscription>> ReadSubscriptions(Query& q);
  std::mutex changed_mu_;
  std::set<std::string> changed_;  // guarded by changed_mu_
  bool changed_all_ = false;       // guarded by changed_mu_
};

}  // namespace dx::scheduler
