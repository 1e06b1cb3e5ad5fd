#include "scheduler/admin_server.h"

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast.hpp>
#include <boost/beast/ssl.hpp>
#include <future>
#include <optional>
#include <type_traits>

#include "common/host_port.h"
#include "common/log.h"
#include "scheduler/io_runtime_asio.h"

namespace dx::scheduler {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using asio::ip::tcp;

namespace {

constexpr size_t kMaxBodyBytes = 16u << 20;

ApiRequest ToApiRequest(const http::request<http::string_body>& req, const std::string& peer) {
  ApiRequest out;
  out.method = std::string(req.method_string());
  std::string target(req.target());
  std::string query;
  if (size_t q = target.find('?'); q != std::string::npos) {
    query = target.substr(q + 1);
    target.resize(q);
  }
  out.raw_path = target;
  if (!PercentDecode(target, &out.path)) out.path = target;
  size_t start = 0;
  while (start < query.size()) {
    size_t amp = query.find('&', start);
    if (amp == std::string::npos) amp = query.size();
    std::string pair = query.substr(start, amp - start);
    size_t eq = pair.find('=');
    std::string key;
    std::string value;
    PercentDecode(pair.substr(0, eq), &key);
    if (eq != std::string::npos) PercentDecode(pair.substr(eq + 1), &value);
    out.query[key] = value;
    start = amp + 1;
  }
  out.authorization = std::string(req[http::field::authorization]);
  out.body = req.body();
  out.peer = peer;
  return out;
}

}  // namespace

struct AdminServer::Impl {
  Impl(AdminApi& a, IoRuntime& rt) : api(a), io(rt.impl().io), calls(1), acceptor(io) {}

  // Runs `f` on the API's own thread (one call at a time: AdminApi serves one caller at a
  // time) and resumes the session on its own strand.
  template <typename F>
  asio::awaitable<std::invoke_result_t<F>> OnWorker(F f) {
    co_return co_await asio::co_spawn(
        calls, [f = std::move(f)]() -> asio::awaitable<std::invoke_result_t<F>> { co_return f(); },
        asio::use_awaitable);
  }

  // Reads requests and answers them until the peer closes or a deadline passes.
  template <typename Stream>
  asio::awaitable<void> Serve(Stream& stream, const std::string& peer) {
    beast::flat_buffer buffer;
    while (true) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(kMaxBodyBytes);
      beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(30));
      // The header first: a caller who is not authenticated gets its 401 before any body is
      // read (nothing is allocated for a peer before it has authenticated), and the connection
      // ends.
      auto [header_ec, hn] = co_await http::async_read_header(stream, buffer, parser,
                                                              asio::as_tuple(asio::use_awaitable));
      if (header_ec) break;
      const std::string authorization(parser.get()[http::field::authorization]);
      const bool authenticated =
          parser.get().target() == "/healthz" ||
          co_await OnWorker([this, &authorization] { return api.Authenticates(authorization); });
      if (authenticated && !parser.is_done()) {
        auto [read_ec, n] =
            co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
        if (read_ec) break;
      }
      const auto& req = parser.get();
      ApiRequest request = ToApiRequest(req, peer);
      ApiResponse r = co_await OnWorker([this, &request] { return api.Handle(request); });
      http::response<http::string_body> res{static_cast<http::status>(r.status), req.version()};
      res.set(http::field::server, "dx-scheduler");
      res.set(http::field::content_type, r.content_type);
      res.keep_alive(authenticated && req.keep_alive());
      res.body() = std::move(r.body);
      res.prepare_payload();
      beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(30));
      auto [write_ec, m] =
          co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
      if (write_ec || !res.keep_alive()) break;
    }
  }

  asio::awaitable<void> Session(tcp::socket socket) {
    std::string peer;
    boost::system::error_code ec;
    auto endpoint = socket.remote_endpoint(ec);
    if (!ec) peer = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
    if (!tls) {
      beast::tcp_stream stream(std::move(socket));
      co_await Serve(stream, peer);
      stream.socket().shutdown(tcp::socket::shutdown_send, ec);
      co_return;
    }
    beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), *tls);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
    auto [hs_ec] = co_await stream.async_handshake(ssl::stream_base::server,
                                                   asio::as_tuple(asio::use_awaitable));
    if (hs_ec) {
      LOG_DEBUG("admin API: TLS handshake with " << peer << " failed: " << hs_ec.message());
      co_return;
    }
    co_await Serve(stream, peer);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
    auto [sd_ec] = co_await stream.async_shutdown(asio::as_tuple(asio::use_awaitable));
    (void)sd_ec;
  }

  asio::awaitable<void> Listen() {
    while (true) {
      // Each connection on its own strand: the io threads are shared.
      auto [ec, socket] = co_await acceptor.async_accept(asio::make_strand(io),
                                                         asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (ec == asio::error::operation_aborted || stopping) co_return;
        continue;
      }
      auto executor = socket.get_executor();
      asio::co_spawn(executor, Session(std::move(socket)), asio::detached);
    }
  }

  AdminApi& api;
  std::optional<ssl::context> tls;
  asio::io_context& io;
  asio::thread_pool calls;  // one thread: the store work of admin requests
  tcp::acceptor acceptor;
  bool started = false;
  std::atomic<bool> stopping{false};
  int port = 0;
};

