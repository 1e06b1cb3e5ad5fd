#include "common/cell_text.h"

#include <cstdlib>

namespace dx {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Pads `fraction` with zeros to `digits`, or drops trailing zeros down to `digits`.
void FitFraction(std::string* fraction, size_t digits) {
  if (fraction->size() < digits) fraction->append(digits - fraction->size(), '0');
  while (fraction->size() > digits && fraction->back() == '0') fraction->pop_back();
}

// Plain notation with `scale` fraction digits; false when `raw` is not a decimal number.
bool CanonicalDecimal(std::string_view raw, size_t scale, std::string* out) {
  size_t i = 0;
  bool negative = false;
  if (i < raw.size() && (raw[i] == '-' || raw[i] == '+')) negative = raw[i++] == '-';
  std::string digits;
  size_t int_digits = 0;
  while (i < raw.size() && IsDigit(raw[i])) digits.push_back(raw[i++]);
  int_digits = digits.size();
  if (i < raw.size() && raw[i] == '.') {
    ++i;
    while (i < raw.size() && IsDigit(raw[i])) digits.push_back(raw[i++]);
  }
  if (digits.empty()) return false;
  long exponent = 0;
  if (i < raw.size() && (raw[i] == 'e' || raw[i] == 'E')) {
    ++i;
    size_t start = i;
    if (i < raw.size() && (raw[i] == '-' || raw[i] == '+')) ++i;
    if (i == raw.size() || !IsDigit(raw[i]) || raw.size() - start > 5) return false;
    exponent = std::strtol(std::string(raw.substr(start)).c_str(), nullptr, 10);
    while (i < raw.size() && IsDigit(raw[i])) ++i;
  }
  if (i != raw.size() || exponent > 400 || exponent < -400) return false;
  long point = static_cast<long>(int_digits) + exponent;  // digits before the decimal point
  std::string whole;
  std::string fraction;
  if (point <= 0) {
    fraction = std::string(static_cast<size_t>(-point), '0') + digits;
  } else if (static_cast<size_t>(point) >= digits.size()) {
    whole = digits + std::string(static_cast<size_t>(point) - digits.size(), '0');
  } else {
    whole = digits.substr(0, static_cast<size_t>(point));
    fraction = digits.substr(static_cast<size_t>(point));
  }
  size_t lead = whole.find_first_not_of('0');
  whole = lead == std::string::npos ? "0" : whole.substr(lead);
  FitFraction(&fraction, scale);
  bool zero = whole == "0" && fraction.find_first_not_of('0') == std::string::npos;
  out->clear();
  if (negative && !zero) out->push_back('-');
  *out += whole;
  if (!fraction.empty()) *out += "." + fraction;
  return true;
}

// "YYYY-MM-DD HH:MM:SS" and `precision` fraction digits; false when `raw` is not a timestamp.
bool CanonicalDatetime(std::string_view raw, size_t precision, std::string* out) {
  if (raw.size() < 19) return false;
  static constexpr char kShape[] = "dddd-dd-dd?dd:dd:dd";
  for (size_t i = 0; i < 19; ++i) {
    char want = kShape[i];
    if (want == 'd' && !IsDigit(raw[i])) return false;
    if (want == '?' && raw[i] != ' ' && raw[i] != 'T') return false;
    if (want != 'd' && want != '?' && raw[i] != want) return false;
  }
  std::string fraction;
  if (raw.size() > 19) {
    if (raw[19] != '.' || raw.size() == 20) return false;
    for (size_t i = 20; i < raw.size(); ++i) {
      if (!IsDigit(raw[i])) return false;
    }
    fraction = std::string(raw.substr(20));
  }
  FitFraction(&fraction, precision);
  out->assign(raw.substr(0, 19));
  (*out)[10] = ' ';
  if (!fraction.empty()) *out += "." + fraction;
  return true;
}

}  // namespace

bool NeedsCanonicalText(const ColumnSpec& column) {
  return column.type == ColumnType::kDecimal || column.type == ColumnType::kDatetime;
}

void CanonicalText(const ColumnSpec& column, std::string_view raw, std::string* out) {
  bool done = false;
  if (column.type == ColumnType::kDecimal) {
    done = CanonicalDecimal(raw, static_cast<size_t>(column.scale), out);
  } else if (column.type == ColumnType::kDatetime) {
    // The common case needs no work: whole seconds, already in shape.
    if (column.length == 0 && raw.size() == 19 && raw[10] == ' ') {
      out->assign(raw);
      return;
    }
    done = CanonicalDatetime(raw, static_cast<size_t>(column.length), out);
  }
  if (!done) out->assign(raw);
}

}  // namespace dx
