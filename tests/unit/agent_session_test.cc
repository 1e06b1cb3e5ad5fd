// AgentSession's guards against an authenticated agent (issue 9): replies are kept only for
// subscriptions a run opened, the replies queued are bounded in bytes, and a run's Send gives
// up when the agent takes nothing. The session here has no connection: nothing is written.
#include <doctest/doctest.h>

#include <chrono>
#include <future>

#include "common/protocol.h"
#include "scheduler/agent_hub.h"

namespace dx::scheduler {
namespace {

using std::chrono::milliseconds;

std::string Ack(const std::string& subscription, uint64_t seq, size_t error_bytes = 0) {
  BatchAck ack;
  ack.subscription = subscription;
  ack.seq = seq;
  ack.error = std::string(error_bytes, 'x');
  return Encode(ack);
}

AgentSession MakeSession(milliseconds send_timeout = milliseconds(15000)) {
  return AgentSession("agent-1", "127.0.0.1:1", nullptr, {}, send_timeout);
}

TEST_CASE("replies for subscriptions no run opened are dropped, not kept") {
  AgentSession session = MakeSession();
  // Far more subscriptions than any agent has: none is kept, the session goes on.
  for (int i = 0; i < 5000; ++i) {
    REQUIRE(
        session.Receive(MessageType::kBatchAck, Ack("never-opened-" + std::to_string(i), 1)).ok());
  }
  CHECK_FALSE(session.AwaitAck("never-opened-1", milliseconds(0)).ok());
  CHECK_FALSE(session.closed());

  // A run opens its mailbox before it talks to the agent: its replies are kept.
  session.ResetMailbox("sub-a");
  REQUIRE(session.Receive(MessageType::kBatchAck, Ack("sub-a", 7)).ok());
  auto ack = session.AwaitAck("sub-a", milliseconds(0));
  REQUIRE(ack.ok());
  CHECK(ack.value().seq == 7);
  // Opening again drops what an earlier run left.
  REQUIRE(session.Receive(MessageType::kBatchAck, Ack("sub-a", 8)).ok());
  session.ResetMailbox("sub-a");
  CHECK_FALSE(session.AwaitAck("sub-a", milliseconds(0)).ok());
}

TEST_CASE("the replies an agent has queued are bounded in bytes") {
  AgentSession session = MakeSession();
  session.ResetMailbox("sub-a");
  // 256 KiB replies that no run takes: far fewer than the count limit, but too many bytes.
  Status st;
  int accepted = 0;
  for (; accepted < 1000; ++accepted) {
    st = session.Receive(MessageType::kBatchAck, Ack("sub-a", accepted, 256 << 10));
    if (!st.ok()) break;
  }
  CHECK(st.code() == StatusCode::kDataLoss);
  CHECK(st.message().find("bytes of replies") != std::string::npos);
  CHECK(accepted < 1000);
  CHECK(accepted * (256 << 10) <= int64_t{kMaxFrameBytes});

  // Replies a run takes as they come never reach the bound; neither do ones a new run drops.
  AgentSession taken = MakeSession();
  taken.ResetMailbox("sub-a");
  for (int i = 0; i < 1000; ++i) {
    REQUIRE(taken.Receive(MessageType::kBatchAck, Ack("sub-a", i, 256 << 10)).ok());
    REQUIRE(taken.AwaitAck("sub-a", milliseconds(0)).ok());
  }
  for (int round = 0; round < 4; ++round) {
    taken.ResetMailbox("sub-a");
    for (int i = 0; i < 200; ++i) {
      REQUIRE(taken.Receive(MessageType::kBatchAck, Ack("sub-a", i, 256 << 10)).ok());
    }
  }
}

TEST_CASE("a run's Send gives up on an agent that takes nothing, and closes its session") {
  AgentSession session = MakeSession(milliseconds(300));
  // The first frame fills the queue past its limit; nothing takes it.
  REQUIRE(session.Send(MessageType::kTableBegin, std::string(9 << 20, 'x')).ok());
  auto second = std::async(std::launch::async,
                           [&] { return session.Send(MessageType::kTableBegin, "more"); });
  bool returned = second.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  CHECK(returned);
  if (!returned) session.Close(Unavailable("test gave up"));  // unblocks the old Send
  Status st = second.get();
  CHECK(st.code() == StatusCode::kUnavailable);
  CHECK(st.message().find("took no bytes") != std::string::npos);
  CHECK(session.closed());
}

}  // namespace
}  // namespace dx::scheduler
