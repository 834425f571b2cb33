// A call: one caller's items on their way through a server, and the one place
// its answer is decided.
//
// Life of a call:
//   1. The caller fills its inputs and hands it to an intake (`submit`).
//   2. A partition takes its items, possibly in several slices that land in
//      different executions (an explicit batch split to fill executions).
//   3. Each execution delivers its slice: outputs (`deliver`) or an error
//      (`fail`). Shutdown may also `fail` it.
//   4. Exactly one of those finishes the call; that one then calls
//      `complete()` once, outside every lock, to wake the caller or run its
//      callback.
//
// A call may also finish early: its deadline passes (timeout) or its caller
// cancels it. Its queued items then leave the queue, never executed, and
// results of its running slices are discarded.
//
// Ownership is by reference count: the caller (or its future) holds one, the
// server holds one while the call is queued and one per slice in flight.
// Whoever holds a reference may touch the call.
//
// Ordering: slices may finish in any order (partitions run in parallel);
// `deliver` hands outputs to `accept` strictly in call order, stashing a slice
// that arrives before its predecessors. A slice's hook events (streaming) go
// through the same gate, so a caller sees [hooks, outputs] of its first slice,
// then of its second, and so on.
#pragma once

#include <algorithm>
#include <atomic>
#include <cassert>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <span>
#include <stop_token>
#include <utility>
#include <vector>

#include "batch_serving/detail/call_pool.hpp"
#include "batch_serving/detail/hook_payload.hpp"
#include "batch_serving/detail/spin_lock.hpp"
#include "batch_serving/error.hpp"

namespace batch_serving::detail {

using clock = std::chrono::steady_clock;

// What every call has, whatever its element types: references, the one place
// its answer is decided, and its deadline. Timers and cancellation work on it.
//
// Layout: a queued call is the library's whole per-request memory, so what
// few calls need (an error, slices that arrived early, a stop callback) lives
// in a cold block allocated on first use, and the hot fields pack into a few
// words.
class call_base {
 public:
  call_base(const call_base&) = delete;
  call_base& operator=(const call_base&) = delete;

  // Every kind of call lives in a pooled block (call_pool.hpp): no heap
  // allocation per call once a server is warm. `delete` through the virtual
  // destructor passes the most-derived size back.
  static void* operator new(std::size_t size) { return allocate_call_block(size); }
  static void operator delete(void* block, std::size_t size) noexcept {
    free_call_block(block, size);
  }
  // Over-aligned element types: the plain allocator, which honours alignment.
  static void* operator new(std::size_t size, std::align_val_t alignment) {
    return ::operator new(size, alignment);
  }
  static void operator delete(void* block, std::size_t size, std::align_val_t alignment) noexcept {
    ::operator delete(block, size, alignment);
  }

  // ---- references ----------------------------------------------------------

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // ---- deadline ------------------------------------------------------------

  // time_point::max() means none. Set before the call is submitted.
  clock::time_point deadline() const noexcept { return deadline_; }
  bool has_deadline() const noexcept { return deadline_ != clock::time_point::max(); }
  void set_deadline(clock::time_point deadline) noexcept { deadline_ = deadline; }

  // Linked in an intake's queue; guarded by that intake's queue mutex.
  bool in_queue = false;

  // ---- answer --------------------------------------------------------------

  // Finishes the call with `e` unless it already finished. Returns true if
  // this finished it; the caller of fail must then call complete().
  bool fail(const error& e) {
    std::lock_guard guard(lock_);
    if (is_finished()) return false;
    finish_with(e);
    return true;
  }

  // True once the answer is decided. Lock-free, for skipping work whose
  // answer no longer matters; a stale false only costs that work.
  bool finished() const noexcept { return finished_.load(std::memory_order_acquire); }

  // Wakes the caller / runs its callback. Called exactly once, by whoever got
  // `true` from deliver(), fail_slice() or fail(), outside every lock, while
  // it holds a reference.
  void complete() noexcept {
    assert(!completed_.exchange(true) && "a call was completed twice");
    ++completions_running;
    on_complete();
    --completions_running;
  }

  // How many completions (callbacks, wake-ups) this thread is inside. A stop()
  // called from a completion callback must not wait for another stop: that
  // one may be waiting for this very callback to return.
  static inline thread_local int completions_running = 0;

  // ---- cancellation --------------------------------------------------------

  // What a stop callback runs: `cancel(target)`. Not a template, so that the
  // cold block can hold the callback whatever the call's type.
  struct canceller {
    call_base* target;
    void (*cancel)(call_base*) noexcept;
    void operator()() const noexcept { cancel(target); }
  };

