// The counters behind server::stats(): the engine's first observer.
//
// Counters of queued calls are written only under the engine's queue lock
// (call_queued is serialized), so they are bumped with a plain load and
// store instead of a locked read-modify-write; every counter is an atomic
// so that stats() reads them without any lock.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "batch_serving/detail/observer.hpp"
#include "batch_serving/server_stats.hpp"

namespace batch_serving::detail {

class stats_counters final : public observer {
 public:
  void call_queued(std::size_t items) noexcept override {
    bump_serialized(calls_accepted_, 1);
    bump_serialized(items_accepted_, items);
  }

  void call_refused(errc why) noexcept override {
    switch (why) {
      case errc::shutting_down:
      case errc::no_serving: bump(calls_rejected_); break;
      case errc::overloaded: bump(calls_overloaded_); break;
      case errc::timeout: bump(calls_timed_out_); break;
      case errc::cancelled: bump(calls_cancelled_); break;
      default: break;  // malformed calls are not counted
    }
  }

  void call_ended(errc why, std::size_t, clock::time_point) noexcept override {
    switch (why) {
      case errc::execution_failed: bump(calls_failed_); break;
      case errc::timeout: bump(calls_timed_out_); break;
      case errc::cancelled: bump(calls_cancelled_); break;
      case errc::shutting_down: bump(calls_shut_down_); break;
      default: break;
    }
  }

  void execution_ran(const execution_record& run) noexcept override {
    bump(executions_);
    bump(items_executed_, run.items);
    if (run.failed) bump(failed_executions_);
    if (run.rerun) bump(isolation_executions_);
  }

  void calls_isolated(std::size_t calls) noexcept override { bump(calls_isolated_, calls); }

  void hook_dropped() noexcept override { bump(hook_events_dropped_); }

  // A snapshot; each counter is exact, the set is not one atomic cut.
  // Thread-safe, lock-free.
  server_stats snapshot() const noexcept {
    server_stats s;
    s.calls_accepted = read(calls_accepted_);
    s.items_accepted = read(items_accepted_);
    s.calls_rejected = read(calls_rejected_);
    s.calls_overloaded = read(calls_overloaded_);
    s.executions = read(executions_);
    s.items_executed = read(items_executed_);
    s.failed_executions = read(failed_executions_);
    s.calls_failed = read(calls_failed_);
    s.calls_timed_out = read(calls_timed_out_);
    s.calls_cancelled = read(calls_cancelled_);
    s.calls_shut_down = read(calls_shut_down_);
    s.isolation_executions = read(isolation_executions_);
    s.calls_isolated = read(calls_isolated_);
    s.hook_events_dropped = read(hook_events_dropped_);
    return s;
  }

 private:
  using counter = std::atomic<std::uint64_t>;

  static void bump(counter& c, std::uint64_t n = 1) noexcept {
    c.fetch_add(n, std::memory_order_relaxed);
  }
  // For counters with a single writer at a time (serialized by a lock).
  static void bump_serialized(counter& c, std::uint64_t n) noexcept {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  static std::uint64_t read(const counter& c) noexcept { return c.load(std::memory_order_relaxed); }

  counter calls_accepted_{0};  // serialized
  counter items_accepted_{0};  // serialized
  counter calls_rejected_{0};
  counter calls_overloaded_{0};
  counter executions_{0};
  counter items_executed_{0};
  counter failed_executions_{0};
  counter calls_failed_{0};
  counter calls_timed_out_{0};
  counter calls_cancelled_{0};
  counter calls_shut_down_{0};
  counter isolation_executions_{0};
  counter calls_isolated_{0};
  counter hook_events_dropped_{0};
};

}  // namespace batch_serving::detail
