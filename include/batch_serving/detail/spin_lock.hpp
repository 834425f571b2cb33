// A one-byte lock for critical sections that are a few dozen instructions long
// and almost never contended (a call's completion state). Spins with a pause
// instruction, then yields so a preempted holder can finish.
#pragma once

#include <atomic>
#include <thread>

#include "batch_serving/detail/cpu_relax.hpp"
#include "batch_serving/detail/thread_annotations.hpp"

namespace batch_serving::detail {

class BATCH_SERVING_CAPABILITY("spin lock") spin_lock {
 public:
  void lock() noexcept BATCH_SERVING_ACQUIRE() {
    for (unsigned spins = 0; locked_.exchange(true, std::memory_order_acquire); ++spins) {
      while (locked_.load(std::memory_order_relaxed)) {
        if (spins++ < 64) {
          cpu_relax();
        } else {
          std::this_thread::yield();
        }
      }
    }
  }
  void unlock() noexcept BATCH_SERVING_RELEASE() {
    locked_.store(false, std::memory_order_release);
  }

 private:
  std::atomic<bool> locked_{false};
};

}  // namespace batch_serving::detail
