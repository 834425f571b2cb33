// sync: C caller threads, each calling the blocking dispatch in a loop on a
// squaring function; batch_size 64, each configured batch_timeout.
#include <batch_serving/batch_serving.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "closed_loop.hpp"
#include "naive_batcher.hpp"
#include "scenarios.hpp"
#include "workload.hpp"

namespace bench {
namespace {

constexpr std::size_t batch_size = 64;

loop_result measure_batch_serving(const config& cfg, std::size_t callers,
                                  std::chrono::microseconds timeout) {
  batch_serving::server srv(squares(), {.batch_size = batch_size,
                                        .batch_timeout = timeout,
                                        .metrics = metrics_of(cfg)});
  return run_closed_loop(
      callers, cfg.warmup(), cfg.duration,
      [&srv](std::size_t who) {
        return [&srv, who, n = std::uint64_t{0}]() mutable -> std::size_t {
          const int x = input_for(who, n++);
          const batch_serving::result<int> r = srv.dispatch(x);
          return r.ok() && *r == x * x ? 1 : 0;
        };
      },
      [&srv] { return counters_of(srv); });
}

loop_result measure_naive(const config& cfg, std::size_t callers,
                          std::chrono::microseconds timeout) {
  naive_batcher<int, int> batcher(square_all, batch_size, timeout);
  return run_closed_loop(
      callers, cfg.warmup(), cfg.duration,
      [&batcher](std::size_t who) {
        return [&batcher, who, n = std::uint64_t{0}]() mutable -> std::size_t {
          const int x = input_for(who, n++);
          try {
            return batcher.dispatch(x) == x * x ? 1 : 0;
          } catch (const std::exception&) {
            return 0;
          }
        };
      },
      [&batcher] { return counters_of(batcher); });
}

}  // namespace

void run_sync(const config& cfg, reporter& out) {
  for (const auto timeout : cfg.timeouts) {
    for (const std::size_t callers : cfg.callers) {
      progress(cfg, "sync: callers " + std::to_string(callers) + ", batch_timeout " +
                        std::to_string(timeout.count()) + " us");
      std::vector<measurement> ours;
      std::vector<measurement> naive;
      std::uint64_t failed = 0;
      for (int run = 0; run < cfg.runs; ++run) {
        const auto [a, b] = side_by_side(
            run, [&] { return measure_batch_serving(cfg, callers, timeout); },
            [&] { return measure_naive(cfg, callers, timeout); });
        ours.push_back(a.figures);
        naive.push_back(b.figures);
        failed += a.failed_calls + b.failed_calls;
      }
      require_no_failures(failed, "sync");
      const auto c = static_cast<std::int64_t>(callers);
      const auto t = static_cast<std::int64_t>(timeout.count());
      out.add(make_row("sync", "batch_serving", c, batch_size, t, median_of(ours), cfg.runs));
      out.add(make_row("sync", "naive", c, batch_size, t, median_of(naive), cfg.runs));
    }
  }
}

}  // namespace bench
