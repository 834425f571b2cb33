// Execution: one partition running batches. Given the slices the queue took,
// it moves their inputs into one contiguous batch, runs the batch function,
// and answers every slice: its outputs, or the error. It knows nothing of the
// queue or its lock (it runs with none held), and reports what it did
// through an execution_observer.
//
// Failure isolation (isolate_failures): a failed execution with slices of
// several calls is run again in halves, recursively; only slices that fail
// on their own get execution_failed.
//
// Hooks (streaming servings): what the batch function emits while it runs is
// routed to the slices, each its own entries, in order with its outputs.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "batch_serving/detail/batch.hpp"
#include "batch_serving/detail/batch_handler.hpp"
#include "batch_serving/detail/call.hpp"
#include "batch_serving/detail/hook_payload.hpp"
#include "batch_serving/detail/observer.hpp"
#include "batch_serving/detail/resume_batch.hpp"
#include "batch_serving/error.hpp"
#include "batch_serving/execution_context.hpp"

namespace batch_serving::detail {

// What the engine knows of a batch it hands to an execution.
struct execution_notes {
  batch_trigger trigger = batch_trigger::full;
  // Some call since the server started asked for call_options::timing.
  bool timed_for_callers = false;
};

template <class In, class Out>
class execution {
 public:
  // `hooks`: the hook names a streaming serving declared (may be empty).
  // All references must outlive the execution. Not thread-safe: one
  // partition's thread uses it.
  execution(batch_handler<In, Out>& handler, const partition_info& where,
            const std::vector<std::string>& hooks, bool isolate_failures,
            execution_observer& observer)
      : handler_(handler),
        where_(where),
        hooks_(hooks),
        isolate_failures_(isolate_failures),
        observer_(observer),
        observer_timed_(observer.wants_timing()) {}

  // Runs the batch function on the slices' items (moved out of their calls)
  // and answers each slice; completes the calls this finishes. Blocks for
  // the batch function; reuses its buffers (no allocation once they grew).
  // A slice whose items cannot be moved into the batch (their move throws)
  // fails on its own (execution_failed); the others run without it.
  // `notes`: what closed the batch, for whoever times it.
  void run(std::span<const slice<In, Out>> all, const execution_notes& notes = {}) {
    const std::span<const slice<In, Out>> slices = gather_inputs(all);
    if (slices.empty()) return;
    trigger_ = notes.trigger;
    callers_want_timing_ = false;
    if (notes.timed_for_callers) [[unlikely]] {
      for (const auto& s : slices) callers_want_timing_ |= s.target->caller_wants_timing;
    }
    hook_router hooks(hooks_, slices, observer_);
    const std::optional<error> failure = run_once(inputs_, slices, &hooks, /*rerun=*/false);
    if (!failure) {
      deliver(slices);
    } else if (isolate_failures_ && slices.size() > 1) {
      isolate(inputs_, slices, *failure);
    } else {
      fail(slices, *failure);
    }
  }

 private:
  // Moves the slices' items into inputs_; returns the slices that made it
  // (all of them unless a move threw, then a copy of the rest in kept_).
  std::span<const slice<In, Out>> gather_inputs(std::span<const slice<In, Out>> all) {
    inputs_.clear();
    // Room for every item first: growing on the way would copy the items
    // already in (for a type whose move may throw) and charge a throwing
    // copy of one call's item to another.
    std::size_t total = 0;
    for (const auto& s : all) total += s.length;
    try {
      inputs_.reserve(total);
    } catch (...) {
      fail(all, error(errc::execution_failed,
                      "out of memory gathering a batch of " + std::to_string(total) + " items"));
      return {};
    }
    if constexpr (std::is_nothrow_move_constructible_v<In>) {
      // Nothing below can throw: no handler to pay for on the hot path.
      for (const auto& s : all) {
        for (auto& item : s.target->inputs().subspan(s.offset, s.length)) {
          inputs_.push_back(std::move(item));
        }
      }
      return all;
    } else {
      bool dropped_any = false;
      for (std::size_t i = 0; i < all.size(); ++i) {
        const auto& s = all[i];
        const std::size_t start = inputs_.size();
        try {
          for (auto& item : s.target->inputs().subspan(s.offset, s.length)) {
            inputs_.push_back(std::move(item));
          }
        } catch (...) {
          while (inputs_.size() > start) inputs_.pop_back();  // no default constructor needed
          if (!dropped_any) kept_.assign(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(i));
          dropped_any = true;
          fail({&s, 1}, error(errc::execution_failed, "moving an input into the batch threw: " +
                                                          describe_current_exception()));
          continue;
        }
        if (dropped_any) kept_.push_back(s);
      }
      return dropped_any ? std::span<const slice<In, Out>>(kept_) : all;
    }
  }

  // One run of the batch function on `inputs`, reported.
  // Timed (clock read around it) only when an observer or a caller asked.
  std::optional<error> run_once(std::span<const In> inputs, std::span<const slice<In, Out>> slices,
                                hook_sink* hooks, bool rerun) {
    if (observer_timed_ || callers_want_timing_) [[unlikely]] {
      return run_timed(inputs, slices, hooks, rerun);
    }
    execution_context ctx(where_, inputs.size(), hooks);
    outputs_.clear();
    std::optional<error> failure = run_batch(handler_, inputs, ctx, outputs_);
    observer_.execution_ran({inputs.size(), failure.has_value(), rerun});
    return failure;
  }

