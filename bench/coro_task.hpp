// The coroutine type of the coro scenario: starts when told, keeps its frame
// until destroyed, and lets a thread wait for its end. (The library's co_
// forms take any coroutine type; this is the smallest that works.)
#pragma once

#include <atomic>
#include <coroutine>
#include <exception>
#include <utility>

namespace bench {

class coro_task {
 public:
  struct promise_type {
    std::atomic<bool> finished{false};

    coro_task get_return_object() {
      return coro_task(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    auto final_suspend() noexcept {
      struct announce {
        bool await_ready() const noexcept { return false; }
        // The store is the last touch: the waiter may destroy the frame next.
        void await_suspend(std::coroutine_handle<promise_type> h) const noexcept {
          h.promise().finished.store(true, std::memory_order_release);
          h.promise().finished.notify_all();
        }
        void await_resume() const noexcept {}
      };
      return announce{};
    }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }  // the bench's own bug
  };

  explicit coro_task(std::coroutine_handle<promise_type> h) : h_(h) {}
  coro_task(coro_task&& other) noexcept : h_(std::exchange(other.h_, {})) {}
  coro_task& operator=(coro_task&&) = delete;
  ~coro_task() {
    if (h_) h_.destroy();
  }

  void start() { h_.resume(); }
  void wait() const { h_.promise().finished.wait(false, std::memory_order_acquire); }

 private:
  std::coroutine_handle<promise_type> h_;
};

}  // namespace bench
