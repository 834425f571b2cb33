// Whether spinning before sleeping tends to pay off, learned from recent
// spins, as adaptive mutexes do.
//
// Spinning wins when what a thread waits for arrives within the spin (an
// answer computed on the other core, the next call of a lone caller); it
// wastes a core when it arrives much later (64 callers whose answers are a
// batch timeout away). The estimate is how often recent spins caught their
// event, in 1/1024ths, moved 1/8 of the way towards each outcome. Below 1/16
// spinning is skipped, except every 16th time, so the estimate recovers when
// the load changes. Updates race benignly: it is only a hint.
#pragma once

#include <atomic>

namespace batch_serving::detail {

class spin_estimate {
 public:
  bool worth_spinning() noexcept {
    if (success_.load(std::memory_order_relaxed) >= threshold) return true;
    return skipped_.fetch_add(1, std::memory_order_relaxed) % probe_every == 0;
  }

  void learn(bool caught) noexcept {
    const int old = success_.load(std::memory_order_relaxed);
    const int target = caught ? scale : 0;
    success_.store(old + (target - old) / 8, std::memory_order_relaxed);
  }

 private:
  static constexpr int scale = 1024;
  static constexpr int threshold = scale / 16;
  static constexpr unsigned probe_every = 16;

  std::atomic<int> success_{scale / 2};
  std::atomic<unsigned> skipped_{0};
};

}  // namespace batch_serving::detail
