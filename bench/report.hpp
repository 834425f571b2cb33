// The benchmark's output: one row per (scenario, implementation, setting),
// printed as JSON lines (one object per line, as soon as the row is measured)
// or as an aligned table at the end.
//
// Every JSON line has the fields scenario, impl, the row's text labels (mode,
// distributed rows only), callers, batch_size, batch_timeout_us, items_per_s,
// p50_us, p99_us, mean_batch (null where the scenario has no such figure) and
// runs, followed by the row's extra fields (efficiency, round_trip_ns,
// bytes_per_request, ...).
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bench {

struct row {
  std::string scenario;
  std::string impl;
  // Scenario-specific text fields, printed right after impl.
  std::vector<std::pair<std::string, std::string>> labels;
  std::optional<std::int64_t> callers;
  std::optional<std::int64_t> batch_size;
  std::optional<std::int64_t> batch_timeout_us;
  std::optional<double> items_per_s;
  std::optional<double> p50_us;
  std::optional<double> p99_us;
  std::optional<double> mean_batch;
  int runs = 1;
  // Scenario-specific figures, in this order; null when absent.
  std::vector<std::pair<std::string, std::optional<double>>> extra;
};

// `text` as a JSON string literal, quotes included.
std::string json_string(std::string_view text);

// `v` as a JSON number with at most `decimals` decimals (trailing zeros
// dropped), or null when absent or not finite.
std::string json_number(std::optional<double> v, int decimals = 3);

// The row as one JSON object, without a newline.
std::string to_json(const row& r);

class reporter {
 public:
  enum class format { json, table };

  reporter(format f, std::FILE* out) : format_(f), out_(out) {}

  // JSON: prints the row at once (flushed). Table: keeps it for finish().
  void add(row r);

  // Table: prints every row, aligned. JSON: nothing.
  void finish();

 private:
  format format_;
  std::FILE* out_;
  std::vector<row> rows_;
};

}  // namespace bench
