// A call: one caller's items on their way through a server, and the one place
// its answer is decided.
//
// Life of a call:
//   1. The caller fills its inputs and hands it to an intake (intake.hpp),
//      which admits it (or refuses it, answering it at once).
//   2. A partition takes its items, possibly in several slices that land in
//      different executions (an explicit batch split to fill executions).
//   3. Each execution delivers its slice: outputs (`deliver`) or an error
//      (`fail_slice`). Timeouts, cancellation and shutdown may `fail` it.
//   4. Exactly one of those finishes the call; that one then calls
//      `complete()` once, outside every lock, to wake the caller or run its
//      callback. This is the completion interface every call form
//      implements (`on_complete`, `accept`; call_kinds.hpp, stream_call.hpp).
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
#include <new>
#include <optional>
#include <span>
#include <stop_token>
#include <utility>
#include <vector>

#include "batch_serving/call_timing.hpp"
#include "batch_serving/detail/batch_handler.hpp"
#include "batch_serving/detail/call_pool.hpp"
#include "batch_serving/detail/hook_payload.hpp"
#include "batch_serving/detail/mutex.hpp"
#include "batch_serving/detail/spin_lock.hpp"
#include "batch_serving/detail/thread_annotations.hpp"
#include "batch_serving/error.hpp"

namespace batch_serving::detail {

using clock = std::chrono::steady_clock;

class call_base;

// What answers a call cancelled when its stop_token fires: the intake that
// admitted it (intake.hpp).
class call_canceller {
 public:
  // Answers `c` cancelled unless it already finished; true if this did.
  virtual bool cancel(call_base& c) noexcept = 0;

 protected:
  ~call_canceller() = default;
};

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
  static void operator delete(void* block, std::align_val_t alignment) noexcept {
    ::operator delete(block, alignment);
  }

