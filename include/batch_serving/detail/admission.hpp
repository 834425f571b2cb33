// The deadline rules of admission, shared by every intake: a call's deadline
// comes from its call_options (timeout, deadline: the earlier applies), else
// from the server's default_timeout. Durations too long for the clock mean
// "no deadline" instead of overflowing.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "batch_serving/call_options.hpp"
#include "batch_serving/detail/call.hpp"
#include "batch_serving/error.hpp"

namespace batch_serving::detail {

// `d` in the clock's unit; a duration past the clock's range (hours::max())
// becomes clock::duration::max(), "never", instead of overflowing. Compares
// in floating-point seconds: converting either side to the other's unit can
// overflow.
template <class Rep, class Period>
clock::duration saturated(std::chrono::duration<Rep, Period> d) noexcept {
  using seconds = std::chrono::duration<double>;
  if (std::chrono::duration_cast<seconds>(d) >=
      std::chrono::duration_cast<seconds>(clock::duration::max())) {
    return clock::duration::max();
  }
  return std::chrono::duration_cast<clock::duration>(d);
}

// `from + d`, or time_point::max() (no deadline) when that is past the
// clock's range.
inline clock::time_point saturating_add(clock::time_point from, clock::duration d) noexcept {
  return d >= clock::time_point::max() - from ? clock::time_point::max() : from + d;
}

// The clock, read at most once per admission: at ~20-30 ns a read is a
// fifth of a queued call's cost, so a call without a deadline reads none.
class admission_clock {
 public:
  clock::time_point now() {
    if (!now_) now_ = clock::now();
    return *now_;
  }
  // The time read so far, if any (a batch window may open at it).
  std::optional<clock::time_point> read() const noexcept { return now_; }

 private:
  std::optional<clock::time_point> now_;
};

// Whether apply_deadline has anything to do: most calls have neither. The
// caller checks first, so that their path stays free of it whether or not
// the compiler inlines apply_deadline (out of line, it costs them 25
// instructions).
inline bool sets_a_deadline(const call_options& options,
                            const std::optional<clock::duration>& default_timeout) noexcept {
  return options.timeout || options.deadline || default_timeout;
}

// Sets `c`'s deadline from `options`, else from `default_timeout`. Returns
// why the options are invalid, if they are.
inline std::optional<error> apply_deadline(call_base& c, const call_options& options,
                                           const std::optional<clock::duration>& default_timeout,
                                           admission_clock& time) {
  if (options.timeout) {
    if (options.timeout->count() < 0) {
      return error(errc::invalid_argument, "call_options.timeout must not be negative (got " +
                                               std::to_string(options.timeout->count()) + " us)");
    }
    c.set_deadline(saturating_add(time.now(), saturated(*options.timeout)));
  }
  if (options.deadline && *options.deadline < c.deadline()) c.set_deadline(*options.deadline);
  if (!options.timeout && !options.deadline && default_timeout) {
    c.set_deadline(saturating_add(time.now(), *default_timeout));
  }
  return std::nullopt;
}

}  // namespace batch_serving::detail
