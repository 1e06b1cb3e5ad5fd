// DeliveryGate: what the exchange checks before a subscription's data leaves the scheduler.
// Before every run: the subscription is active, its entry is shared, and its columns, rows
// and masking are those its approved application allows (or it needs none). At every batch
// (or file) boundary: it is still active — a suspension or termination stops a run there.
// Depends on the Store only, so every kind of run (tables, files, reconciliation) can use it.
#pragma once

#include <string>

#include "common/status.h"
#include "scheduler/store.h"

namespace dx::scheduler {

// kUnavailable when the subscription is not active (the dispatcher does not retry it while
// it stays so); kFailedPrecondition or kPermissionDenied when the approval no longer covers
// it (a permanent failure: the subscription stops).
Status CheckDeliveryAllowed(Store& store, const Subscription& sub, const CatalogEntry& entry);

// The batch-boundary check: kUnavailable ("delivery halted: ...") unless `subscription` is
// still active in the store.
Status CheckStillActive(Store& store, const std::string& subscription);

}  // namespace dx::scheduler