  // ---- references ----------------------------------------------------------

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  // A reference, unless the last one is gone (the call is being destroyed,
  // on a thread that waits for whoever asks: a stop callback). Returns
  // whether it took one.
  bool try_add_ref() noexcept {
    std::uint32_t n = refs_.load(std::memory_order_relaxed);
    while (n != 0) {
      if (refs_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed)) return true;
    }
    return false;
  }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // ---- deadline ------------------------------------------------------------

  // time_point::max() means none. Set by the intake before the call is queued.
  clock::time_point deadline() const noexcept { return deadline_; }
  bool has_deadline() const noexcept { return deadline_ != clock::time_point::max(); }
  void set_deadline(clock::time_point deadline) noexcept { deadline_ = deadline; }

  // Linked in a queue; owned by that queue (call_queue.hpp), like the links
  // in call<In, Out>. Kept here, where it packs into padding.
  bool in_queue = false;

  // ---- timing (telemetry, call_options::timing) ----------------------------

  // Its caller asked where its time went (time_for_caller). Set by the
  // intake before the call is queued.
  bool caller_wants_timing = false;
  // When the intake queued it. Set only when someone wants timing (an
  // observer of the server, or its caller); stale otherwise.
  clock::time_point queued_at{};

  // The caller's call_options::timing, to fill in. Before the call is queued.
  void time_for_caller(call_timing* timing) {
    lock_guard guard(lock_);
    cold_state().timing = timing;
    caller_wants_timing = true;
  }
  // An execution holding items of this call started at `started` and ran
  // for `ran`: noted for its caller unless the call was answered already
  // (the caller may be reading it).
  void note_execution(clock::time_point started, clock::duration ran) noexcept {
    lock_guard guard(lock_);
    cold* c = cold_if_any();
    if (is_finished() || c == nullptr || c->timing == nullptr) return;
    if (c->timing->executions++ == 0) c->timing->queued = started - queued_at;
    c->timing->executing += ran;
  }

  // ---- answer --------------------------------------------------------------

  // Finishes the call with `e` unless it already finished. Returns true if
  // this finished it; the caller of fail must then call complete().
  bool fail(const error& e) {
    lock_guard guard(lock_);
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

  // Runs `via->cancel(*this)` when a stop is requested on `token` (at once,
  // in this thread, if it was already). Keeps `via` alive as long as the
  // callback can run. Called once, by the intake, from the thread that owns
  // the call's creation reference, before the call is queued: a stop from
  // then on always finds it.
  void cancel_on(const std::stop_token& token, std::shared_ptr<call_canceller> via) {
    if (!token.stop_possible()) return;
    cold* c = nullptr;
    {
      // No thread but this one sees the call yet; the lock is for the rule
      // that the cold block is made under it.
      lock_guard guard(lock_);
      c = &cold_state();
    }
    c->canceller_owner = std::move(via);
    // Outside lock_: the callback may run right here and take it.
    c->stop.emplace(token, canceller{this, c->canceller_owner.get()});
  }

 protected:
  // What a stop callback runs. Not a template, so that the cold block can
  // hold it whatever the call's type.
  struct canceller {
    call_base* target;
    call_canceller* via;
    void operator()() const noexcept { via->cancel(*target); }
  };

  // Cold state, allocated on first use under lock_. `stop` and
  // `canceller_owner` are touched only by the thread that armed them and by
  // the destructor (declared after the owner: destroyed first).
  struct cold {
    virtual ~cold() = default;
    std::optional<error> failure;
    call_timing* timing = nullptr;  // the caller's, when it asked
    std::shared_ptr<call_canceller> canceller_owner;
    std::optional<std::stop_callback<canceller>> stop;
  };

  call_base() = default;
  virtual ~call_base() = default;

  virtual void on_complete() noexcept = 0;
  // The cold block subclasses use (they may extend it).
  virtual std::unique_ptr<cold> make_cold() const { return std::make_unique<cold>(); }

  cold& cold_state() BATCH_SERVING_REQUIRES(lock_) {
    if (!cold_) cold_ = make_cold();
    return *cold_;
  }
  cold* cold_if_any() const noexcept BATCH_SERVING_REQUIRES(lock_) { return cold_.get(); }

  // The most-derived class calls this first in its destructor: destroying a
  // stop callback waits for one running on another thread, which may still
  // use the call's members.
  void stop_cancelling() noexcept BATCH_SERVING_NO_THREAD_SAFETY_ANALYSIS {
    // No other reference is left: nothing else reads the cold block.
    if (cold_) cold_->stop.reset();
  }

  // The error, once the call finished with one; nullptr if it finished with
  // its results. Read only after the call finished, by whoever finished it
  // or saw complete(): the answer no longer changes then.
  const error* failure() const noexcept BATCH_SERVING_NO_THREAD_SAFETY_ANALYSIS {
    return cold_ && cold_->failure ? &*cold_->failure : nullptr;
  }

  bool is_finished() const noexcept BATCH_SERVING_REQUIRES(lock_) {
    return finished_.load(std::memory_order_relaxed);
  }
  void finish_with(const error& e) BATCH_SERVING_REQUIRES(lock_) {
    cold_state().failure.emplace(e);
    finish();
  }
  void finish() noexcept BATCH_SERVING_REQUIRES(lock_) {
    finished_.store(true, std::memory_order_release);
  }

  spin_lock lock_;  // guards the answer state here and in subclasses

 private:
  std::atomic<bool> finished_{false};  // written under lock_, read lock-free by finished()
#ifndef NDEBUG
  std::atomic<bool> completed_{false};
#endif
  std::atomic<std::uint32_t> refs_{1};
  std::unique_ptr<cold> cold_ BATCH_SERVING_GUARDED_BY(lock_);
  clock::time_point deadline_ = clock::time_point::max();
};

// Items per call are counted in 32 bits (a call's fields stay small); an
// explicit batch must stay below this.
inline constexpr std::size_t most_items_per_call = UINT32_MAX;

template <class In, class Out>
class call : public call_base {
 public:
  // ---- what the queue reads ------------------------------------------------

  std::size_t size() const noexcept { return size_; }
  std::span<In> inputs() noexcept { return {inputs_, size_}; }
  // Nonzero: slices must start and end at multiples of this many items (hook
  // streams keep each chunk in one execution). Set before the call is submitted.
  std::uint32_t indivisible_chunk = 0;

