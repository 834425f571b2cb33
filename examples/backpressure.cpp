// Backpressure: server_options::max_queue bounds the items waiting to run. A
// call that would go past it is answered errc::overloaded at once, without
// queueing, so memory stays bounded under any load and the caller can shed or
// retry. Here a burst of 1,000 calls meets a queue of 64 while the batch
// function is held busy: the excess is refused before any work finishes, and
// every call that got in gets its result. An explicit batch larger than
// max_queue could never fit: invalid_argument.
#include <batch_serving/error.hpp>
#include <batch_serving/future.hpp>
#include <batch_serving/server.hpp>
#include <batch_serving/serving.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <latch>
#include <span>
#include <vector>

namespace bs = batch_serving;
using namespace std::chrono_literals;

int main() try {
  std::latch work_may_finish(1);
  bs::serving<int, int> held_square([&](std::span<const int> xs) {
    work_may_finish.wait();
    std::vector<int> out;
    for (int x : xs) out.push_back(x * x);
    return out;
  });
  bs::server srv(held_square, {.batch_size = 8, .batch_timeout = 1ms, .max_queue = 64});

  // Far more than the queue holds, all at once.
  std::vector<bs::future<int>> burst;
  for (int i = 0; i < 1000; ++i) burst.push_back(srv.dispatch_async(i));
  // No work can finish yet, so every answer already there is a refusal.
  int answered_at_once = 0;
  for (auto& f : burst) answered_at_once += f.ready() ? 1 : 0;

  work_may_finish.count_down();
  int served = 0, overloaded = 0, other = 0;
  for (int i = 0; i < 1000; ++i) {
    const bs::result<int> r = burst[i].get();
    if (r.ok() && *r == i * i) {
      ++served;
    } else if (!r.ok() && r.error().code() == bs::errc::overloaded) {
      ++overloaded;
    } else {
      ++other;
    }
  }
  std::printf("burst of 1000: %d served, %d overloaded (all %d answered before any work ended)\n",
              served, overloaded, answered_at_once);
  std::printf("stats: %llu calls overloaded\n",
              static_cast<unsigned long long>(srv.stats().calls_overloaded));

  const bs::result<std::vector<int>> too_big = srv.dispatch_many(std::vector<int>(100, 1));
  std::printf("a 100-item batch: %s\n", too_big.ok() ? "ok" : too_big.error().to_string().c_str());

  // In: the 64 queued items plus the (at most 8) already executing.
  const bool ok = other == 0 && served >= 64 && served <= 64 + 8 && overloaded == 1000 - served &&
                  answered_at_once == overloaded &&
                  srv.stats().calls_overloaded == static_cast<unsigned>(overloaded) &&
                  !too_big.ok() && too_big.error().code() == bs::errc::invalid_argument;
  std::puts(ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
} catch (const std::exception& e) {  // e.g. serving_error from result::value()
  std::printf("FAILED: %s\n", e.what());
  return 1;
}
