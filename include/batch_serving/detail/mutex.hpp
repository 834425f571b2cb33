// The library's mutex and its locks: std::mutex, annotated so that clang
// checks the lock rules (thread_annotations.hpp).
//
//   detail::mutex mu_;
//   int queued_ BATCH_SERVING_GUARDED_BY(mu_) = 0;
//   {
//     detail::unique_lock lock(mu_, detail::adaptively);
//     ++queued_;
//     cv_.wait(lock.native());   // condition variables take the std lock
//   }
#pragma once

#include <mutex>

#include "batch_serving/detail/cpu_relax.hpp"
#include "batch_serving/detail/thread_annotations.hpp"

namespace batch_serving::detail {

class BATCH_SERVING_CAPABILITY("mutex") mutex {
 public:
  void lock() BATCH_SERVING_ACQUIRE() { mu_.lock(); }
  void unlock() BATCH_SERVING_RELEASE() { mu_.unlock(); }
  bool try_lock() BATCH_SERVING_TRY_ACQUIRE(true) { return mu_.try_lock(); }

  // Takes the mutex the way adaptive mutexes do: tries for a moment, then
  // blocks. Critical sections on the engine's queue mutex last well under a
  // microsecond, but a thread that blocks on it pays a sleep and a wake
  // (system calls and context switches on both sides); spinning briefly
  // first turns most of those into a short wait on the other core.
  void lock_adaptively() BATCH_SERVING_ACQUIRE() {
    constexpr int attempts = 64;  // about 1-2 µs of pauses: a few critical sections
    for (int i = 0; i < attempts; ++i) {
      if (mu_.try_lock()) return;
      cpu_relax();
    }
    mu_.lock();
  }

  std::mutex& native() noexcept { return mu_; }

 private:
  std::mutex mu_;
};

struct adaptively_t {
  explicit adaptively_t() = default;
};
inline constexpr adaptively_t adaptively{};

// Holds a mutex for its scope; may give it up and take it again (unlock(),
// lock()), and lends it to condition variables as a std::unique_lock.
class BATCH_SERVING_SCOPED_CAPABILITY unique_lock {
 public:
  explicit unique_lock(mutex& mu) BATCH_SERVING_ACQUIRE(mu) : lock_(mu.native()) {}
  unique_lock(mutex& mu, adaptively_t) BATCH_SERVING_ACQUIRE(mu)
      : lock_(acquire_adaptively(mu), std::adopt_lock) {}
  ~unique_lock() BATCH_SERVING_RELEASE() = default;

  unique_lock(const unique_lock&) = delete;
  unique_lock& operator=(const unique_lock&) = delete;

  void unlock() BATCH_SERVING_RELEASE() { lock_.unlock(); }
  void lock() BATCH_SERVING_ACQUIRE() { lock_.lock(); }

  // For std::condition_variable: it gives the mutex up while it sleeps and
  // holds it again when it returns, so the lock rules still hold around it.
  std::unique_lock<std::mutex>& native() noexcept { return lock_; }

 private:
  static std::mutex& acquire_adaptively(mutex& mu) BATCH_SERVING_NO_THREAD_SAFETY_ANALYSIS {
    mu.lock_adaptively();  // adopted by lock_: the constructor's annotation covers it
    return mu.native();
  }

  std::unique_lock<std::mutex> lock_;
};

// Holds any lock (mutex, spin_lock) for its scope.
template <class Lockable>
class BATCH_SERVING_SCOPED_CAPABILITY lock_guard {
 public:
  explicit lock_guard(Lockable& lockable) BATCH_SERVING_ACQUIRE(lockable) : lockable_(lockable) {
    lockable_.lock();
  }
  ~lock_guard() BATCH_SERVING_RELEASE() { lockable_.unlock(); }

  lock_guard(const lock_guard&) = delete;
  lock_guard& operator=(const lock_guard&) = delete;

 private:
  Lockable& lockable_;
};

}  // namespace batch_serving::detail
