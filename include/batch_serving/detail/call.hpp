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
#include <iterator>
#include <mutex>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "batch_serving/detail/hook_payload.hpp"
#include "batch_serving/detail/spin_lock.hpp"
#include "batch_serving/error.hpp"

namespace batch_serving::detail {

using clock = std::chrono::steady_clock;

template <class In, class Out>
class call {
 public:
  call(const call&) = delete;
  call& operator=(const call&) = delete;

  // ---- references ----------------------------------------------------------

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // ---- intake side ---------------------------------------------------------

  std::size_t size() const noexcept { return inputs_.size(); }
  std::span<In> inputs() noexcept { return inputs_; }
  clock::time_point enqueued_at() const noexcept { return enqueued_at_; }

  // Fields owned by the intake that queued the call; see server_core.
  call* next_in_queue = nullptr;  // guarded by the intake's queue mutex
  std::size_t taken = 0;          // items placed in executions; guarded likewise
  // Nonzero: slices must start and end at multiples of this many items (hook
  // streams keep each chunk in one execution). Set before submit.
  std::size_t indivisible_chunk = 0;

  void mark_enqueued(clock::time_point now) noexcept { enqueued_at_ = now; }

  // ---- completion side -----------------------------------------------------

  // Hands the outputs for items [offset, offset + outputs.size()) to the call,
  // which may move from them. Returns true if this finished the call; the
  // caller of deliver must then call complete(). Late slices of a call that
  // already finished (failed, shut down) are discarded.
  bool deliver(std::size_t offset, std::span<Out> outputs) {
    std::lock_guard guard(lock_);
    if (finished_) return false;
    if (offset != delivered_) {
      pending_at(offset).outputs.emplace(std::make_move_iterator(outputs.begin()),
                                         std::make_move_iterator(outputs.end()));
      return false;
    }
    accept(outputs);
    delivered_ += outputs.size();
    return drain_pending();
  }

  // The execution holding the slice at `offset` failed with `e`. A plain call
  // finishes with `e` at once; a call that orders failures (a stream) first
  // delivers what came before the slice. Returns true if this finished the
  // call; the caller must then call complete().
  bool fail_slice(std::size_t offset, const error& e) {
    std::lock_guard guard(lock_);
    if (finished_) return false;
    if (orders_failures() && offset != delivered_) {
      pending_at(offset).failure.emplace(e);
      return false;
    }
    finish_with(e);
    return true;
  }

  // Hands a hook event for the slice at `offset` to the call, in order with
  // the call's outputs. Never finishes the call.
  void deliver_hook(std::size_t offset, hook_slice&& hook) {
    std::lock_guard guard(lock_);
    if (finished_) return;
    if (offset == delivered_) {
      accept_hook(std::move(hook));
    } else {
      pending_at(offset).hooks.push_back(std::move(hook));
    }
  }

  // Finishes the call with `e` unless it already finished. Returns true if
  // this finished it; the caller of fail must then call complete().
  bool fail(const error& e) {
    std::lock_guard guard(lock_);
    if (finished_) return false;
    finish_with(e);
    return true;
  }

  // Wakes the caller / runs its callback. Called exactly once, by whoever got
  // `true` from deliver(), fail_slice() or fail(), outside every lock, while
  // it holds a reference.
  void complete() noexcept {
    assert(!completed_.exchange(true) && "a call was completed twice");
    on_complete();
  }

 protected:
  call() = default;
  virtual ~call() = default;

  // Sets where the call's inputs live (storage owned by the subclass).
  void set_inputs(std::span<In> inputs) noexcept { inputs_ = inputs; }

  // Receive outputs and hook events strictly in call order, under the
  // call's lock. Only streaming calls care about hooks.
  virtual void accept(std::span<Out> outputs) = 0;
  virtual void accept_hook(hook_slice&&) {}
  virtual void on_complete() noexcept = 0;
  // True for calls whose readers see events in order (streams): a slice's
  // failure then waits for the slices before it. Plain calls fail at once.
  virtual bool orders_failures() const noexcept { return false; }

 public:
  // Called by the executor after each deliver / deliver_hook, outside every
  // lock: where a streaming call wakes its reader or runs its callbacks.
  virtual void after_delivery() noexcept {}

 protected:
  // Readable once the call finished (after complete() was signalled).
  const std::optional<error>& failure() const noexcept { return error_; }

 private:
  // What arrived for a slice before its predecessors were delivered.
  struct pending_slice {
    std::size_t offset;
    std::vector<hook_slice> hooks;
    std::optional<std::vector<Out>> outputs;
    std::optional<error> failure;
  };

  pending_slice& pending_at(std::size_t offset) {
    for (auto& p : pending_) {
      if (p.offset == offset) return p;
    }
    return pending_.emplace_back(pending_slice{offset, {}, std::nullopt, std::nullopt});
  }

  void finish_with(const error& e) {  // requires lock_
    finished_ = true;
    error_.emplace(e);
    pending_.clear();
  }

  // Delivers what waited for the slices now at the front, in order. Returns
  // true if that finished the call (all delivered, or an ordered failure).
  bool drain_pending() {
    while (delivered_ < size()) {
      auto next = std::find_if(pending_.begin(), pending_.end(),
                               [&](const pending_slice& p) { return p.offset == delivered_; });
      if (next == pending_.end()) return false;
      for (auto& hook : next->hooks) accept_hook(std::move(hook));
      next->hooks.clear();
      if (next->failure) {
        finish_with(*next->failure);
        return true;
      }
      if (!next->outputs) return false;  // its execution is still running
      accept(std::span<Out>(*next->outputs));
      delivered_ += next->outputs->size();
      pending_.erase(next);
    }
    finished_ = true;
    return true;
  }

  std::atomic<int> refs_{1};
  std::span<In> inputs_;
  clock::time_point enqueued_at_{};

  spin_lock lock_;
  bool finished_ = false;      // guarded by lock_
  std::size_t delivered_ = 0;  // items accepted in order; guarded by lock_
  std::optional<error> error_;  // guarded by lock_ until finished
  std::vector<pending_slice> pending_;  // guarded by lock_
#ifndef NDEBUG
  std::atomic<bool> completed_{false};
#endif
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
