// ChunkWriter: writes (and hashes) the chunks of large files on its own thread, so that the
// agent's writer thread takes in the next chunks while the disk writes. Chunks are written
// with O_DIRECT where the filesystem allows it (no copy into the page cache and no writeback
// later: on the machines measured that was most of what a large file cost), from buffers
// aligned and padded to the block size; where a direct write is refused, through the page
// cache. Writes happen in the order they were handed over, so a part file cut off by a crash
// holds a whole prefix and a resume never finds a hole. At most kBuffers chunks are in flight.
// Write() and Wait() are called from one thread (the writer).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include "common/sha256.h"
#include "common/status.h"

namespace dx::agent {

class ChunkWriter {
 public:
  // The writes of one file. After a failed write the later ones are skipped.
  struct Ticket {
    // SHA-256 of the bytes written so far, in order: updated on the writing thread (which is
    // otherwise waiting for the disk), read by the owner after Wait(). The owner may feed it a
    // prefix (the part a resume starts after) before Attach().
    Sha256 hash;
    int fd = -1;          // not owned; must stay open until Wait() returns
    bool direct = false;  // O_DIRECT is set on fd (cleared if the filesystem refuses it)
    size_t pending = 0;
    Status error;
    std::string path;  // for messages
  };

  static constexpr size_t kBuffers = 8;
  static constexpr size_t kAlign = 4096;

  ChunkWriter();
  // Finishes the writes it holds, then stops.
  ~ChunkWriter();
  ChunkWriter(const ChunkWriter&) = delete;
  ChunkWriter& operator=(const ChunkWriter&) = delete;

  // Makes `ticket` write to `fd`, with O_DIRECT when the filesystem takes it.
  void Attach(const std::shared_ptr<Ticket>& ticket, int fd, std::string path);
  // Queues `data` (at most one chunk) for writing at `offset` (a multiple of kAlign): copied
  // into a free buffer (waiting for one) and padded to kAlign for a direct write, so the file
  // may end up longer than written (the caller cuts it to its size).
  void Write(const std::shared_ptr<Ticket>& ticket, std::string_view data, uint64_t offset);
  // Waits until the ticket's writes are done; returns the first error.
  Status Wait(const std::shared_ptr<Ticket>& ticket);

 private:
  struct Job {
    std::shared_ptr<Ticket> ticket;
    char* buffer;
    size_t size;  // bytes of data (the write may be padded)
    uint64_t offset;
  };
  void Loop();
  void Run(Job& job);

  std::vector<char*> buffers_;  // owned, aligned
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<char*> free_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace dx::agent
