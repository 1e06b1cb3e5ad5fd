#include "scheduler/dxctl/governance_commands.h"

#include <chrono>
#include <ctime>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "scheduler/dxctl/credentials.h"
#include "scheduler/dxctl/table_printer.h"

namespace dx::ctl {
namespace {

using nlohmann::json;

// dxctl's exit codes: 0 ok; 1 failed; 2 bad input or not found; 4 refused (not allowed).
int Fail(const std::string& message, int code = 1) {
  std::fprintf(stderr, "dxctl: %s\n", message.c_str());
  return code;
}

int Interpret(const Result<HttpReply>& reply, json* out) {
  if (!reply.ok()) return Fail(reply.status().message());
  json j = json::parse(reply->body, nullptr, false);
  if (reply->status >= 300) {
    std::string msg =
        j.is_object() && j.contains("error") ? j["error"].get<std::string>() : reply->body;
    if (reply->status == 403) return Fail(msg, 4);
    return Fail(msg, reply->status == 400 || reply->status == 404 ? 2 : 1);
  }
  if (j.is_discarded()) return Fail("the scheduler answered with something that is not JSON");
  *out = std::move(j);
  return 0;
}

int Get(AdminClient& c, const std::string& path, json* out) { return Interpret(c.Get(path), out); }
int Post(AdminClient& c, const std::string& path, const json& body, json* out) {
  return Interpret(c.Post(path, body.dump(), "application/json"), out);
}

std::string Str(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return "";
  if (j[key].is_string()) return j[key].get<std::string>();
  return j[key].dump();
}

std::string When(int64_t unix_secs) { return unix_secs > 0 ? FormatLocalTime(unix_secs) : "-"; }

std::string Join(const json& list, const char* sep = ", ") {
  std::string out;
  for (const json& x : list)
    out += (out.empty() ? "" : sep) + (x.is_string() ? x.get<std::string>() : x.dump());
  return out;
}

std::string Esc(const std::string& s) { return AdminClient::Escape(s); }

// Prints `out` as JSON when asked, else with `table`; returns 0.
int Show(const CommandContext& ctx, const json& out,
         const std::function<void(const json&)>& table) {
  if (*ctx.as_json) {
    std::cout << out.dump(2) << "\n";
  } else {
    table(out);
  }
  return 0;
}

void PrintKeyValues(const std::vector<std::pair<std::string, std::string>>& lines) {
  for (const auto& [k, v] : lines) {
    if (v.empty()) continue;
    std::cout << k << ":" << std::string(k.size() < 18 ? 18 - k.size() : 1, ' ') << v << "\n";
  }
}

void PrintHistory(const json& history) {
  TablePrinter t({"WHEN", "WHO", "ROLE", "ORGANISATION", "STEP", "NOTE"});
  for (const json& h : history) {
    t.AddRow({When(h.value("at", int64_t{0})), Str(h, "by"), Str(h, "role"), Str(h, "organisation"),
              Str(h, "action"), Str(h, "note")});
  }
  std::cout << "\n" << t.Render();
}

std::string Describe(const json& filter) {
  std::string out;
  for (const json& c : filter) {
    out += (out.empty() ? "" : " AND ") + Str(c, "column") + " " + Str(c, "op") + " " +
           Join(c.value("values", json::array()), "|");
  }
  return out.empty() ? "(all rows)" : out;
}

std::string Masking(const json& masking) {
  std::string out;
  for (const json& m : masking) {
    std::string method = Str(m, "method");
    if (method == "partial") method += ":" + Str(m, "keep_first") + ":" + Str(m, "keep_last");
    out += (out.empty() ? "" : ", ") + Str(m, "column") + "=" + method;
  }
  return out.empty() ? "none" : out;
}

void PrintApplication(const json& a) {
  const json& ag = a.value("agreement", json::object());
  const json& ap = a.value("approved", json::object());
  PrintKeyValues(
      {{"application", Str(a, "id")},
       {"entry", Str(a, "entry") + " (version " + Str(a, "entry_version") + ")"},
       {"provider", Str(a, "provider")},
       {"applicant", Str(a, "applicant") + " of " + Str(a, "organisation")},
       {"state", Str(a, "state")},
       {"purpose", Str(a, "purpose")},
       {"scenario", Str(a, "scenario")},
       {"columns asked", Join(a.value("columns", json::array()))},
       {"rows asked", Describe(a.value("filter", json::array()))},
       {"agreement", Str(ag, "agreement") + ", accepted by " + Str(ag, "accepted_by") + " at " +
                         When(ag.value("accepted_at", int64_t{0})) + " from " + Str(ag, "from")},
       {"technical review", Str(a, "technical_result")},
       {"integration task", Str(a, "integration_task")},
       {"approved columns", Join(ap.value("columns", json::array()))},
       {"approved rows", ap.value("columns", json::array()).empty()
                             ? ""
                             : Describe(ap.value("filter", json::array()))},
       {"masking", ap.value("columns", json::array()).empty()
                       ? ""
                       : Masking(ap.value("masking", json::array()))},
       {"refused by", Str(a, "refused_by")},
       {"arbitration asked", Str(a, "arbitration_reason")}});
  PrintHistory(a.value("history", json::array()));
}

void PrintDemand(const json& d) {
  std::string items;
  for (const json& i : d.value("items", json::array())) {
    items += (items.empty() ? "" : "; ") + Str(i, "item") +
             (Str(i, "meaning").empty() ? "" : " (" + Str(i, "meaning") + ")");
  }
  PrintKeyValues(
      {{"demand", Str(d, "id")},
       {"title", Str(d, "title")},
       {"by", Str(d, "requester") + " of " + Str(d, "organisation")},
       {"state", Str(d, "state")},
       {"description", Str(d, "description")},
       {"purpose", Str(d, "purpose")},
       {"method", Str(d, "method")},
       {"frequency", Str(d, "frequency")},
       {"items", items},
       {"(一) comparison", Str(d, "comparison")},
       {"(二) provider", Str(d, "provider")},
       {"(二) scope", Str(d, "agreed_scope")},
       {"(二) method", Str(d, "agreed_method")},
       {"(三) plan", Str(d, "plan")},
       {"(三) confirmed", std::string(d.value("provider_confirmed", false) ? "provider " : "") +
                              (d.value("consumer_confirmed", false) ? "consumer" : "")},
       {"(四) integration", Str(d, "integration")},
       {"(五) entry", Str(d, "entry")},
       {"(六) application", d.value("application_id", 0) ? Str(d, "application_id") : ""},
       {"(六) subscription", Str(d, "subscription")},
       {"closed", Str(d, "closed_reason")}});
  PrintHistory(d.value("history", json::array()));
}

// Options of an approval-like decision (columns, extra row conditions, masking).
struct DecisionOptions {
  bool yes = false;
  bool no = false;
  std::string reason;
  std::string columns;
  std::vector<std::string> filters;
  std::vector<std::string> masks;
};

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size() && !text.empty()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(start, comma - start);
    if (!item.empty()) out.push_back(item);
    start = comma + 1;
  }
  return out;
}

