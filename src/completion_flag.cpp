#include "batch_serving/detail/completion_flag.hpp"

#include <algorithm>
#include <climits>
#include <thread>

#include "batch_serving/detail/cpu_relax.hpp"
#include "batch_serving/detail/spin_estimate.hpp"

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#endif

namespace batch_serving::detail {

#if defined(__linux__)
void wait_on_address(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                     std::chrono::nanoseconds timeout) noexcept {
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
  timespec ts{};
  timespec* tsp = nullptr;
  if (timeout.count() >= 0) {
    ts.tv_sec = static_cast<time_t>(timeout.count() / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(timeout.count() % 1'000'000'000);
    tsp = &ts;
  }
  // Returns on a wake, a timeout, a signal, or at once if *word != expected;
  // callers re-check their condition in every case.
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, tsp,
          nullptr, 0);
}

void wake_all_on_address(std::atomic<std::uint32_t>& word) noexcept {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr,
          nullptr, 0);
}
#else
void wait_on_address(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                     std::chrono::nanoseconds) noexcept {
  word.wait(expected);  // portable fallback: no timed wait, callers poll
}
void wake_all_on_address(std::atomic<std::uint32_t>& word) noexcept { word.notify_all(); }
#endif

namespace {
// About 2-4 µs of spinning: long enough to catch a completion already under
// way on the other core, far shorter than a sleep/wake round trip (~6 µs).
constexpr int spin_iterations = 128;

// Spinning only pays while the thread that will set the flag can run on
// another core. With more waiters than cores (64 blocking callers on 2 cores)
// every spinner steals the CPU the executor needs, so at most cores - 1
// waiters spin at once; the rest go straight to sleep.
std::atomic<int> spinning_waiters{0};
const int max_spinning_waiters =
    std::max(1, static_cast<int>(std::thread::hardware_concurrency()) - 1);

class spin_slot {
 public:
  spin_slot() noexcept
      : granted_(spinning_waiters.fetch_add(1, std::memory_order_relaxed) < max_spinning_waiters) {}
  ~spin_slot() { spinning_waiters.fetch_sub(1, std::memory_order_relaxed); }
  bool granted() const noexcept { return granted_; }

 private:
  bool granted_;
};

// Shared by all waiters: whether their answers tend to come within a spin
// depends on the load, which they share.
spin_estimate answers_within_spin;
}  // namespace

bool completion_flag::spin() const noexcept {
  if (is_set()) return true;
  if (!answers_within_spin.worth_spinning()) return false;
  const spin_slot slot;
  if (!slot.granted()) return is_set();
  for (int i = 0; i < spin_iterations; ++i) {
    if (is_set()) {
      answers_within_spin.learn(true);
      return true;
    }
    cpu_relax();
  }
  const bool caught = is_set();
  answers_within_spin.learn(caught);
  return caught;
}

void completion_flag::wait() noexcept {
  if (spin()) return;
  std::uint32_t seen = unset_;
  while (true) {
    if (seen == unset_ &&
        !state_.compare_exchange_strong(seen, sleeping_, std::memory_order_acq_rel,
                                        std::memory_order_acquire)) {
      if (seen == set_) return;
    }
    wait_on_address(state_, sleeping_, std::chrono::nanoseconds(-1));
    seen = state_.load(std::memory_order_acquire);
    if (seen == set_) return;
  }
}

bool completion_flag::wait_until(std::chrono::steady_clock::time_point deadline) noexcept {
  if (spin()) return true;
  std::uint32_t seen = unset_;
  while (true) {
    if (seen == unset_ &&
        !state_.compare_exchange_strong(seen, sleeping_, std::memory_order_acq_rel,
                                        std::memory_order_acquire)) {
      if (seen == set_) return true;
    }
    auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::nanoseconds::zero()) return is_set();
    wait_on_address(state_, sleeping_, std::chrono::duration_cast<std::chrono::nanoseconds>(left));
    seen = state_.load(std::memory_order_acquire);
    if (seen == set_) return true;
  }
}

}  // namespace batch_serving::detail
