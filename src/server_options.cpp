#include <string>

#include "batch_serving/server.hpp"

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
  if (options.batch_timeout.count() < 0) {
    bad_option("batch_timeout must not be negative (got " +
               std::to_string(options.batch_timeout.count()) + " us)");
  }
  resolved.batch_timeout = options.batch_timeout;
  if (options.partitions == 0) bad_option("partitions must be at least 1 (got 0)");
  constexpr std::size_t most_partitions = 1024;
  if (options.partitions > most_partitions) {
    bad_option("partitions must be at most " + std::to_string(most_partitions) + " (got " +
               std::to_string(options.partitions) + ")");
  }
  resolved.partitions = options.partitions;
  if (options.shutdown_timeout.count() < 0) {
    bad_option("shutdown_timeout must not be negative (got " +
               std::to_string(options.shutdown_timeout.count()) + " ms)");
  }
  resolved.shutdown_timeout = options.shutdown_timeout;
  return resolved;
}

}  // namespace batch_serving::detail
