#include "scheduler/catalog/entry_validator.h"

#include <algorithm>
#include <set>
#include <utility>

namespace dx::scheduler {
namespace {

const std::vector<std::pair<const char*, const char*>> kStages = {
    {"all", "全学段"}, {"preschool", "学前"},  {"primary", "小学"}, {"middle", "中学"},
    {"high", "高中"},  {"vocational", "中职"}, {"higher", "高校"},  {"other", "其他"}};
const std::vector<std::pair<const char*, const char*>> kProvisions = {
    {"table", "库表"}, {"file", "文件"}, {"interface", "接口"}, {"query", "查询"}};
const std::vector<const char*> kFrequencies = {"realtime", "hourly", "daily", "weekly", "monthly",
                                               "custom",   "实时",   "每时",  "每天",   "每日",
                                               "每周",     "每月",   "自定义"};

std::string Canonical(const std::vector<std::pair<const char*, const char*>>& table,
                      const std::string& text) {
  for (const auto& [code, chinese] : table) {
    if (text == code || text == chinese) return code;
  }
  return "";
}

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// 第十五、十六条: "机构名称-数据基本信息", e.g. 人事处数据-教职工科技论文信息.
std::string NamingProblem(const std::string& name) {
  const size_t dash = name.find('-');
  if (dash == std::string::npos || dash == 0 || dash + 1 == name.size()) {
    return "'" + name +
           "' must be named 机构名称-数据基本信息 (第十五条), e.g. 人事处-教职工基本信息";
  }
  if (name.front() == ' ' || name.back() == ' ')
    return "'" + name + "' starts or ends with a space";
  if (name.size() > 200) return "is longer than 200 bytes";
  for (char c : name) {
    if (c == '/' || static_cast<unsigned char>(c) < 0x20) {
      return "'" + name + "' may not contain '/' or control characters";
    }
  }
  return "";
}

}  // namespace

std::string CanonicalStage(const std::string& text) { return Canonical(kStages, text); }
std::string CanonicalProvision(const std::string& text) { return Canonical(kProvisions, text); }

bool IsKnownUpdateFrequency(const std::string& text) {
  for (const char* f : kFrequencies) {
    if (text == f) return true;
  }
  return StartsWith(text, "custom:") || StartsWith(text, "自定义:") || StartsWith(text, "自定义：");
}

std::vector<Problem> ValidateEntry(const CatalogEntry& e) {
  std::vector<Problem> out;
  auto add = [&](std::string field, std::string message, bool blocking) {
    out.push_back({std::move(field), std::move(message), blocking});
  };
  auto required = [&](const char* field, const std::string& value, const char* what) {
    if (value.empty()) add(field, std::string("is required: ") + what, false);
  };

  if (e.name.empty()) {
    add("name", "is required: 资源名称, 机构名称-数据基本信息", true);
  } else if (std::string why = NamingProblem(e.name); !why.empty()) {
    add("name", why, true);
  }
  if (!e.mounted.empty()) {
    if (std::string why = NamingProblem(e.mounted); !why.empty()) add("mounted", why, false);
  }
  required("provider", e.provider, "数据提供部门, the providing organisation");
  required("summary", e.summary, "资源摘要");
  required("data_format", e.data_format, "数据格式, e.g. 结构化数据库表");
  if (e.share_type.empty()) {
    add("share_type", "is required: unconditional, authorised or not_shared (数据共享类型)", true);
  } else if (e.share_type != "unconditional" && e.share_type != "authorised" &&
             e.share_type != "not_shared") {
    add("share_type",
        "expected unconditional, authorised or not_shared, not '" + e.share_type + "'", true);
  }
  required("security_level", e.security_level, "数据安全等级");
  if (e.update_frequency.empty()) {
    add("update_frequency", "is required: 更新频度", false);
  } else if (!IsKnownUpdateFrequency(e.update_frequency)) {
    add("update_frequency",
        "'" + e.update_frequency +
            "': expected realtime, hourly, daily, weekly, monthly or custom:TEXT (实时 每时 每天 "
            "每周 每月 自定义)",
        false);
  }
  if (e.provision.empty()) {
    add("provision", "is required: 提供方式, a list of table, file, interface, query", false);
  }
  std::set<std::string> provisions;
  for (size_t i = 0; i < e.provision.size(); ++i) {
    const std::string code = CanonicalProvision(e.provision[i]);
    if (code.empty()) {
      add("provision[" + std::to_string(i) + "]",
          "'" + e.provision[i] + "': expected table, file, interface or query", false);
    }
    provisions.insert(code);
  }
  if (!e.provision.empty()) {
    if (!e.is_file() && !provisions.count("table") && !provisions.count("interface") &&
        !provisions.count("query")) {
      add("provision", "a table resource is provided as table, interface or query", false);
    }
    if (e.is_file() && !provisions.count("file")) {
      add("provision", "a file resource is provided as file", false);
    }
  }
  required("time_range", e.time_range, "时间范围, e.g. 2015年至今");
  if (e.topic.empty()) {
    add("topic", "is required: student, teacher or institution (所属主题库)", true);
  } else if (e.topic != "student" && e.topic != "teacher" && e.topic != "institution") {
    add("topic", "expected student, teacher or institution, not '" + e.topic + "'", true);
  }
  if (e.stages.empty()) {
    add("stages",
        "is required: 约束范围 学段 (all, preschool, primary, middle, high, vocational, "
        "higher, other)",
        false);
  }
  for (size_t i = 0; i < e.stages.size(); ++i) {
    if (CanonicalStage(e.stages[i]).empty()) {
      add("stages[" + std::to_string(i) + "]",
          "'" + e.stages[i] +
              "': expected all, preschool, primary, middle, high, vocational, higher or other "
              "(全学段 学前 小学 中学 高中 中职 高校 其他)",
          false);
    }
  }

  if (e.is_file()) {
    if (e.directory.empty() || e.directory[0] != '/') {
      add("directory", "must be an absolute path", true);
    }
    return out;
  }

  if (e.source.empty()) add("source", "is required: the Source the table is read from", true);
  if (e.source_table.empty()) {
    add("source_table", "is required: the table at the source", true);
  } else if (!IsValidIdentifier(e.source_table)) {
    add("source_table", "'" + e.source_table + "' is not a valid table name", true);
  }
  if (e.fields.empty()) add("fields", "is required: a list of fields (数据资源目录信息明细)", true);
  std::set<std::string> seen;
  std::vector<std::string> keys;
  for (size_t i = 0; i < e.fields.size(); ++i) {
    const Field& f = e.fields[i];
    const std::string at = "fields[" + std::to_string(i) + "]";
    if (f.column.name.empty()) {
      add(at + ".column", "is required: 字段名", true);
    } else if (!IsValidIdentifier(f.column.name)) {
      add(at + ".column", "'" + f.column.name + "' is not a valid column name (letters, digits, _)",
          true);
    } else if (!seen.insert(f.column.name).second) {
      add(at + ".column", "column '" + f.column.name + "' appears twice", true);
    }
    if (f.item_name.empty()) add(at + ".item", "is required: 数据项名称", false);
    if (f.meaning.empty()) add(at + ".meaning", "is required: 业务含义", false);
    if (f.column.primary_key) keys.push_back(f.column.name);
  }
  if (!e.fields.empty() && keys.empty()) {
    add("fields", "no field is marked primary_key: a table needs exactly one primary key", true);
  } else if (keys.size() > 1) {
    std::string names;
    for (const std::string& k : keys) names += (names.empty() ? "" : ", ") + k;
    add("fields",
        std::to_string(keys.size()) + " fields are marked primary_key (" + names +
            "): a catalog entry has exactly one primary key",
        false);
  }
  if (e.updatetime_column.empty()) {
    add("updatetime_column",
        "is required: the update-time field (UPDATETIME) incremental exchange reads by", true);
  } else if (const Field* ut = e.FindField(e.updatetime_column); ut == nullptr) {
    add("updatetime_column", "'" + e.updatetime_column + "' is not one of the fields", true);
  } else if (ut->column.type != ColumnType::kDatetime || !ut->column.not_null) {
    add("updatetime_column", "'" + e.updatetime_column + "' must be a not-null datetime field",
        true);
  }
  return out;
}

std::string FormatProblems(const std::vector<Problem>& problems) {
  std::string out;
  for (const Problem& p : problems) {
    out += (out.empty() ? "" : "\n") + (p.field.empty() ? "" : p.field + ": ") + p.message;
  }
  return out;
}

}  // namespace dx::scheduler