  // ---- owned by the queue that holds the call ------------------------------
  // Only that queue (call_queue.hpp) reads or writes these and in_queue,
  // under the lock that guards it. (Ordered to pack with the fields above.)

  std::uint32_t taken = 0;  // items placed in executions
  call* next_in_queue = nullptr;
  call* prev_in_queue = nullptr;
  // When the batch this call heads began waiting for company. Kept only
  // while the call is at the head of its queue; stale or unset anywhere else.
  clock::time_point window_opened_at{};

  // ---- completion side -----------------------------------------------------

  // Hands the outputs for items [offset, offset + outputs.size()) to the call,
  // which may move from them. Returns true if this finished the call; the
  // caller of deliver must then call complete(). Late slices of a call that
  // already finished (failed, timed out, cancelled, shut down) are discarded.
  // An output type whose move throws fails this call (execution_failed),
  // and only this one.
  bool deliver(std::size_t offset, std::span<Out> outputs) {
    lock_guard guard(lock_);
    if (is_finished()) return false;
    try {
      if (offset != delivered_) {
        pending_at(offset).outputs.emplace(std::make_move_iterator(outputs.begin()),
                                           std::make_move_iterator(outputs.end()));
        return false;
      }
      accept(outputs);
      delivered_ += static_cast<std::uint32_t>(outputs.size());
      return drain_pending();
    } catch (...) {
      fail_now(error(errc::execution_failed,
                     "moving a result to its caller threw: " + describe_current_exception()));
      return true;
    }
  }

  // The execution holding the slice at `offset` failed with `e`. A plain call
  // finishes with `e` at once; a call that orders failures (a stream) first
  // delivers what came before the slice. Returns true if this finished the
  // call; the caller must then call complete().
  bool fail_slice(std::size_t offset, const error& e) {
    lock_guard guard(lock_);
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
    lock_guard guard(lock_);
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

  // Called by the executor after each deliver / deliver_hook, outside every
  // lock: where a streaming call wakes its reader or runs its callbacks.
  virtual void after_delivery() noexcept {}

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
  virtual void accept(std::span<Out> outputs) BATCH_SERVING_REQUIRES(lock_) = 0;
  virtual void accept_hook(hook_slice&&) BATCH_SERVING_REQUIRES(lock_) {}
  // True for calls whose readers see events in order (streams): a slice's
  // failure then waits for the slices before it. Plain calls fail at once.
  virtual bool orders_failures() const noexcept { return false; }

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

  std::vector<pending_slice>& pending() BATCH_SERVING_REQUIRES(lock_) {
    return static_cast<cold_with_pending&>(cold_state()).pending;
  }
  bool has_pending() const noexcept BATCH_SERVING_REQUIRES(lock_) {
    const cold* c = cold_if_any();
    return c != nullptr && !static_cast<const cold_with_pending*>(c)->pending.empty();
  }

  pending_slice& pending_at(std::size_t offset) BATCH_SERVING_REQUIRES(lock_) {
    for (auto& p : pending()) {
      if (p.offset == offset) return p;
    }
    return pending().emplace_back(pending_slice{offset, {}, std::nullopt, std::nullopt});
  }

  void fail_now(const error& e) BATCH_SERVING_REQUIRES(lock_) {
    finish_with(e);
    pending().clear();
  }

  // Delivers what waited for the slices now at the front, in order. Returns
  // true if that finished the call (all delivered, or an ordered failure).
  bool drain_pending() BATCH_SERVING_REQUIRES(lock_) {
    while (delivered_ < size_) {
      if (!has_pending()) return false;
      auto& waiting = pending();
      const std::size_t wanted = delivered_;
      auto next = std::find_if(waiting.begin(), waiting.end(),
                               [wanted](const pending_slice& p) { return p.offset == wanted; });
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
  std::uint32_t delivered_ BATCH_SERVING_GUARDED_BY(lock_) = 0;  // items accepted in order
};

}  // namespace batch_serving::detail
