// FileRun: one run of one file subscription (文件方式, 第二十七条(二)). Lists the resource's
// directory (file_listing.h) and delivers what is new or changed since the last delivery:
// small files whole, large files in chunks from where the agent's partial copy ends (hashed
// while they are read), content the agent already holds under another name as a copy there,
// and empty folders. Everything is pipelined: the next file is read and sent while the agent
// makes earlier ones durable, and answers are matched by path.
//
// Each file succeeds or fails on its own. A file is only delivered as a state it really had:
// its stat is checked after it is read (and after every chunk), a file that changed is read
// again at the end of the run and fails if it changes again; a file modified within
// files.settle_ms is read last. A file that fails (unreadable, vanished, not a regular file,
// name not valid in the resource's encoding, refused by the agent) gets a receipt line with
// its reason and its own back-off; the run is then "partial" and says how many files are
// missing. Deletions propagate when the subscription asks, never below a folder that could
// not be listed, and a run that would delete more than max_delete_percent of the delivered
// files stops and asks for confirmation. Every file acted on gets a line in the run's receipt.
#pragma once

#include <functional>
#include <string>

#include "scheduler/agent_hub.h"
#include "scheduler/scheduler_config.h"
#include "scheduler/store.h"

namespace dx::scheduler {

// False for types that are compressed already (archives, images, video, office files).
bool WorthCompressing(const std::string& path);

class FileRun {
 public:
  FileRun(Store& store, const ExchangeOptions& options) : store_(store), options_(options) {}

  // `record_run` creates the run's history record (called before the first receipt line).
  // Returns an error when the run as a whole failed; a run where only some files failed
  // returns Ok with run->status "partial", run->error saying how many, and run->retry_at_ms.
  Status Transfer(const Subscription& sub, const CatalogEntry& entry, int64_t bandwidth_kbps,
                  AgentSession& session, uint64_t attempt, bool reset, RunRecord* run,
                  const std::function<Status()>& record_run);

 private:
  Store& store_;
  const ExchangeOptions options_;
};

}  // namespace dx::scheduler
