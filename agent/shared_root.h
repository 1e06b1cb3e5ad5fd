// The agent's shared root (共享目录), checked when the agent starts: it must exist (it is
// created when missing), be a folder, accept new files, renames and fsyncs, and keep the file
// mode the agent is told to apply. A root that cannot is reported at once, naming the
// filesystem and the setting to change, instead of failing every file at run time.
#pragma once

#include <optional>
#include <string>

#include "common/status.h"

namespace dx::agent {

// `mode`: the files.mode delivered files get; nullopt for files.mode: keep.
Status PrepareSharedRoot(const std::string& root, std::optional<unsigned> mode);

}  // namespace dx::agent
