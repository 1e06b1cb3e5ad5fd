// Deletion of what the agent holds for a suspended or terminated subscription (附件一 第二条(四),
// 第九条(三)), as the scheduler's DeleteSubscription asks: the files it received for it (its
// transfers in progress, the files recorded in dx_files, the part files left in its folder, then
// the folders its runs created or its deletions left empty — all inside the subscription's
// folder, never the consumer's own files), then the tables it
// created for it (only those recorded in dx_tables) and its records (TableWriter::
// ForgetSubscription). Idempotent: repeated after a crash or a kill -9 it finishes the job,
// and for a subscription the agent holds nothing of it confirms at once.
#pragma once

#include "agent/file_receiver.h"
#include "agent/table_writer.h"
#include "common/protocol.h"

namespace dx::agent {

// Deletes and answers; a failure (the database unreachable, a file that cannot be removed) is
// in the answer's code and error, and the scheduler asks again later. `shared_root` is the
// agent's files.shared_root (empty, and `files` null, for an agent that takes tables only).
DeletionDone DeleteHoldings(const DeleteSubscription& order, TableWriter& writer,
                            FileReceiver* files, const std::string& shared_root);

// Removes the folder `path` (relative to `shared_root`) when it is empty; true when it did. A
// folder that is not empty, is missing, or is reached through a symbolic link is left alone
// (false); nothing outside the root is touched.
Result<bool> RemoveEmptyFolder(const std::string& shared_root, const std::string& path);

}  // namespace dx::agent
