// Failure isolation: when a batch function throws, every caller with items in
// that execution gets errc::execution_failed (the default, as in the seed).
// With server_options::isolate_failures the failed execution is run again in
// halves, recursively, so only the caller whose own item fails gets the error
// and the others get their results, for a few extra executions. The batch
// function must tolerate seeing items again. Here eight callers share one
// execution and one of them sends a poisoned (negative) item.
#include <batch_serving/error.hpp>
#include <batch_serving/future.hpp>
#include <batch_serving/server.hpp>
#include <batch_serving/server_stats.hpp>
#include <batch_serving/serving.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <span>
#include <stdexcept>
#include <vector>

namespace bs = batch_serving;
using namespace std::chrono_literals;

namespace {
std::vector<int> checked_square(std::span<const int> xs) {
  std::vector<int> out;
  for (int x : xs) {
    if (x < 0) throw std::invalid_argument("negative item");
    out.push_back(x * x);
  }
  return out;
}

struct outcome {
  int served = 0;  // callers that got their square
  int failed = 0;  // callers answered execution_failed
};

// Eight callers at once; a full batch of eight runs as one execution.
outcome eight_callers_one_poisoned(bs::server<int, int>& srv) {
  std::vector<bs::future<int>> calls;
  for (int x : {1, 2, 3, -4, 5, 6, 7, 8}) calls.push_back(srv.dispatch_async(x));
  outcome o;
  for (int i = 0; i < 8; ++i) {
    const bs::result<int> r = calls[i].get();
    if (r.ok() && *r == (i + 1) * (i + 1)) ++o.served;
    if (!r.ok() && r.error().code() == bs::errc::execution_failed) ++o.failed;
  }
  return o;
}
}  // namespace

int main() try {
  const bs::serving<int, int> squares(checked_square);
  // A long batch_timeout: the eight calls run together, as soon as all are in.
  bs::server plain(squares, {.batch_size = 8, .batch_timeout = 10s});
  bs::server isolating(squares, {.batch_size = 8, .batch_timeout = 10s, .isolate_failures = true});

  const outcome without = eight_callers_one_poisoned(plain);
  const outcome with = eight_callers_one_poisoned(isolating);
  plain.stop();  // final counters
  isolating.stop();
  const bs::server_stats stats = isolating.stats();

  std::printf("without isolation: %d served, %d failed (%llu execution)\n", without.served,
              without.failed, static_cast<unsigned long long>(plain.stats().executions));
  std::printf("with isolation:    %d served, %d failed (%llu executions, %llu of them re-runs)\n",
              with.served, with.failed, static_cast<unsigned long long>(stats.executions),
              static_cast<unsigned long long>(stats.isolation_executions));
  const bool ok = without.served == 0 && without.failed == 8 && with.served == 7 &&
                  with.failed == 1 && stats.isolation_executions > 0;
  std::puts(ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
} catch (const std::exception& e) {  // e.g. serving_error from result::value()
  std::printf("FAILED: %s\n", e.what());
  return 1;
}
