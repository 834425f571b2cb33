// many: 8 caller threads, each calling the blocking dispatch_many with 64
// items in a loop; batch_size 64, each configured batch_timeout.
#include <batch_serving/batch_serving.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <span>
#include <string>
#include <vector>

#include "closed_loop.hpp"
#include "naive_batcher.hpp"
#include "scenarios.hpp"
#include "workload.hpp"

namespace bench {
namespace {

constexpr std::size_t callers = 8;
constexpr std::size_t items_per_call = 64;
constexpr std::size_t batch_size = 64;

// Caller `who`'s items; the same every call.
std::vector<int> items_of(std::size_t who) {
  std::vector<int> items(items_per_call);
  for (std::size_t i = 0; i < items.size(); ++i) items[i] = input_for(who, i);
  return items;
}

bool all_squared(std::span<const int> in, const std::vector<int>& out) {
  if (out.size() != in.size()) return false;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (out[i] != in[i] * in[i]) return false;
  }
  return true;
}

loop_result measure_batch_serving(const config& cfg, std::chrono::microseconds timeout) {
  batch_serving::server srv(squares(), {.batch_size = batch_size, .batch_timeout = timeout});
  return run_closed_loop(
      callers, cfg.warmup(), cfg.duration,
      [&srv](std::size_t who) {
        return [&srv, items = items_of(who)]() -> std::size_t {
          const auto r = srv.dispatch_many(std::span<const int>(items));
          return r.ok() && all_squared(items, *r) ? items.size() : 0;
        };
      },
      [&srv] { return counters_of(srv); });
}

loop_result measure_naive(const config& cfg, std::chrono::microseconds timeout) {
  naive_batcher<int, int> batcher(square_all, batch_size, timeout);
  return run_closed_loop(
      callers, cfg.warmup(), cfg.duration,
      [&batcher](std::size_t who) {
        return [&batcher, items = items_of(who)]() -> std::size_t {
          try {
            return all_squared(items, batcher.dispatch_many(items)) ? items.size() : 0;
          } catch (const std::exception&) {
            return 0;
          }
        };
      },
      [&batcher] { return counters_of(batcher); });
}

}  // namespace

void run_many(const config& cfg, reporter& out) {
  for (const auto timeout : cfg.timeouts) {
    progress(cfg, "many: " + std::to_string(callers) + " callers x " +
                      std::to_string(items_per_call) + " items, batch_timeout " +
                      std::to_string(timeout.count()) + " us");
    std::vector<measurement> ours;
    std::vector<measurement> naive;
    std::uint64_t failed = 0;
    for (int run = 0; run < cfg.runs; ++run) {
      const auto [a, b] = side_by_side(
          run, [&] { return measure_batch_serving(cfg, timeout); },
          [&] { return measure_naive(cfg, timeout); });
      ours.push_back(a.figures);
      naive.push_back(b.figures);
      failed += a.failed_calls + b.failed_calls;
    }
    require_no_failures(failed, "many");
    const auto t = static_cast<std::int64_t>(timeout.count());
    out.add(make_row("many", "batch_serving", callers, batch_size, t, median_of(ours), cfg.runs));
    out.add(make_row("many", "naive", callers, batch_size, t, median_of(naive), cfg.runs));
  }
}

}  // namespace bench
