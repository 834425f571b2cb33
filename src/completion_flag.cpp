#include "batch_serving/detail/completion_flag.hpp"

#include <algorithm>
#include <climits>
#include <thread>

#include "batch_serving/detail/host_costs.hpp"
#include "batch_serving/detail/spin_estimate.hpp"
#include "batch_serving/detail/timed_spin.hpp"

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

void wake_one_on_address(std::atomic<std::uint32_t>& word) noexcept {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr,
          nullptr, 0);
}
#else
void wait_on_address(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                     std::chrono::nanoseconds) noexcept {
  word.wait(expected);  // portable fallback: no timed wait, callers poll
}
void wake_all_on_address(std::atomic<std::uint32_t>& word) noexcept { word.notify_all(); }
void wake_one_on_address(std::atomic<std::uint32_t>& word) noexcept { word.notify_one(); }
#endif

namespace {
// Spinning only pays while the thread that will set the flag can run on
// another core. With more waiting threads than spare cores (64 blocking
// callers on 2 cores) each caller's answer comes from a batch the cores are
// busy with, and every spinner steals the CPU that batch and the other
// callers need: then nobody spins. Sleeping waiters count too: they are the
// load that is about to run.
std::atomic<int> waiting_threads{0};
const int max_spinning_waiters =
    std::max(1, static_cast<int>(std::thread::hardware_concurrency()) - 1);

class waiting_thread {
 public:
  waiting_thread() noexcept
      : alone_enough_(waiting_threads.fetch_add(1, std::memory_order_relaxed) <
                      max_spinning_waiters) {}
  ~waiting_thread() { waiting_threads.fetch_sub(1, std::memory_order_relaxed); }
  waiting_thread(const waiting_thread&) = delete;
  waiting_thread& operator=(const waiting_thread&) = delete;

  bool may_spin() const noexcept { return alone_enough_; }

 private:
  bool alone_enough_;
};

// Shared by all waiters: whether their answers tend to come within a spin
// depends on the load, which they share.
spin_estimate answers_within_spin;
}  // namespace

int threads_waiting_on_flags() noexcept { return waiting_threads.load(std::memory_order_relaxed); }

bool completion_flag::spin(std::chrono::nanoseconds budget, bool alone_enough) const noexcept {
  if (is_set()) return true;
  if (!alone_enough || !answers_within_spin.worth_spinning()) return false;
  const bool caught = spin_for(budget, [this] { return is_set(); });
  answers_within_spin.learn(caught);
  return caught;
}

void completion_flag::wait() noexcept {
  if (is_set()) return;
  const waiting_thread counted;
  if (spin(spin_budget(), counted.may_spin())) return;
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
  if (is_set()) return true;
  const waiting_thread counted;
  const auto until_deadline = deadline - std::chrono::steady_clock::now();
  if (spin(std::min<std::chrono::nanoseconds>(spin_budget(), until_deadline), counted.may_spin())) {
    return true;
  }
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
