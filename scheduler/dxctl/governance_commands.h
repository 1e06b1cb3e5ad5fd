// dxctl's commands for the sharing workflow: identities and tokens, the catalog lifecycle,
// applications and arbitration, subscription states, demands, error reports, usage, the three
// lists, notices and the audit log. Each prints a readable table, or JSON with --json.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "scheduler/dxctl/admin_client.h"

namespace dx::ctl {

struct CommandContext {
  const bool* as_json = nullptr;
  // Set by the subcommand that was given; run once the client is ready. Returns the exit code.
  std::function<int(AdminClient&)> action;
};

void AddGovernanceCommands(CLI::App& app, CommandContext& ctx);

// Parses "column=value", "column!=value", "<", "<=", ">", ">=", or "column in a,b,c" into
// {column, op, values} JSON; false when it is none of them.
bool ParseFilter(const std::string& text, std::string* column, std::string* op,
                 std::vector<std::string>* values);
// "2024-05-01", "2024-05-01 08:00:00" (local time), or "90m"/"2h"/"3d" ago, as unix ms at `now_ms`.
bool ParseWhen(const std::string& text, int64_t now_ms, int64_t* out_ms);

}  // namespace dx::ctl
