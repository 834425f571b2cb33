// A closed-loop load: C caller threads, each making one blocking call after
// another for a fixed time, and what came out of it (items/s, per-call
// latency percentiles, mean batch fill, CPU time per item).
//
// Timeline: all threads are started and ready before the clock starts; then
// a warm-up (not counted), then the measured window. A call counts when it
// ends inside the window; its latency is recorded then, in the thread's own
// latency_samples (no locks, nothing shared on the hot path).
//
//   auto r = run_closed_loop(64, warmup, duration,
//       [&](std::size_t thread) { return [&]() -> std::size_t { ...one call...; return items_ok; };
//       },
//       [&] { return batch_counters{...}; });
#pragma once

#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <latch>
#include <thread>
#include <utility>
#include <vector>

#include "latency.hpp"
#include "measurement.hpp"

namespace bench {

// User and system CPU time of every thread of this process so far, in s.
inline double process_cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

struct loop_result {
  measurement figures;
  std::uint64_t failed_calls = 0;  // calls whose answer was wrong or an error
};

// make_caller(i) runs in thread i and returns the callable that makes one
// call; that callable returns the number of items answered correctly (0 for a
// failed or wrong answer). counters() reads the implementation's batch
// counters at the start and end of the window.
template <class MakeCaller, class Counters>
loop_result run_closed_loop(std::size_t callers, std::chrono::milliseconds warmup,
                            std::chrono::milliseconds duration, MakeCaller make_caller,
                            Counters counters) {
  using clock = std::chrono::steady_clock;
  struct thread_result {
    latency_samples latencies;
    std::uint64_t items = 0;
    std::uint64_t failed = 0;
  };

  std::vector<thread_result> results(callers);
  std::latch ready(static_cast<std::ptrdiff_t>(callers));
  std::atomic<bool> go{false};
  clock::time_point window_start;  // written before go, read after it
  clock::time_point window_end;

  std::vector<std::thread> threads;
  threads.reserve(callers);
  for (std::size_t i = 0; i < callers; ++i) {
    threads.emplace_back([&, i] {
      auto one_call = make_caller(i);
      thread_result mine;
      mine.latencies.reserve(1024);
      ready.count_down();
      go.wait(false, std::memory_order_acquire);
      const auto start = window_start;
      const auto end = window_end;
      while (true) {
        const auto t0 = clock::now();
        if (t0 >= end) break;
        const std::size_t items = one_call();
        const auto t1 = clock::now();
        if (items == 0) {
          ++mine.failed;
        } else if (t1 > start && t1 <= end) {
          mine.items += items;
          mine.latencies.record(t1 - t0);
        }
      }
      results[i] = std::move(mine);
    });
  }

  ready.wait();
  window_start = clock::now() + warmup;
  window_end = window_start + duration;
  go.store(true, std::memory_order_release);
  go.notify_all();
  std::this_thread::sleep_until(window_start);
  const batch_counters before = counters();
  const double cpu_before = process_cpu_seconds();
  std::this_thread::sleep_until(window_end);
  const double cpu_after = process_cpu_seconds();
  const batch_counters after = counters();
  for (auto& t : threads) t.join();

  loop_result out;
  std::uint64_t items = 0;
  std::vector<latency_samples> samples;
  samples.reserve(callers);
  for (auto& r : results) {
    items += r.items;
    out.failed_calls += r.failed;
    samples.push_back(std::move(r.latencies));
  }
  const latency_summary latency = summarize(samples);
  const double seconds = std::chrono::duration<double>(duration).count();
  out.figures.items_per_s = static_cast<double>(items) / seconds;
  out.figures.p50_us = latency.p50_us;
  out.figures.p99_us = latency.p99_us;
  out.figures.mean_batch = mean_batch(before, after);
  if (items > 0) {
    out.figures.cpu_us_per_item = (cpu_after - cpu_before) * 1e6 / static_cast<double>(items);
  }
  return out;
}

}  // namespace bench
