// Answers calls whose deadline passed before they finished, at the deadline,
// whatever they are doing (queued, executing, stuck behind a slow batch).
//
// One per server, run by one thread the server owns (run() is its body). It
// keeps a min-heap of watched calls, each entry holding a reference, and
// sleeps until the earliest deadline. Entries of calls that finished early
// are pruned once the heap doubles, so memory follows the calls in flight,
// not the calls dispatched within one timeout.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <vector>

#include "batch_serving/detail/call.hpp"
#include "batch_serving/detail/mutex.hpp"
#include "batch_serving/detail/thread_annotations.hpp"

namespace batch_serving::detail {

class deadline_timer {
 public:
  // `on_deadline` runs on the timer's thread, outside its lock, for each
  // watched call whose deadline passed (finished or not; it decides).
  explicit deadline_timer(std::function<void(call_base&)> on_deadline);
  ~deadline_timer();

  deadline_timer(const deadline_timer&) = delete;
  deadline_timer& operator=(const deadline_timer&) = delete;

  // Takes a reference to `c` (which has a deadline) until its deadline
  // passes or it is pruned. Thread-safe; never blocks on the timer's work.
  void watch(call_base& c) BATCH_SERVING_EXCLUDES(mu_);

  // The timer thread's body; returns after request_stop().
  void run() BATCH_SERVING_EXCLUDES(mu_);

  // Makes run() return soon and releases every watched call. Thread-safe,
  // idempotent; may be called from run()'s own on_deadline.
  void request_stop() noexcept BATCH_SERVING_EXCLUDES(mu_);

 private:
  struct entry {
    clock::time_point deadline;
    call_base* target;
  };
  // Removes entries of finished calls into `released`.
  void prune(std::vector<call_base*>& released) BATCH_SERVING_REQUIRES(mu_);

  const std::function<void(call_base&)> on_deadline_;
  mutex mu_;
  std::condition_variable wake_;
  std::vector<entry> heap_ BATCH_SERVING_GUARDED_BY(mu_);  // min-heap by deadline
  std::size_t prune_at_ BATCH_SERVING_GUARDED_BY(mu_);     // heap size that triggers pruning
  bool stopping_ BATCH_SERVING_GUARDED_BY(mu_) = false;
};

}  // namespace batch_serving::detail
