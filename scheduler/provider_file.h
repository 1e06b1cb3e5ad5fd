// ProviderFile: a file of a provider's share, opened for sending. It is reached without
// following symbolic links (at any level below the resource's directory) and opened without
// blocking, so a FIFO or device swapped in since the listing is refused instead of hanging the
// run; only regular files are read. CheckUnchanged() compares the file's state with the one it
// had when opened, so that a file is only ever delivered as a state it really had.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace dx::scheduler {

// What tells one state of a file from another: any write changes mtime and ctime (ctime
// cannot be set back), a replacement changes the inode.
struct FileVersion {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  uint64_t inode = 0;
  bool operator==(const FileVersion&) const = default;
};

class ProviderFile {
 public:
  // Opens `relative` (as named on disk) under the directory `root`. NotFound when it
  // vanished, FailedPrecondition when it is not a regular file (or a link), PermissionDenied
  // when it cannot be read, Unavailable for other errors.
  static Result<ProviderFile> Open(const std::string& root, const std::string& relative);
  ProviderFile(ProviderFile&& o) noexcept;
  ProviderFile& operator=(ProviderFile&&) = delete;
  ~ProviderFile();

  // The state when opened.
  const FileVersion& version() const { return version_; }
  // Reads up to `len` bytes at `offset` into `data`; *got says how many (fewer only at EOF).
  Status ReadAt(uint64_t offset, char* data, size_t len, size_t* got) const;
  // Unavailable ("changed while it was read") when the file's state is no longer version().
  Status CheckUnchanged() const;

 private:
  ProviderFile(int fd, std::string name, FileVersion version)
      : fd_(fd), name_(std::move(name)), version_(version) {}
  int fd_;
  std::string name_;  // for messages
  FileVersion version_;
};

// The version of a stat result (`st` is a struct stat).
FileVersion VersionOfStat(const void* st);

}  // namespace dx::scheduler
