// How an idle partition spins instead of sleeping, on a machine with more
// than one core.
//
// Two cases pay for it:
//   - Spinning for the next call, up to about what blocking costs on this
//     host (spin_budget(), host_costs.hpp): a lone caller's next call often
//     comes within microseconds, and catching it saves the submitter a
//     wake-up system call and the partition a sleep/wake round trip. Learns
//     when spinning does not pay (spin_estimate.hpp).
//   - Lingering for company, while calls keep arriving less than a
//     microsecond apart, up to a full batch (times, not pause counts: a
//     pause lasts 13 ns on one host and 40 ns on another):
//     - eager mode (batch_timeout 0) takes whatever is queued, which suits a
//       lone caller but turns a stream of calls (one thread submitting
//       futures as fast as it can) into executions of one or two items, each
//       fighting the submitter for the queue. So when more than one call
//       arrived since the partition last took a batch, it first lets the
//       stream fill the batch, for up to 8 µs. A lone blocking caller never
//       triggers this (its next call cannot come before its answer).
//     - timed mode waits for a full batch anyway; it lingers for callers
//       that come back once answered (coroutines and callbacks resumed by the
//       last execution, no thread blocked on each), for up to two spin
//       budgets, so the partition does not sleep and get woken once per
//       batch in series with them. Not for an open stream (calls arrived
//       while the execution ran), and not while as many threads block on
//       answers as there are cores: those need the cores to come back.
//
// Both spin without the queue lock, on a counter of arrivals the engine bumps
// under it; what they see is only a hint, re-checked under the lock.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <thread>

#include "batch_serving/detail/completion_flag.hpp"
#include "batch_serving/detail/host_costs.hpp"
#include "batch_serving/detail/spin_estimate.hpp"
#include "batch_serving/detail/timed_spin.hpp"

namespace batch_serving::detail {

class idle_spinner {
 public:
  // Spins only where it can pay: more than one core. `eager`: batch_timeout 0.
  // Asks for spin_budget() even when disabled: the host is measured once, as
  // the first server starts, rather than in its first caller's wait.
  explicit idle_spinner(bool eager)
      : enabled_(std::thread::hardware_concurrency() > 1),
        budget_(spin_budget()),
        linger_limit_(eager ? std::chrono::nanoseconds(std::chrono::microseconds(8)) : 2 * budget_),
        paced_looks_(!eager) {}

  bool enabled() const noexcept { return enabled_; }

  // A call arrived. Called under the engine's queue lock (one writer at a time).
  void count_arrival() noexcept {
    arrivals_.store(arrivals_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  std::uint64_t arrivals() const noexcept { return arrivals_.load(std::memory_order_relaxed); }

  // Whether a spin for the next call is worth trying now.
  bool worth_spinning() noexcept {
    return leaves_callers_a_core() && work_within_spin_.worth_spinning();
  }

  // Spins up to what blocking costs on this host (spin_budget()) for an
  // arrival after `seen`; learns whether it came. Call without the queue lock.
  void spin_for_arrival(std::uint64_t seen) noexcept {
    work_within_spin_.learn(spin_for(budget_, [&] { return arrivals() != seen; }));
  }

  // Whether to linger for company now: in eager mode when more than one
  // call arrived since the partition last took a batch (`arrivals_at_take`:
  // arrivals() then); in timed mode when the last execution's callers are a
  // closed loop (`closed_loop`: its take emptied the queue and no call came
  // while it ran) and a call came since. Timed mode lingers for callers that
  // come back for more once answered (coroutines resumed by the last
  // execution): the partition would otherwise sleep and be woken once per
  // batch, in series with them. Calls that kept coming while it ran are an
  // open stream: there it sleeps until the batch is full, as before, and
  // leaves the stream's cache lines alone.
  bool worth_lingering(std::uint64_t arrivals_at_take, bool closed_loop) const noexcept {
    const std::uint64_t since = arrivals() - arrivals_at_take;
    return paced_looks_ ? closed_loop && since >= 1 && leaves_callers_a_core() : since > 1;
  }

  // Waits while calls keep arriving less than about a microsecond apart,
  // until `batch_size` arrived since `arrivals_at_take`, the linger limit
  // passed (8 µs in eager mode, two spin budgets in timed mode) or `due`
  // (the batch's due time in timed mode) came. Call without the queue lock.
  //
  // Eager mode watches the counter closely: its batches are a few calls.
  // Timed mode looks only when the batch should be full at the rate the
  // calls are coming (at least ~250 ns apart): every look pulls the line the
  // submitters write from their core, and a submitter of one call every
  // 75 ns slows down by a third when each of its calls pays that miss.
  void linger_for_company(std::uint64_t arrivals_at_take, std::size_t batch_size,
                          std::chrono::steady_clock::time_point due) const noexcept {
    using std::chrono::steady_clock;
    constexpr auto quiet_limit = std::chrono::microseconds(1);  // without an arrival
    const auto start = steady_clock::now();
    auto last_arrival_at = start;
    const std::uint64_t first = arrivals();
    std::uint64_t last = first;
    auto next_look = start;
    spin_for(linger_limit_, [&] {
      if (paced_looks_ && steady_clock::now() < next_look) return false;
      const std::uint64_t now_seen = arrivals();
      if (now_seen - arrivals_at_take >= batch_size) return true;
      const auto now = steady_clock::now();
      if (now >= due) return true;  // the batch runs now, full or not
      if (now_seen == last) return now - last_arrival_at >= quiet_limit;
      last = now_seen;
      last_arrival_at = now;
      if (paced_looks_) {
        next_look = now + until_full(now - start, now_seen - first,
                                     batch_size - (now_seen - arrivals_at_take));
      }
      return false;
    });
  }

  // When the batch should be full: `missing` more calls at the rate of
  // `seen` calls in `elapsed`; within [250 ns, 1 µs] (the quiet limit).
  static std::chrono::nanoseconds until_full(std::chrono::nanoseconds elapsed, std::uint64_t seen,
                                             std::uint64_t missing) noexcept {
    constexpr std::chrono::nanoseconds least(250);
    constexpr std::chrono::nanoseconds most(1000);
    if (seen == 0) return least;
    const auto per_call = elapsed / static_cast<std::int64_t>(seen);
    const auto calls = static_cast<std::int64_t>(std::min<std::uint64_t>(missing, 1000));
    return std::clamp(per_call * calls, least, most);
  }

 private:
  // Timed mode spins only while fewer threads block on answers than there
  // are cores: 64 blocking callers on 2 cores are woken one by one and need
  // both cores to come back (spinning for them took 64 callers at 1 ms from
  // 1.20x to 0.92x naive's items/s); coroutine and callback callers block no
  // thread.
  bool leaves_callers_a_core() const noexcept {
    return !paced_looks_ || threads_waiting_on_flags() < cores_;
  }

  const bool enabled_;
  const int cores_ = static_cast<int>(std::thread::hardware_concurrency());
  const std::chrono::nanoseconds budget_;
  const std::chrono::nanoseconds linger_limit_;
  const bool paced_looks_;  // timed mode: look when the batch should be full
  // Calls ever queued; written under the engine's queue lock, polled without it.
  std::atomic<std::uint64_t> arrivals_{0};
  spin_estimate work_within_spin_;
};

}  // namespace batch_serving::detail