// Adds filter conditions given as text to `body[key]`; false (after saying why) on a bad one.
bool AddFilters(const std::vector<std::string>& filters, json* body, const char* key) {
  json list = json::array();
  for (const std::string& f : filters) {
    std::string column, op;
    std::vector<std::string> values;
    if (!ParseFilter(f, &column, &op, &values)) {
      Fail("filter '" + f + "': expected COLUMN=VALUE (or != < <= > >=) or 'COLUMN in A,B'");
      return false;
    }
    list.push_back({{"column", column}, {"op", op}, {"values", values}});
  }
  if (!list.empty()) (*body)[key] = list;
  return true;
}

void AddDecisionOptions(CLI::App* cmd, DecisionOptions* d, const char* yes, const char* no) {
  auto* y = cmd->add_flag(std::string("--") + yes, d->yes, yes);
  auto* n = cmd->add_flag(std::string("--") + no, d->no, no);
  y->excludes(n);
  cmd->add_option("--reason", d->reason, "why (required to refuse)");
  cmd->add_option("--columns", d->columns, "approve only these columns (comma-separated)");
  cmd->add_option("--filter", d->filters, "add a row condition, e.g. district_code=310104");
  cmd->add_option(
      "--mask", d->masks,
      "mask a column: COLUMN=keep|hash|drop|partial:FIRST:LAST, e.g. id_card=partial:3:4");
}

// The decision's body; false when its options are wrong.
bool DecisionBody(const DecisionOptions& d, const char* verdict, json* body) {
  if (d.yes == d.no) {
    Fail(std::string("give one of the two verdicts (see --help)"), 2);
    return false;
  }
  (*body)[verdict] = d.yes;
  (*body)["reason"] = d.reason;
  if (!d.columns.empty()) (*body)["columns"] = SplitList(d.columns);
  if (!AddFilters(d.filters, body, "filter")) return false;
  if (!d.masks.empty()) (*body)["masking"] = d.masks;
  return true;
}

}  // namespace

bool ParseFilter(const std::string& text, std::string* column, std::string* op,
                 std::vector<std::string>* values) {
  values->clear();
  const size_t in = text.find(" in ");
  if (in != std::string::npos) {
    *column = text.substr(0, in);
    *op = "in";
    *values = SplitList(text.substr(in + 4));
    return !column->empty() && !values->empty();
  }
  for (const char* candidate : {"<=", ">=", "!=", "=", "<", ">"}) {
    const size_t at = text.find(candidate);
    if (at == std::string::npos || at == 0) continue;
    *column = text.substr(0, at);
    *op = candidate;
    values->push_back(text.substr(at + std::string(candidate).size()));
    return true;
  }
  return false;
}

bool ParseWhen(const std::string& text, int64_t now_ms, int64_t* out_ms) {
  if (text.empty()) return false;
  char unit = text.back();
  if (unit == 's' || unit == 'm' || unit == 'h' || unit == 'd') {
    char* end = nullptr;
    const long long n = std::strtoll(text.c_str(), &end, 10);
    if (end == text.c_str() + text.size() - 1 && n >= 0) {
      const int64_t scale = unit == 's'   ? 1000
                            : unit == 'm' ? 60000
                            : unit == 'h' ? 3600000
                                          : 86400000;
      *out_ms = now_ms - n * scale;
      return true;
    }
  }
  std::tm tm{};
  const char* rest = strptime(text.c_str(), "%Y-%m-%d %H:%M:%S", &tm);
  if (rest == nullptr || *rest != '\0') {
    tm = {};
    rest = strptime(text.c_str(), "%Y-%m-%d", &tm);
    if (rest == nullptr || *rest != '\0') return false;
  }
  tm.tm_isdst = -1;
  const std::time_t t = std::mktime(&tm);
  if (t == -1) return false;
  *out_ms = static_cast<int64_t>(t) * 1000;
  return true;
}

