// Counters a server keeps about its work, read with server::stats().
//
//   auto s = srv.stats();
//   std::printf("%llu executions, mean fill %.1f\n",
//               (unsigned long long)s.executions, s.mean_batch());
#pragma once

#include <cstdint>

namespace batch_serving {

// A snapshot; each counter is exact, the set is not one atomic cut.
struct server_stats {
  std::uint64_t calls_accepted = 0;      // calls queued (dispatch counts 1)
  std::uint64_t items_accepted = 0;      // items in those calls
  std::uint64_t calls_rejected = 0;      // refused at the door (shutting down)
  std::uint64_t calls_overloaded = 0;    // refused at the door: max_queue reached
  std::uint64_t executions = 0;          // batch function runs, isolation re-runs included
  std::uint64_t items_executed = 0;      // items in those runs
  std::uint64_t failed_executions = 0;   // runs that threw or returned a wrong count
  std::uint64_t calls_failed = 0;        // calls answered execution_failed
  std::uint64_t calls_timed_out = 0;     // calls answered timeout
  std::uint64_t calls_cancelled = 0;     // calls answered cancelled
  std::uint64_t calls_shut_down = 0;     // answered shutting_down by shutdown
  // Failure isolation: extra runs of parts of failed executions, and the
  // calls in failed executions that still got their results from such a run
  // (a call split across executions counts once per execution).
  std::uint64_t isolation_executions = 0;
  std::uint64_t calls_isolated = 0;
  // Emits of hooks nobody reads (a plain serving, or a hook the streaming
  // serving did not declare): dropped, the execution carries on.
  std::uint64_t hook_events_dropped = 0;

  // Mean items per execution (batch fill), 0 before the first execution.
  double mean_batch() const noexcept {
    return executions == 0 ? 0.0
                           : static_cast<double>(items_executed) / static_cast<double>(executions);
  }
};

}  // namespace batch_serving
