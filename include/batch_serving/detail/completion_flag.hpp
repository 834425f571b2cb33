// A one-shot flag a single waiter blocks on until another thread sets it.
//
// Waiting is adaptive: the waiter spins for about what blocking costs on
// this host (spin_budget(), host_costs.hpp), then announces that it sleeps
// and sleeps on a futex. It spins only while spins have been catching their
// answers (spin_estimate.hpp) and while fewer threads wait on flags than
// there are cores: with more, the cores are busy running what they wait for.
// `set()` is a plain atomic exchange when nobody sleeps, so a spinning
// waiter is released without a system call; only a sleeping waiter costs a
// wake.
//
// Memory ordering: everything written before set() is visible to a waiter
// that returned from wait() / saw is_set() (release/acquire on state_).
//
// set() may run concurrently with the flag's owner freeing it once it sees the
// flag set: the only access after the exchange is the futex wake, which uses
// the address as a key and never reads the memory.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace batch_serving::detail {

// Thin wrappers over the platform's address-keyed wait (futex on Linux).
void wait_on_address(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                     std::chrono::nanoseconds timeout) noexcept;  // timeout < 0: none
void wake_all_on_address(std::atomic<std::uint32_t>& word) noexcept;
void wake_one_on_address(std::atomic<std::uint32_t>& word) noexcept;

// Threads in completion_flag::wait or wait_until right now, in the process
// (blocking callers): with as many as there are cores, nobody should spin.
int threads_waiting_on_flags() noexcept;

class completion_flag {
 public:
  bool is_set() const noexcept { return state_.load(std::memory_order_acquire) == set_; }

  // Sets the flag and wakes the waiter. Call at most once.
  void set() noexcept {
    if (state_.exchange(set_, std::memory_order_acq_rel) == sleeping_) wake_all_on_address(state_);
  }

  // Blocks until set().
  void wait() noexcept;

  // Blocks until set() or `deadline`; true if set.
  bool wait_until(std::chrono::steady_clock::time_point deadline) noexcept;

 private:
  static constexpr std::uint32_t unset_ = 0;
  static constexpr std::uint32_t sleeping_ = 1;
  static constexpr std::uint32_t set_ = 2;

  // Spins up to `budget` (spin_budget(): what blocking costs here)
  // if `alone_enough` (fewer waiting threads than cores) and spins have been
  // paying lately; true if the flag got set.
  bool spin(std::chrono::nanoseconds budget, bool alone_enough) const noexcept;

  std::atomic<std::uint32_t> state_{unset_};
};

}  // namespace batch_serving::detail
