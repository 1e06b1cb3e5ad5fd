// The listing of a file resource: the files and folders under its directory that its patterns
// take (see file_patterns.h), with names converted to UTF-8 (name_encoding), and the entries
// that could not be listed or named, each with its reason. Symbolic links are not followed;
// FIFOs, sockets and devices are not files to deliver. Only the resource's directory itself
// failing fails the listing: a folder that cannot be read is one problem among the results.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "scheduler/model.h"
#include "scheduler/provider_file.h"

namespace dx::scheduler {

struct SourceFile {
  std::string path;      // relative to the resource's directory, UTF-8 (as delivered)
  std::string raw_path;  // the same path as the provider's disk names it
  FileVersion version;   // from the listing's stat
};

struct SourceFolder {
  std::string path;
  std::string raw_path;
  bool leaf = false;  // nothing taken lies below it: delivered as an (empty) folder of its own
};

// An entry that cannot be delivered as listed: a folder that cannot be read (nothing below it
// is known, so nothing below it is deleted at the consumer), or a name not valid in the
// resource's name encoding.
struct ListingProblem {
  std::string path;  // UTF-8, with \xNN escapes for bytes of an undecodable name
  bool folder = false;
  Status error;
  FileVersion version;  // of the entry, to notice when it changes
};

struct Listing {
  std::vector<SourceFile> files;      // sorted by path
  std::vector<SourceFolder> folders;  // sorted by path
  std::vector<ListingProblem> problems;
};

// Unavailable when the resource's directory is missing or cannot be read.
Result<Listing> ListResourceFiles(const CatalogEntry& entry);

}  // namespace dx::scheduler
