// Paces reconnect attempts: exponential backoff with jitter, bounded by a
// shortest and a longest delay, deterministic for a given seed (tests pin
// the schedule), and a wait for the next attempt that a stop request cuts
// short.
//
//   reconnect_backoff backoff({.min_delay = 50ms, .max_delay = 5s});
//   while (true) {
//     auto conn = redis_connection::connect(endpoint);
//     if (conn) { backoff.reset(); use(*std::move(conn)); continue; }
//     if (conn.error().code() != errc::unavailable) return conn.error();  // bad password
//     if (!backoff.wait(stop)) return;                                    // stop requested
//   }
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stop_token>

namespace batch_serving::detail {

struct reconnect_backoff_options {
  // The first delay, and the shortest any delay is. Must be positive.
  std::chrono::milliseconds min_delay = std::chrono::milliseconds(50);
  // The longest any delay is. Must be >= min_delay.
  std::chrono::milliseconds max_delay = std::chrono::seconds(5);
  // Each failure multiplies the (un-jittered) delay by this. Must be >= 1.
  double multiplier = 2.0;
  // The fraction of the delay drawn at random: a delay is uniform in
  // [d * (1 - jitter), d] (then kept within the bounds), so clients that lost
  // the same Redis at once do not come back in lockstep. In [0, 1].
  double jitter = 0.5;
  // The jitter's seed: the same seed gives the same schedule. Unset: random.
  std::optional<std::uint64_t> seed{};
};

// Not thread-safe: one reconnecting loop owns one. Never allocates.
class reconnect_backoff {
 public:
  // Throws serving_error(invalid_argument) naming the bad field.
  explicit reconnect_backoff(reconnect_backoff_options options = {});

  // The delay before the next attempt, and counts the failure it follows.
  // Always in [min_delay, max_delay]; the un-jittered delay grows by
  // `multiplier` per call until it reaches max_delay.
  std::chrono::milliseconds next_delay() noexcept;

  // Waits next_delay(), or less if `stop` is requested meanwhile (it then
  // returns within the time it takes to wake a thread). True when the delay
  // ran out, false when stopped (also when stopped already on entry).
  [[nodiscard]] bool wait(std::stop_token stop);

  // After a success: the next delay is min_delay again.
  void reset() noexcept { failures_ = 0; }

  // Failures counted since construction or reset().
  std::uint32_t failures() const noexcept { return failures_; }

  // Sleeps `delay` unless `stop` is requested first. True when the delay ran
  // out, false when stopped. Thread-safe (no shared state).
  [[nodiscard]] static bool sleep_for(std::stop_token stop, std::chrono::nanoseconds delay);

 private:
  double next_unit() noexcept;  // uniform in [0, 1)

  reconnect_backoff_options options_;
  std::uint64_t state_;  // splitmix64: the same numbers on every platform
  std::uint32_t failures_ = 0;
};

}  // namespace batch_serving::detail
