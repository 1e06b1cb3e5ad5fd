#include "scheduler/subscription_reader.h"

namespace dx::scheduler {

Result<std::unique_ptr<SubscriptionReader>> SubscriptionReader::Open(const Source& source,
                                                                     const CatalogEntry& entry,
                                                                     const Subscription& sub,
                                                                     const std::string& masking_key,
                                                                     SourcePool* pool) {
  std::vector<Status> refused;
  DX_ASSIGN_OR_RETURN(auto shared,
                      SharedReader::Open(source, entry, {&sub}, masking_key, pool, &refused));
  DX_RETURN_IF_ERROR(refused[0]);
  return std::unique_ptr<SubscriptionReader>(new SubscriptionReader(std::move(shared)));
}

Result<size_t> SubscriptionReader::Read(size_t max_rows, RowBatch* batch, Watermark* last) {
  if (batch->rows() != 0) return Internal("SubscriptionReader::Read needs an empty batch");
  batches_[0] = std::move(*batch);
  Result<size_t> n = shared_->Read(max_rows, &batches_, last);
  *batch = std::move(batches_[0]);
  return n;
}

}  // namespace dx::scheduler
