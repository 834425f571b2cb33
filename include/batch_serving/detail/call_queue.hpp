// The call queue: where admitted calls wait, and the one place that decides
// which items form the next execution and when a batch is due.
//
// A queue is a plain data structure: not thread-safe, never blocking, never
// running user code. The engine guards it with its queue mutex and calls it
// in short critical sections; tests drive it alone, without threads.
//
// The engine needs any queue policy to provide what `call_queue` below lists;
// `fifo_queue` is the first (one FIFO, one batch window). Keyed, prioritized
// or cost-bounded queues plug in as other models of the concept, without
// touching the engine, execution or the callers.
//
// Batch windows (fifo_queue): a window opens when an item arrives at an empty
// queue, or when a full batch leaves items waiting behind it; only the head
// of the queue keeps it. The rest of a split explicit batch keeps its window
// (its caller has waited already), and a new head after a removed head
// inherits the window. A batch is due when it is full, or batch_timeout after
// its window opened.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "batch_serving/detail/admission.hpp"
#include "batch_serving/detail/batch.hpp"
#include "batch_serving/detail/call.hpp"

namespace batch_serving::detail {

// What the engine requires of a queue policy. `push` takes the queue's
// reference to the call; `remove`, `skip_finished`, `take` and `take_all`
// hand it back with the call.
template <class Q, class In, class Out>
concept call_queue =
    requires(Q& q, const Q& cq, call<In, Out>& c, batch<In, Out>& b, clock::time_point now,
             std::optional<clock::time_point> known_now, std::vector<call<In, Out>*>& all) {
  // Appends `c`; true if that may make a sleeping partition's wait shorter.
      { q.push(c, known_now) } -> std::same_as<bool>;
  // Takes out a call that finished early; true if it was queued.
      { q.remove(c) } noexcept -> std::same_as<bool>;
  // Items waiting (not yet in an execution).
      { cq.queued_items() } noexcept -> std::same_as<std::size_t>;
  // A batch is ready whatever the time (a full batch).
      { cq.has_full_batch() } noexcept -> std::same_as<bool>;
  // When the next batch is due, and when a sleeping partition should look
  // again (a queued call's deadline may come first). Require queued items.
      { cq.next_due() } noexcept -> std::same_as<clock::time_point>;
      { cq.next_wake() } noexcept -> std::same_as<clock::time_point>;
  // When the next batch's window opened (catch_up.hpp). Requires queued items.
      { cq.window_opened_at() } noexcept -> std::same_as<clock::time_point>;
  // Moves calls that need no execution (finished, or past their deadline at
  // `now`) into b.skipped / b.expired.
      { q.skip_finished(b, now) };
  // Forms the next execution: moves up to one batch of items into b.slices;
  // returns how many.
      { q.take(b, now) } -> std::same_as<std::size_t>;
  // Empties the queue into `all` (shutdown).
      { q.take_all(all) };
    };

template <class In, class Out>
class fifo_queue {
 public:
  fifo_queue(std::size_t batch_size, clock::duration batch_timeout) noexcept
      : batch_size_(batch_size), batch_timeout_(batch_timeout) {}

  fifo_queue(const fifo_queue&) = delete;
  fifo_queue& operator=(const fifo_queue&) = delete;

  // Appends `c` with the queue's reference; into an empty queue it opens a
  // batch window (at `now` if the caller read the clock). Returns true if a
  // sleeping partition must wake: to start the clock of a new first item, or
  // because a batch is now full.
  bool push(call<In, Out>& c, std::optional<clock::time_point> now) {
    c.add_ref();
    if (head_ == nullptr) c.window_opened_at = now ? *now : clock::now();
    c.taken = 0;
    c.in_queue = true;
    c.next_in_queue = nullptr;
    c.prev_in_queue = tail_;
    if (tail_ != nullptr) {
      tail_->next_in_queue = &c;
    } else {
      head_ = &c;
    }
    tail_ = &c;
    const bool was_empty = queued_items_ == 0;
    queued_items_ += c.size();
    return was_empty || queued_items_ >= batch_size_;
  }

