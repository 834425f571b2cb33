// resume_pool: a few threads that resume coroutines whose dispatch finished
// (coroutine.hpp), handed over in bulk: a partition that finishes an
// execution of 64 coroutine callers wakes a pool thread at most once, and the
// pool thread resumes all 64 in one pass.
//
//   batch_serving::resume_pool pool(2);   // two threads
//   // inside a coroutine:
//   batch_serving::result<int> r = co_await batch_serving::co_dispatch(srv, 3, pool);
//   assert(pool.owns_this_thread());      // it resumed on one of the pool's threads
//
// Each waiting coroutine's link lives in its own frame: handing it to the
// pool allocates nothing. One idle pool thread at a time spins for more
// work, for about what blocking costs on this host, before it sleeps. The
// callers of one execution resume one after another on one thread, so a
// coroutine that runs long there holds back the rest of its execution's
// callers, never the next execution's (the spinner, or a woken thread,
// takes those). An exception that escapes a resumed coroutine (its promise's
// unhandled_exception rethrew) is dropped; the pool goes on.
//
// Lifetime: the destructor lets the threads resume what is queued, joins
// them, and from then on a coroutine that was still waiting on a call when
// the pool went away resumes on the thread that completes its call (the
// pool's state lives on while awaiters hold it). Destroying the pool from one
// of its own coroutines is allowed (that thread exits after the coroutine
// returns). Every member function is thread-safe.
#pragma once

#include <cstddef>
#include <memory>
#include <stdexcept>

#include "batch_serving/detail/resume_queue.hpp"
#include "batch_serving/error.hpp"

namespace batch_serving {

class resume_pool {
 public:
  // Starts `threads` threads (at least 1, else invalid_argument). Allocates.
  explicit resume_pool(std::size_t threads = 2) : queue_(make_queue(threads)) {}
  resume_pool(const resume_pool&) = delete;
  resume_pool& operator=(const resume_pool&) = delete;
  ~resume_pool() { queue_->close(); }

  // The process-wide pool the co_ forms resume on when told nowhere else:
  // two threads, started on first use, never stopped (its threads end with
  // the process; it is never destroyed, so no static-destruction order
  // problem at exit). Thread-safe.
  static resume_pool& shared() {
    static auto* const pool = new resume_pool(2);  // NOLINT: intentionally never destroyed
    return *pool;
  }

  // True when called from one of this pool's threads.
  bool owns_this_thread() const noexcept { return queue_->owns_this_thread(); }

  // For the awaiters (resume_target.hpp).
  const std::shared_ptr<detail::resume_queue>& queue() const noexcept { return queue_; }

 private:
  static std::shared_ptr<detail::resume_queue> make_queue(std::size_t threads) {
    if (threads == 0) {
      throw serving_error(error(errc::invalid_argument,
                                "resume_pool needs at least one thread; got 0"));
    }
    auto q = std::make_shared<detail::resume_queue>();
    q->start(threads);
    return q;
  }

  std::shared_ptr<detail::resume_queue> queue_;
};

}  // namespace batch_serving
