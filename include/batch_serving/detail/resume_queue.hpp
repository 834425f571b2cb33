// The shared state of a resume_pool: an intrusive multi-producer list of
// resume_nodes and the threads that drain it.
//
// Hand-off: a push is one CAS on the list head (resume_batch.hpp pushes an
// execution's callers as one chain). Only a push that finds the list empty
// and no pool thread spinning pays a wake-up (a futex system call); every
// other push just links its nodes. A pool thread takes the whole list with
// one exchange and resumes it in arrival order, so an execution that
// completes 64 coroutine callers costs the pool at most one wake-up, not 64.
//
// Threads: at most one idle pool thread spins for work at a time, for about
// what blocking costs here (spin_budget()); the others sleep. A push wakes a
// sleeper only when nobody spins, so the spinner takes the next execution's
// callers without a wake-up, and a thread busy in a long-running coroutine
// never holds back what comes next. (Two spinners on two cores would take
// the core the partition needs to produce the next answers.)
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

#include "batch_serving/detail/completion_flag.hpp"
#include "batch_serving/detail/host_costs.hpp"
#include "batch_serving/detail/resume_node.hpp"
#include "batch_serving/detail/timed_spin.hpp"

namespace batch_serving::detail {

class resume_queue : public std::enable_shared_from_this<resume_queue> {
 public:
  resume_queue() : spin_budget_(spin_budget()) {}
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
  void push(resume_node* node) noexcept { push_chain(node, node); }

  // push() for a chain linked newest first, oldest..newest: one CAS for all.
  void push_chain(resume_node* oldest, resume_node* newest) noexcept {
    resume_node* old = head_.load(std::memory_order_relaxed);
    do {
      if (old == closed_marker()) {
        oldest->next = nullptr;
        resume_newest_first(newest);
        return;
      }
      oldest->next = old;
      // seq_cst: ordered before the loads of spinning_ and sleepers_ below.
    } while (!head_.compare_exchange_weak(old, newest, std::memory_order_seq_cst,
                                          std::memory_order_relaxed));
    // The spinner, if any, takes it; see spin_for_work() and sleep() for the order.
    if (old == nullptr && !spinning_.load(std::memory_order_seq_cst)) wake_one();
  }

  // resume_batch's send_fn for a resume_queue.
  static void send_chain(void* queue, resume_node* oldest, resume_node* newest) noexcept {
    static_cast<resume_queue*>(queue)->push_chain(oldest, newest);
  }

  // Stops the threads after they resumed what was queued, then closes the
  // list: from then on push resumes in the pushing thread. Called from a pool
  // thread (a resumed coroutine destroyed its pool), that thread finishes
  // what it is resuming and exits on its own. Idempotent.
  void close() noexcept {
    if (stopping_.exchange(true)) return;
    wakes_.fetch_add(1, std::memory_order_seq_cst);
    wake_all_on_address(wakes_);
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
      if (list == nullptr && !stopping_.load(std::memory_order_acquire)) {
        list = spin_for_work();
        if (list == nullptr) {
          sleep();
          continue;
        }
      }
      if (list == closed_marker()) break;  // closed from one of our coroutines
      if (list == nullptr) break;          // stopping, and nothing left
      resume_all(list);
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

  // A few microseconds of spinning catch the next execution's callers
  // without a sleep and a wake-up system call. Only one thread spins; it
  // returns the list it found and took, or nullptr (then it sleeps).
  // A push that saw it spinning woke nobody: the spinner took that push, or
  // sees it in its look at head_ after it stopped spinning, and then wakes
  // a sleeper for it (it is busy itself from here on).
  resume_node* spin_for_work() noexcept {
    if (spinning_.exchange(true, std::memory_order_seq_cst)) return nullptr;
    const bool found = spin_for(spin_budget_, [this] {
      return head_.load(std::memory_order_relaxed) != nullptr ||
             stopping_.load(std::memory_order_relaxed);
    });
    resume_node* const list = found ? take_all() : nullptr;
    spinning_.store(false, std::memory_order_seq_cst);
    if (list != nullptr && head_.load(std::memory_order_seq_cst) != nullptr) wake_one();
    return list;
  }

  // Sleeps until a push finds the list empty and nobody spinning. The
  // seq_cst order of (our sleepers_ increment, our wakes_ and head_ loads)
  // against (the pusher's CAS, its spinning_ and sleepers_ loads) means:
  // either we see the nodes, or the pusher sees us asleep and bumps wakes_,
  // which our wait(seen) notices.
  void sleep() noexcept {
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    const std::uint32_t seen = wakes_.load(std::memory_order_seq_cst);
    if (head_.load(std::memory_order_seq_cst) == nullptr &&
        !stopping_.load(std::memory_order_seq_cst)) {
      wait_on_address(wakes_, seen, std::chrono::nanoseconds(-1));
    }
    sleepers_.fetch_sub(1, std::memory_order_relaxed);
  }

  void wake_one() noexcept {
    if (sleepers_.load(std::memory_order_seq_cst) == 0) return;
    wakes_.fetch_add(1, std::memory_order_seq_cst);
    wake_one_on_address(wakes_);
  }

  static void resume_all(resume_node* list) noexcept {
    if (list != closed_marker()) resume_newest_first(list);
  }

  static inline thread_local const resume_queue* current_queue = nullptr;

  std::atomic<resume_node*> head_{nullptr};
  std::atomic<std::uint32_t> wakes_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> spinning_{false};
  const std::chrono::nanoseconds spin_budget_;
  std::atomic<bool> stopping_{false};
  std::vector<std::thread> threads_;  // written by start() and close() only
};

}  // namespace batch_serving::detail
