// docs/MANIFEST.md documents every key the manifest parser accepts, in a table row of its kind.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "scheduler/manifest.h"

namespace dx::scheduler {
namespace {

std::string ReadDoc() {
  std::ifstream in(std::string(DX_SOURCE_DIR) + "/docs/MANIFEST.md");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The text from `heading` to the next heading of the same or a higher level.
std::string Section(const std::string& doc, const std::string& heading) {
  size_t start = doc.find("\n" + heading + "\n");
  if (start == std::string::npos) return "";
  const size_t level = heading.find(' ');  // number of '#'
  size_t end = start + heading.size() + 2;
  while ((end = doc.find("\n#", end)) != std::string::npos) {
    const size_t hashes = doc.find_first_not_of('#', end + 1) - (end + 1);
    if (hashes <= level) break;
    ++end;
  }
  return doc.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

TEST_CASE("every manifest key is documented in docs/MANIFEST.md") {
  const std::string doc = ReadDoc();
  REQUIRE_FALSE(doc.empty());
  for (const auto& [kind, keys] : ManifestKeys()) {
    const size_t dot = kind.find('.');
    const std::string heading =
        dot == std::string::npos ? "## kind: " + kind : "### " + kind.substr(dot + 1);
    CAPTURE(heading);
    const std::string section = Section(doc, heading);
    REQUIRE_FALSE(section.empty());
    // Keys are documented in the first cell of a table row: "| `key` | ...".
    std::string first_cells;
    std::istringstream lines(section);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("| ", 0) == 0) first_cells += line.substr(0, line.find(" |", 2)) + "\n";
    }
    for (const std::string& key : keys) {
      CAPTURE(key);
      CHECK(first_cells.find("`" + key + "`") != std::string::npos);
    }
  }
}

}  // namespace
}  // namespace dx::scheduler
