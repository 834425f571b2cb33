// Overload: for a few seconds, callers offer about ten times what the server
// can execute, against a max_queue. Checks behaviour, not speed, with
// generous bounds:
//   - memory stays bounded: the items queued or executing never exceed
//     max_queue plus one batch per partition (server_stats), the items alive
//     anywhere (counted by the item type) stay near that, and RSS grows little;
//   - admitted calls keep a bounded p99 latency: five times the time to work
//     through a full queue at the capacity measured, plus scheduling slack;
//   - every other call is answered overloaded, at once: each refusal returns
//     within 50 ms and a refused callback runs in its caller's thread.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "batch_serving/server.hpp"

namespace bs = batch_serving;
using namespace std::chrono_literals;

namespace {

#if defined(__SANITIZE_ADDRESS__)
#define OVERLOAD_ASAN 1
#elif defined(__SANITIZE_THREAD__)
#define OVERLOAD_TSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define OVERLOAD_ASAN 1
#elif __has_feature(thread_sanitizer)
#define OVERLOAD_TSAN 1
#endif
#endif

#if defined(OVERLOAD_ASAN)
constexpr bool sanitized = true;
// ASan keeps freed memory in quarantine (up to 256 MB): RSS says little, the
// item count and the queue bound say it all.
constexpr long rss_bound = 1L << 30;
#elif defined(OVERLOAD_TSAN)
constexpr bool sanitized = true;
constexpr long rss_bound = 128L << 20;  // its shadow memory grows with what was touched
#else
constexpr bool sanitized = false;
constexpr long rss_bound = 32L << 20;
#endif

using clock_type = std::chrono::steady_clock;

// An item that counts how many of it are alive, and the most ever at once.
class tracked {
 public:
  static std::atomic<std::int64_t> live;
  static std::atomic<std::int64_t> peak;

  explicit tracked(std::int64_t v) : v_(v) { born(); }
  tracked(const tracked& other) : v_(other.v_) { born(); }
  tracked(tracked&& other) noexcept : v_(other.v_) { born(); }
  tracked& operator=(const tracked&) = default;
  tracked& operator=(tracked&&) noexcept = default;
  ~tracked() { live.fetch_sub(1, std::memory_order_relaxed); }

  std::int64_t value() const { return v_; }

 private:
  static void born() {
    const std::int64_t now = live.fetch_add(1, std::memory_order_relaxed) + 1;
    std::int64_t seen = peak.load(std::memory_order_relaxed);
    while (now > seen && !peak.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
    }
  }