  // Takes `c` out if it is queued (its items that are not in an execution
  // yet never run); the queue's reference goes to the caller.
  bool remove(call<In, Out>& c) noexcept {
    if (!c.in_queue) return false;
    queued_items_ -= c.size() - c.taken;
    unlink(c);
    return true;
  }

  std::size_t queued_items() const noexcept { return queued_items_; }
  bool has_full_batch() const noexcept { return queued_items_ >= batch_size_; }

  clock::time_point next_due() const noexcept {
    return saturating_add(head_->window_opened_at, batch_timeout_);
  }
  clock::time_point next_wake() const noexcept { return std::min(next_due(), head_->deadline()); }
  clock::time_point window_opened_at() const noexcept { return head_->window_opened_at; }

  void skip_finished(batch<In, Out>& out, clock::time_point now) {
    while (head_ != nullptr) {
      call<In, Out>* c = head_;
      const bool done = c->finished();
      if (!done && c->deadline() > now) return;
      queued_items_ -= c->size() - c->taken;
      unlink(*c);  // the queue's reference goes to the list
      (done ? out.skipped : out.expired).push_back(c);
    }
  }

  // Moves up to batch_size items from the head of the queue into
  // out.slices: whole calls, then the first part of a call that does not
  // fit (split in whole chunks if it asks for them). Calls that need no
  // execution are skipped on the way.
  std::size_t take(batch<In, Out>& out, clock::time_point now) {
    std::size_t room = batch_size_;
    while (room > 0) {
      skip_finished(out, now);
      if (head_ == nullptr) break;
      call<In, Out>* c = head_;
      const std::size_t left = c->size() - c->taken;
      std::size_t length = std::min(left, room);
      if (c->indivisible_chunk != 0 && length < left) {
        length -= length % c->indivisible_chunk;  // whole chunks only
        if (length == 0) break;                   // the next chunk waits for the next execution
      }
      out.slices.push_back({c, c->taken, length});
      c->taken += static_cast<std::uint32_t>(length);
      room -= length;
      queued_items_ -= length;
      if (c->taken == c->size()) {
        unlink(*c);  // the queue's reference becomes this slice's
      } else {
        c->add_ref();  // a split call: one reference per slice
      }
    }
    // Calls left behind a full batch start a window of their own now. The
    // rest of a split call keeps its window: its caller has waited already.
    if (head_ != nullptr && head_->taken == 0) head_->window_opened_at = now;
    return batch_size_ - room;
  }

  void take_all(std::vector<call<In, Out>*>& all) {
    for (call<In, Out>* c = head_; c != nullptr;) {
      call<In, Out>* next = c->next_in_queue;
      c->next_in_queue = c->prev_in_queue = nullptr;
      c->in_queue = false;
      all.push_back(c);  // takes over the queue's reference
      c = next;
    }
    head_ = tail_ = nullptr;
    queued_items_ = 0;
  }

 private:
  // A new head inherits the open batch window (take() opens a new one after
  // a full batch).
  void unlink(call<In, Out>& c) noexcept {
    if (&c == head_ && c.next_in_queue != nullptr) {
      c.next_in_queue->window_opened_at = c.window_opened_at;
    }
    (c.prev_in_queue != nullptr ? c.prev_in_queue->next_in_queue : head_) = c.next_in_queue;
    (c.next_in_queue != nullptr ? c.next_in_queue->prev_in_queue : tail_) = c.prev_in_queue;
    c.next_in_queue = c.prev_in_queue = nullptr;
    c.in_queue = false;
  }

  const std::size_t batch_size_;
  const clock::duration batch_timeout_;
  call<In, Out>* head_ = nullptr;
  call<In, Out>* tail_ = nullptr;
  std::size_t queued_items_ = 0;  // items not yet in an execution
};

}  // namespace batch_serving::detail
