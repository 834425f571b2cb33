// One measurement's figures, the median over repeated runs, and the batch
// counters both implementations expose (for the mean batch fill).
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

namespace bench {

struct measurement {
  std::optional<double> items_per_s;
  std::optional<double> p50_us;
  std::optional<double> p99_us;
  std::optional<double> mean_batch;
  // CPU time of the whole process (every thread: callers, partitions,
  // spinning included) per item answered in the window, in us.
  std::optional<double> cpu_us_per_item;
};

// Executions and executed items so far, read from a server's stats() or the
// naive batcher's counters.
struct batch_counters {
  std::uint64_t executions = 0;
  std::uint64_t items = 0;
};

// Mean items per execution between two readings; empty if none ran.
inline std::optional<double> mean_batch(batch_counters before, batch_counters after) {
  const std::uint64_t executions = after.executions - before.executions;
  if (executions == 0) return std::nullopt;
  return static_cast<double>(after.items - before.items) / static_cast<double>(executions);
}

// The median of the values present (the mean of the middle two for an even
// count); empty if none is.
inline std::optional<double> median(const std::vector<std::optional<double>>& values) {
  std::vector<double> present;
  for (const auto& v : values) {
    if (v) present.push_back(*v);
  }
  if (present.empty()) return std::nullopt;
  std::sort(present.begin(), present.end());
  const std::size_t mid = present.size() / 2;
  return present.size() % 2 == 1 ? present[mid] : (present[mid - 1] + present[mid]) / 2.0;
}

// Field by field: each figure is the median of that figure over the runs.
inline measurement median_of(const std::vector<measurement>& runs) {
  const auto field = [&runs](std::optional<double> measurement::*member) {
    std::vector<std::optional<double>> values;
    for (const auto& m : runs) values.push_back(m.*member);
    return median(values);
  };
  return {field(&measurement::items_per_s), field(&measurement::p50_us),
          field(&measurement::p99_us), field(&measurement::mean_batch),
          field(&measurement::cpu_us_per_item)};
}

}  // namespace bench
