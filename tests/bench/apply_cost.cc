// apply_cost: the agent's CPU per row for applying batches (TableWriter::ApplyBatch: repeated
// keys, multi-row upserts through unixODBC, the ledger row, one commit per batch) into a new
// target, without the network, the scheduler or decoding. Rows are the fan-out benchmark's
// (id, name, district code, school code, UPDATETIME). Prints
//   apply rows=R batch_rows=B cpu_s=S us_per_row=U
// Used to compare the agent's apply path before and after a change (docs/PERFORMANCE.md).
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "agent/table_writer.h"

namespace {

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

dx::TableBegin PupilTable() {
  dx::TableBegin b;
  b.subscription = "apply-cost";
  b.run_id = 1;
  b.spec.table = "pupil";
  b.spec.columns = {{"id", dx::ColumnType::kBigint, 0, 0, true, true},
                    {"name", dx::ColumnType::kVarchar, 30, 0, true, false},
                    {"district_code", dx::ColumnType::kVarchar, 6, 0, true, false},
                    {"school_code", dx::ColumnType::kVarchar, 10, 0, true, false},
                    {"updatetime", dx::ColumnType::kDatetime, 0, 0, true, false}};
  return b;
}

std::vector<dx::RowBatch> PupilBatches(int rows, int batch_rows) {
  std::vector<dx::RowBatch> batches;
  for (int first = 0; first < rows; first += batch_rows) {
    dx::RowBatch batch(5);
    for (int i = first; i < std::min(rows, first + batch_rows); ++i) {
      batch.AddCell(std::to_string(i + 1));
      batch.AddCell("学生" + std::to_string(i + 1));
      batch.AddCell(std::to_string(310101 + i % 16));
      batch.AddCell(std::to_string(3101010000LL + i % 1500));
      batch.AddCell("2026-11-20 10:00:00");
    }
    batches.push_back(std::move(batch));
  }
  return batches;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"CPU per row of the agent's apply path"};
  std::string connection;
  int rows = 200000;
  int batch_rows = 5000;
  app.add_option("--target", connection, "ODBC connection string of an empty target database")
      ->required();
  app.add_option("--rows", rows, "rows to apply")->check(CLI::Range(1, 100000000));
  app.add_option("--batch-rows", batch_rows, "rows per batch")->check(CLI::Range(1, 1000000));
  CLI11_PARSE(app, argc, argv);

  auto writer = dx::agent::TableWriter::Open(connection);
  if (!writer.ok()) {
    std::fprintf(stderr, "apply_cost: %s\n", writer.status().message().c_str());
    return 1;
  }
  if (auto ready = (*writer)->BeginTable(PupilTable()); !ready.ok()) {
    std::fprintf(stderr, "apply_cost: %s\n", ready.status().message().c_str());
    return 1;
  }
  const std::vector<dx::RowBatch> batches = PupilBatches(rows, batch_rows);
  const double start = CpuSeconds();
  uint64_t seq = 0;
  for (const dx::RowBatch& batch : batches) {
    auto applied = (*writer)->ApplyBatch("apply-cost", ++seq, "", batch);
    if (!applied.ok()) {
      std::fprintf(stderr, "apply_cost: batch %llu: %s\n", static_cast<unsigned long long>(seq),
                   applied.status().message().c_str());
      return 1;
    }
  }
  const double cpu = CpuSeconds() - start;
  std::printf("apply rows=%d batch_rows=%d cpu_s=%.3f us_per_row=%.3f\n", rows, batch_rows, cpu,
              cpu * 1e6 / rows);
  return 0;
}
