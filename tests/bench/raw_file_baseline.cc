// raw_file_baseline: the plain baselines the file benchmark compares DX against, on the same
// bytes and the same disk.
//   large SRC DST: one thread reads SRC and sends it over one loopback TCP connection in 1 MiB
//                  writes; another receives and writes DST, with one fsync at the end.
//   small SRCDIR DSTDIR: every file of SRCDIR (flat) is read and written to a temporary name
//                  in DSTDIR, in groups of 32 files whose fsyncs run in parallel on 8 threads
//                  (the filesystem journal commits them together), then renamed, with one
//                  directory fsync per group - the way the agent makes small files durable.
// Prints "bytes=N files=N seconds=S".
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

double Since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

int Large(const char* src, const char* dst) {
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  listen(listener, 1);
  auto start = std::chrono::steady_clock::now();
  long long total = 0;
  std::thread receiver([&] {
    int conn = accept(listener, nullptr, nullptr);
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0640);
    std::vector<char> buf(1 << 20);
    while (true) {
      ssize_t n = recv(conn, buf.data(), buf.size(), 0);
      if (n <= 0) break;
      if (write(out, buf.data(), static_cast<size_t>(n)) != n) break;
      total += n;
    }
    fsync(out);
    close(out);
    close(conn);
  });
  int sock = socket(AF_INET, SOCK_STREAM, 0);
  connect(sock, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int in = open(src, O_RDONLY);
  std::vector<char> buf(1 << 20);
  while (true) {
    ssize_t n = read(in, buf.data(), buf.size());
    if (n <= 0) break;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = send(sock, buf.data() + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);
      if (w <= 0) return 1;
      off += w;
    }
  }
  close(in);
  shutdown(sock, SHUT_WR);
  receiver.join();
  close(sock);
  close(listener);
  std::printf("bytes=%lld files=1 seconds=%.3f\n", total, Since(start));
  return 0;
}

int Small(const char* src_dir, const char* dst_dir) {
  constexpr size_t kGroup = 32;
  constexpr size_t kThreads = 8;
  std::vector<std::string> names;
  DIR* d = opendir(src_dir);
  while (dirent* e = readdir(d)) {
    if (e->d_type == DT_REG) names.emplace_back(e->d_name);
  }
  closedir(d);
  int dir_fd = open(dst_dir, O_RDONLY | O_DIRECTORY);
  auto start = std::chrono::steady_clock::now();
  long long total = 0;
  std::vector<char> buf(1 << 20);
  for (size_t first = 0; first < names.size(); first += kGroup) {
    size_t last = std::min(names.size(), first + kGroup);
    std::vector<int> fds;
    for (size_t i = first; i < last; ++i) {
      int in = open((std::string(src_dir) + "/" + names[i]).c_str(), O_RDONLY);
      ssize_t n = read(in, buf.data(), buf.size());
      close(in);
      std::string tmp = "." + names[i] + ".tmp";
      int out = openat(dir_fd, tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0640);
      if (n > 0 && write(out, buf.data(), static_cast<size_t>(n)) != n) return 1;
      fds.push_back(out);
      total += n;
    }
    std::atomic<size_t> next{0};
    auto worker = [&] {
      for (size_t i = next++; i < fds.size(); i = next++) fsync(fds[i]);
    };
    std::vector<std::thread> threads;
    for (size_t t = 1; t < std::min(kThreads, fds.size()); ++t) threads.emplace_back(worker);
    worker();
    for (std::thread& t : threads) t.join();
    for (size_t i = first; i < last; ++i) {
      close(fds[i - first]);
      std::string tmp = "." + names[i] + ".tmp";
      renameat(dir_fd, tmp.c_str(), dir_fd, names[i].c_str());
    }
    fsync(dir_fd);
  }
  close(dir_fd);
  std::printf("bytes=%lld files=%zu seconds=%.3f\n", total, names.size(), Since(start));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::strcmp(argv[1], "large") == 0) return Large(argv[2], argv[3]);
  if (argc == 4 && std::strcmp(argv[1], "small") == 0) return Small(argv[2], argv[3]);
  std::fprintf(stderr, "usage: raw_file_baseline large SRC DST | small SRCDIR DSTDIR\n");
  return 2;
}
