// A fixed amount of hot-path work for instruction counting
// (scripts/callgrind-compare.sh): 200 rounds of 1,000 futures, then 20,000
// blocking calls, through a server squaring ints (batch_size 64, timeout
// 1 ms). Prints a checksum so nothing is optimized away. Not a benchmark of
// time: run it under `valgrind --tool=callgrind`. With the argument
// `metrics`, the server reports to the global metrics registry: the
// difference is what metrics cost per call.
#include <chrono>
#include <cstdio>
#include <span>
#include <string_view>
#include <vector>

#include "batch_serving/batch_serving.hpp"

namespace bs = batch_serving;

int main(int argc, char** argv) {
  const bool metrics = argc > 1 && std::string_view(argv[1]) == "metrics";
  bs::serving<int, int> square([](std::span<const int> xs) {
    std::vector<int> out;
    out.reserve(xs.size());
    for (int x : xs) out.push_back(x * x);
    return out;
  });
  bs::server_options options{.batch_size = 64, .batch_timeout = std::chrono::milliseconds(1)};
#if __has_include("batch_serving/metrics.hpp")  // older commits, for callgrind-compare.sh
  if (metrics) options.metrics = &bs::metrics_registry::global();
#else
  if (metrics) return 2;
#endif
  bs::server srv(square, options);
  long long sum = 0;
  std::vector<bs::future<int>> futures;
  futures.reserve(1000);
  for (int round = 0; round < 200; ++round) {
    for (int i = 0; i < 1000; ++i) futures.push_back(srv.dispatch_async(i));
    for (auto& f : futures) sum += f.get().value();
    futures.clear();
  }
  for (int i = 0; i < 20000; ++i) sum += srv.dispatch(i).value();
  std::printf("%lld\n", sum);
}
