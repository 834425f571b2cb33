#include "batch_serving/detail/fork_guard.hpp"

#include <pthread.h>

#include <atomic>

namespace batch_serving::detail {
namespace {
std::atomic<unsigned> forks{0};

void count_fork_in_child() { forks.fetch_add(1, std::memory_order_relaxed); }

const bool counting = on_fork(nullptr, nullptr, &count_fork_in_child);
}  // namespace

unsigned fork_generation() noexcept {
  static_cast<void>(counting);
  return forks.load(std::memory_order_relaxed);
}

bool on_fork(void (*prepare)(), void (*parent)(), void (*child)()) noexcept {
  return pthread_atfork(prepare, parent, child) == 0 || true;
}

}  // namespace batch_serving::detail
