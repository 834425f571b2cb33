// Under load: a bounded queue (overloaded at once), per-call deadlines,
// cancellation, and failure isolation (one bad item fails only its caller).
#include <batch_serving/batch_serving.hpp>

#include <chrono>
#include <cstdio>
#include <span>
#include <stdexcept>
#include <stop_token>
#include <thread>
#include <vector>

namespace bs = batch_serving;
using namespace std::chrono_literals;

int main() {
  // A slow batch function that rejects negative items.
  bs::serving<int, int> checked_square([](std::span<const int> xs) {
    std::this_thread::sleep_for(2ms);
    std::vector<int> out;
    for (int x : xs) {
      if (x < 0) throw std::invalid_argument("negative item");
      out.push_back(x * x);
    }
    return out;
  });
  bs::server srv(checked_square, {.batch_size = 8,
                                  .batch_timeout = 1ms,
                                  .max_queue = 64,
                                  .default_timeout = 500ms,
                                  .isolate_failures = true});

  // Far more than the queue holds: the excess is refused at once.
  std::vector<bs::future<int>> burst;
  for (int i = 0; i < 1000; ++i) burst.push_back(srv.dispatch_async(i));
  int ok = 0, overloaded = 0;
  for (auto& f : burst) {
    auto r = f.get();
    if (r.ok()) ++ok;
    if (!r.ok() && r.error().code() == bs::errc::overloaded) ++overloaded;
  }

  // A deadline the work cannot meet, and a call cancelled through a stop_token.
  auto late = srv.dispatch(7, {.timeout = 100us});
  std::stop_source cancel;
  auto doomed = srv.dispatch_async(8, {.stop_token = cancel.get_token()});
  cancel.request_stop();

  // One poisoned item among eight calls in one execution fails only its caller.
  std::vector<bs::future<int>> mixed;
  for (int x : {1, 2, 3, -4, 5, 6, 7, 8}) mixed.push_back(srv.dispatch_async(x));
  int spared = 0;
  for (auto& f : mixed) spared += f.get().ok() ? 1 : 0;

  const auto s = srv.stats();
  std::printf("burst: %d answered, %d overloaded\n", ok, overloaded);
  auto cancelled = doomed.get();
  std::printf("late call: %s; cancelled call: %s\n",
              late.ok() ? "ok" : bs::to_string(late.error().code()).data(),
              cancelled.ok() ? "ok" : bs::to_string(cancelled.error().code()).data());
  std::printf("poisoned batch: %d of 8 callers got results (%llu extra executions)\n", spared,
              static_cast<unsigned long long>(s.isolation_executions));
  std::printf("stats: %llu overloaded, %llu timed out, %llu cancelled, %llu failed\n",
              static_cast<unsigned long long>(s.calls_overloaded),
              static_cast<unsigned long long>(s.calls_timed_out),
              static_cast<unsigned long long>(s.calls_cancelled),
              static_cast<unsigned long long>(s.calls_failed));
  return ok + overloaded == 1000 && spared == 7 ? 0 : 1;
}
