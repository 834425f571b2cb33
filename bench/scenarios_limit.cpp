// limit: the machine's floor for handing work to another thread and getting
// an answer back, which is what every blocking dispatch does at least once.
// Two threads ping-pong a turn for the configured duration:
//   condvar      std::mutex + std::condition_variable (what naive_batcher uses)
//   atomic_wait  std::atomic<int>::wait / notify_one (futex-based in libstdc++)
// round_trip_ns is the mean round trip (duration / round trips); p50_us and
// p99_us are the percentiles of individually timed round trips.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "latency.hpp"
#include "scenarios.hpp"
#include "workload.hpp"

namespace bench {
namespace {

using clock = std::chrono::steady_clock;

struct ping_pong_result {
  measurement figures;
  std::optional<double> round_trip_ns;
};

// Runs `round_trip()` until `duration` has passed (after `warmup`) and times
// each one; `finish()` releases the other thread.
template <class RoundTrip, class Finish>
ping_pong_result time_round_trips(std::chrono::milliseconds warmup,
                                  std::chrono::milliseconds duration, RoundTrip round_trip,
                                  Finish finish) {
  const auto warm_until = clock::now() + warmup;
  while (clock::now() < warm_until) round_trip();
  std::vector<latency_samples> samples(1);
  samples[0].reserve(1 << 16);
  std::uint64_t trips = 0;
  const auto start = clock::now();
  const auto end = start + duration;
  auto t0 = start;
  while (t0 < end) {
    round_trip();
    const auto t1 = clock::now();
    samples[0].record(t1 - t0);
    ++trips;
    t0 = t1;
  }
  const auto elapsed = std::chrono::duration<double, std::nano>(t0 - start).count();
  finish();
  const latency_summary latency = summarize(samples);
  ping_pong_result out;
  out.figures.p50_us = latency.p50_us;
  out.figures.p99_us = latency.p99_us;
  if (trips > 0) out.round_trip_ns = elapsed / static_cast<double>(trips);
  return out;
}

ping_pong_result measure_condvar(const config& cfg) {
  std::mutex mu;
  std::condition_variable to_ponger;
  std::condition_variable to_pinger;
  int turn = 0;  // 0: pinger's, 1: ponger's, 2: stop; guarded by mu
  std::thread ponger([&] {
    std::unique_lock lock(mu);
    while (true) {
      to_ponger.wait(lock, [&] { return turn != 0; });
      if (turn == 2) return;
      turn = 0;
      lock.unlock();
      to_pinger.notify_one();
      lock.lock();
    }
  });
  const auto round_trip = [&] {
    {
      std::lock_guard lock(mu);
      turn = 1;
    }
    to_ponger.notify_one();
    std::unique_lock lock(mu);
    to_pinger.wait(lock, [&] { return turn == 0; });
  };
  const auto finish = [&] {
    {
      std::lock_guard lock(mu);
      turn = 2;
    }
    to_ponger.notify_one();
    ponger.join();
  };
  return time_round_trips(cfg.warmup(), cfg.duration, round_trip, finish);
}

ping_pong_result measure_atomic_wait(const config& cfg) {
  std::atomic<int> turn{0};  // 0: pinger's, 1: ponger's, 2: stop
  std::thread ponger([&] {
    while (true) {
      turn.wait(0);
      if (turn.load() == 2) return;
      turn.store(0);
      turn.notify_one();
    }
  });
  const auto round_trip = [&] {
    turn.store(1);
    turn.notify_one();
    turn.wait(1);
  };
  const auto finish = [&] {
    turn.store(2);
    turn.notify_one();
    ponger.join();
  };
  return time_round_trips(cfg.warmup(), cfg.duration, round_trip, finish);
}

row to_row(const char* impl, const std::vector<ping_pong_result>& runs) {
  std::vector<measurement> figures;
  std::vector<std::optional<double>> round_trips;
  for (const auto& r : runs) {
    figures.push_back(r.figures);
    round_trips.push_back(r.round_trip_ns);
  }
  row out = make_row("limit", impl, std::nullopt, std::nullopt, std::nullopt, median_of(figures),
                     static_cast<int>(runs.size()));
  out.extra.emplace_back("round_trip_ns", median(round_trips));
  return out;
}

}  // namespace

void run_limit(const config& cfg, reporter& out) {
  progress(cfg, "limit: condvar and atomic wait ping-pong");
  std::vector<ping_pong_result> condvar;
  std::vector<ping_pong_result> atomic_wait;
  for (int run = 0; run < cfg.runs; ++run) {
    const auto [a, b] = side_by_side(
        run, [&] { return measure_condvar(cfg); }, [&] { return measure_atomic_wait(cfg); });
    condvar.push_back(a);
    atomic_wait.push_back(b);
  }
  out.add(to_row("condvar", condvar));
  out.add(to_row("atomic_wait", atomic_wait));
}

}  // namespace bench
