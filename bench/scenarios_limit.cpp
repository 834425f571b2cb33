// limit: the machine's floor for handing work to another thread and getting
// an answer back, which is what every blocking dispatch does at least once.
// Two threads ping-pong a turn for the configured duration:
//   condvar      std::mutex + std::condition_variable (what naive_batcher uses)
//   atomic_wait  std::atomic<int>::wait / notify_one (futex-based in libstdc++)
//   spin         both threads spin on one atomic (pause between loads): the
//                cache-line hand-off, the floor of any hand-off that does not sleep
// round_trip_ns is the mean round trip (duration / round trips); p50_us and
// p99_us are the percentiles of individually timed round trips.
// Two more rows time what spinning and the hot path are counted in:
//   pause        ns_per_op: one pause instruction (cpu_relax)
//   clock_now    ns_per_op: one std::chrono::steady_clock::now()
// Hosts differ by up to 10x in all of these; read other figures against them.
//
// host: one row, measured before every run's scenarios, with this host's
// floors as the library measures them for its own spinning
// (detail/host_costs.hpp: pause_ns, clock_ns, spin_rtt_ns, futex_rtt_ns) and
// condvar_rtt_ns, the naive batcher's hand-off; spin_budget_ns is how long
// the library's waiters spin here.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "batch_serving/detail/cpu_relax.hpp"
#include "batch_serving/detail/host_costs.hpp"
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

ping_pong_result measure_spin(const config& cfg) {
  std::atomic<int> turn{0};  // 0: pinger's, 1: ponger's, 2: stop
  std::thread ponger([&] {
    while (true) {
      int t = 0;
      while ((t = turn.load(std::memory_order_acquire)) == 0) batch_serving::detail::cpu_relax();
      if (t == 2) return;
      turn.store(0, std::memory_order_release);
    }
  });
  const auto round_trip = [&] {
    turn.store(1, std::memory_order_release);
    while (turn.load(std::memory_order_acquire) != 0) batch_serving::detail::cpu_relax();
  };
  const auto finish = [&] {
    turn.store(2, std::memory_order_release);
    ponger.join();
  };
  return time_round_trips(cfg.warmup(), cfg.duration, round_trip, finish);
}

// Mean ns of `op` over enough repetitions to take about 20 ms.
template <class Op>
double ns_per_op(Op op) {
  constexpr int batch = 4096;
  std::uint64_t done = 0;
  const auto start = clock::now();
  auto now = start;
  while (now - start < std::chrono::milliseconds(20)) {
    for (int i = 0; i < batch; ++i) op();
    done += batch;
    now = clock::now();
  }
  return std::chrono::duration<double, std::nano>(now - start).count() / static_cast<double>(done);
}

row cost_row(const char* impl, std::vector<std::optional<double>> costs) {
  row out = make_row("limit", impl, std::nullopt, std::nullopt, std::nullopt, measurement{},
                     static_cast<int>(costs.size()));
  out.extra.emplace_back("ns_per_op", median(costs));
  return out;
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

void run_host(const config& cfg, reporter& out) {
  config brief = cfg;  // a floor, not a figure to study: 50 ms of condvar at most
  brief.duration = std::min(cfg.duration, std::chrono::milliseconds(50));
  std::vector<batch_serving::detail::host_costs> runs;
  std::vector<std::optional<double>> condvar;
  for (int run = 0; run < cfg.runs; ++run) {
    runs.push_back(batch_serving::detail::measure_host_costs());
    condvar.push_back(measure_condvar(brief).round_trip_ns);
  }
  const auto median_of_field = [&](double batch_serving::detail::host_costs::*field) {
    std::vector<std::optional<double>> values;
    for (const auto& r : runs) values.emplace_back(r.*field);
    return median(values);
  };
  using costs = batch_serving::detail::host_costs;
  row host = make_row("host", "this host", std::nullopt, std::nullopt, std::nullopt, measurement{},
                      cfg.runs);
  host.extra.emplace_back("pause_ns", median_of_field(&costs::pause_ns));
  host.extra.emplace_back("spin_rtt_ns", median_of_field(&costs::spin_rtt_ns));
  host.extra.emplace_back("condvar_rtt_ns", median(condvar));
  host.extra.emplace_back("futex_rtt_ns", median_of_field(&costs::futex_rtt_ns));
  host.extra.emplace_back("clock_ns", median_of_field(&costs::clock_ns));
  host.extra.emplace_back("spin_budget_ns",
                          static_cast<double>(batch_serving::detail::spin_budget().count()));
  if (cfg.progress) {
    const auto shown = [](std::optional<double> v) { return v.value_or(0); };
    std::fprintf(stderr,
                 "  host: pause %.1f ns, clock %.1f ns, round trips: spin %.2f us, futex %.1f us, "
                 "condvar %.1f us; the library spins up to %.1f us\n",
                 shown(host.extra[0].second), shown(host.extra[4].second),
                 shown(host.extra[1].second) / 1000, shown(host.extra[3].second) / 1000,
                 shown(host.extra[2].second) / 1000, shown(host.extra[5].second) / 1000);
  }
  out.add(std::move(host));
}

void run_limit(const config& cfg, reporter& out) {
  progress(cfg, "limit: condvar, atomic wait and spin ping-pong; pause and clock costs");
  std::vector<ping_pong_result> condvar;
  std::vector<ping_pong_result> atomic_wait;
  std::vector<ping_pong_result> spin;
  std::vector<std::optional<double>> pause;
  std::vector<std::optional<double>> clock_now;
  for (int run = 0; run < cfg.runs; ++run) {
    const auto [a, b] = side_by_side(
        run, [&] { return measure_condvar(cfg); }, [&] { return measure_atomic_wait(cfg); });
    condvar.push_back(a);
    atomic_wait.push_back(b);
    spin.push_back(measure_spin(cfg));
    pause.push_back(ns_per_op([] { batch_serving::detail::cpu_relax(); }));
    clock_now.push_back(ns_per_op([] {
      const auto t = clock::now();
      asm volatile("" : : "r"(&t) : "memory");  // keep the read
    }));
  }
  out.add(to_row("condvar", condvar));
  out.add(to_row("atomic_wait", atomic_wait));
  out.add(to_row("spin", spin));
  out.add(cost_row("pause", pause));
  out.add(cost_row("clock_now", clock_now));
}

}  // namespace bench
