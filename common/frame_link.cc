#include "common/frame_link.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

namespace dx {
namespace {

using SteadyClock = std::chrono::steady_clock;

int RemainingMs(SteadyClock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK); }

void TuneSocket(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  int buf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
}

std::string PeerName(const sockaddr_storage& addr) {
  char host[NI_MAXHOST];
  char port[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&addr), sizeof(addr), host, sizeof(host), port,
                  sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return "?";
  }
  return std::string(host) + ":" + port;
}

void PutU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

}  // namespace

Status ParseHostPort(const std::string& text, std::string* host, int* port) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    return InvalidArgument("'" + text + "' is not host:port");
  }
  *host = text.substr(0, colon);
  std::string p = text.substr(colon + 1);
  for (char c : p) {
    if (c < '0' || c > '9') return InvalidArgument("'" + text + "' has a bad port");
  }
  *port = std::atoi(p.c_str());
  if (*port < 0 || *port > 65535) return InvalidArgument("'" + text + "' has a bad port");
  return Status::Ok();
}

Result<std::unique_ptr<FrameLink>> FrameLink::Dial(const std::string& host, int port,
                                                   std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0) return Unavailable("cannot resolve " + host + ": " + gai_strerror(rc));
  Status last = Unavailable("no address for " + host);
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    SetNonBlocking(fd);
    int c = connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (c != 0 && errno == EINPROGRESS) {
      pollfd pfd{fd, POLLOUT, 0};
      if (poll(&pfd, 1, static_cast<int>(timeout.count())) == 1) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        c = err == 0 ? 0 : -1;
        errno = err;
      } else {
        errno = ETIMEDOUT;
      }
    }
    if (c == 0) {
      freeaddrinfo(res);
      TuneSocket(fd);
      return std::make_unique<FrameLink>(fd, host + ":" + std::to_string(port));
    }
    last = Unavailable("cannot connect to " + host + ":" + std::to_string(port) + ": " +
                       std::strerror(errno));
    ::close(fd);
  }
  freeaddrinfo(res);
  return last;
}

FrameLink::FrameLink(int fd, std::string peer) : fd_(fd), peer_(std::move(peer)) {
  SetNonBlocking(fd_);
}

FrameLink::~FrameLink() {
  if (ssl_ != nullptr) SSL_free(static_cast<SSL*>(ssl_));
  if (fd_ >= 0) ::close(fd_);
}

// Repeats `op` (an SSL_* call returning > 0 on progress) until it succeeds, waiting for the
// socket as OpenSSL asks. `op` runs under ssl_mu_; waiting happens outside it.
template <typename Op>
Status FrameLink::TlsIo(Op op, const char* what, SteadyClock::time_point deadline) {
  SSL* ssl = static_cast<SSL*>(ssl_);
  while (true) {
    int n = 0;
    int err = 0;
    {
      std::lock_guard<std::mutex> lock(ssl_mu_);
      ERR_clear_error();
      n = op(ssl);
      if (n <= 0) err = SSL_get_error(ssl, n);
    }
    if (n > 0) return Status::Ok();
    if (err == SSL_ERROR_ZERO_RETURN) return Unavailable("connection closed by " + peer_);
    short events = err == SSL_ERROR_WANT_READ ? POLLIN : err == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
    if (events == 0) {
      std::string why =
          err == SSL_ERROR_SYSCALL && errno != 0 ? std::strerror(errno) : TlsErrorText();
      return Unavailable(std::string(what) + " " + peer_ + ": " + why);
    }
    int ms = RemainingMs(deadline);
    if (ms == 0) return Unavailable(std::string(what) + " " + peer_ + " timed out");
    // Short waits: the other thread may have pulled our bytes into OpenSSL's buffer.
    pollfd pfd{fd_, events, 0};
    poll(&pfd, 1, std::min(ms, 250));
  }
}

