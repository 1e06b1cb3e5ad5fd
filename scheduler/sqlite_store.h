// SqliteStore: the embedded default Store, one SQLite database in WAL mode. Calls are
// serialised by a mutex; InTransaction may nest Store calls from the same thread.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "scheduler/store.h"

struct sqlite3;

namespace dx::scheduler {

class SqliteStore : public Store {
 public:
  // Opens (creating when missing) the store and migrates its schema.
  static Result<std::unique_ptr<SqliteStore>> Open(const std::string& path);
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
  Status MarkAllAgentsOffline() override;

  Status PutSubscriptionDefinition(const Subscription& sub) override;
  Result<std::optional<Subscription>> GetSubscription(const std::string& name) override;
  Result<std::vector<Subscription>> ListSubscriptions() override;
  Status SetSchedule(const std::string& name, int64_t next_due, int failures) override;
  Status SetPending(const std::string& name, bool manual, bool resync) override;
  Status SetProgress(const std::string& name, uint64_t acked_seq,
                     const std::string& watermark) override;
  Status SetLastSuccess(const std::string& name, int64_t at) override;

  Result<int64_t> StartRun(const RunRecord& run) override;
  Status FinishRun(const RunRecord& run) override;
  Result<std::vector<RunRecord>> ListRuns(const std::string& subscription, int limit) override;
  Result<std::optional<RunRecord>> LastRun(const std::string& subscription) override;
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

  Status Audit(const AuditEvent& event) override;
  Status VerifyAudit() override;

 private:
  explicit SqliteStore(sqlite3* db) : db_(db) {}
  class Query;
  Status Exec(const std::string& sql);
  Status Migrate();
  // Adds `column` (with its SQL declaration) to `table` unless it has it already.
  Status AddColumnIfMissing(const std::string& table, const std::string& column,
                            const std::string& declaration);

  sqlite3* db_;
  std::recursive_mutex mu_;
  int tx_depth_ = 0;
};

}  // namespace dx::scheduler
