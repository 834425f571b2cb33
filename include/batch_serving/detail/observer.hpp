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
#pragma once

#include <cstddef>

#include "batch_serving/error.hpp"

namespace batch_serving::detail {

// One run of the batch function.
struct execution_record {
  std::size_t items = 0;
  bool failed = false;  // it threw, or returned a wrong number of outputs
  bool rerun = false;   // a failure-isolation run of part of a failed execution
};

class execution_observer {
 public:
  virtual void execution_ran(const execution_record& run) noexcept = 0;
  // `calls` slices of a failed execution got their results from a re-run.
  virtual void calls_isolated(std::size_t calls) noexcept = 0;
  // A call that was queued was answered with an error: execution_failed,
  // timeout, cancelled or shutting_down.
  virtual void call_ended(errc why) noexcept = 0;
  // The batch function emitted a hook nobody wants; it was dropped.
  virtual void hook_dropped() noexcept = 0;

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

// Reports to `first` and, if there is one, to `second`.
class observer_tee final : public observer {
 public:
  observer_tee(observer& first, observer* second) noexcept : first_(first), second_(second) {}

  void call_queued(std::size_t items) noexcept override {
    first_.call_queued(items);
    if (second_ != nullptr) second_->call_queued(items);
  }
  void call_refused(errc why) noexcept override {
    first_.call_refused(why);
    if (second_ != nullptr) second_->call_refused(why);
  }
  void call_ended(errc why) noexcept override {
    first_.call_ended(why);
    if (second_ != nullptr) second_->call_ended(why);
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
};

}  // namespace batch_serving::detail
