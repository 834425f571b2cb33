// What an engine reports as it works, for counters, metrics and telemetry.
//
// The engine's own counters (stats_counters.hpp, read as server_stats) are
// the first observer; an engine may carry one more (core_options::observer),
// reached through `observer_tee` at the cost of a null check when there is
// none. Execution reports through the narrower `execution_observer`.
//
// Every method is noexcept and must be cheap: they run on the submitting and
// partition threads, between a call's hand-offs. None is called with a lock
// held unless it says so.
//
// Timing: an observer that wants_timing() gets the clock-based fields and
// the methods marked "timed"; for one that does not, the engine reads no
// clock on its account and those fields are left zero.
#pragma once

#include <cstddef>

#include "batch_serving/detail/call.hpp"
#include "batch_serving/error.hpp"
#include "batch_serving/telemetry.hpp"

namespace batch_serving::detail {

// One run of the batch function.
struct execution_record {
  std::size_t items = 0;
  bool failed = false;  // it threw, or returned a wrong number of outputs
  bool rerun = false;   // a failure-isolation run of part of a failed execution
  // Timed only:
  std::size_t partition = 0;
  std::size_t calls = 0;
  batch_trigger trigger = batch_trigger::full;
  clock::duration queue_wait{};  // of its oldest item
  clock::duration duration{};    // of the batch function; zero when it starts
};

class execution_observer {
 public:
  // Timed: a run of the batch function is about to start.
  virtual void execution_started(const execution_record&) noexcept {}
  virtual void execution_ran(const execution_record& run) noexcept = 0;
  // `calls` slices of a failed execution got their results from a re-run.
  virtual void calls_isolated(std::size_t calls) noexcept = 0;
  // A call that was queued (at `queued_at`, when timed) was answered with
  // an error: execution_failed, timeout, cancelled, shutting_down or
  // invalid_argument.
  virtual void call_ended(errc why, std::size_t items, clock::time_point queued_at) noexcept = 0;
  // Timed: a call got its results, `latency` after it was queued.
  virtual void call_answered(std::size_t /*items*/, clock::duration /*latency*/) noexcept {}
  // The batch function emitted a hook nobody wants; it was dropped.
  virtual void hook_dropped() noexcept = 0;

  // Constant for the observer's life.
  virtual bool wants_timing() const noexcept { return false; }

 protected:
  ~execution_observer() = default;
};

class observer : public execution_observer {
 public:
  // A call was queued. Called with the engine's queue lock held, so calls
  // are serialized: keep it to a few instructions.
  virtual void call_queued(std::size_t items) noexcept = 0;
  // A call was answered at the door and never queued: shutting_down or
  // no_serving (the server is not running), overloaded, timeout (its
  // deadline had passed), cancelled (its stop was requested) or
  // invalid_argument (its options, or a batch that can never fit).
  virtual void call_refused(errc why) noexcept = 0;

 protected:
  ~observer() = default;
};

// The caller-side mappings of a serving, timed on the caller's side (the
// client asks its intake for one; null: nobody wants them).
class mapping_observer {
 public:
  virtual void mapping_ran(mapping_phase phase, std::size_t items,
                           clock::duration took) noexcept = 0;

 protected:
  ~mapping_observer() = default;
};

// Reports to `first` and, if there is one, to `second`. Timed if either is.
class observer_tee final : public observer {
 public:
  observer_tee(observer& first, observer* second) noexcept
      : first_(first),
        second_(second),
        timed_(first.wants_timing() || (second != nullptr && second->wants_timing())) {}

  bool wants_timing() const noexcept override { return timed_; }

  void call_queued(std::size_t items) noexcept override {
    first_.call_queued(items);
    if (second_ != nullptr) second_->call_queued(items);
  }
  void call_refused(errc why) noexcept override {
    first_.call_refused(why);
    if (second_ != nullptr) second_->call_refused(why);
  }
  void call_ended(errc why, std::size_t items, clock::time_point queued_at) noexcept override {
    first_.call_ended(why, items, queued_at);
    if (second_ != nullptr) second_->call_ended(why, items, queued_at);
  }
  void call_answered(std::size_t items, clock::duration latency) noexcept override {
    first_.call_answered(items, latency);
    if (second_ != nullptr) second_->call_answered(items, latency);
  }
  void execution_started(const execution_record& run) noexcept override {
    first_.execution_started(run);
    if (second_ != nullptr) second_->execution_started(run);
  }
  void execution_ran(const execution_record& run) noexcept override {
    first_.execution_ran(run);
    if (second_ != nullptr) second_->execution_ran(run);
  }
  void calls_isolated(std::size_t calls) noexcept override {
    first_.calls_isolated(calls);
    if (second_ != nullptr) second_->calls_isolated(calls);
  }
  void hook_dropped() noexcept override {
    first_.hook_dropped();
    if (second_ != nullptr) second_->hook_dropped();
  }

 private:
  observer& first_;
  observer* second_;
  const bool timed_;
};

}  // namespace batch_serving::detail
