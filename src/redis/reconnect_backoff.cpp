#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <random>
#include <stop_token>
#include <string>
#include <utility>

#include "batch_serving/detail/reconnect_backoff.hpp"
#include "batch_serving/error.hpp"

namespace batch_serving::detail {
namespace {

[[noreturn]] void bad_option(const std::string& what) {
  throw serving_error(errc::invalid_argument, "reconnect_backoff_options." + what);
}

std::uint64_t random_seed() {
  std::random_device device;
  return (static_cast<std::uint64_t>(device()) << 32) ^ device();
}

}  // namespace

reconnect_backoff::reconnect_backoff(reconnect_backoff_options options)
    : options_(options), state_(options.seed ? *options.seed : random_seed()) {
  if (options_.min_delay.count() <= 0) {
    bad_option("min_delay must be positive (got " + std::to_string(options_.min_delay.count()) +
               " ms)");
  }
  if (options_.max_delay < options_.min_delay) {
    bad_option("max_delay must be at least min_delay (got " +
               std::to_string(options_.max_delay.count()) + " ms < " +
               std::to_string(options_.min_delay.count()) + " ms)");
  }
  if (!(options_.multiplier >= 1.0) || !std::isfinite(options_.multiplier)) {
    bad_option("multiplier must be a finite number >= 1 (got " +
               std::to_string(options_.multiplier) + ")");
  }
  if (!(options_.jitter >= 0.0 && options_.jitter <= 1.0)) {
    bad_option("jitter must be in [0, 1] (got " + std::to_string(options_.jitter) + ")");
  }
}

double reconnect_backoff::next_unit() noexcept {
  // splitmix64 (Steele, Lea, Flood 2014), then the top 53 bits as a double.
  std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30U)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27U)) * 0x94d049bb133111ebULL;
  z ^= z >> 31U;
  return static_cast<double>(z >> 11U) * 0x1.0p-53;
}

std::chrono::milliseconds reconnect_backoff::next_delay() noexcept {
  const double min_ms = static_cast<double>(options_.min_delay.count());
  const double max_ms = static_cast<double>(options_.max_delay.count());
  // pow() of a capped exponent: no overflow however many failures.
  const double exponent = std::min<double>(failures_, 1024.0);
  const double grown = std::min(max_ms, min_ms * std::pow(options_.multiplier, exponent));
  const double jittered = grown * (1.0 - options_.jitter * next_unit());
  if (failures_ < UINT32_MAX) ++failures_;
  const double bounded = std::clamp(jittered, min_ms, max_ms);
  return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(bounded));
}

bool reconnect_backoff::wait(std::stop_token stop) {
  return sleep_for(std::move(stop), next_delay());
}

bool reconnect_backoff::sleep_for(std::stop_token stop, std::chrono::nanoseconds delay) {
  if (stop.stop_requested()) return false;
  if (delay <= std::chrono::nanoseconds::zero()) return true;
  // The stop callback that wait_for registers notifies this condition
  // variable, so a stop request wakes the sleeper at once.
  std::mutex mutex;
  std::condition_variable_any woken;
  std::unique_lock lock(mutex);
  woken.wait_for(lock, stop, delay, [] { return false; });
  return !stop.stop_requested();
}

}  // namespace batch_serving::detail