  // Cancelling on a stop_token takes two steps around submission: the cold
  // block is made before the call is shared (so no thread ever sees its
  // pointer change while it reads the answer unlocked), and the callback is
  // armed after (so a stop cancels a queued call, never an unsubmitted one).
  void prepare_cancel_on(const std::stop_token& token) {
    if (token.stop_possible()) cold_state();
  }
  // Runs `on_stop` when a stop is requested on `token` (at once if it was).
  // Call once, after prepare_cancel_on, from the thread that owns the call's
  // creation reference. Only this thread and the destructor touch `stop`.
  void cancel_on(const std::stop_token& token, canceller on_stop) {
    if (!token.stop_possible()) return;
    assert(cold_ != nullptr && "prepare_cancel_on was not called");
    cold_->stop.emplace(token, on_stop);  // may run on_stop right here
  }

 protected:
  // Cold state, allocated on first use under lock_ or before the call is
  // shared (see prepare_cancel_on).
  struct cold {
    virtual ~cold() = default;
    std::optional<error> failure;
    std::optional<std::stop_callback<canceller>> stop;
  };

  call_base() = default;
  virtual ~call_base() = default;

  virtual void on_complete() noexcept = 0;
  // The cold block subclasses use (they may extend it).
  virtual std::unique_ptr<cold> make_cold() const { return std::make_unique<cold>(); }

  cold& cold_state() {  // requires lock_, or the call not shared yet
    if (!cold_) cold_ = make_cold();
    return *cold_;
  }
  cold* cold_if_any() const noexcept { return cold_.get(); }

  // The most-derived class calls this first in its destructor: destroying a
  // stop callback waits for one running on another thread, which may still
  // use the call's members.
  void stop_cancelling() noexcept {
    if (cold_) cold_->stop.reset();
  }

  // The error, once the call finished with one (after complete() was
  // signalled); nullptr if it finished with its results.
  const error* failure() const noexcept {
    return cold_ && cold_->failure ? &*cold_->failure : nullptr;
  }

  bool is_finished() const noexcept {  // requires lock_
    return finished_.load(std::memory_order_relaxed);
  }
  void finish_with(const error& e) {  // requires lock_
    cold_state().failure.emplace(e);
    finish();
  }
  void finish() noexcept { finished_.store(true, std::memory_order_release); }  // requires lock_

  spin_lock lock_;  // guards the answer state here and in subclasses

 private:
  std::atomic<bool> finished_{false};  // written under lock_
#ifndef NDEBUG
  std::atomic<bool> completed_{false};
#endif
  std::atomic<std::uint32_t> refs_{1};
  std::unique_ptr<cold> cold_;  // created under lock_
  clock::time_point deadline_ = clock::time_point::max();
};

// Items per call are counted in 32 bits (a call's fields stay small); an
// explicit batch must stay below this.
inline constexpr std::size_t most_items_per_call = UINT32_MAX;

template <class In, class Out>
class call : public call_base {
 public:
  // ---- intake side ---------------------------------------------------------

  std::size_t size() const noexcept { return size_; }
  std::span<In> inputs() noexcept { return {inputs_, size_}; }
  // When the batch this call heads began waiting for company. Kept only
  // while the call is at the head of its queue (see server_core); stale or
  // unset anywhere else.
  clock::time_point window_opened_at() const noexcept { return window_opened_at_; }
  void open_window(clock::time_point at) noexcept { window_opened_at_ = at; }

  // Fields owned by the intake that queued the call; see server_core.
  call* next_in_queue = nullptr;  // guarded by the intake's queue mutex
  call* prev_in_queue = nullptr;  // guarded likewise
  std::uint32_t taken = 0;        // items placed in executions; guarded likewise
  // Nonzero: slices must start and end at multiples of this many items (hook
  // streams keep each chunk in one execution). Set before submit.
  std::uint32_t indivisible_chunk = 0;

  // ---- completion side -----------------------------------------------------

  // Hands the outputs for items [offset, offset + outputs.size()) to the call,
  // which may move from them. Returns true if this finished the call; the
  // caller of deliver must then call complete(). Late slices of a call that
  // already finished (failed, timed out, cancelled, shut down) are discarded.
  bool deliver(std::size_t offset, std::span<Out> outputs) {
    std::lock_guard guard(lock_);
    if (is_finished()) return false;
    if (offset != delivered_) {
      pending_at(offset).outputs.emplace(std::make_move_iterator(outputs.begin()),
                                         std::make_move_iterator(outputs.end()));
      return false;
    }
    accept(outputs);
    delivered_ += static_cast<std::uint32_t>(outputs.size());
    return drain_pending();
  }

