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
  // Encoding of the text the driver delivers, when it is not UTF-8 (e.g. a SQLite file that a
  // GBK application wrote): "gbk", "gb18030", ... (iconv names). Empty: UTF-8.
  std::string encoding;
  // The provider organisation whose data it holds: only its providers' catalog entries may
  // read it (the technical admin's may read any). Empty: an admin-only source.
  std::string organisation;
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

  // The rest of the description of 第十七条 and 附件三 (checked on submission, see
  // catalog/entry_validator.h).
  std::string data_format;             // 数据格式, e.g. 结构化数据库表, PDF
  std::vector<std::string> provision;  // 提供方式: table | file | interface | query
  std::vector<std::string> stages;     // 约束范围 学段: all preschool primary middle high ...
  std::string district;                // 约束范围: a district (区), empty: every district
  std::string school;                  // 约束范围: a school, empty: every school
  std::string contact;                 // 联系人及联系方式 of the providing department

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
  // The consumer organisation (数据使用部门) owning this front-end machine: its consumers may
  // subscribe it. Empty: only the technical admin may.
  std::string organisation = {};
  // Disabled by an operator (dxctl agent disable, or `disabled: true` in its manifest): its
  // session is ended and every login refused until it is enabled again.
  bool disabled = false;
};

// How one column of an approved subscription leaves the scheduler (脱敏), chosen by the provider
// or the coordinator when they approve; the data plane applies it before data leaves.
struct MaskingRule {
  std::string column;
  std::string method = "keep";  // keep | hash (keyed) | partial | drop
  int keep_first = 0;           // partial: characters shown at the start (310...: 3)
  int keep_last = 0;            // partial: characters shown at the end (...1234: 4)
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
  std::string status = "active";  // active | suspended | terminated (sharing workflow)
  // Table subscriptions: when to reconcile (对账) with the source, in the schedule syntax
  // (e.g. "daily 03:00"); empty or "manual": only on demand (dxctl reconcile).
  std::string reconcile;
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
  // A permanent failure stops the subscription until an operator acts (apply, run, resync).
  std::string stopped_error;  // empty: not stopped
  int64_t stopped_at = 0;     // unix seconds
  std::string resync_id;      // names the pending resync request; the agent clears once per id
  int64_t caught_up_ms = 0;   // start (unix ms) of the latest run that succeeded

  // Governance (the sharing workflow). The approved application whose scope bounds it (0:
  // none, for an unconditional resource or a direct grant by the bootstrap admin).
  int64_t application_id = 0;
  bool direct = false;       // granted by the bootstrap admin without an application
  std::string organisation;  // the consumer organisation (its agent's)
  // Per-column masking copied from the approval (columns not named are kept). The data
  // plane applies it before data leaves the scheduler.
  std::vector<MaskingRule> masking;
  // Who suspended or terminated it, why and when (status suspended | terminated).
  std::string halted_by;
  std::string halted_org;
  std::string halted_role;
  std::string halt_reason;
  int64_t halted_at = 0;  // unix seconds
  // A terminated subscription: when the agent confirmed it deleted the rows and files (unix
  // ms; 0: not yet) and what it reported.
  int64_t deletion_confirmed_at = 0;
  std::string deletion_detail;

  bool stopped() const { return !stopped_error.empty(); }
  bool halted() const { return status == "suspended" || status == "terminated"; }
  // The masking rule of `column` ("keep" when none is given).
  MaskingRule MaskingFor(const std::string& column) const;
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
  // What the run found worth telling besides its outcome, e.g. "target table student was
  // missing at the agent; reloading from scratch".
  std::string note;
  StatusCode code = StatusCode::kOk;  // how a failed run failed (not stored)
  // A partial file run (some files not delivered): when the first of them may be tried again
  // (unix ms). Not stored; the dispatcher schedules the next run from it.
  int64_t retry_at_ms = 0;
};

// Where reconciliation of one subscription stands (the scheduler's runtime state).
struct ReconcileState {
  std::string subscription;
  int pending = 0;           // 0: none; 1: reconcile; 2: dry run. Kept until one ends.
  int64_t next_due = 0;      // unix seconds of the next scheduled one; 0: not scheduled yet
  int failures = 0;          // consecutive failed ones (back-off)
  int64_t requested_at = 0;  // unix ms of the last operator request (one made during a
                             // reconciliation is not answered by it)
};

// What one reconciliation run found and did (the run's record carries the rest).
struct ReconcileCounts {
  int64_t run_id = 0;
  bool dry_run = false;
  int64_t compared = 0;     // source rows compared
  int64_t target_rows = 0;  // rows the agent held in the ranges it compared
  int64_t missing = 0;      // at the source, not at the agent
  int64_t extra = 0;        // at the agent, not at the source (deleted there, or inserted here)
  int64_t changed = 0;      // at both, with different values
  int64_t repaired = 0;     // rows upserted and deleted at the agent (0 for a dry run)
};

// The definition parts as JSON (runtime state excluded), for storage and comparison.
nlohmann::json ToJson(const Source& s);
nlohmann::json ToJson(const CatalogEntry& e);
nlohmann::json ToJson(const Subscription& s);
nlohmann::json ToJson(const RunRecord& r);
nlohmann::json ToJson(const AgentRecord& a);
nlohmann::json ToJson(const ReconcileCounts& c);
bool FromJson(const nlohmann::json& j, Source* s);
bool FromJson(const nlohmann::json& j, CatalogEntry* e);
bool FromJson(const nlohmann::json& j, Subscription* s);
nlohmann::json ToJson(const MaskingRule& m);
bool FromJson(const nlohmann::json& j, MaskingRule* m);

}  // namespace dx::scheduler
