// A worker process of the serving "embed" over Redis Streams: a local server
// batches the texts that clients anywhere send through Redis, and a
// redis_worker attaches it to Redis under the serving's name. Start as many as
// you like, on any machine that reaches the Redis; they share the work, and a
// dead one's calls are run by the others. SIGINT or SIGTERM stops it
// gracefully: it stops reading, finishes and answers what it took, leaves the
// rest to the other workers, and prints its counters.
//
//   redis-server --port 6390 --save "" --appendonly no &
//   build/examples/distributed/worker --port 6390
//   build/examples/distributed/client --port 6390     # in another shell
//
// Flags (and environment variables) for the endpoint: redis_args.hpp. Own
// flag: --stats-every SECONDS (default 10): a line of counters that often
// while calls come in.
#include <batch_serving/redis_worker.hpp>
#include <batch_serving/server.hpp>
#include <batch_serving/serving.hpp>

#include <pthread.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <exception>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "embedding.hpp"
#include "redis_args.hpp"

namespace bs = batch_serving;
namespace ex = distributed_example;
using namespace std::chrono_literals;

namespace {

using ull = unsigned long long;

void print_stats(const char* when, const bs::server_stats& local, const bs::redis_worker_stats& w) {
  std::printf(
      "worker %s: %llu entries read, %llu claimed from dead workers, %llu answered "
      "(%llu timeout, %llu invalid_argument), %llu skipped malformed, %llu reconnects; "
      "local server: %llu items in %llu executions (%.1f items each)\n",
      when, static_cast<ull>(w.entries_read), static_cast<ull>(w.entries_claimed),
      static_cast<ull>(w.answered()), static_cast<ull>(w.answered_error(bs::errc::timeout)),
      static_cast<ull>(w.answered_error(bs::errc::invalid_argument)),
      static_cast<ull>(w.skipped_malformed), static_cast<ull>(w.reconnects),
      static_cast<ull>(local.items_executed), static_cast<ull>(local.executions),
      local.mean_batch());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) try {
  int stats_every_s = 10;
  const ex::redis_args args =
      ex::parse_redis_args(argc, argv, [&](std::string_view flag, std::string_view value) {
        if (flag != "--stats-every") return false;
        stats_every_s = ex::parse_int(flag, value);
        return true;
      });

  // SIGINT and SIGTERM are blocked in every thread (the servers' threads
  // inherit this mask) and taken by sigtimedwait below, so stopping runs in
  // main's thread like any other code, not in a signal handler.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  // The local server batches: calls from every client process share its
  // executions. A batch of 64 texts, or what arrived within 2 ms.
  const bs::serving<std::string, std::vector<float>> embeddings(
      [](std::span<const std::string> texts) { return ex::embed_all(texts); });
  bs::server local(embeddings, {.batch_size = 64, .batch_timeout = 2ms});

  // Connects, joins the serving's consumer group and writes the first
  // heartbeat; throws serving_error when Redis cannot be reached or refuses
  // the credentials (the message names the endpoint, never the password).
  bs::redis_worker worker(local, args.serving, {.endpoint = args.endpoint});
  std::printf("worker ready: serving \"%s\" at %s as consumer %s\n", worker.serving_name().c_str(),
              args.endpoint.to_string().c_str(), worker.consumer_id().c_str());
  std::fflush(stdout);

  const timespec every{.tv_sec = stats_every_s > 0 ? stats_every_s : 10, .tv_nsec = 0};
  std::uint64_t last_read = 0;
  int signal = -1;
  while (signal < 0) {
    signal = sigtimedwait(&stop_signals, nullptr, &every);
    const bs::redis_worker_stats now = worker.stats();
    if (signal < 0 && now.entries_read != last_read) {
      print_stats("so far", local.stats(), now);
      last_read = now.entries_read;
    }
  }

  std::printf("worker: %s, stopping\n", signal == SIGINT ? "SIGINT" : "SIGTERM");
  worker.stop();  // before the local server: the worker holds a reference to it
  print_stats("stopped", local.stats(), worker.stats());
  local.stop();
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "worker: %s\n", e.what());
  return 1;
}
