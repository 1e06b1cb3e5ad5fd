// The key of the audit log's HMAC chain, kept in a file outside the store (named in
// scheduler.yaml), so that someone who can edit the store cannot recompute the chain.
#pragma once

#include <string>

#include "common/status.h"

namespace dx::scheduler {

// Reads the key at `path`; when the file does not exist, creates it (mode 0600) with 256
// random bits. A file readable or writable by group or others is refused, naming its mode, and
// so is one that does not hold a key (at least 32 hex digits).
Result<std::string> LoadOrCreateAuditKey(const std::string& path);

}  // namespace dx::scheduler
