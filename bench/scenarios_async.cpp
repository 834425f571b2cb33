// async: one thread submits N items with the non-blocking dispatch form
// (batch_serving: dispatch_async -> future; naive: submit -> std::future),
// keeps the futures in a vector, then get()s them all, after one untimed pass
// of each. items_per_s covers submitting and collecting; submit_items_per_s
// the submitting alone. There is no per-call latency: collection starts only
// after the last submit, so it would measure the scenario's shape, not the
// batcher.
#include <batch_serving/batch_serving.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <future>
#include <string>
#include <vector>

#include "naive_batcher.hpp"
#include "scenarios.hpp"
#include "workload.hpp"

namespace bench {
namespace {

using clock = std::chrono::steady_clock;
constexpr std::size_t batch_size = 64;

struct async_result {
  measurement figures;
  std::optional<double> submit_items_per_s;
  std::uint64_t failed = 0;
};

async_result summarize(std::size_t items, clock::time_point start, clock::time_point submitted,
                       clock::time_point done, batch_counters before, batch_counters after,
                       std::uint64_t failed) {
  async_result out;
  const auto n = static_cast<double>(items);
  out.figures.items_per_s = n / std::chrono::duration<double>(done - start).count();
  out.submit_items_per_s = n / std::chrono::duration<double>(submitted - start).count();
  out.figures.mean_batch = mean_batch(before, after);
  out.failed = failed;
  return out;
}

async_result measure_batch_serving(const config& cfg, std::size_t items,
                                   std::chrono::microseconds timeout) {
  batch_serving::server srv(squares(), {.batch_size = batch_size,
                                        .batch_timeout = timeout,
                                        .metrics = metrics_of(cfg)});
  std::vector<batch_serving::future<int>> futures;
  futures.reserve(items);
  const batch_counters before = counters_of(srv);
  const auto start = clock::now();
  for (std::size_t i = 0; i < items; ++i) futures.push_back(srv.dispatch_async(input_for(0, i)));
  const auto submitted = clock::now();
  std::uint64_t failed = 0;
  for (std::size_t i = 0; i < items; ++i) {
    const int x = input_for(0, i);
    const batch_serving::result<int> r = futures[i].get();
    if (!r.ok() || *r != x * x) ++failed;
  }
  const auto done = clock::now();
  return summarize(items, start, submitted, done, before, counters_of(srv), failed);
}

async_result measure_naive(std::size_t items, std::chrono::microseconds timeout) {
  naive_batcher<int, int> batcher(square_all, batch_size, timeout);
  std::vector<std::future<int>> futures;
  futures.reserve(items);
  const batch_counters before = counters_of(batcher);
  const auto start = clock::now();
  for (std::size_t i = 0; i < items; ++i) futures.push_back(batcher.submit(input_for(0, i)));
  const auto submitted = clock::now();
  std::uint64_t failed = 0;
  for (std::size_t i = 0; i < items; ++i) {
    const int x = input_for(0, i);
    try {
      if (futures[i].get() != x * x) ++failed;
    } catch (const std::exception&) {
      ++failed;
    }
  }
  const auto done = clock::now();
  return summarize(items, start, submitted, done, before, counters_of(batcher), failed);
}

row to_row(const char* impl, std::chrono::microseconds timeout,
           const std::vector<async_result>& runs) {
  std::vector<measurement> figures;
  std::vector<std::optional<double>> submit_rates;
  for (const auto& r : runs) {
    figures.push_back(r.figures);
    submit_rates.push_back(r.submit_items_per_s);
  }
  row out = make_row("async", impl, 1, batch_size, static_cast<std::int64_t>(timeout.count()),
                     median_of(figures), static_cast<int>(runs.size()));
  out.extra.emplace_back("submit_items_per_s", median(submit_rates));
  return out;
}

}  // namespace

void run_async(const config& cfg, reporter& out) {
  for (const auto timeout : cfg.timeouts) {
    progress(cfg, "async: " + std::to_string(cfg.async_items) + " items, batch_timeout " +
                      std::to_string(timeout.count()) + " us");
    std::vector<async_result> ours;
    std::vector<async_result> naive;
    std::uint64_t failed = 0;
    // One untimed pass each first: the figures are for a warm process (the
    // call pool grown, the allocator's pages mapped), not for its first burst.
    measure_batch_serving(cfg, cfg.async_items, timeout);
    measure_naive(cfg.async_items, timeout);
    for (int run = 0; run < cfg.runs; ++run) {
      const auto [a, b] = side_by_side(
          run, [&] { return measure_batch_serving(cfg, cfg.async_items, timeout); },
          [&] { return measure_naive(cfg.async_items, timeout); });
      ours.push_back(a);
      naive.push_back(b);
      failed += a.failed + b.failed;
    }
    require_no_failures(failed, "async");
    out.add(to_row("batch_serving", timeout, ours));
    out.add(to_row("naive", timeout, naive));
  }
}

}  // namespace bench
