// Test support: the smallest coroutine type that can co_await: starts when
// told, keeps its frame until destroyed, and lets a thread wait for its end.
// Nothing of the library knows it (the co_ forms take any coroutine type).
#pragma once

#include <coroutine>
#include <exception>
#include <utility>

#include "callback_record.hpp"

namespace batch_serving::testing {

// Rethrow: whether an exception escaping the body leaves the coroutine (out
// of resume(), onto whatever thread resumed it) or is kept for the test.
template <bool Rethrow = false>
class basic_task {
 public:
  struct promise_type {
    gate finished;  // the body returned (or threw, when it is kept)
    std::exception_ptr failure;

    basic_task get_return_object() {
      return basic_task(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    auto final_suspend() noexcept {
      struct announce {
        bool await_ready() const noexcept { return false; }
        // Opening the gate is the last touch: the waiter may destroy us next.
        void await_suspend(std::coroutine_handle<promise_type> h) const noexcept {
          h.promise().finished.open();
        }
        void await_resume() const noexcept {}
      };
      return announce{};
    }
    void return_void() noexcept {}
    void unhandled_exception() {
      if constexpr (Rethrow) {
        throw;
      } else {
        failure = std::current_exception();
      }
    }
  };

  basic_task() = default;
  explicit basic_task(std::coroutine_handle<promise_type> h) : h_(h) {}
  basic_task(basic_task&& other) noexcept : h_(std::exchange(other.h_, {})) {}
  basic_task& operator=(basic_task&& other) noexcept {
    if (this != &other) {
      if (h_) h_.destroy();
      h_ = std::exchange(other.h_, {});
    }
    return *this;
  }
  ~basic_task() {
    if (h_) h_.destroy();
  }

  // Runs the body up to its first suspension, in this thread.
  void start() { h_.resume(); }
  // Blocks until the body returned.
  void wait() const { h_.promise().finished.wait(); }
  bool finished() const { return h_.promise().finished.is_open(); }
  std::exception_ptr failure() const { return h_.promise().failure; }

 private:
  std::coroutine_handle<promise_type> h_{};
};

using task = basic_task<false>;

}  // namespace batch_serving::testing
