// What masking (脱敏) costs the scheduler's side of a run: reads a whole SQLite source through
// SubscriptionReader (ODBC, UTF-8 check, projection) without masking, with name hashed and
// id_card partial:3:4, and with birth dropped as well, alternating, and times
// TableMasking::Apply (hash and partial) alone on the rows read. masking_bench.sh sets these
// against a DX load measured in the same run.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "scheduler/catalog/approval_scope.h"
#include "scheduler/masking.h"
#include "scheduler/secret.h"
#include "scheduler/subscription_reader.h"

using namespace dx;
using namespace dx::scheduler;

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

CatalogEntry BenchEntry() {
  CatalogEntry e;
  e.name = "基准-学生信息";
  e.source = "bench";
  e.source_table = "student";
  e.updatetime_column = "updatetime";
  for (const char* f :
       {"id bigint", "name varchar(30)", "id_card char(18)", "school_code varchar(10)",
        "birth date", "gender int", "updatetime datetime"}) {
    const std::string text = f;
    Field field;
    field.column = ParseColumnType(text.substr(text.find(' ') + 1)).value();
    field.column.name = text.substr(0, text.find(' '));
    field.column.primary_key = field.column.name == "id";
    e.fields.push_back(field);
  }
  return e;
}

// Reads every row; returns rows per second (0 on failure), keeping the batches when asked.
double ReadAll(const Source& source, const CatalogEntry& entry, const Subscription& sub,
               std::vector<RowBatch>* keep) {
  auto reader = SubscriptionReader::Open(source, entry, sub, "bench-master-key");
  if (!reader.ok()) {
    std::fprintf(stderr, "open: %s\n", reader.status().message().c_str());
    return 0;
  }
  const auto start = Clock::now();
  if (!reader.value()->Start(Watermark(), "", true).ok()) return 0;
  size_t rows = 0;
  while (true) {
    RowBatch batch(reader.value()->table().columns.size());
    Watermark last;
    auto n = reader.value()->Read(5000, &batch, &last);
    if (!n.ok()) {
      std::fprintf(stderr, "read: %s\n", n.status().message().c_str());
      return 0;
    }
    if (n.value() == 0) break;
    rows += n.value();
    if (keep) keep->push_back(std::move(batch));
  }
  return static_cast<double>(rows) / Seconds(start);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"masking_cost: what masking costs the scheduler's read of a subscription"};
  std::string connection;
  int rounds = 3;
  app.add_option("--source", connection, "ODBC connection string of the source")->required();
  app.add_option("--rounds", rounds, "alternating rounds (medians are printed)");
  CLI11_PARSE(app, argc, argv);

  Source source;
  source.name = "bench";
  source.connection = connection;
  const CatalogEntry entry = BenchEntry();
  Subscription plain;
  plain.name = "bench";
  plain.entry = entry.name;
  plain.organisation = "徐汇区教育局";
  plain.target_table = "student";
  for (const Field& f : entry.fields) plain.columns.push_back(f.column.name);
  Subscription masked = plain;
  for (const char* rule : {"name=hash", "id_card=partial:3:4"}) {
    masked.masking.push_back(ParseMaskingRule(rule).value());
  }
  Subscription dropped = masked;
  dropped.masking.push_back(ParseMaskingRule("birth=drop").value());

  // Alternating, so that a change of the machine's pace touches all three alike.
  std::vector<double> plain_rps;
  std::vector<double> masked_rps;
  std::vector<double> dropped_rps;
  std::vector<RowBatch> raw;
  for (int r = 0; r < rounds; ++r) {
    plain_rps.push_back(ReadAll(source, entry, plain, r == 0 ? &raw : nullptr));
    masked_rps.push_back(ReadAll(source, entry, masked, nullptr));
    dropped_rps.push_back(ReadAll(source, entry, dropped, nullptr));
    if (plain_rps.back() == 0 || masked_rps.back() == 0 || dropped_rps.back() == 0) return 1;
  }

  // Masking alone: the transform (one hash, one partial mask per row) on rows already read.
  TableSpec table;
  table.table = "student";
  for (const Field& f : entry.fields) table.columns.push_back(f.column);
  auto masking = TableMasking::Make(table, masked.masking, MaskingKeyFor("k", "徐汇区教育局"));
  if (!masking.ok()) return 1;
  size_t rows = 0;
  for (const RowBatch& b : raw) rows += b.rows();
  std::vector<double> ns_per_row;
  for (int r = 0; r < rounds; ++r) {
    const auto start = Clock::now();
    for (const RowBatch& b : raw) {
      RowBatch out(b.columns());
      masking.value()->Apply(b, &out);
    }
    ns_per_row.push_back(Seconds(start) * 1e9 / static_cast<double>(rows));
  }
  // The keyed hash with its pads digested once, against OpenSSL's one-shot HMAC() (the
  // baseline: what each value would cost without KeyedHash).
  const std::string key = MaskingKeyFor("k", "徐汇区教育局");
  const std::string value = "欧阳娜娜";
  constexpr int kHashes = 200000;
  std::vector<double> keyed_ns;
  std::vector<double> oneshot_ns;
  std::string hex;
  for (int r = 0; r < rounds; ++r) {
    KeyedHash hash(key);
    auto start = Clock::now();
    for (int i = 0; i < kHashes; ++i) {
      hex.clear();
      hash.AppendHex(value, &hex);
    }
    keyed_ns.push_back(Seconds(start) * 1e9 / kHashes);
    start = Clock::now();
    for (int i = 0; i < kHashes; ++i) hex = HmacSha256Hex(key, value);
    oneshot_ns.push_back(Seconds(start) * 1e9 / kHashes);
  }
  std::printf(
      "rows=%zu plain_read_rows_per_s=%.0f masked_read_rows_per_s=%.0f "
      "masked_dropped_read_rows_per_s=%.0f mask_ns_per_row=%.0f keyed_hash_ns=%.0f "
      "oneshot_hmac_ns=%.0f\n",
      rows, Median(plain_rps), Median(masked_rps), Median(dropped_rps), Median(ns_per_row),
      Median(keyed_ns), Median(oneshot_ns));
  return 0;
}
