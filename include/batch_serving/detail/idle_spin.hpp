// How an idle partition spins instead of sleeping, in eager mode
// (batch_timeout 0) on a machine with more than one core.
//
// Two cases pay for it:
//   - Spinning for the next call, up to about what blocking costs on this
//     host (spin_budget(), host_costs.hpp): a lone caller's next call often
//     comes within microseconds, and catching it saves the submitter a
//     wake-up system call and the partition a sleep/wake round trip. Learns
//     when spinning does not pay (spin_estimate.hpp).
//   - Lingering for company: eager mode takes whatever is queued, which suits
//     a lone caller but turns a stream of calls (one thread submitting
//     futures as fast as it can) into executions of one or two items, each
//     fighting the submitter for the queue. So when more than one call
//     arrived since the partition last took a batch, it first lets the
//     stream fill the batch: it waits while calls keep arriving less than
//     a microsecond apart, up to a full batch or 8 µs in all (times, not
//     pause counts: a pause lasts 13 ns on one host and 40 ns on another). A lone blocking caller
//     never triggers this (its next call cannot come before its answer).
//
// Both spin without the queue lock, on a counter of arrivals the engine bumps
// under it; what they see is only a hint, re-checked under the lock.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <thread>

#include "batch_serving/detail/host_costs.hpp"
#include "batch_serving/detail/spin_estimate.hpp"
#include "batch_serving/detail/timed_spin.hpp"

namespace batch_serving::detail {

class idle_spinner {
 public:
  // Spins only where it can pay: eager mode, more than one core.
  // Asks for spin_budget() even when disabled: the host is measured once, as
  // the first server starts, rather than in its first caller's wait.
  explicit idle_spinner(bool eager)
      : enabled_(eager && std::thread::hardware_concurrency() > 1), budget_(spin_budget()) {}

  bool enabled() const noexcept { return enabled_; }

  // A call arrived. Called under the engine's queue lock (one writer at a time).
  void count_arrival() noexcept {
    arrivals_.store(arrivals_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  std::uint64_t arrivals() const noexcept { return arrivals_.load(std::memory_order_relaxed); }

  // Whether a spin for the next call is worth trying now.
  bool worth_spinning() noexcept { return work_within_spin_.worth_spinning(); }

  // Spins up to what blocking costs on this host (spin_budget()) for an
  // arrival after `seen`; learns whether it came. Call without the queue lock.
  void spin_for_arrival(std::uint64_t seen) noexcept {
    work_within_spin_.learn(spin_for(budget_, [&] { return arrivals() != seen; }));
  }

  // True when more than one call arrived since `arrivals_at_take` (what
  // arrivals() was when the partition last took a batch).
  bool in_a_stream_of_calls(std::uint64_t arrivals_at_take) const noexcept {
    return arrivals() - arrivals_at_take > 1;
  }

  // Waits while calls keep arriving less than about a microsecond apart,
  // until `batch_size` arrived since `arrivals_at_take` or a few
  // microseconds passed. Call without the queue lock.
  void linger_for_company(std::uint64_t arrivals_at_take, std::size_t batch_size) const noexcept {
    using std::chrono::steady_clock;
    constexpr auto quiet_limit = std::chrono::microseconds(1);  // without an arrival
    constexpr auto total_limit = std::chrono::microseconds(8);
    const auto start = steady_clock::now();
    auto last_arrival_at = start;
    std::uint64_t last = arrivals();
    spin_for(total_limit, [&] {
      const std::uint64_t now_seen = arrivals();
      if (now_seen - arrivals_at_take >= batch_size) return true;
      if (now_seen != last) {
        last = now_seen;
        last_arrival_at = steady_clock::now();
        return false;
      }
      return steady_clock::now() - last_arrival_at >= quiet_limit;
    });
  }

 private:
  const bool enabled_;
  const std::chrono::nanoseconds budget_;
  // Calls ever queued; written under the engine's queue lock, polled without it.
  std::atomic<std::uint64_t> arrivals_{0};
  spin_estimate work_within_spin_;
};

}  // namespace batch_serving::detail
