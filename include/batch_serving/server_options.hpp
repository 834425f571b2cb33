// How a server batches: its name, batch size, timeout, partitions, shutdown.
//
//   batch_serving::server srv(serving, {.name = "squares",
//                                       .batch_size = 64,
//                                       .batch_timeout = std::chrono::milliseconds(5),
//                                       .partitions = 2});
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

namespace batch_serving {

struct server_options {
  // Registers the server process-wide under this name for dispatch by name.
  // Empty: not registered. A name already taken by a running server is an error.
  std::string name{};
  // The most items one execution holds. Default: the serving's batch_size(n),
  // or 1 when the serving sets none (as in the seed).
  std::optional<std::size_t> batch_size{};
  // How long the oldest queued item waits for company before its batch runs
  // anyway. Zero runs whatever is queued as soon as a partition is free.
  std::chrono::microseconds batch_timeout = std::chrono::milliseconds(100);
  // Executions that may run in parallel, each with its own partition state.
  std::size_t partitions = 1;
  // How long shutdown may spend draining queued and running work before the
  // rest is answered shutting_down.
  std::chrono::milliseconds shutdown_timeout = std::chrono::seconds(30);
};

}  // namespace batch_serving
