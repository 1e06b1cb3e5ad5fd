// The scheduler's records: sources, catalog entries (数据资源目录), agents, subscriptions and
// runs, with their JSON forms (used by the store for definitions and by the admin API).
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "common/table_spec.h"

namespace dx::scheduler {

// A provider's database, reached through ODBC.
struct Source {
  std::string name;
  std::string connection;  // ODBC connection string or "DSN=..."
};

// One field of a catalog entry (附件三: 数据项名称, 字段名, 业务含义, 类型及长度, ...).
struct Field {
  std::string item_name;  // 数据项名称, e.g. 姓名
  ColumnSpec column;      // 字段名, 类型及长度, 非空, 主键
  std::string meaning;    // 业务含义
  std::string format;     // 格式, e.g. YYYY-MM-DD
  std::string example;    // 示例
};

// A resource in the catalog (第十七条): a table (表方式) or a file directory (文件方式).
struct CatalogEntry {
  std::string kind = "table";    // table | file
  std::string name;              // 机构名称-数据基本信息
  std::string provider;          // 数据提供部门
  std::string mounted;           // 挂载资源名称
  std::string summary;           // 资源摘要
  std::string share_type;        // unconditional | authorised | not_shared
  std::string security_level;    // 数据安全等级
  std::string update_frequency;  // 更新频度
  std::string time_range;        // 时间范围
  std::string topic;             // student | teacher | institution (所属主题库)
  std::string scope;             // 约束范围: stage, district, school
  // Review and publication come with the approval workflow; entries applied now are published.
  std::string status = "published";
  std::string source;             // Source name
  std::string source_table;       // table at the source
  std::string updatetime_column;  // UPDATETIME column for incremental extraction
  std::vector<Field> fields;
  // File resources: a provider directory on the scheduler's side. Patterns are globs on the
  // path relative to the directory ('*' stays within one folder, '**' crosses folders).
  std::string directory;
  std::vector<std::string> include;  // empty: every file
  std::vector<std::string> exclude;
  bool recursive = true;
  // How the share spells file names: "utf-8" (default) or e.g. "gb18030" (converted to UTF-8).
  std::string name_encoding = "utf-8";

  bool is_file() const { return kind == "file"; }
  const Field* FindField(const std::string& column) const;
};

struct AgentRecord {
  std::string name;
  std::string secret_hash;  // PBKDF2; never the secret itself
  std::string description;
  bool online = false;
  int64_t last_seen = 0;  // unix seconds
  std::string address;
  std::string version;
  std::string target_dbms;
  int64_t bandwidth_kbps = 0;  // cap on file transfer to this agent; 0 = none
};

// One condition of a subscription's row filter; values are bound as parameters.
struct RowCondition {
  std::string column;
  std::string op;  // = != < <= > >= in
  std::vector<std::string> values;
};

struct Subscription {
  std::string name;
  std::string agent;
  std::string entry;                 // catalog entry name
  std::vector<std::string> columns;  // approved columns (primary key always included)
  std::vector<RowCondition> filter;  // approved rows
  std::string target_table;          // table subscriptions
  std::string target_path;           // file subscriptions: sub-path of the agent's shared root
  bool propagate_deletes = false;    // file subscriptions: delete what the source deleted
  std::string schedule = "manual";
  std::string status = "active";  // active | suspended (workflow comes later)
  // File subscriptions: a run that would delete more than this share (percent) of the files
  // delivered stops and asks for confirmation; -1: the scheduler's files.max_delete_percent.
  int max_delete_percent = -1;
  // Runtime state kept by the scheduler.
  int64_t next_due = 0;
  int failures = 0;
  bool resync_pending = false;
  bool manual_pending = false;
  uint64_t acked_seq = 0;
  std::string watermark;
  int64_t last_ok_at = 0;
  // Set for one run by `dxctl run SUB --allow-mass-delete` (kept in memory only).
  bool allow_mass_delete = false;
};

struct RunRecord {
  int64_t id = 0;
  std::string subscription;
  std::string trigger;      // schedule | manual | resync | retry
  std::string status;       // running | succeeded | partial | failed | interrupted
  int64_t started_at = 0;   // unix ms
  int64_t finished_at = 0;  // unix ms
  int64_t rows = 0;
  int64_t bytes = 0;
  int64_t batches = 0;
  std::string error;
  // A partial file run (some files not delivered): when the first of them may be tried again
  // (unix ms). Not stored; the dispatcher schedules the next run from it.
  int64_t retry_at_ms = 0;
};

// The definition parts as JSON (runtime state excluded), for storage and comparison.
nlohmann::json ToJson(const Source& s);
nlohmann::json ToJson(const CatalogEntry& e);
nlohmann::json ToJson(const Subscription& s);
nlohmann::json ToJson(const RunRecord& r);
nlohmann::json ToJson(const AgentRecord& a);
bool FromJson(const nlohmann::json& j, Source* s);
bool FromJson(const nlohmann::json& j, CatalogEntry* e);
bool FromJson(const nlohmann::json& j, Subscription* s);

}  // namespace dx::scheduler
