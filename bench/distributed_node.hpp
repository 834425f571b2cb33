// The worker and client processes of the distributed scenario: the bench
// runs itself again as `batch_serving_bench --node worker|client ...` (a
// hidden mode, not in --help), so that every node is a process of its own.
//
// A worker serves squares under `serving` (sleeping delay_ms per batch when
// set), prints "ready" once attached to Redis, runs until its stdin ends,
// then stops and prints "stats EXECUTIONS ITEMS CPU_SECONDS" (its CPU time
// from "ready" to the end).
// A client runs `callers` threads, each making blocking calls of `items`
// items in a loop (dispatch for 1, dispatch_many for more) for a warm-up
// and a measured window, and prints "result ITEMS_PER_S P50_US P99_US FAILED
// CALLS_SENT ROUND_TRIPS PING_US CPU_SECONDS" (-1 for a figure it does not
// have; PING_US is the median of `pings` sequential PINGs measured first,
// when pings > 0; calls, round trips and CPU time cover the warm-up, the
// window and the calls that end after it).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace bench {

struct node_settings {
  std::string role;  // "worker" or "client"
  int port = 0;      // Redis on 127.0.0.1
  std::string serving;
  // worker
  std::size_t batch_size = 64;
  long long batch_timeout_us = 1000;
  long long delay_ms = 0;
  // client
  std::size_t callers = 1;
  std::size_t items = 1;
  long long warmup_ms = 100;
  long long duration_ms = 500;
  std::size_t pings = 0;

  // The command line after the executable: "--node ROLE --port ...".
  std::vector<std::string> to_args() const;
};

// main() hands over when argv[1] is "--node". Returns the exit status.
int run_node(int argc, char** argv);

}  // namespace bench
