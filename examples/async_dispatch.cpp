// Dispatch without blocking: a future per call, or a completion callback.
#include <batch_serving/batch_serving.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <latch>
#include <span>
#include <vector>

namespace bs = batch_serving;

int main() try {
  bs::serving<int, int> doubler([](std::span<const int> xs) {
    std::vector<int> out;
    for (int x : xs) out.push_back(2 * x);
    return out;
  });
  bs::server srv(doubler, {.batch_size = 64, .batch_timeout = std::chrono::milliseconds(1)});

  // Futures: submit many, then collect. get() returns a result, never throws.
  std::vector<bs::future<int>> pending;
  for (int i = 0; i < 1000; ++i) pending.push_back(srv.dispatch_async(i));
  long long sum = 0;
  for (auto& f : pending) sum += f.get().value();

  // Callbacks: run once per call on the server thread that finished it.
  std::atomic<long long> callback_sum{0};
  std::latch all_done(1000);
  for (int i = 0; i < 1000; ++i) {
    srv.dispatch_async(i, [&](bs::result<int> r) {
      if (r.ok()) callback_sum += *r;
      all_done.count_down();
    });
  }
  all_done.wait();

  std::printf("futures: sum %lld; callbacks: sum %lld; %llu executions, mean batch %.1f\n", sum,
              callback_sum.load(), static_cast<unsigned long long>(srv.stats().executions),
              srv.stats().mean_batch());
  return sum == 999000 && callback_sum == 999000 ? 0 : 1;
} catch (const std::exception& e) {  // e.g. serving_error from result::value()
  std::printf("FAILED: %s\n", e.what());
  return 1;
}