  std::int64_t v_;
};
std::atomic<std::int64_t> tracked::live{0};
std::atomic<std::int64_t> tracked::peak{0};

long rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

double ms(clock_type::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct caller_record {
  std::vector<clock_type::duration> admitted_latency;  // admitted calls: dispatch to answer
  clock_type::duration slowest_refusal{};              // refused calls: dispatch to return
  std::uint64_t issued = 0;
  std::uint64_t refused = 0;
  std::uint64_t other_errors = 0;
  std::uint64_t wrong_results = 0;
  std::uint64_t refusals_elsewhere = 0;  // refused callbacks that ran on another thread
};

}  // namespace

TEST(OverloadTest, TenTimesCapacityStaysBoundedAndRefusesAtOnce) {
  constexpr std::size_t batch_size = 8;
  constexpr std::size_t partitions = 1;
  constexpr std::size_t max_queue = 64;
  constexpr auto execution_time = 2ms;  // per batch: capacity ~4,000 items/s
  constexpr int submitters = 10;
  constexpr auto run_for = 3s;
  // Each submitter offers 5,000 calls/s: 50,000/s in all, ~10x capacity (two of them
  // block while admitted, so offer less).
  constexpr auto period = 200us;

  bs::serving<tracked, std::int64_t> slow([&](std::span<const tracked> xs) {
    std::this_thread::sleep_for(execution_time);
    std::vector<std::int64_t> out;
    out.reserve(xs.size());
    for (const auto& x : xs) out.push_back(2 * x.value());
    return out;
  });
  bs::server<tracked, std::int64_t> srv(slow, {.batch_size = batch_size,
                                               .batch_timeout = 0us,
                                               .partitions = partitions,
                                               .max_queue = max_queue});

  // Warm up (threads, allocator arenas), then take the baseline RSS.
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(srv.dispatch(tracked(i)).ok());
  const long rss_start = rss_bytes();
  tracked::peak.store(tracked::live.load());
  const std::int64_t live_before = tracked::live.load();

  std::atomic<bool> running{true};
  std::atomic<std::uint64_t> callbacks_run{0};
  std::vector<caller_record> records(submitters);
  std::atomic<std::uint64_t> most_in_server{0};
  std::atomic<long> rss_peak{rss_start};
  const auto start = clock_type::now();
  const auto stop_at = start + run_for;

  // Samples the queue (queued or executing items) and RSS.
  std::thread monitor([&] {
    while (running.load()) {
      const auto s = srv.stats();
      // items_accepted is read before items_executed: never an overestimate.
      const std::uint64_t in_server = s.items_accepted - s.items_executed;
      if (in_server > most_in_server.load()) most_in_server.store(in_server);
      const long rss = rss_bytes();
      if (rss > rss_peak.load()) rss_peak.store(rss);
      std::this_thread::sleep_for(1ms);
    }
  });

  std::vector<std::thread> threads;
  for (int t = 0; t < submitters; ++t) {
    threads.emplace_back([&, t] {
      caller_record& rec = records[static_cast<std::size_t>(t)];
      rec.admitted_latency.reserve(20'000);
      std::mutex mu;  // guards rec.admitted_latency against this caller's callbacks
      std::atomic<std::uint64_t> pending{0};
      const bool blocking = t % 5 == 0;  // two callers block, eight use callbacks
      const auto me = std::this_thread::get_id();
      auto next = clock_type::now();
      for (std::int64_t i = 1; clock_type::now() < stop_at; ++i) {
        // Open loop: a call every period, catching up at most 10 periods late.
        const auto now = clock_type::now();
        if (now < next) std::this_thread::sleep_until(next);
        next = std::max(next + period, now - 10 * period);
        const std::int64_t v = (static_cast<std::int64_t>(t) << 32) | i;
        ++rec.issued;
        const auto t0 = clock_type::now();
        if (blocking) {
          auto r = srv.dispatch(tracked(v));
          const auto t1 = clock_type::now();
          if (r.ok()) {
            if (*r != 2 * v) ++rec.wrong_results;
            rec.admitted_latency.push_back(t1 - t0);
          } else if (r.error().code() == bs::errc::overloaded) {
            ++rec.refused;
            rec.slowest_refusal = std::max(rec.slowest_refusal, t1 - t0);
          } else {
            ++rec.other_errors;
          }
          continue;
        }
        bool refused_here = false;
        pending.fetch_add(1);
        srv.dispatch_async(tracked(v), [&, v, t0](bs::result<std::int64_t> r) {
          const auto t1 = clock_type::now();
          if (r.ok()) {
            std::lock_guard lock(mu);
            if (*r != 2 * v) ++rec.wrong_results;
            rec.admitted_latency.push_back(t1 - t0);
          } else if (r.error().code() == bs::errc::overloaded) {
            if (std::this_thread::get_id() == me) {
              refused_here = true;
            } else {
              std::lock_guard lock(mu);
              ++rec.refusals_elsewhere;
            }
          } else {
            std::lock_guard lock(mu);
            ++rec.other_errors;
          }
          callbacks_run.fetch_add(1);
          pending.fetch_sub(1);
        });
        if (refused_here) {
          ++rec.refused;
          rec.slowest_refusal = std::max(rec.slowest_refusal, clock_type::now() - t0);
        }
      }
      // This thread's callbacks use its locals: wait for the last of them.
      while (pending.load() != 0) std::this_thread::sleep_for(100us);
    });
  }
  for (auto& t : threads) t.join();
  const auto elapsed = clock_type::now() - start;
  running.store(false);
  monitor.join();
  const auto stats = srv.stats();
  srv.stop();

  std::vector<clock_type::duration> latencies;
  std::uint64_t issued = 0, refused = 0, other_errors = 0, wrong = 0, elsewhere = 0;
  clock_type::duration slowest_refusal{};
  for (const auto& rec : records) {
    latencies.insert(latencies.end(), rec.admitted_latency.begin(), rec.admitted_latency.end());
    issued += rec.issued;
    refused += rec.refused;
    other_errors += rec.other_errors;
    wrong += rec.wrong_results;
    elsewhere += rec.refusals_elsewhere;
    slowest_refusal = std::max(slowest_refusal, rec.slowest_refusal);
  }
  ASSERT_FALSE(latencies.empty());
  std::sort(latencies.begin(), latencies.end());
  auto percentile = [&](double p) {
    return latencies[std::min(latencies.size() - 1,
                              static_cast<std::size_t>(p * static_cast<double>(latencies.size())))];
  };
  const double seconds = std::chrono::duration<double>(elapsed).count();
  // Capacity as measured: items executed per second (the 20 warm-up items aside).
  const double capacity = static_cast<double>(stats.items_executed - 20) / seconds;
  const double offered = static_cast<double>(issued) / seconds;
  // Time to work through a full queue plus the batch ahead of it, at that capacity.
  const double queueing_ms =
      1000.0 * static_cast<double>(max_queue + batch_size * partitions) / capacity +
      ms(execution_time);
  const double p99_bound_ms = 5 * queueing_ms + (sanitized ? 100.0 : 20.0);
  const long rss_growth = rss_peak.load() - rss_start;
  // Items alive anywhere: the queue, two copies per item in flight (the
  // call's and the execution's), completed calls not yet released, and a few
  // per submitter on their way in.
  const std::int64_t live_bound =
      live_before + static_cast<std::int64_t>(max_queue + 3 * batch_size * partitions) +
      8 * static_cast<std::int64_t>(submitters);

  std::printf(
      "overload: %.1f s, offered %.0f calls/s, capacity %.0f items/s (%.1fx), %llu admitted, "
      "%llu refused; admitted latency p50 %.1f ms, p99 %.1f ms (bound %.1f ms), max %.1f ms; "
      "slowest refusal %.3f ms; most items in server %llu (max_queue %zu + batch %zu); items "
      "alive peak %lld (bound %lld); RSS %ld kB -> peak %ld kB (+%ld kB)\n",
      seconds, offered, capacity, offered / capacity,
      static_cast<unsigned long long>(latencies.size()), static_cast<unsigned long long>(refused),
      ms(percentile(0.50)), ms(percentile(0.99)), p99_bound_ms, ms(latencies.back()),
      ms(slowest_refusal), static_cast<unsigned long long>(most_in_server.load()), max_queue,
      batch_size * partitions, static_cast<long long>(tracked::peak.load()),
      static_cast<long long>(live_bound), rss_start / 1024, rss_peak.load() / 1024,
      rss_growth / 1024);

  // It really was overloaded (else the rest proves little).
  EXPECT_GT(offered, 4 * capacity) << "offered load did not reach several times capacity";
  EXPECT_GT(refused, 0u);
  // Every call answered once, with its own result or overloaded.
  EXPECT_EQ(latencies.size() + refused + other_errors, issued);
  EXPECT_EQ(other_errors, 0u);
  EXPECT_EQ(wrong, 0u);
  EXPECT_EQ(stats.calls_overloaded, refused);
  EXPECT_EQ(stats.calls_accepted, latencies.size() + 20);
  // Refused at once: in the caller's thread, quickly.
  EXPECT_EQ(elsewhere, 0u) << "refused callbacks ran on another thread, not at once";
  EXPECT_LT(slowest_refusal, 50ms);
  // Bounded memory.
  EXPECT_LE(most_in_server.load(), max_queue + batch_size * partitions);
  EXPECT_LE(tracked::peak.load(), live_bound);
  EXPECT_LE(rss_growth, rss_bound);
  // Bounded latency for the admitted.
  EXPECT_LE(ms(percentile(0.99)), p99_bound_ms);
}
