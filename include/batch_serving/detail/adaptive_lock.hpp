// Takes a std::mutex the way adaptive mutexes do: try for a moment, then
// block. The engine's queue mutex is held for well under a microsecond, but
// a thread that blocks on it pays a sleep and a wake (several µs of system
// calls and context switches on both sides). Spinning briefly first turns
// most of those into a short wait on the other core.
#pragma once

#include <mutex>

#include "batch_serving/detail/cpu_relax.hpp"

namespace batch_serving::detail {

inline std::unique_lock<std::mutex> lock_adaptively(std::mutex& mu) noexcept {
  constexpr int attempts = 64;  // about 1-2 µs of pauses: a few critical sections
  for (int i = 0; i < attempts; ++i) {
    if (mu.try_lock()) return std::unique_lock<std::mutex>(mu, std::adopt_lock);
    cpu_relax();
  }
  return std::unique_lock<std::mutex>(mu);
}

}  // namespace batch_serving::detail
