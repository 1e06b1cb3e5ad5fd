// TablePrinter: aligned text tables for people; wide (CJK) characters count as two columns.
#pragma once

#include <string>
#include <vector>

namespace dx::ctl {

class TablePrinter {
 public:
  explicit TablePrinter(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  void AddRow(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  std::string Render() const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// Display width of UTF-8 text in a terminal.
size_t DisplayWidth(const std::string& text);

}  // namespace dx::ctl
