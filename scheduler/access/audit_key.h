// Keys kept in files outside the store (named in scheduler.yaml): the audit log's HMAC chain key,
// so that someone who can edit the store cannot recompute the chain, and the masking key of
// hashed columns (脱敏), so that someone who can read the store cannot hash guesses.
#pragma once

#include <string>

#include "common/status.h"

namespace dx::scheduler {

// Reads the key at `path`; when the file does not exist, creates it (mode 0600) with 256
// random bits. A file readable or writable by group or others is refused, naming its mode, and
// so is one that does not hold a key (at least 32 hex digits).
Result<std::string> LoadOrCreateAuditKey(const std::string& path);

// The same for any key; `what` names it in errors ("masking key").
Result<std::string> LoadOrCreateKeyFile(const std::string& path, const std::string& what);

}  // namespace dx::scheduler
