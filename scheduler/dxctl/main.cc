// dxctl: the operators' command-line client of the scheduler's admin API.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "common/clock.h"
#include "scheduler/dxctl/admin_client.h"
#include "scheduler/dxctl/credentials.h"
#include "scheduler/dxctl/governance_commands.h"
#include "scheduler/dxctl/table_printer.h"

namespace {

using dx::ctl::AdminClient;
using dx::ctl::TablePrinter;
using nlohmann::json;

std::string Env(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

// Prints the API's error and returns the exit code for it.
int Fail(const std::string& message) {
  std::fprintf(stderr, "dxctl: %s\n", message.c_str());
  return 1;
}

// Turns an API reply into *out (on success) and an exit code (0 = ok).
int Interpret(const dx::Result<dx::ctl::HttpReply>& reply, json* out) {
  if (!reply.ok()) return Fail(reply.status().message());
  json j = json::parse(reply->body, nullptr, false);
  if (reply->status >= 300) {
    std::string msg =
        j.is_object() && j.contains("error") ? j["error"].get<std::string>() : reply->body;
    Fail(msg);
    if (reply->status == 403) return 4;  // refused: not allowed for this user
    return reply->status == 400 || reply->status == 404 ? 2 : 1;
  }
  if (j.is_discarded()) return Fail("the scheduler answered with something that is not JSON");
  *out = std::move(j);
  return 0;
}

// Calls the API; on success parses the body into *out. Returns an exit code (0 = ok).
int Call(AdminClient& client, const std::string& method, const std::string& path,
         const std::string& body, json* out) {
  return Interpret(method == "GET" ? client.Get(path) : client.Post(path, body), out);
}

// Every page of a list the API answers in pages (`?limit=&after=NAME`), as one array.
int GetAllPages(AdminClient& client, const std::string& path, json* out) {
  constexpr size_t kPage = 1000;
  *out = json::array();
  std::string after;
  while (true) {
    json page;
    std::string url = path + "?limit=" + std::to_string(kPage);
    if (!after.empty()) url += "&after=" + AdminClient::Escape(after);
    if (int rc = Call(client, "GET", url, "", &page)) return rc;
    if (!page.is_array()) return Fail("the scheduler answered a list with something else");
    for (json& item : page) out->push_back(std::move(item));
    if (page.size() < kPage) return 0;
    after = out->back().value("name", std::string());
    if (after.empty()) return 0;
  }
}

using Deadline = std::chrono::steady_clock::time_point;

// A GET that survives a scheduler restart: while the scheduler cannot be reached (or answers
// 503), it is asked again until `deadline`. Returns an exit code like Call.
int GetUntil(AdminClient& client, const std::string& path, json* out, Deadline deadline) {
  bool told = false;
  while (true) {
    auto reply = client.Get(path);
    const bool down = !reply.ok() || reply->status == 503;
    if (!down || std::chrono::steady_clock::now() >= deadline) return Interpret(reply, out);
    if (!told) {
      std::fprintf(stderr, "dxctl: %s; retrying until the deadline\n",
                   reply.ok() ? "the scheduler is unavailable" : reply.status().message().c_str());
      told = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

std::string Str(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return "";
  if (j[key].is_string()) return j[key].get<std::string>();
  return j[key].dump();
}

std::string When(int64_t unix_secs) { return unix_secs > 0 ? dx::FormatLocalTime(unix_secs) : "-"; }

std::string Duration(int64_t ms) {
  char buf[32];
  if (ms < 1000)
    std::snprintf(buf, sizeof(buf), "%lld ms", static_cast<long long>(ms));
  else
    std::snprintf(buf, sizeof(buf), "%.1f s", static_cast<double>(ms) / 1000.0);
  return buf;
}

std::string Bytes(int64_t b) {
  char buf[32];
  if (b < 10 * 1024)
    std::snprintf(buf, sizeof(buf), "%lld B", static_cast<long long>(b));
  else if (b < 10 * 1024 * 1024)
    std::snprintf(buf, sizeof(buf), "%.1f KiB", b / 1024.0);
  else
    std::snprintf(buf, sizeof(buf), "%.1f MiB", b / 1048576.0);
  return buf;
}

// At most `bytes` bytes of `text`, not cutting a UTF-8 character in two.
std::string Shorten(const std::string& text, size_t bytes) {
  if (text.size() <= bytes) return text;
  size_t end = bytes;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xc0) == 0x80) --end;
  return text.substr(0, end);
}

void PrintAgents(const json& agents) {
  TablePrinter t(
      {"AGENT", "ORGANISATION", "ONLINE", "LAST SEEN", "ADDRESS", "LOCAL DB", "VERSION"});
  for (const json& a : agents) {
    const bool online = a.value("online", false);
    t.AddRow({Str(a, "name"), Str(a, "organisation"),
              a.value("disabled", false) ? (online ? "yes (disabled)" : "disabled")
              : online                   ? "yes"
                                         : "no",
              When(a.value("last_seen", int64_t{0})), Str(a, "address"), Str(a, "target_dbms"),
              Str(a, "version")});
  }
  std::cout << t.Render();
}

void PrintSubscriptions(const json& subs, bool wide) {
  TablePrinter t({"SUBSCRIPTION", "AGENT", "SCHEDULE", "STATUS", "LAST RUN", "ROWS", "LAG",
                  "NEXT DUE", "ERROR"});
  for (const json& s : subs) {
    std::string last = "-";
    std::string rows = "-";
    std::string error;
    if (s.contains("last_run") && s["last_run"].is_object()) {
      const json& r = s["last_run"];
      last = "#" + Str(r, "id") + " " + Str(r, "status");
      rows = Str(r, "rows");
      error = Str(r, "error");
    }
    std::string status = Str(s, "status");
    if (s.value("stopped", false)) {
      status = "stopped";
      error = Str(s, "stopped_error");
    }
    if (s.value("running", false)) status = "running";
    if (!wide && error.size() > 60) error = Shorten(error, 57) + "...";
    std::string lag = s["lag_s"].is_null() ? "-" : Str(s, "lag_s") + " s";
    int64_t next = s.value("next_due", int64_t{0});
    std::string next_due =
        Str(s, "schedule") == "manual" && s.value("failures", 0) == 0 ? "manual" : When(next);
    if (s.value("stopped", false)) next_due = "-";  // until an operator acts
    t.AddRow({Str(s, "name"), Str(s, "agent"), Str(s, "schedule"), status, last, rows, lag,
              next_due, error});
  }
  std::cout << t.Render();
}

// A run's error, and its note (e.g. why the agent reloaded a table) after it.
std::string ErrorAndNote(const json& run) {
  std::string error = Str(run, "error");
  std::string note = run.contains("note") ? Str(run, "note") : "";
  if (note.empty()) return error;
  return error.empty() ? "note: " + note : error + " (note: " + note + ")";
}

void PrintRuns(const json& runs) {
  TablePrinter t({"RUN", "SUBSCRIPTION", "TRIGGER", "STATUS", "ROWS", "BYTES", "DURATION",
                  "STARTED", "ERROR"});
  for (const json& r : runs) {
    int64_t started = r.value("started_at_ms", int64_t{0});
    t.AddRow({Str(r, "id"), Str(r, "subscription"), Str(r, "trigger"), Str(r, "status"),
              Str(r, "rows"), Bytes(r.value("bytes", int64_t{0})),
              Duration(r.value("duration_ms", int64_t{0})), When(started / 1000), ErrorAndNote(r)});
  }
  std::cout << t.Render();
}

// What reconciliation runs (对账) found: one line per reconcile run among `runs`, if any.
void PrintReconciliations(const json& runs) {
  TablePrinter t({"RUN", "SUBSCRIPTION", "MODE", "COMPARED", "AGENT ROWS", "MISSING", "EXTRA",
                  "CHANGED", "REPAIRED"});
  bool any = false;
  for (const json& r : runs) {
    if (!r.contains("reconcile") || !r["reconcile"].is_object()) continue;
    const json& c = r["reconcile"];
    t.AddRow({Str(r, "id"), Str(r, "subscription"),
              c.value("dry_run", false) ? "dry run" : "repair", Str(c, "compared"),
              Str(c, "target_rows"), Str(c, "missing"), Str(c, "extra"), Str(c, "changed"),
              Str(c, "repaired")});
    any = true;
  }
  if (any) std::cout << "\nreconciliations (对账):\n" << t.Render();
}

// Waits until a reconciliation of `sub` newer than `after_id` has finished; prints it and its
// counts; returns 0 when it succeeded.
int WaitForReconcile(AdminClient& client, const std::string& sub, int64_t after_id, int timeout_s,
                     bool as_json) {
  const Deadline deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    json runs;
    int rc = GetUntil(client, "/api/v1/runs?limit=20&subscription=" + AdminClient::Escape(sub),
                      &runs, deadline);
    if (rc != 0) return rc;
    for (const json& r : runs) {
      if (r.value("id", int64_t{0}) <= after_id || Str(r, "trigger") != "reconcile" ||
          Str(r, "status") == "running") {
        continue;
      }
      if (as_json) {
        std::cout << r.dump(2) << "\n";
      } else {
        json one = json::array({r});
        PrintRuns(one);
        PrintReconciliations(one);
      }
      return Str(r, "status") == "succeeded" ? 0 : 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Fail("no finished reconciliation of " + sub + " within " + std::to_string(timeout_s) +
              " s");
}

// Waits until a run newer than `after_id` of `sub` has finished; returns its exit code. A run
// interrupted by a scheduler restart is not the end: the scheduler runs it again, and the
// scheduler being unreachable meanwhile is waited out until the deadline.
int WaitForRun(AdminClient& client, const std::string& sub, int64_t after_id, int timeout_s,
               bool as_json) {
  const Deadline deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    json runs;
    int rc = GetUntil(client, "/api/v1/runs?limit=1&subscription=" + AdminClient::Escape(sub),
                      &runs, deadline);
    if (rc != 0) return rc;
    const std::string status = runs.empty() ? "" : Str(runs[0], "status");
    if (!runs.empty() && runs[0].value("id", int64_t{0}) > after_id && status != "running" &&
        status != "interrupted") {
      if (as_json)
        std::cout << runs[0].dump(2) << "\n";
      else
        PrintRuns(runs);
      return status == "succeeded" ? 0 : 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Fail("no finished run of " + sub + " within " + std::to_string(timeout_s) + " s");
}

// dxctl wait: see the subcommand's help for what "caught up" means and the exit codes.
int WaitCaughtUp(AdminClient& client, const std::string& sub, int timeout_s) {
  const Deadline deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  const std::string path = "/api/v1/subscriptions/" + AdminClient::Escape(sub);
  json j;
  int rc = GetUntil(client, path, &j, deadline);
  if (rc != 0) return rc;
  const int64_t since_ms = j.value("now_ms", int64_t{0});
  while (true) {
    if (j.value("caught_up_ms", int64_t{0}) >= since_ms) {
      std::cout << sub << " caught up (a run that started after the call succeeded)\n";
      return 0;
    }
    if (j.value("stopped", false)) {
      Fail(sub + " is stopped until an operator acts: " + Str(j, "stopped_error"));
      return 3;
    }
    if (Str(j, "status") != "active") {
      Fail(sub + " is " + Str(j, "status") + ": nothing will run");
      return 2;
    }
    const bool idle = !j.value("running", false) && !j.value("manual_pending", false) &&
                      !j.value("resync_pending", false) && j.value("failures", 0) == 0;
    if (Str(j, "schedule") == "manual" && idle) {
      Fail(sub + " runs only when triggered and none is queued (dxctl run " + sub + " --wait)");
      return 2;
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    rc = GetUntil(client, path, &j, deadline);
    if (rc != 0) return rc;
  }
  std::string why;
  if (j.contains("last_run") && j["last_run"].is_object() && !Str(j["last_run"], "error").empty())
    why = " (last run: " + Str(j["last_run"], "error") + ")";
  Fail(sub + " has not caught up within " + std::to_string(timeout_s) + " s" + why);
  return 1;
}

void PrintDescription(const json& s) {
  auto line = [](const std::string& key, const std::string& value) {
    std::cout << key << ":" << std::string(key.size() < 15 ? 15 - key.size() : 1, ' ') << value
              << "\n";
  };
  std::string status = Str(s, "status");
  if (s.value("stopped", false))
    status = "stopped since " + When(s.value("stopped_at", int64_t{0}));
  if (s.value("running", false)) status += " (running)";
  line("subscription", Str(s, "name"));
  line("agent", Str(s, "agent"));
  line("entry", Str(s, "entry"));
  line("status", status);
  if (s.value("stopped", false)) line("stopped by", Str(s, "stopped_error"));
  if (!Str(s, "halted_by").empty()) {
    line(Str(s, "status") + " by",
         Str(s, "halted_by") + " (" + Str(s, "halted_role") + ", " + Str(s, "halted_org") +
             ") at " + When(s.value("halted_at", int64_t{0})) + ": " + Str(s, "halt_reason"));
  }
  if (Str(s, "status") == "suspended" || Str(s, "status") == "terminated") {
    const int64_t deleted_ms = s.value("deletion_confirmed_at_ms", int64_t{0});
    line("data at agent", deleted_ms > 0
                              ? "deleted, confirmed by the agent at " + When(deleted_ms / 1000) +
                                    ": " + Str(s, "deletion_detail")
                              : "to be deleted (the agent is told when it is online)");
  }
  if (!Str(s, "organisation").empty()) line("organisation", Str(s, "organisation"));
  if (s.value("application", int64_t{0}) > 0) {
    line("granted by", "application " + Str(s, "application"));
  } else if (s.value("direct", false)) {
    line("granted by", "the bootstrap admin directly");
  }
  std::string masking;
  for (const json& m : s.value("masking", json::array())) {
    std::string method = Str(m, "method");
    if (method == "partial") method += ":" + Str(m, "keep_first") + ":" + Str(m, "keep_last");
    masking += (masking.empty() ? "" : ", ") + Str(m, "column") + "=" + method;
  }
  if (!masking.empty()) line("masking", masking);
  line("schedule", Str(s, "schedule"));
  if (!Str(s, "target_table").empty()) line("target table", Str(s, "target_table"));
  if (!Str(s, "target_path").empty()) line("target path", Str(s, "target_path"));
  std::string columns;
  for (const json& c : s.value("columns", json::array())) {
    columns += (columns.empty() ? "" : ", ") + c.get<std::string>();
  }
  if (!columns.empty()) line("columns", columns);
  for (const json& f : s.value("filter", json::array())) {
    std::string values;
    for (const json& v : f.value("values", json::array())) {
      values += (values.empty() ? "" : ", ") + v.get<std::string>();
    }
    line("filter", Str(f, "column") + " " + Str(f, "op") + " " + values);
  }
  line("next due", Str(s, "schedule") == "manual" && s.value("failures", 0) == 0
                       ? "when triggered"
                       : When(s.value("next_due", int64_t{0})));
  line("failures", Str(s, "failures"));
  line("resync pending", s.value("resync_pending", false) ? "yes" : "no");
  line("last success", When(s.value("last_ok_at", int64_t{0})));
  line("caught up to", When(s.value("caught_up_ms", int64_t{0}) / 1000));
  line("watermark", Str(s, "watermark").empty() ? "-" : Str(s, "watermark"));
  if (s.contains("last_run") && s["last_run"].is_object()) {
    const json& r = s["last_run"];
    line("last run", "#" + Str(r, "id") + " " + Str(r, "trigger") + " " + Str(r, "status") + ", " +
                         Str(r, "rows") + " rows, " +
                         When(r.value("started_at_ms", int64_t{0}) / 1000));
    if (!Str(r, "error").empty()) line("last error", Str(r, "error"));
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dxctl: operate a DX scheduler"};
  std::string server = Env("DX_SERVER", "http://127.0.0.1:7880");
  // Tokens never come from the command line (other users see process arguments).
  std::string token = Env("DX_TOKEN", "");
  std::string token_file = Env("DX_TOKEN_FILE", "");
  std::string ca_file = Env("DX_CA_FILE", "");
  bool as_json = false;
  app.add_option("--server", server,
                 "scheduler admin URL, http://127.0.0.1:PORT or https://HOST:PORT (env DX_SERVER)")
      ->capture_default_str();
  app.add_option("--token-file", token_file,
                 "read the token from this file, mode 0600 (env DX_TOKEN_FILE; else env DX_TOKEN)");
  app.add_option("--ca-file", ca_file,
                 "CA certificates (PEM) to verify an https scheduler with (env DX_CA_FILE)");
  app.add_flag("--json", as_json, "print JSON for scripts");
  app.footer(
      "Exit codes: 0 ok; 1 failed; 2 bad input or not found; 3 stopped (wait); 4 refused (the "
      "user may not do that).");
  app.require_subcommand(1);
  dx::ctl::CommandContext governance;
  governance.as_json = &as_json;
  dx::ctl::AddGovernanceCommands(app, governance);

  std::string file;
  bool draft = false;
  auto* apply = app.add_subcommand(
      "apply",
      "apply catalog/agent/subscription manifests (catalog entries are submitted for review)");
  apply->add_option("-f,--file", file, "YAML manifest")->required();
  apply->add_flag("--draft", draft, "save catalog entries as drafts instead of submitting them");
  app.add_subcommand("agents", "list agents");
  auto* agent_cmd = app.add_subcommand("agent", "disable, enable or remove one agent (admin)");
  agent_cmd->require_subcommand(1);
  agent_cmd->footer(
      "Disabling or removing ends the agent's session at once and refuses its logins. An agent "
      "that still has subscriptions is not removed (terminate them, then dxctl subscription remove "
      "each once its deletion is confirmed).\nExit codes: 0 done; 2 no such agent; 4 "
      "refused (not an admin, or the agent still has subscriptions).");
  std::string agent_name;
  for (const char* verb : {"disable", "enable", "remove"}) {
    agent_cmd->add_subcommand(verb, std::string(verb) + " an agent")
        ->add_option("name", agent_name, "agent name")
        ->required();
  }
  bool wide = false;
  auto* subscriptions = app.add_subcommand("subscriptions", "list subscriptions")->alias("subs");
  subscriptions->add_flag("-w,--wide", wide, "show whole error messages");
  std::string describe_sub;
  auto* describe = app.add_subcommand(
      "describe", "one subscription in full: definition, state, whole errors, last run");
  describe->add_option("subscription", describe_sub, "subscription name")->required();
  std::string wait_sub;
  int wait_timeout_s = 600;
  auto* wait_cmd = app.add_subcommand("wait", "wait until a subscription has caught up");
  wait_cmd->footer(
      "Caught up: a run that started after this call has succeeded, so every source row "
      "stamped before the call (minus the safety lag) is at the agent. A scheduler restart "
      "meanwhile is waited out.\nExit codes: 0 caught up; 1 not within the timeout; 2 unknown "
      "subscription, or nothing will run (suspended, or manual with no run queued); 3 stopped "
      "until an operator acts (dxctl describe shows why).");
  wait_cmd->add_option("subscription", wait_sub, "subscription name")->required();
  wait_cmd->add_option("--timeout", wait_timeout_s, "seconds to wait")->capture_default_str();
  bool catalog_all = false;
  app.add_subcommand("catalog", "list the published catalog entries")
      ->add_flag("--all", catalog_all, "with the versions under way that you may see");
  std::string run_sub;
  int limit = 20;
  auto* runs = app.add_subcommand("runs", "list runs");
  runs->add_option("-s,--subscription", run_sub, "only this subscription");
  runs->add_option("-n,--limit", limit, "how many")->capture_default_str();
  int64_t runs_after = 0;
  runs->add_option("--after", runs_after, "only runs older than this run id (the next page)");
  std::string target;
  bool wait = false;
  int timeout_s = 600;
  auto* run = app.add_subcommand("run", "run a subscription now");
  auto* resync = app.add_subcommand("resync", "reload a subscription from scratch");
  for (auto* cmd : {run, resync}) {
    cmd->add_option("subscription", target, "subscription name")->required();
    cmd->add_flag("--wait", wait,
                  "wait for the run to finish, through a scheduler restart; exit 1 if it failed");
    cmd->add_option("--timeout", timeout_s, "seconds to wait")->capture_default_str();
  }
  bool dry_run = false;
  auto* reconcile =
      app.add_subcommand("reconcile", "compare a table subscription with its source and repair it");
  reconcile->add_option("subscription", target, "subscription name")->required();
  reconcile->add_flag("--dry-run", dry_run, "report the differences and change nothing");
  reconcile->add_flag("--wait", wait, "wait for it to finish; exit 1 if it failed");
  reconcile->add_option("--timeout", timeout_s, "seconds to wait")->capture_default_str();
  bool allow_mass_delete = false;
  run->add_flag("--allow-mass-delete", allow_mass_delete,
                "a file run may delete more than max_delete_percent of the delivered files "
                "(after checking that the provider's share is really meant to be emptied)");
  app.add_subcommand("audit-verify", "check the audit log's hash chain");
  int64_t receipt_run = 0;
  auto* receipt = app.add_subcommand("receipt", "a file run's receipt (回执): one line per file");
  receipt->add_option("run", receipt_run, "run id")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (!token_file.empty()) {
    auto read = dx::ctl::ReadTokenFile(token_file);
    if (!read.ok()) {
      Fail(read.status().message());
      return 2;
    }
    token = read.value();
  }
  if (token.empty()) {
    std::fprintf(stderr,
                 "dxctl: a token is needed: --token-file FILE (mode 0600), DX_TOKEN_FILE or "
                 "DX_TOKEN\n");
    return 2;
  }
  AdminClient client(server, token, ca_file);
  if (governance.action) return governance.action(client);
  json out;
  int rc = 0;
  if (*apply) {
    std::ifstream in(file);
    if (!in) {
      std::fprintf(stderr, "dxctl: cannot read %s\n", file.c_str());
      return 2;
    }
    std::stringstream text;
    text << in.rdbuf();
    rc = Call(client, "POST",
              "/api/v1/apply?file=" + AdminClient::Escape(file) + (draft ? "&draft=1" : ""),
              text.str(), &out);
    if (rc == 0 && !as_json) {
      TablePrinter t({"KIND", "NAME", "ACTION", "NOTE"});
      for (const json& o : out) {
        t.AddRow({Str(o, "kind"), Str(o, "name"), Str(o, "action"), Str(o, "note")});
      }
      std::cout << t.Render();
      return 0;
    }
  } else if (app.got_subcommand("agents")) {
    rc = GetAllPages(client, "/api/v1/agents", &out);
    if (rc == 0 && !as_json) return PrintAgents(out), 0;
  } else if (*agent_cmd) {
    const std::string verb = agent_cmd->get_subcommands().front()->get_name();
    const std::string path = "/api/v1/agents/" + AdminClient::Escape(agent_name);
    auto reply = verb == "remove" ? client.Delete(path) : client.Post(path + "/" + verb, "");
    rc = Interpret(reply, &out);
    if (rc == 1 && reply.ok() && reply->status == 409) rc = 4;  // still has subscriptions
    if (rc == 0 && !as_json) {
      std::cout << "agent " << agent_name << " " << (verb == "remove" ? "removed" : verb + "d")
                << "\n";
      return 0;
    }
  } else if (*subscriptions) {
    rc = GetAllPages(client, "/api/v1/subscriptions", &out);
    if (rc == 0 && !as_json) return PrintSubscriptions(out, wide), 0;
  } else if (*describe) {
    rc =
        Call(client, "GET", "/api/v1/subscriptions/" + AdminClient::Escape(describe_sub), "", &out);
    if (rc == 0 && !as_json) return PrintDescription(out), 0;
  } else if (*wait_cmd) {
    return WaitCaughtUp(client, wait_sub, wait_timeout_s);
  } else if (app.got_subcommand("catalog")) {
    rc = Call(client, "GET", std::string("/api/v1/catalog") + (catalog_all ? "?all=1" : ""), "",
              &out);
    if (rc == 0 && !as_json) {
      TablePrinter t({"ENTRY", "PROVIDER", "SHARE", "TOPIC", "SOURCE TABLE", "FIELDS", "STATUS"});
      for (const json& e : out) {
        t.AddRow({Str(e, "name"), Str(e, "provider"), Str(e, "share_type"), Str(e, "topic"),
                  Str(e, "source") + "." + Str(e, "source_table"),
                  std::to_string(e["fields"].size()), Str(e, "status")});
      }
      std::cout << t.Render();
      return 0;
    }
  } else if (*runs) {
    std::string path = "/api/v1/runs?limit=" + std::to_string(limit);
    if (!run_sub.empty()) path += "&subscription=" + AdminClient::Escape(run_sub);
    if (runs_after > 0) path += "&after=" + std::to_string(runs_after);
    rc = Call(client, "GET", path, "", &out);
    if (rc == 0 && !as_json) return PrintRuns(out), PrintReconciliations(out), 0;
  } else if (*run || *resync) {
    const char* verb = *run ? "run" : "resync";
    rc = Call(client, "POST",
              "/api/v1/subscriptions/" + AdminClient::Escape(target) + "/" + verb +
                  (allow_mass_delete ? "?allow_mass_delete=1" : ""),
              "", &out);
    if (rc == 0 && wait) {
      return WaitForRun(client, target, out.value("after_run_id", int64_t{0}), timeout_s, as_json);
    }
    if (rc == 0 && !as_json) {
      std::cout << verb << " of " << target << " queued\n";
      return 0;
    }
  } else if (*reconcile) {
    rc = Call(client, "POST",
              "/api/v1/subscriptions/" + AdminClient::Escape(target) + "/reconcile" +
                  (dry_run ? "?dry_run=true" : ""),
              "", &out);
    if (rc == 0 && wait) {
      return WaitForReconcile(client, target, out.value("after_run_id", int64_t{0}), timeout_s,
                              as_json);
    }
    if (rc == 0 && !as_json) {
      std::cout << (dry_run ? "dry-run reconciliation" : "reconciliation") << " of " << target
                << " queued\n";
      return 0;
    }
  } else if (*receipt) {
    rc = Call(client, "GET", "/api/v1/runs/" + std::to_string(receipt_run) + "/receipt", "", &out);
    if (rc == 0 && !as_json) {
      TablePrinter t({"PATH", "SIZE", "SHA-256", "OUTCOME", "SENT", "ERROR"});
      for (const json& r : out) {
        t.AddRow({Str(r, "path"), Str(r, "size"), Str(r, "sha256").substr(0, 16), Str(r, "outcome"),
                  Bytes(r.value("bytes_sent", int64_t{0})), Str(r, "error")});
      }
      std::cout << t.Render();
      return 0;
    }
  } else if (app.got_subcommand("audit-verify")) {
    rc = Call(client, "GET", "/api/v1/audit/verify", "", &out);
    if (rc == 0 && !as_json) {
      std::cout << "audit log intact\n";
      return 0;
    }
  }
  if (rc == 0) std::cout << out.dump(2) << "\n";
  return rc;
}
