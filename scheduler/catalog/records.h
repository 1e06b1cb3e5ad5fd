// The records of the sharing workflow, kept by the Store: catalog entry versions (draft to
// published), applications for authorised resources with their decisions and approved scope,
// demands for data not in the catalog, error reports, and notices to the parties.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "scheduler/model.h"

namespace dx::scheduler {

// One step of a record's history: who did what, when, with what note.
struct WorkflowStep {
  int64_t at = 0;  // unix seconds
  std::string by;
  std::string role;
  std::string organisation;
  std::string action;  // e.g. submitted, returned, published, provider_approved
  std::string note;
};

// One version of a catalog entry (第十三、十四、二十一条). Status: draft -> submitted ->
// reviewed (technical review passed) -> published, or returned (with reasons) -> submitted
// again; a published version is superseded when the next one is published. At most one
// version of an entry is open (draft, submitted, reviewed or returned) at a time.
struct CatalogVersion {
  std::string name;
  int version = 0;
  std::string status = "draft";
  std::string organisation;  // the provider
  std::string author;
  CatalogEntry entry;
  std::vector<std::string> reasons;  // why it was returned
  std::vector<WorkflowStep> history;
  int64_t created_at = 0;
  int64_t updated_at = 0;

  bool open() const {
    return status == "draft" || status == "submitted" || status == "reviewed" ||
           status == "returned";
  }
};

// The scope an application is approved for: the most any subscription made from it may carry.
struct ApprovedScope {
  std::vector<std::string> columns;
  std::vector<RowCondition> filter;
  std::vector<MaskingRule> masking;
};

// Acceptance of the confidentiality agreement (附件一) by the applicant.
struct AgreementAcceptance {
  std::string agreement;  // which text, e.g. "附件一 数据共享保密协议 v1"
  std::string accepted_by;
  std::string organisation;
  int64_t accepted_at = 0;  // unix seconds
  std::string from;         // address the acceptance came from
};

// An application for an authorised resource (第二十五条, 附件四). States:
//   submitted -> provider_approved -> reviewed | integrating -> reviewed -> approved
//   submitted | reviewed -> refused -> arbitration -> (passes) continues | (fails) closed
//   any open state -> withdrawn (by the applicant)
struct Application {
  int64_t id = 0;
  std::string entry;
  int entry_version = 0;             // the published version applied for
  std::string provider;              // the providing organisation
  std::string organisation;          // the applying (consumer) organisation
  std::string applicant;             // user
  std::string purpose;               // 用途
  std::string scenario;              // 应用场景
  std::vector<std::string> columns;  // requested
  std::vector<RowCondition> filter;  // requested rows
  AgreementAcceptance agreement;
  std::string state = "submitted";
  std::string technical_result;  // exists | partly_exists | missing (数据是否存在)
  std::string integration_task;  // what must be integrated when partly or not existing
  std::string refused_by;        // the user of the last refusal
  std::string refused_step;      // provider | coordinator
  std::string arbitration_reason;
  ApprovedScope approved;  // set by the provider, narrowed by the coordinator
  std::vector<WorkflowStep> history;
  int64_t created_at = 0;
  int64_t updated_at = 0;

  bool open() const { return state != "approved" && state != "closed" && state != "withdrawn"; }
};

// One data item a demand asks for (附件五 数据共享需求明细表).
struct DemandItem {
  std::string item;  // 数据项名称
  std::string meaning;
  std::string format;
  std::string example;
};

// Demand for data not in the catalog (第二十六条, 附件五), through its six steps:
//   filed -(一 compare)-> compared -(二 negotiate)-> negotiated -(三 plan)-> planned
//   -(三 both confirm)-> confirmed -(四 integrate)-> integrated -(五 catalogue)-> catalogued
//   -(六 apply)-> applied; the coordinator may close an open one.
struct Demand {
  int64_t id = 0;
  std::string organisation;  // the demanding (consumer) organisation
  std::string requester;
  std::string title;        // the resource wanted, 机构名称-数据基本信息 if known
  std::string description;  // 申请描述
  std::string purpose;      // 用途
  std::string method;       // table | file | interface (数据接入方式)
  std::string frequency;    // 数据接入频率
  std::string time_range;
  std::string scope;  // 约束范围
  std::string contact;
  std::vector<DemandItem> items;
  std::string state = "filed";
  std::string comparison;     // (一) result of the field comparison
  std::string provider;       // (二) the providing organisation agreed
  std::string agreed_scope;   // (二)
  std::string agreed_method;  // (二)
  std::string plan;           // (三) the sharing plan
  bool provider_confirmed = false;
  bool consumer_confirmed = false;
  std::string integration;     // (四)
  std::string entry;           // (五) the catalog entry made
  int64_t application_id = 0;  // (六) for an authorised entry
  std::string subscription;    // (六) for an unconditional entry
  std::string closed_reason;
  std::vector<WorkflowStep> history;
  int64_t created_at = 0;
  int64_t updated_at = 0;
};

// A data error a consumer reports on a resource (第九条); it lands in the provider's queue.
struct Feedback {
  int64_t id = 0;
  std::string entry;
  std::string provider;      // the organisation that must correct it
  std::string organisation;  // the reporting consumer
  std::string reporter;
  std::string subscription;  // the subscription the data came through (optional)
  std::string description;
  std::string state = "open";  // open | corrected | rejected
  std::string resolution;
  std::string resolved_by;
  int64_t created_at = 0;
  int64_t resolved_at = 0;
};

// A notice to one organisation (or to the technical admins when empty), e.g. that a published
// change of an entry breaks one of its subscriptions.
struct Notice {
  int64_t id = 0;
  int64_t at = 0;            // unix seconds
  std::string kind;          // breaking_change
  std::string organisation;  // recipient; empty: the technical admins
  std::string entry;
  int version = 0;
  std::string subscription;
  std::string text;
};

nlohmann::json ToJson(const WorkflowStep& s);
nlohmann::json ToJson(const CatalogVersion& v);
nlohmann::json ToJson(const ApprovedScope& s);
nlohmann::json ToJson(const Application& a);
nlohmann::json ToJson(const Demand& d);
nlohmann::json ToJson(const Feedback& f);
nlohmann::json ToJson(const Notice& n);
bool FromJson(const nlohmann::json& j, CatalogVersion* v);
bool FromJson(const nlohmann::json& j, ApprovedScope* s);
bool FromJson(const nlohmann::json& j, Application* a);
bool FromJson(const nlohmann::json& j, Demand* d);
bool FromJson(const nlohmann::json& j, Feedback* f);
bool FromJson(const nlohmann::json& j, Notice* n);
// Row conditions in their JSON form ({column, op, values}).
nlohmann::json ToJson(const std::vector<RowCondition>& filter);
bool FromJson(const nlohmann::json& j, std::vector<RowCondition>* filter);

}  // namespace dx::scheduler