void AddGovernanceCommands(CLI::App& app, CommandContext& ctx) {
  // Option values live as long as the program: the actions run after parsing.
  struct Inputs {
    std::string a, b, c, d, e, f, g;
    std::vector<std::string> list1, list2;
    int64_t id = 0;
    int64_t n = 0;
    int64_t seconds = 0;
    bool flag1 = false, flag2 = false, flag3 = false;
    DecisionOptions decision;
  };
  auto in = std::make_shared<Inputs>();
  CommandContext* c = &ctx;
  auto set = [c](CLI::App* cmd, std::function<int(AdminClient&)> fn) {
    cmd->callback([c, fn] { c->action = fn; });
  };

  // --- whoami ---
  set(app.add_subcommand("whoami", "who the token belongs to: user, role, organisation"),
      [c](AdminClient& client) {
        json out;
        if (int rc = Get(client, "/api/v1/whoami", &out)) return rc;
        return Show(*c, out, [](const json& w) {
          PrintKeyValues(
              {{"user", Str(w, "user")},
               {"role", Str(w, "role")},
               {"organisation", Str(w, "organisation")},
               {"token", Str(w, "token_id").empty() ? "the operator token (bootstrap admin)"
                                                    : Str(w, "token_id")},
               {"direct grants", w.value("bootstrap_direct", false)
                                     ? "yes (admin.bootstrap_direct): entries publish "
                                       "and subscriptions grant without review"
                                     : ""}});
        });
      });

  // --- organisations ---
  auto* org = app.add_subcommand("org", "organisations (数据提供/使用/协调/技术管理部门)");
  org->require_subcommand(1);
  set(org->add_subcommand("list", "list organisations"), [c](AdminClient& client) {
    json out;
    if (int rc = Get(client, "/api/v1/organisations", &out)) return rc;
    return Show(*c, out, [](const json& orgs) {
      TablePrinter t({"ORGANISATION", "DESCRIPTION", "FILE ROOTS", "CREATED"});
      for (const json& o : orgs) {
        t.AddRow({Str(o, "name"), Str(o, "description"), Join(o.value("file_roots", json::array())),
                  When(o.value("created_at", int64_t{0}))});
      }
      std::cout << t.Render();
    });
  });
  auto* org_add = org->add_subcommand(
      "add", "create an organisation, or change its description and file roots");
  org_add->add_option("name", in->a, "organisation name")->required();
  org_add->add_option("--description", in->b, "what it is");
  org_add->add_option("--file-root", in->list1,
                      "a directory its file resources may serve (repeat for several)");
  set(org_add, [c, in](AdminClient& client) {
    json out;
    json body = {{"name", in->a}, {"description", in->b}, {"file_roots", in->list1}};
    if (int rc = Post(client, "/api/v1/organisations", body, &out)) return rc;
    if (*c->as_json) return Show(*c, out, nullptr);
    std::cout << "organisation " << in->a << " saved\n";
    return 0;
  });

  // --- users ---
  auto* user = app.add_subcommand("user", "users and their roles");
  user->require_subcommand(1);
  set(user->add_subcommand("list", "list users"), [c](AdminClient& client) {
    json out;
    if (int rc = Get(client, "/api/v1/users", &out)) return rc;
    return Show(*c, out, [](const json& users) {
      TablePrinter t({"USER", "ROLE", "ORGANISATION", "NAME", "DISABLED", "CREATED"});
      for (const json& u : users) {
        t.AddRow({Str(u, "name"), Str(u, "role"), Str(u, "organisation"), Str(u, "display_name"),
                  u.value("disabled", false) ? "yes" : "no",
                  When(u.value("created_at", int64_t{0}))});
      }
      std::cout << t.Render();
    });
  });
  auto* user_add = user->add_subcommand("add", "create a user of an organisation with one role");
  user_add->add_option("name", in->a, "login name")->required();
  user_add->add_option("--org", in->b, "organisation")->required();
  user_add->add_option("--role", in->c, "provider | consumer | coordinator | admin")->required();
  user_add->add_option("--display-name", in->d, "the person's name");
  set(user_add, [c, in](AdminClient& client) {
    json out;
    json body = {
        {"name", in->a}, {"organisation", in->b}, {"role", in->c}, {"display_name", in->d}};
    if (int rc = Post(client, "/api/v1/users", body, &out)) return rc;
    if (*c->as_json) return Show(*c, out, nullptr);
    std::cout << "user " << in->a << " (" << in->c << ", " << in->b
              << ") created; issue a token: dxctl token issue --user " << in->a << " --out FILE\n";
    return 0;
  });
  for (const char* verb : {"disable", "enable"}) {
    auto* cmd = user->add_subcommand(
        verb, std::string(verb) + " a user (a disabled user's tokens are refused)");
    cmd->add_option("name", in->a, "user")->required();
    set(cmd, [c, in, verb](AdminClient& client) {
      json out;
      if (int rc = Post(client, "/api/v1/users/" + Esc(in->a) + "/" + verb, json::object(), &out))
        return rc;
      if (*c->as_json) return Show(*c, out, nullptr);
      std::cout << "user " << in->a << " " << verb << "d\n";
      return 0;
    });
  }

  // --- tokens ---
  auto* token = app.add_subcommand("token", "API tokens (shown once, stored hashed)");
  token->require_subcommand(1);
  auto* token_list = token->add_subcommand("list", "list tokens (yours, a user's, or --all)");
  token_list->add_option("--user", in->a, "whose tokens (an admin may ask for anyone's)");
  token_list->add_flag("--all", in->flag1, "every user's tokens (admin)");
  set(token_list, [c, in](AdminClient& client) {
    json out;
    std::string path = "/api/v1/tokens";
    if (in->flag1)
      path += "?all=1";
    else if (!in->a.empty())
      path += "?user=" + Esc(in->a);
    if (int rc = Get(client, path, &out)) return rc;
    return Show(*c, out, [](const json& tokens) {
      const int64_t now = ToUnixSeconds(SystemClock().Now());
      TablePrinter t({"TOKEN ID", "USER", "LABEL", "STATE", "CREATED", "EXPIRES", "CREATED BY"});
      for (const json& k : tokens) {
        const int64_t expires = k.value("expires_at", int64_t{0});
        std::string state = k.value("revoked_at", int64_t{0}) > 0
                                ? "revoked by " + Str(k, "revoked_by")
                                : (now >= expires ? "expired" : "active");
        t.AddRow({Str(k, "id"), Str(k, "user"), Str(k, "label"), state,
                  When(k.value("created_at", int64_t{0})), When(expires), Str(k, "created_by")});
      }
      std::cout << t.Render();
    });
  });
  auto* token_issue =
      token->add_subcommand("issue", "issue a token (printed once, or written to a 0600 file)");
  token_issue->add_option("--user", in->a,
                          "for whom (default: yourself; an admin may name anyone)");
  token_issue->add_option("--label", in->b, "what it is for, e.g. laptop");
  token_issue->add_option("--days", in->n, "valid for this many days (default 90, at most 366)");
  token_issue->add_option("--seconds", in->seconds, "valid for this many seconds (tests)");
  token_issue->add_option("--out", in->c,
                          "write the token to this new file (mode 0600) instead of printing it");
  set(token_issue, [c, in](AdminClient& client) {
    json body = {{"label", in->b}};
    if (!in->a.empty()) body["user"] = in->a;
    if (in->n > 0) body["expires_in_days"] = in->n;
    if (in->seconds > 0) body["expires_in_s"] = in->seconds;
    json out;
    if (int rc = Post(client, "/api/v1/tokens", body, &out)) return rc;
    const std::string text = Str(out, "token");
    if (!in->c.empty()) {
      Status st = WriteTokenFile(in->c, text);
      if (!st.ok())
        return Fail(st.message() + " (the token " + Str(out, "id") + " was issued: revoke it)");
      out.erase("token");
      out["file"] = in->c;
    }
    if (*c->as_json) return Show(*c, out, nullptr);
    std::cout << "token " << Str(out, "id") << " for " << Str(out, "user") << ", expires "
              << When(out.value("expires_at", int64_t{0})) << "\n";
    if (in->c.empty()) {
      std::cout << text << "\n(shown once: keep it in a file of mode 0600 or in DX_TOKEN)\n";
    } else {
      std::cout << "written to " << in->c << " (mode 0600); use it with --token-file " << in->c
                << "\n";
    }
    return 0;
  });
  auto* token_revoke = token->add_subcommand("revoke", "revoke a token at once");
  token_revoke->add_option("id", in->a, "token id")->required();
  set(token_revoke, [c, in](AdminClient& client) {
    json out;
    if (int rc = Post(client, "/api/v1/tokens/" + Esc(in->a) + "/revoke", json::object(), &out))
      return rc;
    if (*c->as_json) return Show(*c, out, nullptr);
    std::cout << "token " << in->a << " revoked\n";
    return 0;
  });

  // --- catalog entries: lifecycle ---
  auto* entry =
      app.add_subcommand("entry", "one catalog entry: versions, submit, review, publish, return");
  entry->require_subcommand(1);
  auto* entry_show = entry->add_subcommand("show", "the published entry and its versions");
  entry_show->add_option("name", in->a, "entry name")->required();
  set(entry_show, [c, in](AdminClient& client) {
    json out;
    if (int rc = Get(client, "/api/v1/catalog/" + Esc(in->a), &out)) return rc;
    return Show(*c, out, [](const json& j) {
      const json& p = j["published"];
      if (p.is_object()) {
        PrintKeyValues({{"entry", Str(p, "name")},
                        {"provider", Str(p, "provider")},
                        {"share type", Str(p, "share_type")},
                        {"topic", Str(p, "topic")},
                        {"summary", Str(p, "summary")},
                        {"security level", Str(p, "security_level")},
                        {"update frequency", Str(p, "update_frequency")},
                        {"provision", Join(p.value("provision", json::array()))},
                        {"stages", Join(p.value("stages", json::array()))},
                        {"time range", Str(p, "time_range")}});
        TablePrinter f(
            {"ITEM", "COLUMN", "TYPE", "NOT NULL", "KEY", "MEANING", "FORMAT", "EXAMPLE"});
        for (const json& x : p.value("fields", json::array())) {
          f.AddRow({Str(x, "item_name"), Str(x, "column"), Str(x, "type"),
                    x.value("not_null", false) ? "√" : "", x.value("primary_key", false) ? "√" : "",
                    Str(x, "meaning"), Str(x, "format"), Str(x, "example")});
        }
        std::cout << "\n" << f.Render();
      } else {
        std::cout << "entry:             " << Str(j, "name") << " (not published)\n";
      }
      TablePrinter t({"VERSION", "STATUS", "AUTHOR", "UPDATED", "REASONS"});
      for (const json& v : j.value("versions", json::array())) {
        t.AddRow({Str(v, "version"), Str(v, "status"), Str(v, "author"),
                  When(v.value("updated_at", int64_t{0})),
                  Join(v.value("reasons", json::array()), "; ")});
      }
      std::cout << "\n" << t.Render();
    });
  });
  auto entry_step = [&](const char* verb, const char* help, bool reasons) {
    auto* cmd = entry->add_subcommand(verb, help);
    cmd->add_option("name", in->a, "entry name")->required();
    if (reasons) cmd->add_option("--reason", in->list1, "what must change (repeat for several)");
    return cmd;
  };
  auto post_entry = [c, in](const std::string& verb, json body) {
    return [c, in, verb, body](AdminClient& client) {
      json out;
      json b = body;
      if (!in->list1.empty()) b["reasons"] = in->list1;
      if (verb == "review") b["pass"] = in->flag1;
      if (int rc = Post(client, "/api/v1/catalog/" + Esc(in->a) + "/" + verb, b, &out)) return rc;
      if (*c->as_json) return Show(*c, out, nullptr);
      std::cout << "catalog entry " << in->a << " version " << Str(out, "version") << " is now "
                << Str(out, "status") << "\n";
      return 0;
    };
  };
  set(entry_step("submit", "submit the entry's draft for the technical review", false),
      post_entry("submit", json::object()));
  auto* review = entry_step(
      "review", "technical review (数据技术管理部门): --pass, or --return with reasons", true);
  auto* pass = review->add_flag("--pass", in->flag1, "it is complete, consistent and well named");
  review->add_flag("--return", in->flag2, "return it to the provider with --reason")
      ->excludes(pass);
  set(review, [post_entry, in](AdminClient& client) {
    if (in->flag1 == in->flag2) return Fail("give --pass or --return", 2);
    return post_entry("review", json::object())(client);
  });
  set(entry_step("publish", "publish a reviewed entry (数据管理协调部门)", false),
      post_entry("publish", json::object()));
  set(entry_step("return",
                 "return a reviewed entry to its provider with reasons (数据管理协调部门)", true),
      post_entry("return", json::object()));

  // --- applications (附件四) ---
  set(app.add_subcommand("agreement",
                         "the confidentiality agreement (附件一) an application accepts"),
      [c](AdminClient& client) {
        json out;
        if (int rc = Get(client, "/api/v1/agreement", &out)) return rc;
        return Show(*c, out, [](const json& a) {
          std::cout << Str(a, "agreement") << "\n";
          for (const json& o : a.value("obligations", json::array()))
            std::cout << "  - " << o.get<std::string>() << "\n";
        });
      });
  auto* apps = app.add_subcommand("app", "applications for authorised resources (附件四)");
  apps->require_subcommand(1);
  auto* app_list = apps->add_subcommand("list", "the applications you may see");
  app_list->add_option("--state", in->a, "only in this state");
  set(app_list, [c, in](AdminClient& client) {
    json out;
    if (int rc = Get(client, "/api/v1/applications" + (in->a.empty() ? "" : "?state=" + Esc(in->a)),
                     &out))
      return rc;
    return Show(*c, out, [](const json& list) {
      TablePrinter t({"ID", "ENTRY", "APPLICANT", "ORGANISATION", "STATE", "PURPOSE", "UPDATED"});
      for (const json& a : list) {
        t.AddRow({Str(a, "id"), Str(a, "entry"), Str(a, "applicant"), Str(a, "organisation"),
                  Str(a, "state"), Str(a, "purpose"), When(a.value("updated_at", int64_t{0}))});
      }
      std::cout << t.Render();
    });
  });
  auto* app_show = apps->add_subcommand("show", "one application with its decisions");
  app_show->add_option("id", in->id, "application id")->required();
  set(app_show, [c, in](AdminClient& client) {
    json out;
    if (int rc = Get(client, "/api/v1/applications/" + std::to_string(in->id), &out)) return rc;
    return Show(*c, out, PrintApplication);
  });
  auto* app_create = apps->add_subcommand("create", "apply for an authorised resource");
  app_create->add_option("--entry", in->a, "catalog entry")->required();
  app_create->add_option("--purpose", in->b, "用途: what the data is for")->required();
  app_create->add_option("--scenario", in->c, "应用场景: where it is used")->required();
  app_create->add_option("--columns", in->d,
                         "the columns wanted (comma-separated; include the key)");
  app_create->add_option("--filter", in->list1,
                         "the rows wanted, e.g. district_code=310104 (repeat)");
  app_create->add_flag("--accept-agreement", in->flag1,
                       "accept the confidentiality agreement (附件一; dxctl agreement shows it)");
  set(app_create, [c, in](AdminClient& client) {
    json body = {{"entry", in->a},
                 {"purpose", in->b},
                 {"scenario", in->c},
                 {"columns", SplitList(in->d)},
                 {"accept_agreement", in->flag1}};
    if (!AddFilters(in->list1, &body, "filter")) return 2;
    json out;
    if (int rc = Post(client, "/api/v1/applications", body, &out)) return rc;
    if (*c->as_json) return Show(*c, out, nullptr);
    std::cout << "application " << Str(out, "id") << " for " << in->a << " submitted to "
              << Str(out, "provider") << "\n";
    return 0;
  });
  auto decision = [&](const char* verb, const char* help, const char* yes, const char* no,
                      const char* verdict) {
    auto* cmd = apps->add_subcommand(verb, help);
    cmd->add_option("id", in->id, "application id")->required();
    AddDecisionOptions(cmd, &in->decision, yes, no);
    set(cmd, [c, in, verb, verdict](AdminClient& client) {
      json body;
      if (!DecisionBody(in->decision, verdict, &body)) return 2;
      json out;
      if (int rc = Post(client, "/api/v1/applications/" + std::to_string(in->id) + "/" + verb, body,
                        &out))
        return rc;
      if (*c->as_json) return Show(*c, out, nullptr);
      std::cout << "application " << in->id << " is now " << Str(out, "state") << "\n";
      return 0;
    });
  };
  decision("provider-decision", "the provider approves (may narrow and mask) or refuses", "approve",
           "refuse", "approve");
  decision("coordinator-decision", "the coordinator approves (may narrow and mask) or refuses",
           "approve", "refuse", "approve");
  decision("arbitration-decision",
           "the arbiter (a coordinator who did not refuse) passes or fails it", "pass", "fail",
           "pass");
  auto* tech = apps->add_subcommand("tech-review", "technical review: does the data exist?");
  tech->add_option("id", in->id, "application id")->required();
  tech->add_option("--result", in->a, "exists | partly_exists | missing")->required();
  tech->add_option("--note", in->b, "for partly_exists or missing: the integration task");
  auto simple_post = [c, in](const std::string& verb, std::function<json()> body) {
    return [c, in, verb, body](AdminClient& client) {
      json out;
      if (int rc = Post(client, "/api/v1/applications/" + std::to_string(in->id) + "/" + verb,
                        body(), &out))
        return rc;
      if (*c->as_json) return Show(*c, out, nullptr);
      std::cout << "application " << in->id << " is now " << Str(out, "state") << "\n";
      return 0;
    };
  };
  set(tech, simple_post("technical-review", [in] {
        return json{{"result", in->a}, {"note", in->b}};
      }));
  auto* integrated = apps->add_subcommand("integrated", "the integration task is done");
  integrated->add_option("id", in->id, "application id")->required();
  integrated->add_option("--note", in->b, "what was integrated");
  set(integrated, simple_post("integration-done", [in] { return json{{"note", in->b}}; }));
  auto* arbitrate =
      apps->add_subcommand("arbitrate", "ask for arbitration of a refusal (the applicant)");
  arbitrate->add_option("id", in->id, "application id")->required();
  arbitrate->add_option("--reason", in->b, "the grounds")->required();
  set(arbitrate, simple_post("arbitration", [in] { return json{{"reason", in->b}}; }));
  auto* withdraw = apps->add_subcommand("withdraw", "withdraw an application (the applicant)");
  withdraw->add_option("id", in->id, "application id")->required();
  withdraw->add_option("--reason", in->b, "why");
  set(withdraw, simple_post("withdraw", [in] { return json{{"reason", in->b}}; }));

  // --- subscriptions: create through the API, suspend, terminate, resume ---
  auto* subscribe =
      app.add_subcommand("subscribe", "create or change a subscription (within its approval)");
  subscribe->add_option("name", in->a, "subscription name")->required();
  subscribe->add_option("--agent", in->b, "your front-end machine")->required();
  subscribe->add_option("--entry", in->c, "catalog entry")->required();
  subscribe->add_option("--application", in->n, "the approved application (authorised entries)");
  subscribe->add_option("--columns", in->d, "columns (comma-separated)");
  subscribe->add_option("--filter", in->list1, "row condition (repeat)");
  subscribe->add_option("--target-table", in->e, "table at the agent");
  subscribe->add_option("--target-path", in->f, "folder under the agent's shared root (files)");
  subscribe->add_option("--schedule", in->g, "manual (default), daily 02:30, realtime 5s, ...");
  set(subscribe, [c, in](AdminClient& client) {
    json body = {{"kind", "Subscription"}, {"name", in->a}, {"agent", in->b}, {"entry", in->c}};
    if (in->n > 0) body["application"] = in->n;
    if (!in->d.empty()) body["columns"] = SplitList(in->d);
    json conditions;
    if (!AddFilters(in->list1, &conditions, "filter")) return 2;
    if (conditions.contains("filter")) {
      json filter = json::array();
      for (const json& cond : conditions["filter"]) {
        filter.push_back(
            {{"column", cond["column"]}, {"op", cond["op"]}, {"values", cond["values"]}});
      }
      body["filter"] = filter;
    }
    if (!in->e.empty()) body["target_table"] = in->e;
    if (!in->f.empty()) body["target_path"] = in->f;
    if (!in->g.empty()) body["schedule"] = in->g;
    json out;
    if (int rc = Post(client, "/api/v1/subscriptions", body, &out)) return rc;
    return Show(*c, out, [](const json& outcomes) {
      TablePrinter t({"KIND", "NAME", "ACTION", "NOTE"});
      for (const json& o : outcomes)
        t.AddRow({Str(o, "kind"), Str(o, "name"), Str(o, "action"), Str(o, "note")});
      std::cout << t.Render();
    });
  });
  for (const char* verb : {"suspend", "terminate", "resume"}) {
    auto* cmd = app.add_subcommand(
        verb, std::string(verb) +
                  " a subscription (附件一 第九条(三)); the reason is recorded and shown");
    cmd->add_option("subscription", in->a, "subscription name")->required();
    cmd->add_option("--reason", in->b, "why")->required();
    set(cmd, [c, in, verb](AdminClient& client) {
      json out;
      if (int rc = Post(client, "/api/v1/subscriptions/" + Esc(in->a) + "/" + verb,
                        {{"reason", in->b}}, &out))
        return rc;
      if (*c->as_json) return Show(*c, out, nullptr);
      std::cout << "subscription " << in->a << " is now " << Str(out, "status") << "\n";
      return 0;
    });
  }

  // --- removing a subscription (admin): terminated, and its deletion confirmed by its agent ---
  auto* subscription = app.add_subcommand("subscription", "remove one subscription (admin)");
  subscription->require_subcommand(1);
  subscription->footer(
      "A subscription can be removed once it is terminated and its agent confirmed that it "
      "deleted the subscription's rows and files (dxctl describe shows it), or when it never "
      "ran. Its schedule, position and file records go; its run history and the audit log "
      "stay.\nExit codes: 0 removed; 2 no such subscription; 4 refused (not an admin, not "
      "terminated, deletion not confirmed yet, or a run under way).");
  auto* remove = subscription->add_subcommand("remove", "remove a terminated subscription");
  remove->add_option("name", in->a, "subscription name")->required();
  set(remove, [c, in](AdminClient& client) {
    auto reply = client.Delete("/api/v1/subscriptions/" + Esc(in->a));
    json out;
    int rc = Interpret(reply, &out);
    if (rc == 1 && reply.ok() && reply->status == 409) rc = 4;  // refused: see the message
    if (rc != 0) return rc;
    if (*c->as_json) return Show(*c, out, nullptr);
    std::cout << "subscription " << in->a << " removed\n";
    return 0;
  });

  // --- demands (第二十六条, 附件五) ---
  auto* demand = app.add_subcommand("demand", "demands for data not in the catalog (附件五)");
  demand->require_subcommand(1);
  set(demand->add_subcommand("list", "the demands you may see"), [c](AdminClient& client) {
    json out;
    if (int rc = Get(client, "/api/v1/demands", &out)) return rc;
    return Show(*c, out, [](const json& list) {
      TablePrinter t({"ID", "TITLE", "ORGANISATION", "STATE", "PROVIDER", "ENTRY", "UPDATED"});
      for (const json& d : list) {
        t.AddRow({Str(d, "id"), Str(d, "title"), Str(d, "organisation"), Str(d, "state"),
                  Str(d, "provider"), Str(d, "entry"), When(d.value("updated_at", int64_t{0}))});
      }
      std::cout << t.Render();
    });
  });
  auto* demand_show = demand->add_subcommand("show", "one demand with its steps");
  demand_show->add_option("id", in->id, "demand id")->required();
  set(demand_show, [c, in](AdminClient& client) {
    json out;
    if (int rc = Get(client, "/api/v1/demands/" + std::to_string(in->id), &out)) return rc;
    return Show(*c, out, PrintDemand);
  });
  auto* demand_file = demand->add_subcommand("file", "file a demand (数据共享需求表), step 一");
  demand_file->add_option("--title", in->a, "the data wanted")->required();
  demand_file->add_option("--description", in->b, "申请描述")->required();
  demand_file->add_option("--purpose", in->c, "用途")->required();
  demand_file->add_option("--method", in->d, "table | file | interface")->required();
  demand_file->add_option("--frequency", in->e, "数据接入频率, e.g. daily");
  demand_file->add_option("--time-range", in->f, "时间范围");
  demand_file->add_option("--scope", in->g, "约束范围");
  demand_file
      ->add_option("--item", in->list1, "a data item: NAME[:MEANING[:FORMAT[:EXAMPLE]]] (repeat)")
      ->required();
  set(demand_file, [c, in](AdminClient& client) {
    json items = json::array();
    for (const std::string& spec : in->list1) {
      std::vector<std::string> parts;
      size_t start = 0;
      while (true) {
        size_t colon = spec.find(':', start);
        parts.push_back(
            spec.substr(start, colon == std::string::npos ? std::string::npos : colon - start));
        if (colon == std::string::npos) break;
        start = colon + 1;
      }
      parts.resize(4);
      items.push_back(
          {{"item", parts[0]}, {"meaning", parts[1]}, {"format", parts[2]}, {"example", parts[3]}});
    }
    json body = {{"title", in->a},  {"description", in->b}, {"purpose", in->c},
                 {"method", in->d}, {"frequency", in->e},   {"time_range", in->f},
                 {"scope", in->g},  {"items", items}};
    json out;
    if (int rc = Post(client, "/api/v1/demands", body, &out)) return rc;
    if (*c->as_json) return Show(*c, out, nullptr);
    std::cout << "demand " << Str(out, "id")
              << " filed; next: the technical admin compares the fields (dxctl demand step "
              << Str(out, "id") << " compare --note ...)\n";
    return 0;
  });
  auto* demand_step = demand->add_subcommand(
      "step",
      "move a demand on: compare, negotiate, plan, confirm, integrate, catalogue, apply, close");
  demand_step->add_option("id", in->id, "demand id")->required();
  demand_step->add_option("step", in->a, "the step")->required();
  demand_step->add_option("--note", in->b, "what was done or decided");
  demand_step->add_option("--provider", in->c, "negotiate: the providing organisation");
  demand_step->add_option("--scope", in->d, "negotiate: the agreed scope");
  demand_step->add_option("--method", in->e, "negotiate: the agreed method");
  demand_step->add_option("--entry", in->f, "catalogue: the catalog entry made");
  demand_step->add_option("--application", in->n, "apply: the application made");
  demand_step->add_option("--subscription", in->g,
                          "apply: the subscription made (unconditional entry)");
  set(demand_step, [c, in](AdminClient& client) {
    json body = {{"step", in->a},        {"note", in->b},        {"provider", in->c},
                 {"scope", in->d},       {"method", in->e},      {"entry", in->f},
                 {"application", in->n}, {"subscription", in->g}};
    json out;
    if (int rc = Post(client, "/api/v1/demands/" + std::to_string(in->id) + "/steps", body, &out))
      return rc;
    if (*c->as_json) return Show(*c, out, nullptr);
    std::cout << "demand " << in->id << " is now " << Str(out, "state") << "\n";
    return 0;
  });

  // --- feedback (第九条) ---
  auto* feedback = app.add_subcommand("feedback", "data errors reported to providers (第九条)");
  feedback->require_subcommand(1);
  auto* fb_list = feedback->add_subcommand("list", "reports you may see (a provider: its queue)");
  fb_list->add_option("--state", in->a, "open | corrected | rejected");
  set(fb_list, [c, in](AdminClient& client) {
    json out;
    if (int rc =
            Get(client, "/api/v1/feedback" + (in->a.empty() ? "" : "?state=" + Esc(in->a)), &out))
      return rc;
    return Show(*c, out, [](const json& list) {
      TablePrinter t({"ID", "ENTRY", "FROM", "STATE", "REPORTED", "DESCRIPTION", "RESOLUTION"});
      for (const json& f : list) {
        t.AddRow({Str(f, "id"), Str(f, "entry"),
                  Str(f, "reporter") + " (" + Str(f, "organisation") + ")", Str(f, "state"),
                  When(f.value("created_at", int64_t{0})), Str(f, "description"),
                  Str(f, "resolution")});
      }
      std::cout << t.Render();
    });
  });
  auto* fb_report = feedback->add_subcommand("report", "report an error in data you received");
  fb_report->add_option("--entry", in->a, "catalog entry")->required();
  fb_report->add_option("--subscription", in->b, "the subscription it came through");
  fb_report->add_option("--text", in->c, "what is wrong, in which rows")->required();
  set(fb_report, [c, in](AdminClient& client) {
    json out;
    json body = {{"entry", in->a}, {"subscription", in->b}, {"description", in->c}};
    if (int rc = Post(client, "/api/v1/feedback", body, &out)) return rc;
    if (*c->as_json) return Show(*c, out, nullptr);
    std::cout << "error report " << Str(out, "id") << " sent to " << Str(out, "provider") << "\n";
    return 0;
  });
  auto* fb_resolve =
      feedback->add_subcommand("resolve", "mark a report corrected or rejected (the provider)");
  fb_resolve->add_option("id", in->id, "report id")->required();
  auto* corrected = fb_resolve->add_flag("--corrected", in->flag1, "the data was corrected");
  fb_resolve->add_flag("--rejected", in->flag2, "the data is right")->excludes(corrected);
  fb_resolve->add_option("--note", in->b, "what was done, or why it is rejected")->required();
  set(fb_resolve, [c, in](AdminClient& client) {
    if (in->flag1 == in->flag2) return Fail("give --corrected or --rejected", 2);
    json out;
    json body = {{"state", in->flag1 ? "corrected" : "rejected"}, {"note", in->b}};
    if (int rc =
            Post(client, "/api/v1/feedback/" + std::to_string(in->id) + "/resolve", body, &out))
      return rc;
    if (*c->as_json) return Show(*c, out, nullptr);
    std::cout << "error report " << in->id << " " << Str(out, "state") << "\n";
    return 0;
  });

  // --- usage, lists, notices ---
  set(app.add_subcommand("usage",
                         "what each consumer received of your resources (附件一 第三条(七))"),
      [c](AdminClient& client) {
        json out;
        if (int rc = Get(client, "/api/v1/usage", &out)) return rc;
        return Show(*c, out, [](const json& rows) {
          TablePrinter t({"ENTRY", "CONSUMER", "SUBSCRIPTIONS", "ROWS", "FILES", "LAST DELIVERY"});
          for (const json& u : rows) {
            const int64_t last = u.value("last_delivery_ms", int64_t{0});
            t.AddRow({Str(u, "entry"), Str(u, "consumer"),
                      Join(u.value("subscriptions", json::array())), Str(u, "rows"),
                      Str(u, "files"), When(last / 1000)});
          }
          std::cout << t.Render();
        });
      });
  auto* lists =
      app.add_subcommand("lists", "the demand, responsibility and negative lists per organisation");
  lists->add_option("--org", in->a, "one organisation");
  set(lists, [c, in](AdminClient& client) {
    json out;
    if (int rc = Get(client, "/api/v1/lists" + (in->a.empty() ? "" : "?organisation=" + Esc(in->a)),
                     &out))
      return rc;
    return Show(*c, out, [](const json& orgs) {
      for (const json& o : orgs) {
        std::cout << "== " << Str(o, "organisation") << "\n";
        TablePrinter t({"LIST", "KIND", "WHAT", "STATE"});
        for (const json& d : o["demand"])
          t.AddRow({"demand 需求清单", Str(d, "kind") + " " + Str(d, "id"), Str(d, "what"),
                    Str(d, "state")});
        for (const json& r : o["responsibility"]) {
          std::string state = Str(r, "state");
          if (state.empty())
            state = Str(r, "share_type") + ", " + Str(r, "update_frequency") + ", open reports " +
                    Str(r, "open_error_reports");
          t.AddRow({"responsibility 责任清单",
                    Str(r, "kind") + (Str(r, "id").empty() ? "" : " " + Str(r, "id")),
                    Str(r, "what"), state});
        }
        for (const json& n : o["negative"])
          t.AddRow({"negative 负面清单", "resource", Str(n, "entry"), "not shared"});
        std::cout << t.Render() << "\n";
      }
    });
  });
  set(app.add_subcommand("notices",
                         "notices to your organisation (e.g. a change that breaks a subscription)"),
      [c](AdminClient& client) {
        json out;
        if (int rc = Get(client, "/api/v1/notices", &out)) return rc;
        return Show(*c, out, [](const json& list) {
          TablePrinter t({"ID", "WHEN", "KIND", "TO", "SUBSCRIPTION", "TEXT"});
          for (const json& n : list) {
            t.AddRow({Str(n, "id"), When(n.value("at", int64_t{0})), Str(n, "kind"),
                      Str(n, "organisation").empty() ? "technical admins" : Str(n, "organisation"),
                      Str(n, "subscription"), Str(n, "text")});
          }
          std::cout << t.Render();
        });
      });

  // --- the audit log ---
  auto* audit = app.add_subcommand("audit", "the audit log, filtered by who, what and when");
  audit->add_option("--who", in->a, "the actor (user name, agent, scheduler)");
  audit->add_option("--what", in->b,
                    "actions starting with this, e.g. application. or catalog.publish");
  audit->add_option("--target", in->c, "targets containing this");
  audit->add_option("--org", in->d, "the actor's organisation");
  audit->add_option("--since", in->e, "from: 2024-05-01, '2024-05-01 08:00:00' or 2h (ago)");
  audit->add_option("--until", in->f, "before: same forms");
  audit->add_option("-n,--limit", in->n, "the newest this many (default 100)");
  set(audit, [c, in](AdminClient& client) {
    const int64_t now_ms = ToUnixMillis(SystemClock().Now());
    std::string path = "/api/v1/audit?limit=" + std::to_string(in->n > 0 ? in->n : 100);
    if (!in->a.empty()) path += "&actor=" + Esc(in->a);
    if (!in->b.empty()) path += "&action=" + Esc(in->b);
    if (!in->c.empty()) path += "&target=" + Esc(in->c);
    if (!in->d.empty()) path += "&organisation=" + Esc(in->d);
    for (auto [text, key] : {std::pair{in->e, "since"}, std::pair{in->f, "until"}}) {
      if (text.empty()) continue;
      int64_t ms = 0;
      if (!ParseWhen(text, now_ms, &ms)) {
        return Fail("--" + std::string(key) + " '" + text +
                        "': expected YYYY-MM-DD, 'YYYY-MM-DD HH:MM:SS' or 90m/2h/3d",
                    2);
      }
      path += std::string("&") + key + "=" + std::to_string(ms);
    }
    json out;
    if (int rc = Get(client, path, &out)) return rc;
    return Show(*c, out, [](const json& records) {
      TablePrinter t(
          {"ID", "WHEN", "WHO", "ROLE", "ORGANISATION", "WHAT", "TARGET", "FROM", "OUTCOME"});
      for (const json& r : records) {
        t.AddRow({Str(r, "id"), When(r.value("at_ms", int64_t{0}) / 1000), Str(r, "actor"),
                  Str(r, "role"), Str(r, "organisation"), Str(r, "action"), Str(r, "target"),
                  Str(r, "from"), Str(r, "result")});
      }
      std::cout << t.Render();
    });
  });
}

}  // namespace dx::ctl
