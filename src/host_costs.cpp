#include "batch_serving/detail/host_costs.hpp"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include "batch_serving/detail/completion_flag.hpp"
#include "batch_serving/detail/cpu_relax.hpp"

namespace batch_serving::detail {
namespace {

using clock = std::chrono::steady_clock;

double nanoseconds_between(clock::time_point from, clock::time_point to) {
  return std::chrono::duration<double, std::nano>(to - from).count();
}

double median(std::vector<double> samples) {
  if (samples.empty()) return 0;
  const auto middle = samples.begin() + static_cast<std::ptrdiff_t>(samples.size() / 2);
  std::nth_element(samples.begin(), middle, samples.end());
  return *middle;
}

// Mean ns of `op` over `repetitions`, the median of 5 such means.
template <class Op>
double ns_per_op(int repetitions, Op op) {
  std::vector<double> means;
  for (int run = 0; run < 5; ++run) {
    const auto start = clock::now();
    for (int i = 0; i < repetitions; ++i) op();
    means.push_back(nanoseconds_between(start, clock::now()) / repetitions);
  }
  return median(std::move(means));
}

// The turn two threads hand back and forth. Only the pinger writes
// ping/stop; the ponger only turns ping into pong (a compare-exchange, so a
// stop is never overwritten).
constexpr std::uint32_t pong = 0;  // the pinger's turn
constexpr std::uint32_t ping = 1;  // the ponger's turn
constexpr std::uint32_t stop = 2;

constexpr int warmup_trips = 4;
constexpr int timed_trips = 40;
constexpr auto measurement_limit = std::chrono::milliseconds(20);  // per kind

// Round trips of a futex hand-off: each side sleeps until the other wakes it.
double futex_round_trip_ns() {
  std::atomic<std::uint32_t> turn{pong};
  std::thread ponger([&] {
    while (true) {
      std::uint32_t seen = turn.load(std::memory_order_acquire);
      if (seen == stop) return;
      if (seen == ping) {
        if (turn.compare_exchange_strong(seen, pong, std::memory_order_acq_rel)) {
          wake_all_on_address(turn);
        }
        continue;
      }
      wait_on_address(turn, pong, std::chrono::nanoseconds(-1));
    }
  });
  std::vector<double> trips;
  const auto give_up = clock::now() + measurement_limit;
  for (int i = 0; i < warmup_trips + timed_trips && clock::now() < give_up; ++i) {
    const auto start = clock::now();
    turn.store(ping, std::memory_order_release);
    wake_all_on_address(turn);
    while (turn.load(std::memory_order_acquire) == ping) {
      wait_on_address(turn, ping, std::chrono::nanoseconds(-1));
    }
    if (i >= warmup_trips) trips.push_back(nanoseconds_between(start, clock::now()));
  }
  turn.store(stop, std::memory_order_release);
  wake_all_on_address(turn);
  ponger.join();
  return median(std::move(trips));
}

// Round trips of a spinning hand-off; 0 if the other thread did not answer
// in time (one core, or both threads on one).
double spin_round_trip_ns() {
  if (std::thread::hardware_concurrency() < 2) return 0;
  std::atomic<std::uint32_t> turn{pong};
  std::thread ponger([&] {
    while (true) {
      std::uint32_t seen = turn.load(std::memory_order_acquire);
      if (seen == stop) return;
      if (seen == ping) {
        turn.compare_exchange_strong(seen, pong, std::memory_order_acq_rel);
      } else {
        cpu_relax();
      }
    }
  });
  std::vector<double> trips;
  const auto give_up = clock::now() + measurement_limit;
  bool answered = true;
  for (int i = 0; i < warmup_trips + 5 * timed_trips && answered; ++i) {
    const auto start = clock::now();
    turn.store(ping, std::memory_order_release);
    for (int polls = 0; turn.load(std::memory_order_acquire) == ping; ++polls) {
      cpu_relax();
      if (polls % 64 == 63 && clock::now() >= give_up) {
        answered = false;
        break;
      }
    }
    if (answered && i >= warmup_trips) trips.push_back(nanoseconds_between(start, clock::now()));
  }
  turn.store(stop, std::memory_order_release);
  ponger.join();
  return median(std::move(trips));
}

}  // namespace

host_costs measure_host_costs() {
  host_costs costs;
  costs.pause_ns = ns_per_op(2000, [] { cpu_relax(); });
  costs.clock_ns = ns_per_op(2000, [] {
    const auto t = clock::now();
    asm volatile("" : : "r"(&t) : "memory");  // keep the read
  });
  costs.spin_rtt_ns = spin_round_trip_ns();
  costs.futex_rtt_ns = futex_round_trip_ns();
  return costs;
}

const host_costs& this_host() {
  static const host_costs measured = measure_host_costs();
  return measured;
}

std::chrono::nanoseconds spin_budget() {
  static const std::chrono::nanoseconds budget = [] {
    constexpr double least_ns = 2'000;
    constexpr double most_ns = 50'000;
    const double block_and_wake_ns = 2 * this_host().futex_rtt_ns;
    return std::chrono::nanoseconds(static_cast<std::int64_t>(std::clamp(block_and_wake_ns,
                                                                         least_ns, most_ns)));
  }();
  return budget;
}

}  // namespace batch_serving::detail
