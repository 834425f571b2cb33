// Test support: a one-shot gate threads wait on, and a recorder for what a
// completion callback receives.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "batch_serving/result.hpp"

namespace batch_serving::testing {

// Closed until open(); wait() blocks until then.
class gate {
 public:
  void open() noexcept {
    open_.store(true, std::memory_order_release);
    open_.notify_all();
  }
  void wait() const noexcept { open_.wait(false, std::memory_order_acquire); }
  bool is_open() const noexcept { return open_.load(std::memory_order_acquire); }

 private:
  std::atomic<bool> open_{false};
};

// Collects the results a callback receives, how often it ran, and in which thread.
template <class T>
struct callback_record {
  std::mutex mu;
  std::vector<result<T>> results;
  std::atomic<int> calls{0};
  std::thread::id thread;
  gate done;

  std::function<void(result<T>)> callback() {
    return [this](result<T> r) {
      {
        std::lock_guard lock(mu);
        results.push_back(std::move(r));
        thread = std::this_thread::get_id();
      }
      calls.fetch_add(1);
      done.open();
    };
  }
  // The result it got (the first, if several), or an error if it has not run.
  const result<T>& only() {
    static const result<T> none(error(errc::cancelled, "the callback has not run"));
    std::lock_guard lock(mu);
    return results.empty() ? none : results.front();
  }
};

}  // namespace batch_serving::testing
