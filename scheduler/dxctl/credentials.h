// Where dxctl finds its token: never on the command line (other users see process arguments)
// and never in a URL — the environment (DX_TOKEN) or a file only its owner can read
// (--token-file, DX_TOKEN_FILE).
#pragma once

#include <string>

#include "common/status.h"

namespace dx::ctl {

// The first line of `path`; refuses a file that group or others may read or write, saying
// its mode and how to fix it.
Result<std::string> ReadTokenFile(const std::string& path);
// Writes a token to a new file of mode 0600 (refuses to overwrite one).
Status WriteTokenFile(const std::string& path, const std::string& token);

}  // namespace dx::ctl
