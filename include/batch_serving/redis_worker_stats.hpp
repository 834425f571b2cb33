// Counters a redis_worker (redis_worker.hpp) keeps about its traffic, read
// with redis_worker::stats().
//
//   batch_serving::redis_worker_stats s = worker.stats();
//   std::printf("%llu read, %llu answered, %llu timed out\n",
//               (unsigned long long)s.entries_read, (unsigned long long)s.answered(),
//               (unsigned long long)s.answered_error(batch_serving::errc::timeout));
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "batch_serving/error.hpp"

namespace batch_serving {

// A snapshot; each counter is exact, the set is not one atomic cut. An
// answer counts once it is written to Redis.
struct redis_worker_stats {
  // Request entries XREADGROUP handed to this worker (its own pending
  // entries read again after a reconnect included).
  std::uint64_t entries_read = 0;
  // Entries this worker took over from dead workers (XCLAIM).
  std::uint64_t entries_claimed = 0;
  // Entries pending for this worker whose delivery was lost (an XREADGROUP
  // reply that never arrived), found later and run (see redis_worker.hpp).
  std::uint64_t entries_recovered = 0;
  // Calls handed to the local server.
  std::uint64_t calls_dispatched = 0;
  // Results answers written.
  std::uint64_t answered_results = 0;
  // Error answers written, by code (index: the errc's value). invalid_argument
  // counts malformed entries with a reply address, undecodable items and
  // streaming forms; timeout counts expired budgets (never run) and local
  // timeouts.
  std::array<std::uint64_t, 9> answered_errors{};
  // Malformed entries without a usable reply address: acknowledged, nobody
  // answered.
  std::uint64_t skipped_malformed = 0;
  // Entries acknowledged (XACK), answered or skipped.
  std::uint64_t entries_acked = 0;
  // Answers Redis refused to store (an error reply to their XADD, e.g. the
  // reply key holds another type or Redis is out of memory); their entries
  // are still acknowledged.
  std::uint64_t answers_refused = 0;
  // Dead workers whose pending lists were empty and that this worker removed
  // from the live-workers set and the group.
  std::uint64_t dead_workers_removed = 0;
  // Connections to Redis re-established after a failure (all threads).
  std::uint64_t reconnects = 0;

  std::uint64_t answered_error(errc code) const noexcept {
    const auto index = static_cast<std::size_t>(code);
    return index < answered_errors.size() ? answered_errors[index] : 0;
  }
  // Every answer written, results and errors.
  std::uint64_t answered() const noexcept {
    std::uint64_t total = answered_results;
    for (std::uint64_t n : answered_errors) total += n;
    return total;
  }
};

}  // namespace batch_serving