  // run_once, with the clock read around the batch function.
  [[gnu::noinline]] std::optional<error> run_timed(std::span<const In> inputs,
                                                   std::span<const slice<In, Out>> slices,
                                                   hook_sink* hooks, bool rerun) {
    execution_context ctx(where_, inputs.size(), hooks);
    outputs_.clear();
    execution_record run{.items = inputs.size(),
                         .rerun = rerun,
                         .partition = where_.index,
                         .calls = slices.size(),
                         .trigger = trigger_};
    const clock::time_point started = clock::now();
    // Slices are in queue order: the first holds the oldest item.
    run.queue_wait = started - slices.front().target->queued_at;
    if (observer_timed_) observer_.execution_started(run);
    std::optional<error> failure = run_batch(handler_, inputs, ctx, outputs_);
    finished_at_ = clock::now();
    run.duration = finished_at_ - started;
    run.failed = failure.has_value();
    observer_.execution_ran(run);
    if (callers_want_timing_) {
      for (const auto& s : slices) {
        if (s.target->caller_wants_timing) s.target->note_execution(started, run.duration);
      }
    }
    return failure;
  }

  // `slices`, whose items are `inputs`, failed together with `failure`: runs
  // each half again, recursively, until every slice either got its results
  // or failed on its own.
  void isolate(std::span<const In> inputs, std::span<const slice<In, Out>> slices,
               const error& failure) {
    if (slices.size() == 1) {
      fail(slices, failure);
      return;
    }
    // Cut at the slice boundary nearest half the items, one slice at least on each side.
    std::size_t cut = 1;
    std::size_t left_items = slices[0].length;
    while (cut + 1 < slices.size() && 2 * (left_items + slices[cut].length) <= inputs.size()) {
      left_items += slices[cut].length;
      ++cut;
    }
    const std::span<const In> halves_inputs[] = {inputs.first(left_items),
                                                 inputs.subspan(left_items)};
    const std::span<const slice<In, Out>> halves[] = {slices.first(cut), slices.subspan(cut)};
    for (int h = 0; h < 2; ++h) {
      // Re-runs emit nothing: their hook events went out with the first run.
      const std::optional<error> half_failure =
          run_once(halves_inputs[h], halves[h], nullptr, /*rerun=*/true);
      if (half_failure) {
        isolate(halves_inputs[h], halves[h], *half_failure);
      } else {
        observer_.calls_isolated(halves[h].size());
        deliver(halves[h]);
      }
    }
  }

  // Hands each slice its outputs, in order; completes the calls this finished.
  // Coroutine callers resume in one hand-off per target (resume_batch.hpp).
  void deliver(std::span<const slice<In, Out>> slices) {
    const resume_batch_scope one_hand_off;
    std::size_t at = 0;
    for (const auto& s : slices) {
      const bool finished =
          s.target->deliver(s.offset, std::span<Out>(outputs_).subspan(at, s.length));
      at += s.length;
      s.target->after_delivery();
      if (finished) {
        // A stream's ordered failure may finish it here.
        if (s.target->failed()) {
          observer_.call_ended(errc::execution_failed, s.target->size(), s.target->queued_at);
        } else if (observer_timed_) {
          observer_.call_answered(s.target->size(), finished_at_ - s.target->queued_at);
        }
        s.target->complete();
      }
    }
  }

  void fail(std::span<const slice<In, Out>> slices, const error& failure) {
    const resume_batch_scope one_hand_off;
    for (const auto& s : slices) {
      const bool finished = s.target->fail_slice(s.offset, failure);
      s.target->after_delivery();
      if (finished) {
        observer_.call_ended(errc::execution_failed, s.target->size(), s.target->queued_at);
        s.target->complete();
      }
    }
  }

  // Routes an execution's emitted hooks to its slices, each its own
  // entries; counts the ones nobody wants.
  class hook_router final : public hook_sink {
   public:
    hook_router(const std::vector<std::string>& declared, std::span<const slice<In, Out>> slices,
                execution_observer& observer)
        : declared_(declared), slices_(slices), observer_(observer) {}
    bool wants(std::string_view hook) const noexcept override {
      return find_declared_hook(declared_, hook) != nullptr;
    }
    void emit(std::string_view hook, const hook_payload& payload) override {
      const std::string* name = find_declared_hook(declared_, hook);
      if (name == nullptr) return;  // emit() asks wants() first
      std::size_t at = 0;
      for (const auto& s : slices_) {
        s.target->deliver_hook(s.offset, hook_slice::of(*name, payload, at, s.length));
        s.target->after_delivery();
        at += s.length;
      }
    }
    void dropped(std::string_view) noexcept override { observer_.hook_dropped(); }

   private:
    const std::vector<std::string>& declared_;
    std::span<const slice<In, Out>> slices_;
    execution_observer& observer_;
  };

  batch_handler<In, Out>& handler_;
  const partition_info& where_;
  const std::vector<std::string>& hooks_;
  const bool isolate_failures_;
  execution_observer& observer_;
  const bool observer_timed_;
  bool callers_want_timing_ = false;  // of the batch being run
  batch_trigger trigger_ = batch_trigger::full;
  clock::time_point finished_at_{};  // when the last timed run ended: its calls' answer time
  std::vector<In> inputs_;
  std::vector<Out> outputs_;
  std::vector<slice<In, Out>> kept_;  // the slices of a batch that lost some
};

}  // namespace batch_serving::detail
