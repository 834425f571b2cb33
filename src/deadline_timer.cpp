#include "batch_serving/detail/deadline_timer.hpp"

#include <algorithm>
#include <utility>

namespace batch_serving::detail {
namespace {
constexpr std::size_t fewest_to_prune = 1024;

// std::*_heap build a max-heap; this ordering puts the earliest deadline on top.
struct later_deadline {
  template <class Entry>
  bool operator()(const Entry& a, const Entry& b) const noexcept {
    return a.deadline > b.deadline;
  }
};

void release_all(std::vector<call_base*>& calls) noexcept {
  for (call_base* c : calls) c->release();
  calls.clear();
}
}  // namespace

deadline_timer::deadline_timer(std::function<void(call_base&)> on_deadline)
    : on_deadline_(std::move(on_deadline)), prune_at_(fewest_to_prune) {}

deadline_timer::~deadline_timer() { request_stop(); }

void deadline_timer::watch(call_base& c) {
  bool wake = false;
  {
    lock_guard lock(mu_);
    // Stopped: the server answered every call it had; nothing to watch.
    if (stopping_) return;
    c.add_ref();
    heap_.push_back({c.deadline(), &c});
    std::push_heap(heap_.begin(), heap_.end(), later_deadline{});
    wake = heap_.front().target == &c || heap_.size() >= prune_at_;
  }
  if (wake) wake_.notify_one();
}

void deadline_timer::run() {
  std::vector<call_base*> due;
  std::vector<call_base*> released;
  unique_lock lock(mu_);
  while (!stopping_) {
    if (heap_.size() >= prune_at_) prune(released);
    const auto now = clock::now();
    while (!heap_.empty() && heap_.front().deadline <= now) {
      std::pop_heap(heap_.begin(), heap_.end(), later_deadline{});
      due.push_back(heap_.back().target);
      heap_.pop_back();
    }
    if (due.empty() && released.empty()) {
      if (heap_.empty()) {
        wake_.wait(lock.native());
      } else {
        // A copy: the heap may grow (and move) while this waits.
        const clock::time_point earliest = heap_.front().deadline;
        wake_.wait_until(lock.native(), earliest);
      }
      continue;
    }
    // User code (completion callbacks, destructors) runs outside the lock.
    lock.unlock();
    for (call_base* c : due) on_deadline_(*c);
    release_all(due);
    release_all(released);
    lock.lock();
  }
}

void deadline_timer::request_stop() noexcept {
  std::vector<entry> watched;
  {
    lock_guard lock(mu_);
    stopping_ = true;
    watched.swap(heap_);
  }
  wake_.notify_all();
  for (const entry& e : watched) e.target->release();
}

void deadline_timer::prune(std::vector<call_base*>& released) {
  auto finished = std::partition(heap_.begin(), heap_.end(),
                                 [](const entry& e) { return !e.target->finished(); });
  for (auto it = finished; it != heap_.end(); ++it) released.push_back(it->target);
  heap_.erase(finished, heap_.end());
  std::make_heap(heap_.begin(), heap_.end(), later_deadline{});
  prune_at_ = std::max(fewest_to_prune, 2 * heap_.size());
}

}  // namespace batch_serving::detail
