// A client process of the serving "embed" that workers run elsewhere
// (worker.cpp): the same dispatch API as a local server, by the serving's
// name, over Redis Streams. Several threads dispatch single texts at once,
// so their calls share round trips to Redis and executions on the workers;
// then an explicit batch (dispatch_many), a call with a deadline, an async
// one, and one by name that a local server would take if there were one.
// Every answer is checked against the embedding computed here; any wrong or
// missing answer makes the exit status 1.
//
//   build/examples/distributed/client --port 6390 --threads 8 --calls 200
//
// Flags (and environment variables) for the endpoint: redis_args.hpp. Own
// flags: --threads N (default 8), --calls N per thread (default 200).
#include <batch_serving/call_options.hpp>
#include <batch_serving/distributed.hpp>
#include <batch_serving/error.hpp>
#include <batch_serving/future.hpp>
#include <batch_serving/redis_client.hpp>
#include <batch_serving/result.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "embedding.hpp"
#include "redis_args.hpp"

namespace bs = batch_serving;
namespace ex = distributed_example;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

using ull = unsigned long long;
using embedding = std::vector<float>;

std::atomic<int> wrong_answers{0};

// Reports the first few wrong answers (a Redis that is down would otherwise
// print one line per call) and counts them all.
void wrong(const std::string& text, const std::string& why) {
  if (wrong_answers.fetch_add(1) < 5)
    std::fprintf(stderr, "client: '%s' %s\n", text.c_str(), why.c_str());
}

// True when `got` is the embedding of `text`; counts and reports it if not.
bool check(const std::string& text, const bs::result<embedding>& got) {
  if (!got.ok()) {
    wrong(text, "answered " + got.error().to_string());
    return false;
  }
  const embedding want = ex::embed(text);
  bool same = got->size() == want.size();
  for (std::size_t i = 0; same && i < want.size(); ++i) {
    same = std::fabs((*got)[i] - want[i]) < 1e-6F;
  }
  if (!same) wrong(text, "got a wrong embedding");
  return same;
}

float dot(const embedding& a, const embedding& b) {
  float sum = 0.0F;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) sum += a[i] * b[i];
  return sum;
}

std::string text_of(int thread, int call) {
  return "request " + std::to_string(call) + " from thread " + std::to_string(thread) +
         " of the distributed example";
}

}  // namespace

int main(int argc, char** argv) try {
  int threads = 8;
  int calls_per_thread = 200;
  const ex::redis_args args =
      ex::parse_redis_args(argc, argv, [&](std::string_view flag, std::string_view value) {
        if (flag == "--threads") {
          threads = ex::parse_int(flag, value);
        } else if (flag == "--calls") {
          calls_per_thread = ex::parse_int(flag, value);
        } else {
          return false;
        }
        return true;
      });

  // Connects (an unreachable Redis is no error here: calls answer
  // unavailable until it is back). Calls without a timeout of their own
  // give up after 10 s, so nothing waits forever for a worker that is gone.
  bs::redis_client<std::string, embedding> client({
      .endpoint = args.endpoint,
      .serving = args.serving,
      .default_timeout = 10s,
  });
  std::printf("client %s: serving \"%s\" at %s\n", client.client_id().c_str(), args.serving.c_str(),
              args.endpoint.to_string().c_str());

  // 1) Many threads, one call at a time each.
  const auto start = steady::now();
  std::vector<std::thread> callers;
  for (int t = 0; t < threads; ++t) {
    callers.emplace_back([&client, t, calls_per_thread] {
      for (int i = 0; i < calls_per_thread; ++i) {
        const std::string text = text_of(t, i);
        check(text, client.dispatch(text));
      }
    });
  }
  for (auto& c : callers) c.join();
  const double seconds = std::chrono::duration<double>(steady::now() - start).count();
  std::printf("%d threads x %d dispatch: %.0f calls/s\n", threads, calls_per_thread,
              threads * calls_per_thread / seconds);

  // 2) An explicit batch: one entry in Redis, answers in the items' order.
  const std::vector<std::string> batch = {"the cat sat on the mat", "the cat sat on a hat",
                                          "stock prices fell sharply today"};
  const bs::result<std::vector<embedding>> many = client.dispatch_many(batch);
  if (many.ok() && many->size() == batch.size()) {
    for (std::size_t i = 0; i < batch.size(); ++i) check(batch[i], (*many)[i]);
    std::printf("dispatch_many: similarity(cat/mat, cat/hat) = %.3f, (cat/mat, stocks) = %.3f\n",
                dot((*many)[0], (*many)[1]), dot((*many)[0], (*many)[2]));
  } else {
    wrong("dispatch_many",
          many.ok() ? "got the wrong number of results" : "answered " + many.error().to_string());
  }

  // 3) A deadline on this machine's steady clock: the request carries the
  // time left, not the time point, so the worker's clock does not matter.
  // Past it the call is answered timeout, and a worker that reads the entry
  // later does not run it.
  const std::string urgent = "answer me within two seconds";
  const bs::result<embedding> in_time = client.dispatch(urgent, {.deadline = steady::now() + 2s});
  if (check(urgent, in_time)) std::printf("deadline call: answered in time\n");

  // 4) Async: a future, collected later.
  const std::string later = "collected from a future";
  bs::future<embedding> pending = client.dispatch_async(later, {.timeout = 5s});
  check(later, pending.get());

  // 5) By name, as inside one process (registry.hpp): a server of this
  // process named like the serving would take the call; there is none here,
  // so it goes to the workers through the Redis configured for by-name calls.
  bs::distributed::configure({.endpoint = args.endpoint, .default_timeout = 10s});
  const std::string by_name = "found by its serving's name";
  check(by_name, bs::distributed::dispatch<std::string, embedding>(args.serving, by_name));
  bs::distributed::reset();

  const bs::redis_client_stats s = client.stats();
  std::printf(
      "client stats: %llu calls sent in %llu round trips, %llu answers, %llu duplicates dropped, "
      "%llu timeouts, %llu refused, %llu reconnects\n",
      static_cast<ull>(s.calls_sent), static_cast<ull>(s.round_trips),
      static_cast<ull>(s.answers_delivered), static_cast<ull>(s.duplicates_dropped),
      static_cast<ull>(s.timeouts), static_cast<ull>(s.refused), static_cast<ull>(s.reconnects));

  if (wrong_answers.load() != 0) {
    std::printf("client: %d wrong or missing answers (the first 5 are on stderr)\n",
                wrong_answers.load());
    return 1;
  }
  std::printf("client: every answer correct\n");
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "client: %s\n", e.what());
  return 1;
}