Status FrameLink::StartTls(const TlsContext& tls, std::chrono::milliseconds timeout) {
  SSL* ssl = SSL_new(static_cast<SSL_CTX*>(tls.native()));
  if (ssl == nullptr) return Internal("TLS: " + TlsErrorText());
  SSL_set_fd(ssl, fd_);
  SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (!tls.is_server()) {
    const std::string& name = tls.server_name();
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    if (X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) != 1) {
      SSL_set_tlsext_host_name(ssl, name.c_str());
      SSL_set1_host(ssl, name.c_str());
    }
  }
  ssl_ = ssl;
  auto deadline = SteadyClock::now() + timeout;
  Status st = TlsIo([&](SSL* s) { return tls.is_server() ? SSL_accept(s) : SSL_connect(s); },
                    "TLS handshake with", deadline);
  if (!st.ok() && !tls.is_server()) {
    long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
      return PermissionDenied("TLS: the scheduler's certificate does not verify: " +
                              std::string(X509_verify_cert_error_string(verify)));
    }
  }
  return st;
}

void FrameLink::Close() { ::shutdown(fd_, SHUT_RDWR); }

Status FrameLink::WriteAll(const char* data, size_t len, std::chrono::milliseconds idle) {
  auto deadline = SteadyClock::now() + idle;
  while (ssl_ != nullptr && len > 0) {
    size_t done = 0;
    int chunk = static_cast<int>(std::min<size_t>(len, INT_MAX));
    DX_RETURN_IF_ERROR(TlsIo(
        [&](SSL* s) {
          size_t written = 0;
          int ok = SSL_write_ex(s, data, static_cast<size_t>(chunk), &written);
          done = written;
          return ok;
        },
        "send to", deadline));
    data += done;
    len -= done;
    deadline = SteadyClock::now() + idle;
  }
  while (len > 0) {
    ssize_t n = ::send(fd_, data, len, MSG_NOSIGNAL);
    if (n > 0) {
      data += n;
      len -= static_cast<size_t>(n);
      deadline = SteadyClock::now() + idle;
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return Unavailable("send to " + peer_ + ": " + std::strerror(errno));
    }
    pollfd pfd{fd_, POLLOUT, 0};
    int ms = RemainingMs(deadline);
    if (ms == 0 || poll(&pfd, 1, ms) == 0) return Unavailable("send to " + peer_ + " timed out");
  }
  return Status::Ok();
}

Status FrameLink::CheckPace(Pace* pace, std::chrono::milliseconds idle) {
  auto now = SteadyClock::now();
  if (now < pace->mark + idle) return Status::Ok();
  if (pace->bytes < kMinBodyBytes) {
    return Unavailable(peer_ + " sent " + std::to_string(pace->bytes) + " bytes of a frame in " +
                       std::to_string(idle.count() / 1000) + " s (at least " +
                       std::to_string(kMinBodyBytes) + " wanted)");
  }
  pace->mark = now;
  pace->bytes = 0;
  return Status::Ok();
}

Status FrameLink::ReadAll(char* data, size_t len, std::chrono::milliseconds idle, Pace* pace) {
  auto progress = SteadyClock::now();
  // The next moment to look: no byte for `idle`, or the end of the pace's period.
  auto deadline = [&] {
    return pace ? std::min(progress + idle, pace->mark + idle) : progress + idle;
  };
  // A wait that ended at the pace's period (bytes still moving): checks the pace, goes on.
  auto paced = [&]() -> bool {
    return pace != nullptr && SteadyClock::now() < progress + idle &&
           SteadyClock::now() >= pace->mark + idle;
  };
  auto note = [&](size_t n) {
    progress = SteadyClock::now();
    if (pace) pace->bytes += n;
  };
  while (ssl_ != nullptr && len > 0) {
    size_t done = 0;
    Status st = TlsIo(
        [&](SSL* s) {
          size_t got = 0;
          int ok = SSL_read_ex(s, data, len, &got);
          done = got;
          return ok;
        },
        "receive from", deadline());
    if (!st.ok() && !paced()) return st;
    if (st.ok()) {
      data += done;
      len -= done;
      note(done);
    }
    if (pace) DX_RETURN_IF_ERROR(CheckPace(pace, idle));
  }
  while (len > 0) {
    ssize_t n = ::recv(fd_, data, len, 0);
    if (n > 0) {
      data += n;
      len -= static_cast<size_t>(n);
      note(static_cast<size_t>(n));
      if (pace) DX_RETURN_IF_ERROR(CheckPace(pace, idle));
      continue;
    }
    if (n == 0) return Unavailable("connection closed by " + peer_);
    if (errno != EAGAIN && errno != EINTR) {
      return Unavailable("receive from " + peer_ + ": " + std::strerror(errno));
    }
    pollfd pfd{fd_, POLLIN, 0};
    int ms = RemainingMs(deadline());
    if (ms == 0 || poll(&pfd, 1, ms) == 0) {
      if (paced()) {
        DX_RETURN_IF_ERROR(CheckPace(pace, idle));
        continue;
      }
      if (SteadyClock::now() < progress + idle) continue;  // poll woke a little early
      return Unavailable("nothing heard from " + peer_ + " in time");
    }
  }
  return Status::Ok();
}

