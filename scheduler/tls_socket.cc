#include "scheduler/tls_socket.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>

namespace dx::scheduler {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

SSL* Ssl(void* p) { return static_cast<SSL*>(p); }

}  // namespace

TlsSocket::TlsSocket(asio::ip::tcp::socket socket, void* ssl_ctx)
    : socket_(std::move(socket)), ssl_(SSL_new(static_cast<SSL_CTX*>(ssl_ctx))) {
  error_code ignored;
  // OpenSSL calls recv and send itself: they must never block an io thread.
  socket_.non_blocking(true, ignored);
  if (ssl_ == nullptr) return;
  SSL_set_fd(Ssl(ssl_), socket_.native_handle());  // BIO_NOCLOSE: the socket closes the fd
  SSL_set_mode(Ssl(ssl_), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_set_accept_state(Ssl(ssl_));
}

TlsSocket::~TlsSocket() { SSL_free(Ssl(ssl_)); }

TlsSocket::Want TlsSocket::Classify(int result, error_code* ec) {
  const int saved_errno = errno;
  switch (SSL_get_error(Ssl(ssl_), result)) {
    case SSL_ERROR_WANT_READ:
      return Want::kRead;
    case SSL_ERROR_WANT_WRITE:
      return Want::kWrite;
    case SSL_ERROR_ZERO_RETURN:
      *ec = asio::error::eof;
      break;
    case SSL_ERROR_SYSCALL:
      if (unsigned long e = ERR_get_error(); e != 0) {
        *ec = error_code(static_cast<int>(e), asio::error::get_ssl_category());
      } else if (saved_errno != 0) {
        *ec = error_code(saved_errno, boost::system::system_category());
      } else {
        *ec = asio::ssl::error::stream_truncated;
      }
      break;
    default: {
      // SSL_ERROR_SSL, or a callback's want (none are set): always an error, never success.
      unsigned long e = ERR_peek_last_error();
      if (e == 0) {
        *ec = asio::ssl::error::unexpected_result;
      } else if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        *ec = asio::ssl::error::stream_truncated;
      } else {
        *ec = error_code(static_cast<int>(e), asio::error::get_ssl_category());
      }
      break;
    }
  }
  ERR_clear_error();
  return Want::kDone;
}

asio::awaitable<error_code> TlsSocket::Await(Want want) {
  auto [ec] = co_await socket_.async_wait(
      want == Want::kRead ? asio::socket_base::wait_read : asio::socket_base::wait_write,
      asio::as_tuple(asio::use_awaitable));
  co_return ec;
}

asio::awaitable<error_code> TlsSocket::Handshake() {
  if (ssl_ == nullptr) co_return error_code(asio::error::no_memory);
  for (;;) {
    // Checked before every call: a closed socket's descriptor number may already be another's.
    if (!socket_.is_open()) co_return error_code(asio::error::operation_aborted);
    ERR_clear_error();
    const int r = SSL_do_handshake(Ssl(ssl_));
    if (r == 1) co_return error_code();
    error_code ec;
    const Want want = Classify(r, &ec);
    if (want == Want::kDone) co_return ec;
    if (ec = co_await Await(want); ec) co_return ec;
  }
}

asio::awaitable<TlsSocket::ErrorAndSize> TlsSocket::ReadSome(asio::mutable_buffer buffer) {
  if (ssl_ == nullptr) co_return ErrorAndSize{asio::error::no_memory, 0};
  for (;;) {
    if (!socket_.is_open()) co_return ErrorAndSize{asio::error::operation_aborted, 0};
    ERR_clear_error();
    size_t n = 0;
    const int r = SSL_read_ex(Ssl(ssl_), buffer.data(), buffer.size(), &n);
    if (r == 1) co_return ErrorAndSize{error_code(), n};
    error_code ec;
    const Want want = Classify(r, &ec);
    if (want == Want::kDone) co_return ErrorAndSize{ec, 0};
    if (ec = co_await Await(want); ec) co_return ErrorAndSize{ec, 0};
  }
}

asio::awaitable<TlsSocket::ErrorAndSize> TlsSocket::Write(asio::const_buffer buffer) {
  if (ssl_ == nullptr) co_return ErrorAndSize{asio::error::no_memory, 0};
  const char* at = static_cast<const char*>(buffer.data());
  size_t left = buffer.size();
  while (left > 0) {
    if (!socket_.is_open()) {
      co_return ErrorAndSize{asio::error::operation_aborted, buffer.size() - left};
    }
    ERR_clear_error();
    size_t n = 0;
    const int r = SSL_write_ex(Ssl(ssl_), at, left, &n);
    if (r == 1) {
      at += n;
      left -= n;
      continue;
    }
    error_code ec;
    const Want want = Classify(r, &ec);
    if (want == Want::kDone) co_return ErrorAndSize{ec, buffer.size() - left};
    if (ec = co_await Await(want); ec) co_return ErrorAndSize{ec, buffer.size() - left};
  }
  co_return ErrorAndSize{error_code(), buffer.size()};
}

}  // namespace dx::scheduler
