// agents_client: N simulated agents speaking the real agent protocol over TLS (Hello, then
// heartbeats), for scripts/bench.sh agents. Each reconnects with full-jitter back-off (as
// dx-agent does) when its link drops. Prints "online=K total=N" every second on stdout.
// Usage: agents_client HOST PORT N NAME_PREFIX SECRET [THREADS]
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/protocol.h"

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

std::atomic<int> g_online{0};
// Logins in progress at once: a simulator that starts 10,000 TLS handshakes together starves
// its own heartbeats (real agents are separate machines).
std::atomic<int> g_connecting{0};
constexpr int kMaxConnecting = 64;

using Stream = ssl::stream<tcp::socket>;

// Sends a heartbeat every `period` until `done` or a write fails.
asio::awaitable<void> Heartbeats(std::shared_ptr<Stream> stream, std::shared_ptr<bool> done,
                                 std::chrono::seconds period) {
  static const std::string beat = dx::EncodeFrame(dx::MessageType::kHeartbeat, "");
  asio::steady_timer t(stream->get_executor());
  while (!*done) {
    t.expires_after(period);
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    if (*done) break;
    auto [e, n] = co_await asio::async_write(*stream, asio::buffer(beat),
                                             asio::as_tuple(asio::use_awaitable));
    if (e) break;
  }
}

asio::awaitable<void> Agent(tcp::endpoint endpoint, ssl::context& tls, std::string name,
                            std::string secret, unsigned seed) {
  auto ex = co_await asio::this_coro::executor;
  std::mt19937 rng(seed);
  int backoff_ms = 200;
  asio::steady_timer timer(ex);
  std::string session_token;  // the scheduler's credential for the next login, as a real agent
  while (true) {
    bool online = false;
    while (g_connecting.load() >= kMaxConnecting) {
      timer.expires_after(std::chrono::milliseconds(5 + rng() % 20));
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    ++g_connecting;
    bool counted = true;
    {
      auto holder = std::make_shared<Stream>(ex, tls);
      Stream& stream = *holder;
      auto [cec] =
          co_await stream.next_layer().async_connect(endpoint, asio::as_tuple(asio::use_awaitable));
      if (!cec) {
        auto [hec] = co_await stream.async_handshake(ssl::stream_base::client,
                                                     asio::as_tuple(asio::use_awaitable));
        if (!hec) {
          dx::Hello hello;
          hello.agent = name;
          hello.secret = secret;
          hello.agent_version = "bench";
          hello.target_dbms = "sqlite";
          hello.session_token = session_token;
          std::string frame = dx::EncodeFrame(dx::MessageType::kHello, dx::Encode(hello));
          auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(frame),
                                                      asio::as_tuple(asio::use_awaitable));
          char header[dx::kFrameHeaderBytes];
          auto [rec, rn] = co_await asio::async_read(stream, asio::buffer(header),
                                                     asio::as_tuple(asio::use_awaitable));
          const uint32_t len = dx::FrameLength(header);
          std::string body(len > 0 && len < 65536 ? len - 1 : 0, '\0');
          if (!wec && !rec && !body.empty()) {
            auto [bec, bn] = co_await asio::async_read(stream, asio::buffer(body),
                                                       asio::as_tuple(asio::use_awaitable));
            dx::HelloReply reply;
            if (!bec && dx::Decode(body, &reply).ok() && reply.accepted) {
              if (!reply.session_token.empty()) session_token = reply.session_token;
              online = true;
              --g_connecting;
              counted = false;
              ++g_online;
              backoff_ms = 200;
              // Heartbeats out on a timer; the reader takes the scheduler's and notices a close.
              auto done = std::make_shared<bool>(false);
              asio::co_spawn(ex, Heartbeats(holder, done, std::chrono::seconds(reply.heartbeat_s)),
                             asio::detached);
              char buf[512];
              while (true) {
                auto [e, n] = co_await stream.async_read_some(asio::buffer(buf),
                                                              asio::as_tuple(asio::use_awaitable));
                if (e) break;
              }
              *done = true;
              --g_online;
            }
          }
        }
      }
      if (counted) --g_connecting;
      boost::system::error_code ignored;
      stream.next_layer().close(ignored);
    }
    // Full jitter.
    int wait_ms = std::uniform_int_distribution<int>(0, backoff_ms)(rng);
    if (!online) backoff_ms = std::min(backoff_ms * 2, 30000);
    timer.expires_after(std::chrono::milliseconds(wait_ms));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: agents_client HOST PORT N NAME_PREFIX SECRET [THREADS]\n");
    return 2;
  }
  int n = std::atoi(argv[3]);
  int threads = argc > 6 ? std::atoi(argv[6]) : 1;
  asio::io_context io;
  ssl::context tls(ssl::context::tls_client);
  tls.set_verify_mode(ssl::verify_none);
  SSL_CTX_set_mode(tls.native_handle(), SSL_MODE_RELEASE_BUFFERS);
  tcp::endpoint endpoint(asio::ip::make_address(argv[1]),
                         static_cast<uint16_t>(std::atoi(argv[2])));
  for (int i = 0; i < n; ++i) {
    asio::co_spawn(asio::make_strand(io),
                   Agent(endpoint, tls, std::string(argv[4]) + std::to_string(i + 1), argv[5],
                         static_cast<unsigned>(i)),
                   asio::detached);
  }
  std::thread reporter([] {
    while (true) {
      std::this_thread::sleep_for(1s);
      std::printf("online=%d\n", g_online.load());
      std::fflush(stdout);
    }
  });
  reporter.detach();
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back([&] { io.run(); });
  io.run();
  for (auto& t : pool) t.join();
  return 0;
}