AdminServer::AdminServer(AdminApi& api)
    : own_runtime_(std::make_unique<IoRuntime>(1, 1)),
      impl_(std::make_unique<Impl>(api, *own_runtime_)) {}

AdminServer::AdminServer(AdminApi& api, IoRuntime& runtime)
    : impl_(std::make_unique<Impl>(api, runtime)) {}
AdminServer::~AdminServer() { Stop(); }

Status AdminServer::UseTls(const std::string& cert_file, const std::string& key_file) {
  ssl::context ctx(ssl::context::tls_server);
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  boost::system::error_code ec;
  ctx.use_certificate_chain_file(cert_file, ec);
  if (ec) return InvalidArgument("admin API certificate " + cert_file + ": " + ec.message());
  ctx.use_private_key_file(key_file, ssl::context::pem, ec);
  if (ec) return InvalidArgument("admin API key " + key_file + ": " + ec.message());
  impl_->tls.emplace(std::move(ctx));
  return Status::Ok();
}

Status AdminServer::Start(const std::string& listen) {
  std::string host;
  int port = 0;
  DX_RETURN_IF_ERROR(ParseHostPort(listen, &host, &port));
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) return InvalidArgument("admin listen address '" + host + "': " + ec.message());
  if (!address.is_loopback() && !impl_->tls) {
    return InvalidArgument("admin API on " + listen +
                           " would be reachable beyond this machine without TLS: it carries "
                           "tokens; give admin.tls.cert and admin.tls.key");
  }
  tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
  impl_->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(endpoint, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Unavailable("cannot listen on " + listen + ": " + ec.message());
  impl_->port = impl_->acceptor.local_endpoint().port();
  asio::co_spawn(impl_->io, impl_->Listen(), asio::detached);
  impl_->started = true;
  if (own_runtime_) own_runtime_->Start();
  LOG_INFO("admin API on " << (impl_->tls ? "https" : "http") << "://" << host << ":" << impl_->port
                           << "/api/v1");
  return Status::Ok();
}

void AdminServer::Stop() {
  if (!impl_->started || impl_->stopping.exchange(true)) {
    impl_->calls.join();
    return;
  }
  auto closed = std::make_shared<std::promise<void>>();
  std::future<void> done = closed->get_future();
  asio::post(impl_->io, [this, closed] {
    boost::system::error_code ec;
    impl_->acceptor.close(ec);
    closed->set_value();
  });
  // Requests under way finish on their own deadlines (30 s at most).
  if (!own_runtime_) done.wait_for(std::chrono::seconds(5));
  if (own_runtime_) own_runtime_->Stop();
  impl_->calls.join();
}

int AdminServer::port() const { return impl_->port; }

}  // namespace dx::scheduler
