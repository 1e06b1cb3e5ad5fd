// The catalog's pure rules as tables: the entry validator (every problem, with its field),
// the lifecycle transitions of entries, applications and demands, breaking changes, and the
// approval scope (columns, rows, masking).
#include <doctest/doctest.h>

#include <functional>

#include "scheduler/catalog/approval_scope.h"
#include "scheduler/catalog/catalog_workflow.h"
#include "scheduler/catalog/demand_workflow.h"
#include "scheduler/catalog/entry_validator.h"
#include "scheduler/catalog/sharing_workflow.h"

namespace dx::scheduler {
namespace {

Field MakeField(const char* column, const char* type, bool key = false, bool not_null = false) {
  Field f;
  f.column = ParseColumnType(type).value();
  f.column.name = column;
  f.column.primary_key = key;
  f.column.not_null = not_null || key;
  f.item_name = column;
  f.meaning = std::string("含义 ") + column;
  return f;
}

CatalogEntry Complete() {
  CatalogEntry e;
  e.name = "市教委基础教育处-学生基本信息";
  e.mounted = "市教委基础教育处-学生基本信息表";
  e.provider = "市教委基础教育处";
  e.summary = "全市在籍学生";
  e.data_format = "结构化数据库表";
  e.share_type = "authorised";
  e.security_level = "三级";
  e.update_frequency = "每天";
  e.provision = {"table"};
  e.time_range = "2015年至今";
  e.topic = "student";
  e.stages = {"primary", "middle"};
  e.source = "src";
  e.source_table = "student";
  e.updatetime_column = "updatetime";
  e.fields = {MakeField("id", "bigint", true), MakeField("name", "varchar(30)"),
              MakeField("id_card", "char(18)"), MakeField("district_code", "varchar(6)"),
              MakeField("updatetime", "datetime", false, true)};
  return e;
}

std::string Fields(const std::vector<Problem>& problems) {
  std::string out;
  for (const Problem& p : problems)
    out += (out.empty() ? "" : " ") + p.field + (p.blocking ? "!" : "");
  return out;
}

TEST_CASE("the entry validator lists every problem with its field") {
  CHECK(ValidateEntry(Complete()).empty());
  struct Case {
    const char* what;
    std::function<void(CatalogEntry&)> change;
    const char* problems;  // fields, '!' when blocking
  };
  const Case cases[] = {
      {"naming rule", [](CatalogEntry& e) { e.name = "学生基本信息"; }, "name!"},
      {"dash at the end", [](CatalogEntry& e) { e.name = "市教委-"; }, "name!"},
      {"mounted name", [](CatalogEntry& e) { e.mounted = "学生表"; }, "mounted"},
      {"completeness",
       [](CatalogEntry& e) {
         e.summary.clear();
         e.security_level.clear();
         e.time_range.clear();
         e.data_format.clear();
       },
       "summary data_format security_level time_range"},
      {"unknown share type", [](CatalogEntry& e) { e.share_type = "public"; }, "share_type!"},
      {"unknown topic", [](CatalogEntry& e) { e.topic = "school"; }, "topic!"},
      {"unknown stage",
       [](CatalogEntry& e) {
         e.stages = {"primary", "kindergarten"};
       },
       "stages[1]"},
      {"no stages", [](CatalogEntry& e) { e.stages.clear(); }, "stages"},
      {"frequency", [](CatalogEntry& e) { e.update_frequency = "sometimes"; }, "update_frequency"},
      {"custom frequency", [](CatalogEntry& e) { e.update_frequency = "custom:每年9月"; }, ""},
      {"provision", [](CatalogEntry& e) { e.provision = {"fax"}; }, "provision[0] provision"},
      {"no primary key", [](CatalogEntry& e) { e.fields[0].column.primary_key = false; },
       "fields!"},
      {"two primary keys", [](CatalogEntry& e) { e.fields[2].column.primary_key = true; },
       "fields"},
      {"no update-time field", [](CatalogEntry& e) { e.updatetime_column.clear(); },
       "updatetime_column!"},
      {"update time not a field", [](CatalogEntry& e) { e.updatetime_column = "ut"; },
       "updatetime_column!"},
      {"update time not datetime", [](CatalogEntry& e) { e.updatetime_column = "name"; },
       "updatetime_column!"},
      {"nullable update time", [](CatalogEntry& e) { e.fields[4].column.not_null = false; },
       "updatetime_column!"},
      {"bad column name", [](CatalogEntry& e) { e.fields[1].column.name = "na me"; },
       "fields[1].column!"},
      {"duplicate column", [](CatalogEntry& e) { e.fields[2].column.name = "name"; },
       "fields[2].column!"},
      {"missing meanings",
       [](CatalogEntry& e) {
         e.fields[1].meaning.clear();
         e.fields[3].item_name.clear();
       },
       "fields[1].meaning fields[3].item"},
      {"no fields", [](CatalogEntry& e) { e.fields.clear(); }, "fields! updatetime_column!"},
      {"everything at once",
       [](CatalogEntry& e) {
         e.name = "x";
         e.summary.clear();
         e.fields[0].column.primary_key = false;
         e.updatetime_column = "name";
       },
       "name! summary fields! updatetime_column!"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    CatalogEntry e = Complete();
    c.change(e);
    CHECK(Fields(ValidateEntry(e)) == c.problems);
  }
  CatalogEntry file = Complete();
  file.kind = "file";
  file.provision = {"file"};
  file.directory = "relative/dir";
  CHECK(Fields(ValidateEntry(file)) == "directory!");
  CHECK(CanonicalStage("高中") == "high");
  CHECK(CanonicalStage("high") == "high");
  CHECK(CanonicalProvision("接口") == "interface");
}

TEST_CASE("catalog lifecycle transitions") {
  struct Case {
    CatalogOp op;
    const char* from;
    const char* to;  // "" : refused
  };
  const Case cases[] = {
      {CatalogOp::kSaveDraft, "", "draft"},
      {CatalogOp::kSaveDraft, "draft", "draft"},
      {CatalogOp::kSaveDraft, "returned", "draft"},
      {CatalogOp::kSaveDraft, "submitted", ""},
      {CatalogOp::kSaveDraft, "reviewed", ""},
      {CatalogOp::kSubmit, "draft", "submitted"},
      {CatalogOp::kSubmit, "returned", "submitted"},
      {CatalogOp::kSubmit, "submitted", ""},
      {CatalogOp::kPass, "submitted", "reviewed"},
      {CatalogOp::kPass, "draft", ""},
      {CatalogOp::kReturnByReviewer, "submitted", "returned"},
      {CatalogOp::kPublish, "reviewed", "published"},
      {CatalogOp::kPublish, "submitted", ""},
      {CatalogOp::kPublish, "draft", ""},
      {CatalogOp::kReturnByCoordinator, "reviewed", "returned"},
      {CatalogOp::kReturnByCoordinator, "submitted", ""},
  };
  for (const Case& c : cases) {
    CAPTURE(c.from);
    CAPTURE(c.to);
    auto next = NextCatalogStatus(c.op, c.from);
    CHECK(next.ok() == (*c.to != '\0'));
    if (next.ok()) CHECK(next.value() == c.to);
    if (!next.ok()) CHECK(next.status().code() == StatusCode::kFailedPrecondition);
  }
}

TEST_CASE("application transitions, arbitration resuming where the refusal was") {
  struct Case {
    ApplicationOp op;
    const char* from;
    const char* refused_step;
    const char* to;
  };
  const Case cases[] = {
      {ApplicationOp::kProviderApprove, "submitted", "", "provider_approved"},
      {ApplicationOp::kProviderRefuse, "submitted", "", "refused"},
      {ApplicationOp::kProviderApprove, "reviewed", "", ""},
      {ApplicationOp::kFoundExisting, "provider_approved", "", "reviewed"},
      {ApplicationOp::kFoundPartly, "provider_approved", "", "integrating"},
      {ApplicationOp::kFoundMissing, "provider_approved", "", "integrating"},
      {ApplicationOp::kFoundExisting, "submitted", "", ""},
      {ApplicationOp::kIntegrated, "integrating", "", "reviewed"},
      {ApplicationOp::kCoordinatorApprove, "reviewed", "", "approved"},
      {ApplicationOp::kCoordinatorApprove, "integrating", "", ""},
      {ApplicationOp::kCoordinatorApprove, "provider_approved", "", ""},
      {ApplicationOp::kCoordinatorRefuse, "reviewed", "", "refused"},
      {ApplicationOp::kRequestArbitration, "refused", "provider", "arbitration"},
      {ApplicationOp::kRequestArbitration, "approved", "", ""},
      {ApplicationOp::kArbitrationPass, "arbitration", "provider", "provider_approved"},
      {ApplicationOp::kArbitrationPass, "arbitration", "coordinator", "approved"},
      {ApplicationOp::kArbitrationFail, "arbitration", "provider", "closed"},
      {ApplicationOp::kArbitrationPass, "refused", "provider", ""},
      {ApplicationOp::kWithdraw, "submitted", "", "withdrawn"},
      {ApplicationOp::kWithdraw, "approved", "", ""},
      {ApplicationOp::kWithdraw, "closed", "", ""},
  };
  for (const Case& c : cases) {
    CAPTURE(c.from);
    CAPTURE(c.to);
    auto next = NextApplicationState(c.op, c.from, c.refused_step);
    CHECK(next.ok() == (*c.to != '\0'));
    if (next.ok()) CHECK(next.value() == c.to);
  }
}

TEST_CASE("demand steps in the order of 第二十六条, each by its party") {
  struct Case {
    const char* step;
    const char* from;
    const char* to;  // "" : refused
    Action action;
  };
  const Case cases[] = {
      {"compare", "filed", "compared", Action::kDemandCompare},
      {"negotiate", "compared", "negotiated", Action::kDemandNegotiate},
      {"plan", "negotiated", "planned", Action::kDemandPlan},
      {"confirm", "planned", "confirmed", Action::kDemandConfirm},
      {"integrate", "confirmed", "integrated", Action::kDemandIntegrate},
      {"catalogue", "integrated", "catalogued", Action::kDemandCatalogue},
      {"apply", "catalogued", "applied", Action::kDemandApply},
      {"close", "planned", "closed", Action::kDemandClose},
      {"negotiate", "filed", "", Action::kDemandNegotiate},
      {"apply", "integrated", "", Action::kDemandApply},
      {"close", "applied", "", Action::kDemandClose},
      {"close", "closed", "", Action::kDemandClose},
      {"publish", "filed", "", Action::kDemandClose},
  };
  for (const Case& c : cases) {
    CAPTURE(c.step);
    CAPTURE(c.from);
    auto rule = DemandStep(c.step, c.from);
    CHECK(rule.ok() == (*c.to != '\0'));
    if (rule.ok()) {
      CHECK(rule->to == c.to);
      CHECK(rule->action == c.action);
    }
  }
}

TEST_CASE("breaking changes for a subscriber") {
  Subscription sub;
  sub.columns = {"id", "name", "id_card"};
  sub.filter = {{"district_code", "=", {"310104"}}};
  sub.application_id = 3;
  const CatalogEntry before = Complete();
  struct Case {
    const char* what;
    std::function<void(CatalogEntry&)> change;
    const char* expected;  // a part of the first change, "" : none
  };
  const Case cases[] = {
      {"unchanged", [](CatalogEntry&) {}, ""},
      {"a new field", [](CatalogEntry& e) { e.fields.push_back(MakeField("gender", "int")); }, ""},
      {"a field of its filter removed",
       [](CatalogEntry& e) { e.fields.erase(e.fields.begin() + 3); },
       "column 'district_code' was removed"},
      {"removed", [](CatalogEntry& e) { e.fields.erase(e.fields.begin() + 2); },
       "column 'id_card' was removed"},
      {"retyped",
       [](CatalogEntry& e) {
         e.fields[1].column = ParseColumnType("varchar(10)").value();
         e.fields[1].column.name = "name";
       },
       "column 'name' was retyped from varchar(30) to varchar(10)"},
      {"not shared", [](CatalogEntry& e) { e.share_type = "not_shared"; }, "no longer shared"},
      {"key changed", [](CatalogEntry& e) { e.fields[0].column.primary_key = false; },
       "'id' is no longer the primary key"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    CatalogEntry after = before;
    c.change(after);
    auto changes = BreakingChanges(before, after, sub);
    if (*c.expected == '\0') {
      CHECK(changes.empty());
    } else {
      REQUIRE_FALSE(changes.empty());
      CHECK(changes[0].find(c.expected) != std::string::npos);
    }
  }
  CatalogEntry unconditional = before;
  unconditional.share_type = "unconditional";
  Subscription plain;
  plain.columns = {"id"};
  CHECK(BreakingChanges(unconditional, before, plain).at(0).find("needs an approved application") !=
        std::string::npos);
}

RowCondition Cond(const char* column, const char* op, std::vector<std::string> values) {
  return {column, op, std::move(values)};
}

TEST_CASE("a row condition implies an approved one (最小够用)") {
  struct Case {
    RowCondition sub;
    RowCondition approved;
    bool implies;
  };
  const Case cases[] = {
      {Cond("d", "=", {"310104"}), Cond("d", "=", {"310104"}), true},
      {Cond("d", "=", {"310105"}), Cond("d", "=", {"310104"}), false},
      {Cond("x", "=", {"310104"}), Cond("d", "=", {"310104"}), false},
      {Cond("d", "in", {"310104"}), Cond("d", "=", {"310104"}), true},
      {Cond("d", "in", {"310104", "310105"}), Cond("d", "=", {"310104"}), false},
      {Cond("s", "in", {"小学"}), Cond("s", "in", {"小学", "初中"}), true},
      {Cond("s", "in", {"小学", "高中"}), Cond("s", "in", {"小学", "初中"}), false},
      {Cond("s", "=", {"初中"}), Cond("s", "in", {"小学", "初中"}), true},
      {Cond("s", "!=", {"高中"}), Cond("s", "in", {"小学", "初中"}), false},
      {Cond("s", "!=", {"高中"}), Cond("s", "!=", {"高中"}), true},
      {Cond("s", "=", {"小学"}), Cond("s", "!=", {"高中"}), true},
      {Cond("s", "=", {"高中"}), Cond("s", "!=", {"高中"}), false},
      {Cond("n", "<", {"5"}), Cond("n", "<", {"10"}), true},
      {Cond("n", "<", {"10"}), Cond("n", "<", {"10"}), true},
      {Cond("n", "<=", {"10"}), Cond("n", "<", {"10"}), false},
      {Cond("n", "<=", {"9"}), Cond("n", "<", {"10"}), true},
      {Cond("n", "<", {"11"}), Cond("n", "<=", {"10"}), false},
      {Cond("n", "<", {"9"}), Cond("n", "<", {"10"}), true},
      {Cond("n", "<", {"100"}), Cond("n", "<", {"20"}), false},  // numbers, not text
      {Cond("n", ">", {"5"}), Cond("n", ">=", {"5"}), true},
      {Cond("n", ">=", {"5"}), Cond("n", ">", {"5"}), false},
      {Cond("n", ">", {"5"}), Cond("n", "<", {"10"}), false},
      {Cond("n", "=", {"7"}), Cond("n", "<", {"10"}), true},
      {Cond("n", "in", {"7", "12"}), Cond("n", "<", {"10"}), false},
      {Cond("t", ">=", {"2024-01-01"}), Cond("t", ">=", {"2023-09-01"}), true},
      {Cond("t", ">=", {"2023-01-01"}), Cond("t", ">=", {"2023-09-01"}), false},
      {Cond("n", "<", {"10"}), Cond("n", "=", {"5"}), false},
  };
  int row = 0;
  for (const Case& c : cases) {
    CAPTURE(++row);
    CHECK(Implies(c.sub, c.approved) == c.implies);
  }
}

TEST_CASE("a subscription within its approval") {
  ApprovedScope scope;
  scope.columns = {"id", "name", "updatetime"};
  scope.filter = {Cond("d", "=", {"310104"}), Cond("s", "in", {"小学", "初中"})};
  Subscription sub;
  sub.columns = {"id", "name"};
  sub.filter = {Cond("d", "=", {"310104"}), Cond("s", "=", {"小学"}), Cond("g", "=", {"1"})};
  CHECK(CheckWithinScope(sub, scope).ok());
  sub.columns.push_back("id_card");
  CHECK(CheckWithinScope(sub, scope).code() == StatusCode::kPermissionDenied);
  sub.columns.pop_back();
  sub.filter.erase(sub.filter.begin());
  Status rows = CheckWithinScope(sub, scope);
  CHECK(rows.code() == StatusCode::kPermissionDenied);
  CHECK(rows.message().find("'d = 310104'") != std::string::npos);
}

TEST_CASE("masking rules are checked against the entry") {
  const CatalogEntry e = Complete();
  struct Case {
    const char* rule;
    const char* error;  // "" : valid
  };
  const Case cases[] = {
      {"id_card=partial:3:4", ""},
      {"name=hash", ""},
      {"id=hash", "the primary key is delivered as it is"},
      {"id_card=drop", ""},
      {"name=keep", ""},
      {"id=drop", "the primary key is delivered as it is"},
      {"id_card=partial:10:8", "hides at least one"},
      {"id_card=partial:0:0", "positive total"},
      {"updatetime=partial:1:1", "applies to text columns"},
      {"nope=hash", "not a field"},
      {"name=scramble", "expected keep, hash, partial or drop"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.rule);
    auto rule = ParseMaskingRule(c.rule);
    REQUIRE(rule.ok());
    Status st = ValidateMasking({rule.value()}, e);
    CHECK(st.ok() == (*c.error == '\0'));
    if (!st.ok()) CHECK(st.message().find(c.error) != std::string::npos);
  }
  CHECK_FALSE(ParseMaskingRule("id_card").ok());
  CHECK_FALSE(ParseMaskingRule("id_card=partial:3").ok());
  auto two = ValidateMasking(
      {ParseMaskingRule("name=hash").value(), ParseMaskingRule("name=drop").value()}, e);
  CHECK(two.message().find("given twice") != std::string::npos);
  auto kept = MaskingForColumns(
      {ParseMaskingRule("name=hash").value(), ParseMaskingRule("id_card=keep").value(),
       ParseMaskingRule("district_code=drop").value()},
      {"id", "name", "id_card"});
  REQUIRE(kept.size() == 1);
  CHECK(kept[0].column == "name");
}

}  // namespace
}  // namespace dx::scheduler
