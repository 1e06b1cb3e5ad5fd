#include "scheduler/send_window.h"

#include <algorithm>

namespace dx::scheduler {
namespace {
constexpr size_t kRateSamples = 16;
}  // namespace

SendWindow::SendWindow(int64_t min_bytes, int64_t max_bytes)
    : min_(std::max<int64_t>(1, min_bytes)), max_(std::max(min_, max_bytes)), window_(min_) {}

void SendWindow::OnSend(int64_t bytes, Clock::time_point at) {
  sent_.push_back({bytes, at, delivered_});
  in_flight_ += bytes;
  largest_ = std::max(largest_, bytes);
}

void SendWindow::OnAck(Clock::time_point at) {
  if (sent_.empty()) return;
  const Sent s = sent_.front();
  sent_.pop_front();
  in_flight_ -= s.bytes;
  delivered_ += s.bytes;
  const Clock::duration rtt = std::max(at - s.at, Clock::duration(std::chrono::microseconds(1)));
  if (min_rtt_ == Clock::duration(0) || rtt < min_rtt_) min_rtt_ = rtt;
  const double seconds = std::chrono::duration<double>(rtt).count();
  rates_.push_back(static_cast<double>(delivered_ - s.delivered_then) / seconds);
  if (rates_.size() > kRateSamples) rates_.pop_front();
  const double bdp = bytes_per_s() * std::chrono::duration<double>(min_rtt_).count();
  // One batch more than twice the product: a window that only ever held one batch (its rate
  // then says exactly one batch per round trip) still grows.
  window_ = std::clamp(static_cast<int64_t>(2 * bdp) + largest_, min_, max_);
}

double SendWindow::bytes_per_s() const {
  return rates_.empty() ? 0 : *std::max_element(rates_.begin(), rates_.end());
}

}  // namespace dx::scheduler
