// RetryPolicy: what the dispatcher does after a run failed. A permanent failure — one that
// would happen again until someone changes the catalog, the source, the target or the data
// (a conflicting target table, a source whose columns drifted from the catalog, a row that
// cannot be converted) — stops the subscription with its error until an operator acts.
// A transient one (network, a server down, a locked database) is retried with exponential
// back-off, which starts over when the failed run still made progress.
#pragma once

#include <cstdint>

#include "common/status.h"

namespace dx::scheduler {

// True for failures that retrying cannot cure: invalid input, a failed precondition, a missing
// thing, a refused permission.
bool IsPermanentFailure(StatusCode code);

// Seconds to wait before retry number `failures` (1 = the first retry): min_s doubling up to
// max_s.
int64_t RetryDelaySeconds(int failures, int min_s, int max_s);

// The failure count after a failed run: 1 when the run made progress (the agent committed
// batches), so the back-off starts over; otherwise one more (capped).
int FailuresAfter(int failures_before, bool made_progress);

}  // namespace dx::scheduler
