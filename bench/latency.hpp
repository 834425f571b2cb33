// Per-call latency recording: each thread owns a latency_samples and records
// into it without locks or shared writes; the samples of all threads are
// merged once the measurement is over.
//
//   latency_samples mine;                 // one per thread, on its own stack
//   mine.record(t1 - t0);                 // hot path: a push_back, nothing shared
//   ...
//   all[i] = std::move(mine);             // after the loop
//   latency_summary s = summarize(all);   // p50/p99 over every thread's samples
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace bench {

class latency_samples {
 public:
  void reserve(std::size_t n) { ns_.reserve(n); }
  void record(std::chrono::nanoseconds d) { ns_.push_back(d.count()); }

  std::size_t size() const noexcept { return ns_.size(); }
  const std::vector<std::int64_t>& nanoseconds() const noexcept { return ns_; }

 private:
  std::vector<std::int64_t> ns_;
};

// Percentiles in microseconds; empty when there were no samples.
struct latency_summary {
  std::optional<double> p50_us;
  std::optional<double> p99_us;
  std::size_t samples = 0;
};

// Nearest-rank percentile (0 < p <= 1) of `ns`, which it partially reorders.
inline double percentile_us(std::vector<std::int64_t>& ns, double p) {
  const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(ns.size())));
  const std::size_t index = rank == 0 ? 0 : rank - 1;
  std::nth_element(ns.begin(), ns.begin() + static_cast<std::ptrdiff_t>(index), ns.end());
  return static_cast<double>(ns[index]) / 1000.0;
}

// Merges every thread's samples and computes p50 and p99.
inline latency_summary summarize(const std::vector<latency_samples>& per_thread) {
  std::size_t total = 0;
  for (const auto& s : per_thread) total += s.size();
  latency_summary out;
  out.samples = total;
  if (total == 0) return out;
  std::vector<std::int64_t> all;
  all.reserve(total);
  for (const auto& s : per_thread) {
    all.insert(all.end(), s.nanoseconds().begin(), s.nanoseconds().end());
  }
  out.p50_us = percentile_us(all, 0.50);
  out.p99_us = percentile_us(all, 0.99);
  return out;
}

}  // namespace bench
