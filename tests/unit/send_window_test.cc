// SendWindow: the bytes in flight follow the bandwidth-delay product the acks measure.
#include "scheduler/send_window.h"

#include <doctest/doctest.h>

namespace dx::scheduler {
namespace {

using std::chrono::milliseconds;
using T = SendWindow::Clock::time_point;

// Simulates a link of `rate` bytes/s and `rtt` round trip carrying batches of `batch` bytes
// for `rounds` acks; returns the window at the end.
int64_t Converge(double rate, milliseconds rtt, int64_t batch, int rounds, SendWindow* w) {
  T now{};
  T link_free{};  // when the link has carried everything sent so far
  std::deque<T> acks;
  for (int i = 0; i < rounds;) {
    while (w->CanSend(batch)) {
      w->OnSend(batch, now);
      link_free = std::max(link_free, now) + std::chrono::duration_cast<T::duration>(
                                                 std::chrono::duration<double>(batch / rate));
      acks.push_back(link_free + rtt);
    }
    now = acks.front();
    acks.pop_front();
    w->OnAck(now);
    ++i;
  }
  return w->window();
}

TEST_CASE("the window grows to twice the bandwidth-delay product and stays in its bounds") {
  // 100 Mbit/s, 100 ms: BDP 1.25 MB; a 256 KB batch.
  SendWindow w(1 << 20, 64 << 20);
  CHECK(w.window() == 1 << 20);
  CHECK(w.CanSend(5 << 20));  // nothing in flight: one batch always goes
  int64_t win = Converge(12.5e6, milliseconds(100), 256 << 10, 400, &w);
  CHECK(win >= 2'000'000);  // about 2 x 1.25 MB
  CHECK(win <= 3'500'000);
  CHECK(w.bytes_per_s() == doctest::Approx(12.5e6).epsilon(0.25));

  // A slow school link (2 Mbit/s, 300 ms): BDP 75 KB, so the floor holds.
  SendWindow slow(1 << 20, 64 << 20);
  CHECK(Converge(250e3, milliseconds(300), 64 << 10, 100, &slow) == 1 << 20);

  // A fast long link: 1 Gbit/s, 200 ms (25 MB BDP) is capped at the ceiling.
  SendWindow fast(1 << 20, 16 << 20);
  CHECK(Converge(125e6, milliseconds(200), 1 << 20, 400, &fast) == 16 << 20);
}

TEST_CASE("a batch counts against the window until its ack") {
  SendWindow w(1000, 1000);
  T t{};
  w.OnSend(600, t);
  CHECK_FALSE(w.CanSend(600));
  CHECK(w.CanSend(400));
  w.OnAck(t + milliseconds(10));
  CHECK(w.in_flight() == 0);
  CHECK(w.CanSend(600));
  w.OnAck(t + milliseconds(20));  // an ack with nothing in flight changes nothing
  CHECK(w.in_flight() == 0);
}

}  // namespace
}  // namespace dx::scheduler
