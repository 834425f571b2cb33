// Spinning bounded in time, not in iterations: how long a `pause` lasts
// differs 3x between hosts, what a spin is weighed against (a wake-up) 10x.
#pragma once

#include <chrono>

#include "batch_serving/detail/cpu_relax.hpp"

namespace batch_serving::detail {

// Polls `done()` with a pause in between until it returns true or about
// `budget` has passed; returns the last `done()`. The clock is read every 16
// polls (a read costs about what a pause does), and first after 16 polls, so
// that a hand-off caught at once (the common case it is for) reads no clock:
// the budget is counted from there and overshoots by up to 32 pauses.
template <class Done>
bool spin_for(std::chrono::nanoseconds budget, Done&& done) {
  constexpr int polls_per_clock_read = 16;
  const auto polls = [&] {
    for (int i = 0; i < polls_per_clock_read; ++i) {
      if (done()) return true;
      cpu_relax();
    }
    return false;
  };
  if (polls()) return true;
  const auto until = std::chrono::steady_clock::now() + budget;
  while (true) {
    if (polls()) return true;
    if (std::chrono::steady_clock::now() >= until) return done();
  }
}

}  // namespace batch_serving::detail