  // The execution holding the slice at `offset` failed with `e`. A plain call
  // finishes with `e` at once; a call that orders failures (a stream) first
  // delivers what came before the slice. Returns true if this finished the
  // call; the caller must then call complete().
  bool fail_slice(std::size_t offset, const error& e) {
    std::lock_guard guard(lock_);
    if (is_finished()) return false;
    if (orders_failures() && offset != delivered_) {
      pending_at(offset).failure.emplace(e);
      return false;
    }
    fail_now(e);
    return true;
  }

  // Hands a hook event for the slice at `offset` to the call, in order with
  // the call's outputs. Never finishes the call.
  void deliver_hook(std::size_t offset, hook_slice&& hook) {
    std::lock_guard guard(lock_);
    if (is_finished()) return;
    if (offset == delivered_) {
      accept_hook(std::move(hook));
    } else {
      pending_at(offset).hooks.push_back(std::move(hook));
    }
  }

  // True if the call finished with an error. Requires the call finished and
  // the caller to be the one that finished it (or to have seen complete()).
  bool failed() const noexcept { return failure() != nullptr; }

 protected:
  call() = default;

  // Sets where the call's inputs live (storage owned by the subclass).
  void set_inputs(std::span<In> inputs) noexcept {
    assert(inputs.size() <= most_items_per_call);
    inputs_ = inputs.data();
    size_ = static_cast<std::uint32_t>(inputs.size());
  }

  // Receive outputs and hook events strictly in call order, under the
  // call's lock. Only streaming calls care about hooks.
  virtual void accept(std::span<Out> outputs) = 0;
  virtual void accept_hook(hook_slice&&) {}
  // True for calls whose readers see events in order (streams): a slice's
  // failure then waits for the slices before it. Plain calls fail at once.
  virtual bool orders_failures() const noexcept { return false; }

 public:
  // Called by the executor after each deliver / deliver_hook, outside every
  // lock: where a streaming call wakes its reader or runs its callbacks.
  virtual void after_delivery() noexcept {}

 private:
  // What arrived for a slice before its predecessors were delivered.
  struct pending_slice {
    std::size_t offset;
    std::vector<hook_slice> hooks;
    std::optional<std::vector<Out>> outputs;
    std::optional<error> failure;
  };
  struct cold_with_pending : cold {
    std::vector<pending_slice> pending;
  };

  std::unique_ptr<cold> make_cold() const override { return std::make_unique<cold_with_pending>(); }

  std::vector<pending_slice>& pending() {  // requires lock_
    return static_cast<cold_with_pending&>(cold_state()).pending;
  }
  bool has_pending() const noexcept {  // requires lock_
    const cold* c = cold_if_any();
    return c != nullptr && !static_cast<const cold_with_pending*>(c)->pending.empty();
  }

  pending_slice& pending_at(std::size_t offset) {
    for (auto& p : pending()) {
      if (p.offset == offset) return p;
    }
    return pending().emplace_back(pending_slice{offset, {}, std::nullopt, std::nullopt});
  }

  void fail_now(const error& e) {  // requires lock_
    finish_with(e);
    pending().clear();
  }

  // Delivers what waited for the slices now at the front, in order. Returns
  // true if that finished the call (all delivered, or an ordered failure).
  bool drain_pending() {
    while (delivered_ < size_) {
      if (!has_pending()) return false;
      auto& waiting = pending();
      auto next = std::find_if(waiting.begin(), waiting.end(),
                               [&](const pending_slice& p) { return p.offset == delivered_; });
      if (next == waiting.end()) return false;
      for (auto& hook : next->hooks) accept_hook(std::move(hook));
      next->hooks.clear();
      if (next->failure) {
        fail_now(*next->failure);
        return true;
      }
      if (!next->outputs) return false;  // its execution is still running
      accept(std::span<Out>(*next->outputs));
      delivered_ += static_cast<std::uint32_t>(next->outputs->size());
      waiting.erase(next);
    }
    finish();
    return true;
  }

  In* inputs_ = nullptr;
  std::uint32_t size_ = 0;
  std::uint32_t delivered_ = 0;  // items accepted in order; guarded by lock_
  clock::time_point window_opened_at_{};
};

// Where calls enter a batching engine. The in-process server implements it;
// a remote transport will feed the same server through it.
template <class In, class Out>
class intake {
 public:
  virtual ~intake() = default;
  // Queues `c`. On success the intake holds its own reference; on failure it
  // holds none and returns why (e.g. shutting_down).
  virtual std::optional<error> submit(call<In, Out>& c) = 0;
};

}  // namespace batch_serving::detail
