#include "scheduler/admin_server.h"

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <thread>

#include "common/frame_link.h"
#include "common/log.h"

namespace dx::scheduler {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
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
  explicit Impl(AdminApi& a) : api(a), acceptor(io) {}

  asio::awaitable<void> Session(beast::tcp_stream stream) {
    std::string peer;
    boost::system::error_code ec;
    auto endpoint = stream.socket().remote_endpoint(ec);
    if (!ec) peer = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
    beast::flat_buffer buffer;
    while (true) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(kMaxBodyBytes);
      stream.expires_after(std::chrono::seconds(30));
      auto [read_ec, n] =
          co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
      if (read_ec) break;
      const auto& req = parser.get();
      ApiResponse r = api.Handle(ToApiRequest(req, peer));
      http::response<http::string_body> res{static_cast<http::status>(r.status), req.version()};
      res.set(http::field::server, "dx-scheduler");
      res.set(http::field::content_type, r.content_type);
      res.keep_alive(req.keep_alive());
      res.body() = std::move(r.body);
      res.prepare_payload();
      stream.expires_after(std::chrono::seconds(30));
      auto [write_ec, m] =
          co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
      if (write_ec || !res.keep_alive()) break;
    }
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  asio::awaitable<void> Listen() {
    while (true) {
      auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (ec == asio::error::operation_aborted) co_return;
        continue;
      }
      asio::co_spawn(io, Session(beast::tcp_stream(std::move(socket))), asio::detached);
    }
  }

  AdminApi& api;
  asio::io_context io;
  tcp::acceptor acceptor;
  std::thread thread;
  int port = 0;
};

AdminServer::AdminServer(AdminApi& api) : impl_(std::make_unique<Impl>(api)) {}
AdminServer::~AdminServer() { Stop(); }

Status AdminServer::Start(const std::string& listen) {
  std::string host;
  int port = 0;
  DX_RETURN_IF_ERROR(ParseHostPort(listen, &host, &port));
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) return InvalidArgument("admin listen address '" + host + "': " + ec.message());
  tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
  impl_->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(endpoint, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Unavailable("cannot listen on " + listen + ": " + ec.message());
  impl_->port = impl_->acceptor.local_endpoint().port();
  asio::co_spawn(impl_->io, impl_->Listen(), asio::detached);
  impl_->thread = std::thread([this] { impl_->io.run(); });
  LOG_INFO("admin API on http://" << host << ":" << impl_->port << "/api/v1");
  return Status::Ok();
}

void AdminServer::Stop() {
  if (!impl_->thread.joinable()) return;
  asio::post(impl_->io, [this] {
    boost::system::error_code ec;
    impl_->acceptor.close(ec);
  });
  impl_->io.stop();
  impl_->thread.join();
}

int AdminServer::port() const { return impl_->port; }

}  // namespace dx::scheduler
