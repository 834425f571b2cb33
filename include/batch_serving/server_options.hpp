// How a server batches: its name, batch size, timeout, partitions, queue
// bound, default call timeout, failure isolation, shutdown.
//
//   batch_serving::server srv(serving, {.name = "squares",
//                                       .batch_size = 64,
//                                       .batch_timeout = std::chrono::milliseconds(5),
//                                       .partitions = 2});
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "batch_serving/telemetry.hpp"

namespace batch_serving {

class metrics_registry;

struct server_options {
  // Registers the server process-wide under this name for dispatch by name.
  // Empty: not registered. A name already taken by a running server is an error.
  std::string name{};
  // The most items one execution holds. Default: the serving's batch_size(n),
  // or 1 when the serving sets none (as in the seed). More than the serving's
  // batch_size(n) is an error at start: n is what its batch function was
  // promised. Durations below that are too long for the clock mean "never".
  std::optional<std::size_t> batch_size{};
  // How long a batch waits for company before it runs anyway, counted from
  // its first item's arrival (or, for items left waiting behind a full
  // batch, from when that batch left). Zero (eager) runs whatever is queued as soon as a partition
  // is free; only while calls stream in less than about a microsecond apart does it let them fill
  // the batch first, for a few microseconds at most.
  std::chrono::microseconds batch_timeout = std::chrono::milliseconds(100);
  // Executions that may run in parallel, each with its own partition state.
  std::size_t partitions = 1;
  // The most items that may wait in the queue (not yet executing). A call
  // that would go past it is answered overloaded at once instead of
  // queueing, so memory stays bounded under any load. Unset: unbounded.
  std::optional<std::size_t> max_queue{};
  // The timeout of calls that set neither call_options::timeout nor
  // deadline. Unset: no timeout.
  std::optional<std::chrono::microseconds> default_timeout{};
  // When an execution with items of several calls fails, run it again in
  // halves, recursively, so only the calls whose own items fail get
  // execution_failed and the others their results. Costs at most about
  // 2*log2(calls in the batch) extra executions per failing call, counted in
  // server_stats::isolation_executions. The batch function must then be
  // safe to run again on items it already saw. Off: a failed execution fails
  // every call in it (the seed's behaviour). Not for streaming servings with
  // hooks (their events cannot be taken back).
  bool isolate_failures = false;
  // How long shutdown may spend draining queued and running work before the
  // rest is answered shutting_down.
  std::chrono::milliseconds shutdown_timeout = std::chrono::seconds(30);
  // Telemetry (telemetry.hpp): called as the server works. A null entry is
  // an error at start.
  std::vector<std::shared_ptr<telemetry_observer>> observers{};
  // Where the server's metrics go (metrics.hpp), usually
  // &metrics_registry::global(); it must outlive the server. Null: none.
  metrics_registry* metrics = nullptr;
};

}  // namespace batch_serving