Status FrameLink::Send(MessageType type, std::string_view payload,
                       std::chrono::milliseconds timeout) {
  if (payload.size() + 1 > kMaxFrameBytes) return Internal("frame too large");
  char header[5];
  PutU32(header, static_cast<uint32_t>(payload.size() + 1));
  header[4] = static_cast<char>(type);
  std::lock_guard<std::mutex> lock(send_mu_);
  // A small frame goes out in one write (one TLS record, one system call), not two.
  constexpr size_t kCoalesceBytes = 16 << 10;
  if (payload.size() <= kCoalesceBytes) {
    char frame[sizeof(header) + kCoalesceBytes];
    std::memcpy(frame, header, sizeof(header));
    std::memcpy(frame + sizeof(header), payload.data(), payload.size());
    DX_RETURN_IF_ERROR(WriteAll(frame, sizeof(header) + payload.size(), timeout));
    bytes_sent_ += sizeof(header) + payload.size();
    return Status::Ok();
  }
  DX_RETURN_IF_ERROR(WriteAll(header, sizeof(header), timeout));
  DX_RETURN_IF_ERROR(WriteAll(payload.data(), payload.size(), timeout));
  bytes_sent_ += sizeof(header) + payload.size();
  return Status::Ok();
}

Result<Frame> FrameLink::Receive(std::chrono::milliseconds timeout, size_t max_payload) {
  char header[5];
  DX_RETURN_IF_ERROR(ReadAll(header, sizeof(header), timeout));
  uint32_t len = GetU32(header);
  if (len == 0 || len - 1 > std::min(max_payload, kMaxFrameBytes - 1)) {
    return DataLoss("frame of " + std::to_string(len) + " bytes from " + peer_);
  }
  Frame frame;
  frame.type = static_cast<MessageType>(header[4]);
  // The buffer grows as the bytes arrive (doubling from 4 KiB, each step asking for no more
  // bytes than have come), never ahead of them to the length the header claims.
  constexpr size_t kFirstBodyBytes = 4u << 10;
  const size_t want = len - 1;
  size_t have = 0;
  Pace pace{SteadyClock::now(), 0};
  while (have < want) {
    frame.payload.resize(std::min<size_t>(want, std::max(kFirstBodyBytes, 2 * have)));
    DX_RETURN_IF_ERROR(
        ReadAll(frame.payload.data() + have, frame.payload.size() - have, timeout, &pace));
    have = frame.payload.size();
  }
  return frame;
}

Result<std::unique_ptr<FrameListener>> FrameListener::Listen(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0)
    return InvalidArgument("cannot resolve listen address " + host + ": " + gai_strerror(rc));
  int fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 128) != 0) {
    std::string err = std::strerror(errno);
    freeaddrinfo(res);
    if (fd >= 0) ::close(fd);
    return Unavailable("cannot listen on " + host + ":" + std::to_string(port) + ": " + err);
  }
  freeaddrinfo(res);
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int actual = addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                          : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  SetNonBlocking(fd);
  return std::unique_ptr<FrameListener>(new FrameListener(fd, actual));
}

FrameListener::~FrameListener() {
  if (fd_ >= 0) ::close(fd_);
}

void FrameListener::Close() { ::shutdown(fd_, SHUT_RDWR); }

Result<std::unique_ptr<FrameLink>> FrameListener::Accept(std::chrono::milliseconds timeout) {
  pollfd pfd{fd_, POLLIN, 0};
  int n = poll(&pfd, 1, static_cast<int>(timeout.count()));
  if (n <= 0) return std::unique_ptr<FrameLink>();
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  int fd = accept4(fd_, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_CLOEXEC);
  if (fd < 0) return std::unique_ptr<FrameLink>();
  TuneSocket(fd);
  return std::make_unique<FrameLink>(fd, PeerName(addr));
}

}  // namespace dx
