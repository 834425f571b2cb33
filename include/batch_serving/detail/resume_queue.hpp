// The shared state of a resume_pool: an intrusive multi-producer list of
// resume_nodes and the threads that drain it.
//
// Hand-off: a push is one CAS on the list head. Only a push that finds the
// list empty *and* a pool thread asleep pays a wake-up (a futex system call);
// every other push just links its node. A pool thread takes the whole list
// with one exchange and resumes it in arrival order, so an execution that
// completes 64 coroutine callers costs the pool at most one wake-up, not 64.
//
// Lifetime: shared by the pool and by every awaiter that will push to it
// (shared_ptr), so a completion that arrives after the pool was destroyed
// still finds the list: it is closed then, and the push resumes the coroutine
// in the pushing thread instead.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "batch_serving/detail/cpu_relax.hpp"
#include "batch_serving/detail/resume_node.hpp"

namespace batch_serving::detail {

class resume_queue : public std::enable_shared_from_this<resume_queue> {
 public:
  resume_queue() = default;
  resume_queue(const resume_queue&) = delete;
  resume_queue& operator=(const resume_queue&) = delete;
  ~resume_queue() { close(); }

  // Starts `threads` threads. Call once, right after make_shared.
  void start(std::size_t threads) {
    threads_.reserve(threads);
    try {
      for (std::size_t i = 0; i < threads; ++i) {
        // Each thread keeps the queue alive: one may be the last owner (a
        // coroutine it resumed destroyed the pool).
        threads_.emplace_back([self = shared_from_this()] { self->run(); });
      }
    } catch (...) {
      close();
      throw;
    }
  }

  // Resumes node->handle on a pool thread (or here, if the queue is closed).
  // Lock-free. After it returns the node may be gone (resumed); the caller
  // must keep the queue alive across the call.
  void push(resume_node* node) noexcept {
    resume_node* old = head_.load(std::memory_order_relaxed);
    do {
      if (old == closed_marker()) {
        resume_dropping_exceptions(node->handle);
        return;
      }
      node->next = old;
      // seq_cst: ordered before the load of sleepers_ below (see sleep()).
    } while (!head_.compare_exchange_weak(old, node, std::memory_order_seq_cst,
                                          std::memory_order_relaxed));
    if (old == nullptr && sleepers_.load(std::memory_order_seq_cst) != 0) {
      wakes_.fetch_add(1, std::memory_order_seq_cst);
      wakes_.notify_one();
    }
  }

  // Stops the threads after they resumed what was queued, then closes the
  // list: from then on push resumes in the pushing thread. Called from a pool
  // thread (a resumed coroutine destroyed its pool), that thread finishes
  // what it is resuming and exits on its own. Idempotent.
  void close() noexcept {
    if (stopping_.exchange(true)) return;
    wakes_.fetch_add(1, std::memory_order_seq_cst);
    wakes_.notify_all();
    for (auto& t : threads_) {
      if (!t.joinable()) continue;
      if (t.get_id() == std::this_thread::get_id()) {
        t.detach();
      } else {
        t.join();
      }
    }
    // Whatever came in meanwhile (or after the threads left) runs here.
    resume_all(head_.exchange(closed_marker(), std::memory_order_acq_rel));
  }

  // True on one of this queue's threads.
  bool owns_this_thread() const noexcept { return current_queue == this; }

 private:
  static resume_node* closed_marker() noexcept {
    static resume_node marker;
    return &marker;
  }

  void run() noexcept {
    current_queue = this;
    while (true) {
      resume_node* list = take_all();
      if (list == closed_marker()) break;  // closed from one of our coroutines
      if (list != nullptr) {
        resume_all(list);
        continue;
      }
      if (stopping_.load(std::memory_order_acquire)) break;
      if (!spin_for_work()) sleep();
    }
    // A push may have come between the last exchange and stopping_: close()
    // takes it (it exchanges once more after joining us).
    current_queue = nullptr;
  }

  // The whole list (newest first), or nullptr, or closed_marker() (left in place).
  resume_node* take_all() noexcept {
    resume_node* list = head_.load(std::memory_order_acquire);
    while (list != nullptr && list != closed_marker() &&
           !head_.compare_exchange_weak(list, nullptr, std::memory_order_acquire,
                                        std::memory_order_acquire)) {
    }
    return list;
  }

  // A few microseconds of spinning catch the next execution's completions
  // without a sleep and a wake-up system call. Budgeted in time, not
  // iterations (hosts differ by 10x per pause).
  bool spin_for_work() const noexcept {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(20);
    do {
      for (int i = 0; i < 32; ++i) {
        cpu_relax();
        if (head_.load(std::memory_order_relaxed) != nullptr) return true;
      }
    } while (std::chrono::steady_clock::now() < until);
    return false;
  }

  // Sleeps until a push finds the list empty and this thread asleep. The
  // seq_cst order of (our sleepers_ increment, our head_ load) against (the
  // pusher's CAS, its sleepers_ load) means: either we see the node, or the
  // pusher sees us asleep and bumps wakes_, which our wait(seen) notices.
  void sleep() noexcept {
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    const std::uint32_t seen = wakes_.load(std::memory_order_seq_cst);
    if (head_.load(std::memory_order_seq_cst) == nullptr &&
        !stopping_.load(std::memory_order_seq_cst)) {
      wakes_.wait(seen, std::memory_order_seq_cst);
    }
    sleepers_.fetch_sub(1, std::memory_order_relaxed);
  }

  // The list is newest first: reverse it, then resume in arrival order. Each
  // node's next is read before its coroutine runs (the node lives there).
  static void resume_all(resume_node* list) noexcept {
    if (list == closed_marker()) return;
    resume_node* in_order = nullptr;
    while (list != nullptr) {
      resume_node* next = list->next;
      list->next = in_order;
      in_order = list;
      list = next;
    }
    while (in_order != nullptr) {
      resume_node* next = in_order->next;
      resume_dropping_exceptions(in_order->handle);
      in_order = next;
    }
  }

  static inline thread_local const resume_queue* current_queue = nullptr;

  std::atomic<resume_node*> head_{nullptr};
  std::atomic<std::uint32_t> wakes_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stopping_{false};
  std::vector<std::thread> threads_;  // written by start() and close() only
};

}  // namespace batch_serving::detail
