// memory: the memory a queued request costs. A batch function that blocks on
// a latch holds the one executor while one thread queues N requests with the
// non-blocking dispatch form; the heap in use (mallinfo2) and the resident
// set (statm, after returning free heap memory to the system) are read before
// and after, the futures vector's own bytes are
// subtracted, and the rest is divided by N. Then the latch opens and every
// answer is checked. bytes_per_request includes the request's own int in and
// int out (payload_bytes).
#include <batch_serving/batch_serving.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <future>
#include <latch>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "memory_usage.hpp"
#include "naive_batcher.hpp"
#include "scenarios.hpp"
#include "workload.hpp"

namespace bench {
namespace {

constexpr std::size_t batch_size = 64;
constexpr auto no_timeout = std::chrono::microseconds(0);

struct memory_result {
  std::optional<double> heap_per_request;
  std::optional<double> resident_per_request;
  std::uint64_t failed = 0;
};

// Holds the executor: the first batch waits in the batch function until
// open(); later batches pass.
class gate {
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

std::optional<double> per_request(std::optional<std::int64_t> before,
                                  std::optional<std::int64_t> after, std::size_t own_bytes,
                                  std::size_t requests) {
  if (!before || !after || requests == 0) return std::nullopt;
  const auto grown = static_cast<double>(*after - *before) - static_cast<double>(own_bytes);
  return grown / static_cast<double>(requests);
}

template <class Futures>
memory_result summarize(const memory_usage& before, const memory_usage& after,
                        const Futures& futures) {
  const std::size_t own = futures.capacity() * sizeof(typename Futures::value_type);
  return {per_request(before.heap_bytes, after.heap_bytes, own, futures.size()),
          per_request(before.resident_bytes, after.resident_bytes, own, futures.size()), 0};
}

memory_result measure_batch_serving(std::size_t requests) {
  gate g;
  batch_serving::serving<int, int> held([&g](std::span<const int> xs) {
    return g.hold_then_square(xs);
  });
  batch_serving::server srv(held, {.batch_size = batch_size, .batch_timeout = no_timeout});
  auto plug = srv.dispatch_async(0);
  g.wait_until_held();

  release_free_memory();
  const memory_usage before = read_memory_usage();
  std::vector<batch_serving::future<int>> futures;
  futures.reserve(requests);
  for (std::size_t i = 0; i < requests; ++i) {
    futures.push_back(srv.dispatch_async(input_for(0, i)));
  }
  const memory_usage after = read_memory_usage();
  memory_result out = summarize(before, after, futures);

  g.open();
  if (!plug.get().ok()) ++out.failed;
  for (std::size_t i = 0; i < requests; ++i) {
    const int x = input_for(0, i);
    const batch_serving::result<int> r = futures[i].get();
    if (!r.ok() || *r != x * x) ++out.failed;
  }
  return out;
}

memory_result measure_naive(std::size_t requests) {
  gate g;
  naive_batcher<int, int> batcher([&g](std::span<const int> xs) { return g.hold_then_square(xs); },
                                  batch_size, no_timeout);
  auto plug = batcher.submit(0);
  g.wait_until_held();

  release_free_memory();
  const memory_usage before = read_memory_usage();
  std::vector<std::future<int>> futures;
  futures.reserve(requests);
  for (std::size_t i = 0; i < requests; ++i) futures.push_back(batcher.submit(input_for(0, i)));
  const memory_usage after = read_memory_usage();
  memory_result out = summarize(before, after, futures);

  g.open();
  try {
    plug.get();
    for (std::size_t i = 0; i < requests; ++i) {
      const int x = input_for(0, i);
      if (futures[i].get() != x * x) ++out.failed;
    }
  } catch (const std::exception&) {
    ++out.failed;
  }
  return out;
}

row to_row(const char* impl, const std::vector<memory_result>& runs) {
  std::vector<std::optional<double>> heap;
  std::vector<std::optional<double>> resident;
  for (const auto& r : runs) {
    heap.push_back(r.heap_per_request);
    resident.push_back(r.resident_per_request);
  }
  row out =
      make_row("memory", impl, 1, batch_size, 0, measurement{}, static_cast<int>(runs.size()));
  out.extra.emplace_back("bytes_per_request", median(heap));
  out.extra.emplace_back("rss_bytes_per_request", median(resident));
  out.extra.emplace_back("payload_bytes", 2.0 * sizeof(int));
  return out;
}

}  // namespace

void run_memory(const config& cfg, reporter& out) {
  progress(cfg, "memory: " + std::to_string(cfg.memory_requests) + " queued requests");
  std::vector<memory_result> ours;
  std::vector<memory_result> naive;
  std::uint64_t failed = 0;
  for (int run = 0; run < cfg.runs; ++run) {
    const auto [a, b] = side_by_side(
        run, [&] { return measure_batch_serving(cfg.memory_requests); },
        [&] { return measure_naive(cfg.memory_requests); });
    ours.push_back(a);
    naive.push_back(b);
    failed += a.failed + b.failed;
  }
  require_no_failures(failed, "memory");
  out.add(to_row("batch_serving", ours));
  out.add(to_row("naive", naive));
}

}  // namespace bench
