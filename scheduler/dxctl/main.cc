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

// Calls the API; on success parses the body into *out. Returns an exit code (0 = ok).
int Call(AdminClient& client, const std::string& method, const std::string& path,
         const std::string& body, json* out) {
  auto reply = method == "GET" ? client.Get(path) : client.Post(path, body);
  if (!reply.ok()) return Fail(reply.status().message());
  json j = json::parse(reply->body, nullptr, false);
  if (reply->status >= 300) {
    std::string msg =
        j.is_object() && j.contains("error") ? j["error"].get<std::string>() : reply->body;
    Fail(msg);
    return reply->status == 400 || reply->status == 404 ? 2 : 1;
  }
  if (j.is_discarded()) return Fail("the scheduler answered with something that is not JSON");
  *out = std::move(j);
  return 0;
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

void PrintAgents(const json& agents) {
  TablePrinter t({"AGENT", "ONLINE", "LAST SEEN", "ADDRESS", "LOCAL DB", "VERSION"});
  for (const json& a : agents) {
    t.AddRow({Str(a, "name"), a.value("online", false) ? "yes" : "no",
              When(a.value("last_seen", int64_t{0})), Str(a, "address"), Str(a, "target_dbms"),
              Str(a, "version")});
  }
  std::cout << t.Render();
}

void PrintSubscriptions(const json& subs) {
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
      if (error.size() > 60) error = error.substr(0, 57) + "...";
    }
    std::string status = Str(s, "status");
    if (s.value("running", false)) status = "running";
    std::string lag = s["lag_s"].is_null() ? "-" : Str(s, "lag_s") + " s";
    int64_t next = s.value("next_due", int64_t{0});
    std::string next_due =
        Str(s, "schedule") == "manual" && s.value("failures", 0) == 0 ? "manual" : When(next);
    t.AddRow({Str(s, "name"), Str(s, "agent"), Str(s, "schedule"), status, last, rows, lag,
              next_due, error});
  }
  std::cout << t.Render();
}

void PrintRuns(const json& runs) {
  TablePrinter t({"RUN", "SUBSCRIPTION", "TRIGGER", "STATUS", "ROWS", "BYTES", "DURATION",
                  "STARTED", "ERROR"});
  for (const json& r : runs) {
    int64_t started = r.value("started_at_ms", int64_t{0});
    t.AddRow({Str(r, "id"), Str(r, "subscription"), Str(r, "trigger"), Str(r, "status"),
              Str(r, "rows"), Bytes(r.value("bytes", int64_t{0})),
              Duration(r.value("duration_ms", int64_t{0})), When(started / 1000), Str(r, "error")});
  }
  std::cout << t.Render();
}

// Waits until a run newer than `after_id` of `sub` has finished; returns its exit code.
int WaitForRun(AdminClient& client, const std::string& sub, int64_t after_id, int timeout_s,
               bool as_json) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    json runs;
    int rc = Call(client, "GET", "/api/v1/runs?limit=1&subscription=" + AdminClient::Escape(sub),
                  "", &runs);
    if (rc != 0) return rc;
    if (!runs.empty() && runs[0].value("id", int64_t{0}) > after_id &&
        Str(runs[0], "status") != "running") {
      if (as_json)
        std::cout << runs[0].dump(2) << "\n";
      else
        PrintRuns(runs);
      return Str(runs[0], "status") == "succeeded" ? 0 : 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Fail("no finished run of " + sub + " within " + std::to_string(timeout_s) + " s");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dxctl: operate a DX scheduler"};
  std::string server = Env("DX_SERVER", "http://127.0.0.1:7880");
  std::string token = Env("DX_TOKEN", "");
  std::string token_file;
  bool as_json = false;
  app.add_option("--server", server, "scheduler admin URL (env DX_SERVER)")->capture_default_str();
  app.add_option("--token", token, "operator token (env DX_TOKEN)");
  app.add_option("--token-file", token_file, "read the operator token from this file");
  app.add_flag("--json", as_json, "print JSON for scripts");
  app.require_subcommand(1);

  std::string file;
  auto* apply = app.add_subcommand("apply", "apply catalog/agent/subscription manifests");
  apply->add_option("-f,--file", file, "YAML manifest")->required();
  app.add_subcommand("agents", "list agents");
  app.add_subcommand("subscriptions", "list subscriptions")->alias("subs");
  app.add_subcommand("catalog", "list catalog entries");
  std::string run_sub;
  int limit = 20;
  auto* runs = app.add_subcommand("runs", "list runs");
  runs->add_option("-s,--subscription", run_sub, "only this subscription");
  runs->add_option("-n,--limit", limit, "how many")->capture_default_str();
  std::string target;
  bool wait = false;
  int timeout_s = 600;
  auto* run = app.add_subcommand("run", "run a subscription now");
  auto* resync = app.add_subcommand("resync", "reload a subscription from scratch");
  for (auto* cmd : {run, resync}) {
    cmd->add_option("subscription", target, "subscription name")->required();
    cmd->add_flag("--wait", wait, "wait for the run to finish; exit 1 if it failed");
    cmd->add_option("--timeout", timeout_s, "seconds to wait")->capture_default_str();
  }
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
    std::ifstream in(token_file);
    if (!in) return Fail("cannot read token file " + token_file);
    std::getline(in, token);
  }
  if (token.empty()) {
    std::fprintf(stderr,
                 "dxctl: an operator token is needed (--token, --token-file or DX_TOKEN)\n");
    return 2;
  }
  AdminClient client(server, token);
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
    rc = Call(client, "POST", "/api/v1/apply?file=" + AdminClient::Escape(file), text.str(), &out);
    if (rc == 0 && !as_json) {
      TablePrinter t({"KIND", "NAME", "ACTION"});
      for (const json& o : out) t.AddRow({Str(o, "kind"), Str(o, "name"), Str(o, "action")});
      std::cout << t.Render();
      return 0;
    }
  } else if (app.got_subcommand("agents")) {
    rc = Call(client, "GET", "/api/v1/agents", "", &out);
    if (rc == 0 && !as_json) return PrintAgents(out), 0;
  } else if (app.got_subcommand("subscriptions")) {
    rc = Call(client, "GET", "/api/v1/subscriptions", "", &out);
    if (rc == 0 && !as_json) return PrintSubscriptions(out), 0;
  } else if (app.got_subcommand("catalog")) {
    rc = Call(client, "GET", "/api/v1/catalog", "", &out);
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
    rc = Call(client, "GET", path, "", &out);
    if (rc == 0 && !as_json) return PrintRuns(out), 0;
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
