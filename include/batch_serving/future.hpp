// future<T>: the handle an asynchronous dispatch returns. Like std::future,
// but get() returns a result<T> (it never throws for a failed call), waiting
// spins briefly before sleeping, and dropping an unfinished future is fine:
// the call still runs, its answer is discarded.
//
//   batch_serving::future<int> f = srv.dispatch_async(7);
//   do_other_work();
//   batch_serving::result<int> r = f.get();   // waits if needed
#pragma once

#include <chrono>
#include <utility>

#include "batch_serving/detail/future_state.hpp"
#include "batch_serving/result.hpp"

namespace batch_serving {

// Move-only. Not thread-safe: one thread uses a future at a time (it may be
// moved to another thread). get() may be called once. No member allocates,
// except what get()'s map_results makes.
//
// A future that is not valid() (default-constructed, moved from, or after
// get()) holds no call: ready() and the waits return true at once, cancel()
// returns false, and get() returns invalid_argument saying so.
template <class T>
class [[nodiscard]] future {
 public:
  future() = default;
  explicit future(detail::future_state<T>* state) noexcept : state_(state) {}
  future(future&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  future& operator=(future&& other) noexcept {
    if (this != &other) {
      reset();
      state_ = std::exchange(other.state_, nullptr);
    }
    return *this;
  }
  future(const future&) = delete;
  future& operator=(const future&) = delete;
  ~future() { reset(); }

  // False for a default-constructed or moved-from future, or after get().
  bool valid() const noexcept { return state_ != nullptr; }

  // True once the answer is there (get() will not block); never blocks.
  // Acquire: what the answer's producer wrote is visible.
  bool ready() const noexcept { return state_ == nullptr || state_->ready(); }

  // Blocks until ready(): spins a moment, then sleeps.
  void wait() const noexcept {
    if (state_ != nullptr) state_->wait();
  }

  // Blocks until ready() or the time passes; returns ready(). A timeout past
  // the clock's range waits for the answer.
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> timeout) const noexcept {
    if (state_ == nullptr) return true;
    using clock = std::chrono::steady_clock;
    const auto now = clock::now();
    // Saturate: a timeout past the clock's range means "no timeout", not an
    // overflow. Compare in floating-point seconds: converting either side to
    // the other's unit (hours::max() to ns, or the room to int µs) overflows.
    using seconds = std::chrono::duration<double>;
    if (std::chrono::duration_cast<seconds>(timeout) >=
        std::chrono::duration_cast<seconds>(clock::time_point::max() - now)) {
      state_->wait();
      return true;
    }
    return state_->wait_until(now + std::chrono::ceil<clock::duration>(timeout));
  }
  // Blocks until ready() or `deadline`; returns ready().
  bool wait_until(std::chrono::steady_clock::time_point deadline) const noexcept {
    return state_ == nullptr || state_->wait_until(deadline);
  }

  // Answers the call cancelled (errc::cancelled) if it has not finished yet:
  // its items still queued never run, results of running ones are discarded.
  // Returns true if this cancelled it, false if it had finished already
  // (then nothing changes). Never blocks on the work (it may wait a moment
  // for the server's queue lock).
  bool cancel() noexcept { return state_ != nullptr && state_->cancel(); }

  // Blocks until ready and returns the answer; the future becomes invalid.
  // Runs the serving's map_results in this thread (which allocates what the
  // mapped results need).
  result<T> get() {
    if (state_ == nullptr) {
      return batch_serving::error(errc::invalid_argument,
                                  "future::get() on a future without a call (default-constructed, "
                                  "moved from, or get() was called already)");
    }
    state_->wait();
    detail::future_state<T>* state = std::exchange(state_, nullptr);
    struct dropper {
      detail::future_state<T>* s;
      ~dropper() { s->drop(); }
    } guard{state};
    return state->take();
  }

 private:
  void reset() noexcept {
    if (state_ != nullptr) std::exchange(state_, nullptr)->drop();
  }

  detail::future_state<T>* state_ = nullptr;
};

}  // namespace batch_serving
