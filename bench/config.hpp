// What to measure and for how long: filled from the command line by main.cpp,
// read by every scenario.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace bench {

struct config {
  // Caller threads of the sync scenario.
  std::vector<std::size_t> callers{1, 8, 64, 512};
  // Coroutine callers of the coro scenario (and the naive batcher's threads).
  std::vector<std::size_t> coro_callers{64, 512, 4096};
  // batch_timeout values of the sync, async, many and coro scenarios.
  std::vector<std::chrono::microseconds> timeouts{std::chrono::microseconds(0),
                                                  std::chrono::microseconds(1000)};
  // Measured time per timed measurement (after a warm-up of a fifth of it,
  // at most 100 ms). dense is compute bound and gets less by default.
  std::chrono::milliseconds duration{500};
  std::chrono::milliseconds dense_duration{300};
  // Each measurement is repeated; rows report the medians.
  int runs = 3;
  // Items the async scenario submits; requests the memory scenario queues.
  std::size_t async_items = 1'000'000;
  std::size_t memory_requests = 1'000'000;
  // Modes of the distributed scenario, in this order.
  std::vector<std::string> distributed_modes{"slow", "single", "many", "latency"};
  // Named on the command line (or CI is set): a missing redis-server fails
  // the run instead of skipping the distributed scenario.
  bool distributed_required = false;
  // Progress lines on stderr.
  bool progress = true;
  // The sync and async scenarios' servers report to the global metrics
  // registry (what metrics cost, against a run without).
  bool metrics = false;

  std::chrono::milliseconds warmup() const {
    return std::min(duration / 5, std::chrono::milliseconds(100));
  }
};

}  // namespace bench
