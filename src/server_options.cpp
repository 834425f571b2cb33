#include <chrono>
#include <string>

#include "batch_serving/detail/admission.hpp"
#include "batch_serving/detail/core_options.hpp"
#include "batch_serving/detail/telemetry_bridge.hpp"
#include "batch_serving/error.hpp"
#include "batch_serving/metrics.hpp"

namespace batch_serving::detail {
namespace {
[[noreturn]] void bad_option(const std::string& what) {
  throw serving_error(errc::invalid_argument, "server_options." + what);
}
}  // namespace

core_options resolve_options(const server_options& options,
                             std::optional<std::size_t> serving_batch_size) {
  core_options resolved;
  resolved.name = options.name;
  resolved.batch_size = options.batch_size.value_or(serving_batch_size.value_or(1));
  if (resolved.batch_size == 0) bad_option("batch_size must be at least 1 (got 0)");
  if (serving_batch_size && resolved.batch_size > *serving_batch_size) {
    // The serving promises its batch function executions of at most n items.
    bad_option("batch_size " + std::to_string(resolved.batch_size) +
               " is larger than the serving's batch_size(" + std::to_string(*serving_batch_size) +
               "): its executions may hold at most that many items");
  }
  if (resolved.batch_size > most_items_per_call) {
    bad_option("batch_size must be at most " + std::to_string(most_items_per_call) + " (got " +
               std::to_string(resolved.batch_size) + ")");
  }
  if (options.batch_timeout.count() < 0) {
    bad_option("batch_timeout must not be negative (got " +
               std::to_string(options.batch_timeout.count()) + " us)");
  }
  resolved.batch_timeout = saturated(options.batch_timeout);
  if (options.partitions == 0) bad_option("partitions must be at least 1 (got 0)");
  constexpr std::size_t most_partitions = 1024;
  if (options.partitions > most_partitions) {
    bad_option("partitions must be at most " + std::to_string(most_partitions) + " (got " +
               std::to_string(options.partitions) + ")");
  }
  resolved.partitions = options.partitions;
  if (options.max_queue) {
    if (*options.max_queue == 0) bad_option("max_queue must be at least 1 (got 0)");
    resolved.max_queue = *options.max_queue;
  }
  if (options.default_timeout) {
    if (options.default_timeout->count() < 0) {
      bad_option("default_timeout must not be negative (got " +
                 std::to_string(options.default_timeout->count()) + " us)");
    }
    resolved.default_timeout = saturated(*options.default_timeout);
  }
  resolved.isolate_failures = options.isolate_failures;
  if (options.shutdown_timeout.count() < 0) {
    bad_option("shutdown_timeout must not be negative (got " +
               std::to_string(options.shutdown_timeout.count()) + " ms)");
  }
  resolved.shutdown_timeout = saturated(options.shutdown_timeout);
  for (std::size_t i = 0; i < options.observers.size(); ++i) {
    if (!options.observers[i]) bad_option("observers[" + std::to_string(i) + "] is null");
  }
  if (options.metrics != nullptr) {
    resolved.metrics = options.metrics->serving(options.name, resolved.batch_size);
  }
  if (!options.observers.empty() || resolved.metrics) {
    auto bridge = std::make_shared<telemetry_bridge>(options.name, resolved.batch_size,
                                                     options.observers, resolved.metrics);
    resolved.mapping_spans = bridge->mapping_spans();
    resolved.extra_observer = std::move(bridge);
  }
  return resolved;
}

}  // namespace batch_serving::detail
