// TlsSocket: the server side of TLS on an Asio TCP socket, with OpenSSL reading and writing the
// socket itself and Asio only saying when it is ready (async_wait). asio::ssl::stream keeps two
// 17 KiB record buffers per connection and OpenSSL a 17 KiB BIO pair behind them, whatever the
// traffic; here an idle connection keeps only OpenSSL's session state (its record buffers are
// released when empty, SSL_MODE_RELEASE_BUFFERS). At 10,000 mostly idle agents that is the
// difference between ~70 and ~30 KiB per agent (docs/PERFORMANCE.md).
//
// OpenSSL writes with write(2), not send(MSG_NOSIGNAL): the process must ignore SIGPIPE
// (AgentHub::Start makes sure). Not thread-safe: one strand drives it; a read and a write may be in
// progress at once (the reader waiting for bytes while the writer sends). After the socket is
// closed every call ends with an error and OpenSSL never touches the descriptor again (its number
// may be reused).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>
#include <utility>

namespace dx::scheduler {

class TlsSocket {
 public:
  using ErrorAndSize = std::pair<boost::system::error_code, size_t>;

  // `ssl_ctx` is an SSL_CTX* (a server context); the socket must be open.
  TlsSocket(boost::asio::ip::tcp::socket socket, void* ssl_ctx);
  ~TlsSocket();
  TlsSocket(const TlsSocket&) = delete;
  TlsSocket& operator=(const TlsSocket&) = delete;

  boost::asio::ip::tcp::socket& socket() { return socket_; }

  // The server's handshake. Errors are Asio's: eof / ssl::error::stream_truncated when the
  // peer goes away, the SSL category with OpenSSL's reason otherwise.
  boost::asio::awaitable<boost::system::error_code> Handshake();
  // At least one byte (or an error).
  boost::asio::awaitable<ErrorAndSize> ReadSome(boost::asio::mutable_buffer buffer);
  // All of `buffer` (or an error).
  boost::asio::awaitable<ErrorAndSize> Write(boost::asio::const_buffer buffer);

 private:
  enum class Want { kDone, kRead, kWrite };
  // After an OpenSSL call returned `result`: what to wait for, or the error (kDone).
  Want Classify(int result, boost::system::error_code* ec);
  boost::asio::awaitable<boost::system::error_code> Await(Want want);

  boost::asio::ip::tcp::socket socket_;
  void* ssl_;  // SSL*
};

}  // namespace dx::scheduler
