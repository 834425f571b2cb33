// Test support for the engine's units (queue, execution, intake), driven
// without a server: a call that records what it receives, owned by a handle
// that holds the test's reference, and an observer that records what it is
// told.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "batch_serving/detail/call.hpp"
#include "batch_serving/detail/observer.hpp"
#include "batch_serving/detail/thread_annotations.hpp"
#include "batch_serving/error.hpp"

namespace batch_serving::testing {

// A call of ints that keeps its outputs, hook events and answer where a test
// can read them once it completed, and counts its completions and its
// destruction.
class test_call final : public detail::call<int, int> {
 public:
  explicit test_call(std::vector<int> items, int* destroyed = nullptr)
      : items_(std::move(items)), destroyed_(destroyed) {
    set_inputs(std::span<int>(items_));
  }
  ~test_call() override {
    stop_cancelling();
    if (destroyed_ != nullptr) ++*destroyed_;
  }

  // Read after completion (or in a single-threaded test).
  std::vector<int> outputs;
  std::vector<std::vector<int>> output_slices;  // as accepted, one entry per accept
  std::vector<std::string> hooks;               // "name:entry,entry" per hook event
  int completions = 0;
  const error* answer_error() const noexcept { return failure(); }

 protected:
  void accept(std::span<int> out) override BATCH_SERVING_REQUIRES(lock_) {
    outputs.insert(outputs.end(), out.begin(), out.end());
    output_slices.emplace_back(out.begin(), out.end());
  }
  void accept_hook(detail::hook_slice&& hook) override BATCH_SERVING_REQUIRES(lock_) {
    std::string entries = *hook.name + ":";
    const auto* first = static_cast<const int*>(hook.first);
    for (std::size_t i = 0; i < hook.length; ++i) {
      if (i > 0) entries += ',';
      entries += std::to_string(first[i]);
    }
    hooks.push_back(entries);
  }
  void on_complete() noexcept override { ++completions; }

 private:
  std::vector<int> items_;
  int* destroyed_;
};

// Holds the test's (creation) reference to a test_call.
class call_handle {
 public:
  explicit call_handle(std::vector<int> items, int* destroyed = nullptr)
      : call_(new test_call(std::move(items), destroyed)) {}
  call_handle(call_handle&& other) noexcept : call_(std::exchange(other.call_, nullptr)) {}
  call_handle& operator=(call_handle&&) = delete;
  ~call_handle() {
    if (call_ != nullptr) call_->release();
  }
  test_call& operator*() const noexcept { return *call_; }
  test_call* operator->() const noexcept { return call_; }
  test_call* get() const noexcept { return call_; }

 private:
  test_call* call_;
};

// Records every event an engine or execution reports. Thread-safe.
class recording_observer final : public detail::observer {
 public:
  struct record {
    std::size_t calls_queued = 0;
    std::size_t items_queued = 0;
    std::vector<errc> refused;
    std::vector<errc> ended;
    std::vector<detail::execution_record> runs;
    std::size_t calls_isolated = 0;
    std::size_t hooks_dropped = 0;
  };

  void call_queued(std::size_t items) noexcept override {
    std::lock_guard lock(mu_);
    ++seen_.calls_queued;
    seen_.items_queued += items;
  }
  void call_refused(errc why) noexcept override {
    std::lock_guard lock(mu_);
    seen_.refused.push_back(why);
  }
  void call_ended(errc why, std::size_t, detail::clock::time_point) noexcept override {
    std::lock_guard lock(mu_);
    seen_.ended.push_back(why);
  }
  void execution_ran(const detail::execution_record& run) noexcept override {
    std::lock_guard lock(mu_);
    seen_.runs.push_back(run);
  }
  void calls_isolated(std::size_t calls) noexcept override {
    std::lock_guard lock(mu_);
    seen_.calls_isolated += calls;
  }
  void hook_dropped() noexcept override {
    std::lock_guard lock(mu_);
    ++seen_.hooks_dropped;
  }

  record seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  mutable std::mutex mu_;
  record seen_;
};

}  // namespace batch_serving::testing
