// FileRun: one run of one file subscription (文件方式, 第二十七条(二)). Lists the resource's
// directory (include/exclude patterns, recursion; symbolic links are not followed) and
// delivers what is new or changed since the last delivery: small files whole with several in
// flight, large files in chunks from where the agent's partial copy ends (hashed while they
// are read, so each byte is read once), and content the agent already holds under another
// name as a copy on the agent. Deletions propagate when the subscription asks. Every file
// acted on gets a line in the run's receipt (回执).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "scheduler/agent_hub.h"
#include "scheduler/scheduler_config.h"
#include "scheduler/store.h"

namespace dx::scheduler {

struct SourceFile {
  std::string path;  // relative to the resource's directory
  uint64_t size = 0;
  int64_t mtime_ns = 0;
};

// The files of a file resource, sorted by path. A pattern without '/' matches the file name
// in any folder; one with '/' matches the relative path ('*' stays within one folder).
Result<std::vector<SourceFile>> ListResourceFiles(const CatalogEntry& entry);
bool MatchesPatterns(const std::string& relative_path, const CatalogEntry& entry);
// False for types that are compressed already (archives, images, video, office files).
bool WorthCompressing(const std::string& path);

class FileRun {
 public:
  FileRun(Store& store, const ExchangeOptions& options) : store_(store), options_(options) {}

  // `record_run` creates the run's history record (called before the first receipt line).
  Status Transfer(const Subscription& sub, const CatalogEntry& entry, int64_t bandwidth_kbps,
                  AgentSession& session, uint64_t attempt, bool reset, RunRecord* run,
                  const std::function<Status()>& record_run);

 private:
  Store& store_;
  const ExchangeOptions options_;
};

}  // namespace dx::scheduler
