// SendWindow: how many bytes of a run's batches may be in flight to the agent, sized from what
// the acknowledgements measure instead of a fixed count of batches. Each batch remembers when
// it was sent and how many bytes the agent had acknowledged by then; its acknowledgement gives
// a round trip (send to commit) and a delivery rate (bytes acknowledged during its flight /
// its flight time). The window is twice the bandwidth-delay product (the highest recent rate
// times the shortest round trip) plus one batch, between a floor and a ceiling: it doubles each
// round trip while the link keeps up, and settles when the rate stops growing. Not thread-safe (one
// run).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>

namespace dx::scheduler {

class SendWindow {
 public:
  using Clock = std::chrono::steady_clock;

  SendWindow(int64_t min_bytes, int64_t max_bytes);

  // True when a batch of `bytes` may be sent now (always when nothing is in flight).
  bool CanSend(int64_t bytes) const { return in_flight_ == 0 || in_flight_ + bytes <= window_; }
  void OnSend(int64_t bytes, Clock::time_point at);
  // The oldest batch in flight was acknowledged at `at`.
  void OnAck(Clock::time_point at);

  int64_t window() const { return window_; }
  int64_t in_flight() const { return in_flight_; }
  // Shortest round trip seen (0 before the first ack) and highest recent delivery rate.
  Clock::duration min_rtt() const { return min_rtt_; }
  double bytes_per_s() const;

 private:
  struct Sent {
    int64_t bytes;
    Clock::time_point at;
    int64_t delivered_then;  // bytes acknowledged when it was sent
  };
  const int64_t min_;
  const int64_t max_;
  int64_t window_;
  int64_t in_flight_ = 0;
  int64_t delivered_ = 0;
  int64_t largest_ = 0;  // the largest batch sent
  std::deque<Sent> sent_;
  Clock::duration min_rtt_{0};
  std::deque<double> rates_;  // the latest delivery-rate samples (bytes/s)
};

}  // namespace dx::scheduler
