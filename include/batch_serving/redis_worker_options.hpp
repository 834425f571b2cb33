// How a redis_worker (redis_worker.hpp) attaches a local server to Redis:
// where Redis is, the worker's name in the consumer group, how much it reads
// at once, how often it heartbeats and looks for dead workers, how long it
// takes to shut down.
//
//   batch_serving::redis_worker_options options{
//       .endpoint = {.host = "10.0.0.5", .port = 6380, .password = "s3cret"},
//       .heartbeat_interval = std::chrono::milliseconds(250),
//       .heartbeat_expiry = std::chrono::seconds(2),  // a dead worker's calls wait at most ~this
//   };
//   batch_serving::redis_worker worker(local_server, "squares", options);
//
// A plain value type, validated once when the worker is constructed: a bad
// field is serving_error(invalid_argument) naming the field and its value.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "batch_serving/detail/reconnect_backoff.hpp"
#include "batch_serving/detail/wire.hpp"
#include "batch_serving/redis_endpoint.hpp"

namespace batch_serving {

struct redis_worker_options {
  // Where Redis is and how to log in (redis_endpoint.hpp).
  redis_endpoint endpoint{};

  // The worker's consumer name in the group "workers" and its member in the
  // live-workers set: 1..64 bytes of [A-Za-z0-9._-], unique among the
  // workers of the serving. Empty: "HOST-PID-RANDOM", unique per process and
  // per worker. A fixed id that a restarted worker reuses makes it take
  // back, at start, the entries its previous life left pending.
  std::string consumer_id{};

  // The most items this worker has in flight (read from Redis and not yet
  // answered). While it has that many it reads nothing, so a busy or slow
  // worker leaves new entries to the others: routing follows load.
  // 0: 2 x batch_size x partitions of the local server (one batch running
  // and one filling per partition).
  std::size_t max_in_flight_items = 0;
  // Entries per XREADGROUP. 0: the room left under max_in_flight_items
  // (at least 1).
  std::size_t read_count = 0;
  // How long an XREADGROUP waits for entries when there are none. Finite so
  // that stop() is prompt; more than 0.
  std::chrono::milliseconds block_time = std::chrono::milliseconds(100);

  // The worker refreshes its entry in the live-workers set every
  // heartbeat_interval, with an expiry heartbeat_expiry later (on Redis's
  // clock). When a worker dies (or hangs, or is cut off from Redis) other
  // workers take its pending entries over once its heartbeat has expired,
  // that is at most heartbeat_expiry + claim_interval after its last
  // heartbeat. Both more than 0; the expiry must exceed the interval (more
  // than twice it is wise: one late heartbeat must not look like a death).
  std::chrono::milliseconds heartbeat_interval = std::chrono::milliseconds(500);
  std::chrono::milliseconds heartbeat_expiry = std::chrono::seconds(3);
  // How often the worker looks for dead workers and claims their entries;
  // more than 0.
  std::chrono::milliseconds claim_interval = std::chrono::seconds(1);
  // The most entries it claims per look; at least 1.
  std::size_t claim_count = 256;

  // The longest stop() takes: it waits this long for the local server to
  // finish what the worker took and for the answers to be written (Redis
  // may be unreachable meanwhile), then gives up on the rest; those entries
  // stay pending in Redis and another worker runs them. Not negative.
  std::chrono::milliseconds shutdown_timeout = std::chrono::seconds(5);

  // Bounds on entries both ways (detail/wire.hpp; checked with check_limits).
  detail::wire::limits limits{};

  // Paces reconnects after Redis was lost (detail/reconnect_backoff.hpp).
  detail::reconnect_backoff_options reconnect{};
};

}  // namespace batch_serving
