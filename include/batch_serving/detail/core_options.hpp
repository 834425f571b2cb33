// Server options after defaults were applied and values validated: what the
// engine runs with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "batch_serving/detail/call.hpp"
#include "batch_serving/detail/observer.hpp"
#include "batch_serving/detail/serving_metrics.hpp"
#include "batch_serving/server_options.hpp"

namespace batch_serving::detail {

struct core_options {
  std::string name;
  std::size_t batch_size = 1;
  clock::duration batch_timeout{};
  std::size_t partitions = 1;
  std::size_t max_queue = SIZE_MAX;  // SIZE_MAX: unbounded
  std::optional<clock::duration> default_timeout;
  bool isolate_failures = false;
  clock::duration shutdown_timeout{};
  // Reported to besides the server's own counters (metrics, telemetry).
  std::shared_ptr<observer> extra_observer;
  // Who times the caller-side mappings (null: nobody); part of extra_observer.
  mapping_observer* mapping_spans = nullptr;
  // The metrics series the server reports to (null: none), for its gauges.
  std::shared_ptr<serving_metrics> metrics;
};

// Validates `options`, applies defaults; throws serving_error
// (invalid_argument) naming the field.
core_options resolve_options(const server_options& options,
                             std::optional<std::size_t> serving_batch_size);

}  // namespace batch_serving::detail
