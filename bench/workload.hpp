// What the sync, async, many and memory scenarios batch (squaring ints, the
// cheapest possible batch function, so the batcher's own cost shows), and
// small helpers the scenarios share.
#pragma once

#include <batch_serving/batch_serving.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "config.hpp"
#include "measurement.hpp"
#include "naive_batcher.hpp"
#include "report.hpp"

namespace bench {

inline std::vector<int> square_all(std::span<const int> xs) {
  std::vector<int> out;
  out.reserve(xs.size());
  for (const int x : xs) out.push_back(x * x);
  return out;
}

// The input of call number `n` of caller `who`; small enough to square.
inline int input_for(std::size_t who, std::uint64_t n) {
  return static_cast<int>((who * 7919 + n) % 10'000);
}

// Where a scenario's server reports metrics: nowhere unless --metrics.
inline batch_serving::metrics_registry* metrics_of(const config& cfg) {
  return cfg.metrics ? &batch_serving::metrics_registry::global() : nullptr;
}

inline batch_serving::serving<int, int> squares() {
  return batch_serving::serving<int, int>([](std::span<const int> xs) { return square_all(xs); });
}

template <class Server>
batch_counters counters_of(const Server& srv) {
  const batch_serving::server_stats s = srv.stats();
  return {s.executions, s.items_executed};
}

template <class In, class Out>
batch_counters counters_of(const naive_batcher<In, Out>& b) {
  return {b.executions(), b.items_executed()};
}

// Measures `a` and `b` once each, alternating from run to run which goes
// first, so that neither always runs on the warmer (or busier) machine.
template <class A, class B>
auto side_by_side(int run, A a, B b) {
  decltype(a()) first{};
  decltype(b()) second{};
  if (run % 2 == 0) {
    first = a();
    second = b();
  } else {
    second = b();
    first = a();
  }
  return std::pair(std::move(first), std::move(second));
}

// A row from the median figures of `runs` runs.
inline row make_row(std::string scenario, std::string impl, std::optional<std::int64_t> callers,
                    std::optional<std::int64_t> batch_size,
                    std::optional<std::int64_t> batch_timeout_us, const measurement& m, int runs) {
  row r;
  r.scenario = std::move(scenario);
  r.impl = std::move(impl);
  r.callers = callers;
  r.batch_size = batch_size;
  r.batch_timeout_us = batch_timeout_us;
  r.items_per_s = m.items_per_s;
  r.p50_us = m.p50_us;
  r.p99_us = m.p99_us;
  r.mean_batch = m.mean_batch;
  r.runs = runs;
  if (m.cpu_us_per_item) r.extra.emplace_back("cpu_us_per_item", m.cpu_us_per_item);
  return r;
}

// A progress line on stderr (the results go to stdout).
inline void progress(const config& cfg, const std::string& what) {
  if (!cfg.progress) return;
  std::fprintf(stderr, "  %s\n", what.c_str());
  std::fflush(stderr);
}

// Throws when a measurement saw wrong answers.
inline void require_no_failures(std::uint64_t failed, const std::string& where) {
  if (failed != 0) {
    throw std::runtime_error(where + ": " + std::to_string(failed) +
                             " calls failed or returned a wrong answer");
  }
}

}  // namespace bench
