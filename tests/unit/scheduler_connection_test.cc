// The agent's link (SchedulerConnection) against a plain TCP peer on loopback: while its reader
// is paused for back-pressure the link is not taken for silent and heartbeats keep going out;
// once reading again, three heartbeats of silence drop it, and a sender then gets the reason.
#include "agent/scheduler_connection.h"

#include <doctest/doctest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <future>
#include <thread>

namespace dx {
namespace {

namespace asio = boost::asio;
using agent::SchedulerConnection;
using asio::ip::tcp;

TEST_CASE("the agent's link: a paused reader is not silence; silence once reading drops it") {
  asio::io_context io(1);
  auto guard = asio::make_work_guard(io);
  std::thread io_thread([&io] { io.run(); });
  asio::io_context server_io;
  tcp::acceptor acceptor(server_io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const int port = acceptor.local_endpoint().port();

  auto connection = std::make_shared<SchedulerConnection>(io, nullptr, "");
  std::promise<Status> connected;
  std::promise<Status> ended;
  std::atomic<bool> resumed{false};
  asio::co_spawn(
      io,
      [&, connection]() -> asio::awaitable<void> {
        Status st = co_await connection->Connect("127.0.0.1", port, std::chrono::seconds(5),
                                                 std::chrono::seconds(5));
        connected.set_value(st);
        if (!st.ok()) co_return;
        connection->StartHeartbeats(std::chrono::seconds(1));
        co_await connection->Pause();
        resumed = true;
        MessageType type;
        std::string payload;
        while ((st = co_await connection->ReadFrame(1024, &type, &payload)).ok()) {
        }
        connection->CloseNow(st);
        ended.set_value(st);
      },
      asio::detached);
  tcp::socket peer = acceptor.accept();
  REQUIRE(connected.get_future().get().ok());
  // One heartbeat from the peer waits in the socket while the reader is paused.
  const char beat[5] = {1, 0, 0, 0, static_cast<char>(MessageType::kHeartbeat)};
  asio::write(peer, asio::buffer(beat, sizeof(beat)));
  // The peer counts the agent's heartbeats until the agent drops the link.
  std::atomic<int> beats{0};
  std::thread reader([&] {
    char frame[5];
    boost::system::error_code ec;
    while (asio::read(peer, asio::buffer(frame, sizeof(frame)), ec) == sizeof(frame)) {
      if (frame[0] == 1 && frame[4] == static_cast<char>(MessageType::kHeartbeat)) ++beats;
    }
  });
  // Paused for more than three heartbeats: still open, heartbeats flowing.
  std::future<Status> end = ended.get_future();
  CHECK(end.wait_for(std::chrono::milliseconds(4500)) == std::future_status::timeout);
  CHECK_FALSE(resumed.load());
  CHECK(beats.load() >= 3);
  // Reading again: the waiting heartbeat counts, then the peer's silence drops the link.
  connection->Wake();
  REQUIRE(end.wait_for(std::chrono::seconds(15)) == std::future_status::ready);
  Status why = end.get();
  CHECK(resumed.load());
  CHECK(why.code() == StatusCode::kUnavailable);
  CHECK(why.message().find("nothing heard from 127.0.0.1:" + std::to_string(port) + " for 3 s") !=
        std::string::npos);
  // The apply thread's next answer gets the reason rather than waiting.
  Status sent = connection->Send(MessageType::kBatchAck, "x");
  CHECK(sent.code() == StatusCode::kUnavailable);
  CHECK(sent.message() == why.message());
  reader.join();
  guard.reset();
  io_thread.join();
}

}  // namespace
}  // namespace dx
