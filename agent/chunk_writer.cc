#include "agent/chunk_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/protocol.h"

namespace dx::agent {
namespace {

Status WriteError(const std::string& path, int err) {
  std::string msg = "write " + path + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) return Unavailable(msg);  // retried when space returns
  return Internal(msg);
}

}  // namespace

ChunkWriter::ChunkWriter() {
  for (size_t i = 0; i < kBuffers; ++i) {
    void* p = nullptr;
    if (::posix_memalign(&p, kAlign, kFileChunkBytes + kAlign) == 0) {
      buffers_.push_back(static_cast<char*>(p));
      free_.push_back(static_cast<char*>(p));
    }
  }
  thread_ = std::thread([this] { Loop(); });
}

ChunkWriter::~ChunkWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  for (char* b : buffers_) std::free(b);
}

void ChunkWriter::Attach(const std::shared_ptr<Ticket>& t, int fd, std::string path) {
  t->fd = fd;
  t->path = std::move(path);
  int flags = ::fcntl(fd, F_GETFL);
  t->direct = !buffers_.empty() && flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_DIRECT) == 0;
}

void ChunkWriter::Write(const std::shared_ptr<Ticket>& ticket, std::string_view data,
                        uint64_t offset) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !free_.empty(); });
  char* buffer = free_.back();
  free_.pop_back();
  ++ticket->pending;
  lock.unlock();
  std::memcpy(buffer, data.data(), data.size());
  lock.lock();
  jobs_.push_back(Job{ticket, buffer, data.size(), offset});
  cv_.notify_all();
}

Status ChunkWriter::Wait(const std::shared_ptr<Ticket>& ticket) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return ticket->pending == 0; });
  return ticket->error;
}

void ChunkWriter::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
    if (jobs_.empty()) return;
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    bool skip = !job.ticket->error.ok();
    lock.unlock();
    if (!skip) Run(job);
    lock.lock();
    free_.push_back(job.buffer);
    --job.ticket->pending;
    cv_.notify_all();
  }
}

void ChunkWriter::Run(Job& job) {
  Ticket& t = *job.ticket;  // its fields other than pending/error belong to this thread now
  size_t length = job.size;
  if (t.direct) {
    length = (job.size + kAlign - 1) / kAlign * kAlign;
    std::memset(job.buffer + job.size, 0, length - job.size);
  }
  size_t done = 0;
  while (done < length) {
    ssize_t n =
        ::pwrite(t.fd, job.buffer + done, length - done, static_cast<off_t>(job.offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n > 0 && (!t.direct || n % static_cast<ssize_t>(kAlign) == 0)) {
      done += static_cast<size_t>(n);
      continue;
    }
    int err = n < 0 ? errno : EIO;
    if (t.direct && (err == EINVAL || n > 0)) {
      // The filesystem refused a direct write: this file goes on through the page cache.
      int flags = ::fcntl(t.fd, F_GETFL);
      (void)::fcntl(t.fd, F_SETFL, flags & ~O_DIRECT);
      t.direct = false;
      length = job.size;
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (t.error.ok()) t.error = WriteError(t.path, err);
    return;
  }
  t.hash.Update(std::string_view(job.buffer, job.size));
}

}  // namespace dx::agent
