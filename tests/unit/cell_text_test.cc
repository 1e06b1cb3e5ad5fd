// The wire form of decimal and datetime cells, whatever the source DBMS printed.
#include "common/cell_text.h"

#include <doctest/doctest.h>

namespace dx {
namespace {

std::string Canonical(const char* type, const char* raw) {
  auto column = ParseColumnType(type);
  REQUIRE(column.ok());
  std::string out;
  CanonicalText(column.value(), raw, &out);
  return out;
}

TEST_CASE("decimals travel in plain notation with exactly the catalog's scale") {
  const char* cases[][3] = {
      {"decimal(5,2)", "12.5", "12.50"},   // SQLite keeps numbers, not their scale
      {"decimal(5,2)", "12.50", "12.50"},  // PostgreSQL, MariaDB
      {"decimal(5,2)", "12", "12.00"},     // SQLite stores 12.00 as an integer
      {"decimal(5,2)", "-0.5", "-0.50"},
      {"decimal(5,2)", "-0", "0.00"},  // no negative zero
      {"decimal(5,2)", "+3.1", "3.10"},
      {"decimal(5,2)", ".5", "0.50"},
      {"decimal(5,2)", "007.10", "7.10"},
      {"decimal(10,6)", "1.0e-05", "0.000010"},  // SQLite prints small REALs so
      {"decimal(22,0)", "1.0e+20", "100000000000000000000"},
      {"decimal(5,0)", "12.0", "12"},
      {"decimal(5,1)", "12.34", "12.34"},  // beyond the scale: the target rounds
      {"decimal(5,1)", "12.300", "12.3"},
      {"decimal(20,6)", "12345678901234.123456", "12345678901234.123456"},
      {"decimal(5,2)", "abc", "abc"},  // not a number: left for the target to refuse
      {"decimal(5,2)", "", ""},
      {"decimal(5,2)", "1e999", "1e999"},
  };
  for (const auto& c : cases) {
    CAPTURE(c[0]);
    CAPTURE(c[1]);
    CHECK(Canonical(c[0], c[1]) == c[2]);
  }
}

TEST_CASE("datetimes travel with exactly the catalog's fractional digits") {
  const char* cases[][3] = {
      {"datetime", "2024-02-29 23:59:59", "2024-02-29 23:59:59"},
      {"datetime", "2024-02-29T23:59:59", "2024-02-29 23:59:59"},
      {"datetime", "2024-02-29 23:59:59.000000", "2024-02-29 23:59:59"},     // MariaDB DATETIME(6)
      {"datetime(3)", "2024-02-29 23:59:59.12", "2024-02-29 23:59:59.120"},  // PostgreSQL
      {"datetime(3)", "2024-02-29 23:59:59", "2024-02-29 23:59:59.000"},
      {"datetime(3)", "2024-02-29 23:59:59.120000", "2024-02-29 23:59:59.120"},
      {"datetime(6)", "2024-02-29 23:59:59.000001", "2024-02-29 23:59:59.000001"},
      {"datetime(3)", "2024-02-29 23:59:59.1234", "2024-02-29 23:59:59.1234"},  // target rounds
      {"datetime", "2024-02-29", "2024-02-29"},  // not a timestamp: left as it is
      {"datetime", "2024-02-29 23:59:59+08", "2024-02-29 23:59:59+08"},
      {"datetime(3)", "2024-02-29 23:59:59.", "2024-02-29 23:59:59."},
  };
  for (const auto& c : cases) {
    CAPTURE(c[0]);
    CAPTURE(c[1]);
    CHECK(Canonical(c[0], c[1]) == c[2]);
  }
}

TEST_CASE("only decimal and datetime cells are rewritten") {
  for (const char* type : {"int", "bigint", "varchar(10)", "char(10)", "text", "date", "blob"}) {
    CAPTURE(type);
    CHECK_FALSE(NeedsCanonicalText(ParseColumnType(type).value()));
  }
}

}  // namespace
}  // namespace dx
