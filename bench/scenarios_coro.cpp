// coro: C coroutine callers (not threads), each co_awaiting co_dispatch in a
// loop on the squaring function; batch_size 64, each configured
// batch_timeout; resumed on a 2-thread resume_pool ("executor") or inline on
// the partition thread ("inline"). Next to the naive batcher with C OS
// threads (its only form) in the same run. Also reports the heap bytes one
// waiting coroutine caller costs (its frame, awaiter and call block).
#include <batch_serving/batch_serving.hpp>
#include <batch_serving/coroutine.hpp>
#include <batch_serving/resume_pool.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <latch>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "closed_loop.hpp"
#include "coro_task.hpp"
#include "latency.hpp"
#include "memory_usage.hpp"
#include "naive_batcher.hpp"
#include "scenarios.hpp"
#include "workload.hpp"

namespace bench {
namespace {

constexpr std::size_t batch_size = 64;
constexpr std::size_t executor_threads = 2;
using clock = std::chrono::steady_clock;

struct caller_figures {
  latency_samples latencies;
  std::uint64_t items = 0;
  std::uint64_t failed = 0;
};

struct window {
  clock::time_point start;
  clock::time_point end;
};

template <class Where>
coro_task caller(batch_serving::server<int, int>& srv, Where& where, std::size_t who,
                 const window& w, caller_figures& mine) {
  for (std::uint64_t n = 0;; ++n) {
    const auto t0 = clock::now();
    if (t0 >= w.end) break;
    const int x = input_for(who, n);
    const batch_serving::result<int> r = co_await batch_serving::co_dispatch(srv, x, where);
    const auto t1 = clock::now();
    if (!r.ok() || *r != x * x) {
      ++mine.failed;
    } else if (t1 > w.start && t1 <= w.end) {
      ++mine.items;
      mine.latencies.record(t1 - t0);
    }
  }
}

template <class Where>
loop_result measure_coroutines(const config& cfg, std::size_t callers,
                               std::chrono::microseconds timeout, Where& where) {
  batch_serving::server srv(squares(), {.batch_size = batch_size, .batch_timeout = timeout});
  std::vector<caller_figures> figures(callers);
  for (auto& f : figures) f.latencies.reserve(1024);
  window w;
  w.start = clock::now() + cfg.warmup() + std::chrono::milliseconds(20);  // time to start them
  w.end = w.start + cfg.duration;
  std::vector<coro_task> tasks;
  tasks.reserve(callers);
  for (std::size_t i = 0; i < callers; ++i) tasks.push_back(caller(srv, where, i, w, figures[i]));
  for (auto& t : tasks) t.start();
  std::this_thread::sleep_until(w.start);
  const batch_counters before = counters_of(srv);
  const double cpu_before = process_cpu_seconds();
  std::this_thread::sleep_until(w.end);
  const double cpu_after = process_cpu_seconds();
  const batch_counters after = counters_of(srv);
  for (auto& t : tasks) t.wait();

  loop_result out;
  std::uint64_t items = 0;
  std::vector<latency_samples> samples;
  samples.reserve(callers);
  for (auto& f : figures) {
    items += f.items;
    out.failed_calls += f.failed;
    samples.push_back(std::move(f.latencies));
  }
  const latency_summary latency = summarize(samples);
  out.figures.items_per_s =
      static_cast<double>(items) / std::chrono::duration<double>(cfg.duration).count();
  out.figures.p50_us = latency.p50_us;
  out.figures.p99_us = latency.p99_us;
  out.figures.mean_batch = mean_batch(before, after);
  if (items > 0) {
    out.figures.cpu_us_per_item = (cpu_after - cpu_before) * 1e6 / static_cast<double>(items);
  }
  return out;
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

// Holds the partition: the first execution waits in the batch function until
// open(), so every caller started meanwhile stays waiting.
class hold {
 public:
  std::vector<int> hold_then_square(std::span<const int> xs) {
    if (!entered_.exchange(true)) {
      entered_.notify_all();
      open_.wait();
    }
    return square_all(xs);
  }
  void wait_until_held() { entered_.wait(false); }
  void open() { open_.count_down(); }

 private:
  std::atomic<bool> entered_{false};
  std::latch open_{1};
};

coro_task wait_once(batch_serving::server<int, int>& srv, batch_serving::resume_pool& pool, int x,
                    std::uint64_t& failed) {
  const batch_serving::result<int> r = co_await batch_serving::co_dispatch(srv, x, pool);
  if (!r.ok() || *r != x * x) ++failed;
}

// Heap bytes per waiting coroutine caller: C coroutines each suspended in a
// co_dispatch queued behind a held execution. Includes the frame (with its
// awaiter), the call block and its queue link; the tasks vector is reserved
// before the first reading.
std::optional<double> bytes_per_waiting_caller(std::size_t callers, std::uint64_t& failed) {
  hold h;
  batch_serving::resume_pool pool(executor_threads);
  batch_serving::server srv(batch_serving::serving<int, int>([&h](std::span<const int> xs) {
                              return h.hold_then_square(xs);
                            }),
                            {.batch_size = batch_size,
                             .batch_timeout = std::chrono::microseconds(0)});
  std::uint64_t blocker_failed = 0;
  coro_task blocker = wait_once(srv, pool, 1, blocker_failed);
  blocker.start();
  h.wait_until_held();
  std::vector<coro_task> tasks;
  tasks.reserve(callers);
  std::vector<std::uint64_t> fails(callers, 0);
  release_free_memory();
  const memory_usage before = read_memory_usage();
  for (std::size_t i = 0; i < callers; ++i) {
    tasks.push_back(wait_once(srv, pool, static_cast<int>(i % 1000), fails[i]));
    tasks.back().start();
  }
  const memory_usage after = read_memory_usage();
  h.open();
  blocker.wait();
  for (auto& t : tasks) t.wait();
  failed += blocker_failed;
  for (const auto f : fails) failed += f;
  if (!before.heap_bytes || !after.heap_bytes) return std::nullopt;
  return static_cast<double>(*after.heap_bytes - *before.heap_bytes) / static_cast<double>(callers);
}

row coro_row(std::string impl, std::string resume, std::size_t callers,
             std::chrono::microseconds timeout, const measurement& m, int runs, double threads,
             std::optional<double> bytes) {
  row r = make_row("coro", std::move(impl), static_cast<std::int64_t>(callers), batch_size,
                   static_cast<std::int64_t>(timeout.count()), m, runs);
  r.labels.emplace_back("resume", std::move(resume));
  r.extra.emplace_back("threads", threads);
  r.extra.emplace_back("bytes_per_waiting_caller", bytes);
  return r;
}

}  // namespace

void run_coro(const config& cfg, reporter& out) {
  batch_serving::resume_pool pool(executor_threads);
  const batch_serving::resume_inline_t inline_target = batch_serving::resume_inline;
  for (const std::size_t callers : cfg.coro_callers) {
    std::uint64_t failed = 0;
    const std::optional<double> bytes = bytes_per_waiting_caller(callers, failed);
    for (const auto timeout : cfg.timeouts) {
      progress(cfg, "coro: callers " + std::to_string(callers) + ", batch_timeout " +
                        std::to_string(timeout.count()) + " us");
      std::vector<measurement> on_pool;
      std::vector<measurement> on_partition;
      std::vector<measurement> naive;
      for (int run = 0; run < cfg.runs; ++run) {
        const auto [a, b] = side_by_side(
            run, [&] { return measure_coroutines(cfg, callers, timeout, pool); },
            [&] { return measure_coroutines(cfg, callers, timeout, inline_target); });
        on_pool.push_back(a.figures);
        on_partition.push_back(b.figures);
        failed += a.failed_calls + b.failed_calls;
        // C OS threads, its only form (at C=4096 too: the row shows what it does).
        const loop_result n = measure_naive(cfg, callers, timeout);
        naive.push_back(n.figures);
        failed += n.failed_calls;
      }
      require_no_failures(failed, "coro");
      const int runs = cfg.runs;
      out.add(coro_row("batch_serving", "executor", callers, timeout, median_of(on_pool), runs,
                       static_cast<double>(executor_threads), bytes));
      out.add(coro_row("batch_serving", "inline", callers, timeout, median_of(on_partition), runs,
                       0.0, bytes));
      out.add(coro_row("naive", "thread", callers, timeout, median_of(naive), runs,
                       static_cast<double>(callers), std::nullopt));
    }
  }
}

}  // namespace bench
