// The server's batching behaviour: the seed's cases, explicit batches,
// partitions, failures and bad input.
#include "batch_serving/server.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <latch>
#include <mutex>
#include <numeric>
#include <span>
#include <stdexcept>
#include <thread>
#include <vector>

#include "support/controlled_function.hpp"
#include "support/recording_function.hpp"

namespace bs = batch_serving;
using namespace std::chrono_literals;
using bs::testing::recorder;
using clock_type = std::chrono::steady_clock;

namespace {

bs::serving<int, int> recording_serving(recorder& rec) {
  return bs::serving<int, int>([&rec](std::span<const int> xs) { return rec.square(xs); });
}

std::vector<std::size_t> sizes_of(const std::vector<std::vector<int>>& executions) {
  std::vector<std::size_t> sizes;
  for (const auto& e : executions) sizes.push_back(e.size());
  return sizes;
}

// Runs `calls` single dispatches of 1..calls from `callers` threads that
// start together; returns each call's latency by value.
std::vector<clock_type::duration> dispatch_from_callers(bs::server<int, int>& srv, int calls,
                                                        int callers) {
  std::atomic<int> next{1};
  std::vector<clock_type::duration> latency(static_cast<std::size_t>(calls) + 1);
  std::latch start(callers);
  std::vector<std::thread> threads;
  for (int c = 0; c < callers; ++c) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      for (int n = next++; n <= calls; n = next++) {
        const auto t0 = clock_type::now();
        EXPECT_EQ(srv.dispatch(n).value(), n * n);
        latency[static_cast<std::size_t>(n)] = clock_type::now() - t0;
      }
    });
  }
  for (auto& t : threads) t.join();
  return latency;
}

}  // namespace

// Seed case: batch_size 2, 5 single calls from 4 concurrent callers: two full
// executions at once, and the fifth call waits one timeout alone.
TEST(ServerTest, RunsFullBatchesAtOnceAndWaitsTheTimeoutForTheRest) {
  recorder rec;
  constexpr auto timeout = 300ms;  // generous, so 4 starting threads always meet
  bs::server srv(recording_serving(rec), {.batch_size = 2, .batch_timeout = timeout});

  const auto latency = dispatch_from_callers(srv, 5, 4);

  EXPECT_EQ(sizes_of(rec.executions()), (std::vector<std::size_t>{2, 2, 1}));
  EXPECT_EQ(srv.stats().executions, 3u);
  // Exactly one call (the one alone in the last execution) waited a timeout.
  const auto waited = std::count_if(latency.begin() + 1, latency.end(),
                                    [&](auto l) { return l >= timeout - 10ms; });
  EXPECT_EQ(waited, 1);
}

// Seed case: 6 calls from 4 callers fill 3 executions; nobody waits.
TEST(ServerTest, NeverWaitsWhenEveryBatchFills) {
  recorder rec;
  bs::server srv(recording_serving(rec), {.batch_size = 2, .batch_timeout = 60s});

  const auto t0 = clock_type::now();
  dispatch_from_callers(srv, 6, 4);

  EXPECT_LT(clock_type::now() - t0, 30s);  // a wait would take the full minute
  EXPECT_EQ(sizes_of(rec.executions()), (std::vector<std::size_t>{2, 2, 2}));
}

// Items that were queued behind a full batch wait for company from when that
// batch left, not from their own arrival: the executor was busy, so their
// own timeout passed long ago, yet they still get a chance to fill a batch.
TEST(ServerTest, ItemsLeftBehindAFullBatchWaitATimeoutOfTheirOwn) {
  bs::testing::controlled_function fn;
  constexpr auto timeout = 200ms;
  bs::server srv(bs::testing::serving_of(fn), {.batch_size = 2, .batch_timeout = timeout});
  const bs::testing::open_on_exit release{fn.released};
  auto blocker = bs::testing::block_executor(srv, fn);
  auto a = srv.dispatch_async(1);
  auto b = srv.dispatch_async(2);
  auto c = srv.dispatch_async(3);
  std::this_thread::sleep_for(2 * timeout);  // each one's own timeout has passed

  const auto released_at = clock_type::now();
  fn.released.open();
  EXPECT_EQ(a.get().value(), 1);
  EXPECT_EQ(b.get().value(), 4);
  const auto pair_done = clock_type::now() - released_at;
  EXPECT_EQ(c.get().value(), 9);
  const auto last_done = clock_type::now() - released_at;

  EXPECT_EQ(fn.executions(), (std::vector<std::vector<int>>{{0}, {1, 2}, {3}}));
  EXPECT_LT(pair_done, timeout / 2) << "the full batch runs at once";
  EXPECT_GE(last_done, timeout - 20ms) << "the item behind it waits a timeout from then";
  EXPECT_EQ(blocker.get().value(), 0);
}

TEST(ServerTest, ZeroTimeoutRunsWhateverIsQueuedAtOnce) {
  recorder rec;
  bs::server srv(recording_serving(rec), {.batch_size = 8, .batch_timeout = 0ms});
  EXPECT_EQ(srv.dispatch(3).value(), 9);
  EXPECT_EQ(sizes_of(rec.executions()), (std::vector<std::size_t>{1}));
}

TEST(ServerTest, BatchSizeDefaultsToTheServingsBatchSize) {
  recorder rec;
  bs::server srv(recording_serving(rec).batch_size(3), {.batch_timeout = 0ms});
  EXPECT_EQ(srv.batch_size(), 3u);
  bs::server plain(recording_serving(rec), {.batch_timeout = 0ms});
  EXPECT_EQ(plain.batch_size(), 1u);
}

// batch_size 3, calls a, b, c of 2 items each: [a1 a2 b1] [b2 c1 c2], and each
// caller gets exactly its own two results, in its own order.
TEST(ServerTest, MergesExplicitBatchesAndSplitsThemToFillExecutions) {
  recorder rec;
  bs::server srv(recording_serving(rec), {.batch_size = 3, .batch_timeout = 60s});

  auto a = srv.dispatch_many_async({1, 2});
  auto b = srv.dispatch_many_async({3, 4});
  auto c = srv.dispatch_many_async({5, 6});

  EXPECT_EQ(a.get().value(), (std::vector<int>{1, 4}));
  EXPECT_EQ(b.get().value(), (std::vector<int>{9, 16}));
  EXPECT_EQ(c.get().value(), (std::vector<int>{25, 36}));
  EXPECT_EQ(rec.executions(), (std::vector<std::vector<int>>{{1, 2, 3}, {4, 5, 6}}));
}

TEST(ServerTest, ConcurrentExplicitBatchesEachGetTheirOwnResults) {
  recorder rec;
  bs::server srv(recording_serving(rec), {.batch_size = 3, .batch_timeout = 60s});
  std::latch start(3);
  std::vector<std::thread> callers;
  for (int k = 0; k < 3; ++k) {
    callers.emplace_back([&, k] {
      const int first = 10 * (k + 1);
      start.arrive_and_wait();
      EXPECT_EQ(srv.dispatch_many({first, first + 1}).value(),
                (std::vector<int>{first * first, (first + 1) * (first + 1)}));
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(sizes_of(rec.executions()), (std::vector<std::size_t>{3, 3}));
}

TEST(ServerTest, SplitsAnOversizedExplicitBatchAndReassemblesItInOrder) {
  recorder rec;
  bs::server srv(recording_serving(rec), {.batch_size = 3, .batch_timeout = 20ms});

  EXPECT_EQ(srv.dispatch_many({1, 2, 3, 4, 5, 6, 7, 8}).value(),
            (std::vector<int>{1, 4, 9, 16, 25, 36, 49, 64}));
  EXPECT_EQ(rec.executions(), (std::vector<std::vector<int>>{{1, 2, 3}, {4, 5, 6}, {7, 8}}));
}

// A module whose executions wait until `expected` of them run at once, and
// which records a violation if one partition's state is entered twice.
struct rendezvous {
  std::mutex mu;
  std::condition_variable cv;
  int inside = 0;
  int most_inside = 0;
  bool met = false;  // `expected` executions were inside at once
  std::atomic<int> reentered{0};
};

class rendezvous_module {
 public:
  rendezvous_module(const bs::partition_info&, rendezvous* r, int expected)
      : r_(r), expected_(expected) {}

  std::vector<int> handle_batch(std::span<const int> xs, bs::execution_context&) {
    if (busy_.exchange(true)) ++r_->reentered;
    {
      std::unique_lock lock(r_->mu);
      ++r_->inside;
      r_->most_inside = std::max(r_->most_inside, r_->inside);
      if (r_->inside >= expected_) r_->met = true;
      r_->cv.notify_all();
      // Bounded: if the executions never overlap, the test fails instead of hanging.
      r_->cv.wait_for(lock, 20s, [&] { return r_->met; });
    }
    std::vector<int> out(xs.begin(), xs.end());
    {
      std::lock_guard lock(r_->mu);
      --r_->inside;
    }
    busy_ = false;
    return out;
  }

 private:
  rendezvous* r_;
  int expected_;
  std::atomic<bool> busy_{false};
};

// 4 partitions run 4 executions at the same time (the seed's "about 2 s, not
// 8" case, shown by all four being inside the function at once).
TEST(ServerTest, PartitionsRunExecutionsInParallel) {
  rendezvous r;
  auto serving = bs::serving<int, int>::from_module<rendezvous_module>(&r, 4);
  bs::server srv(serving, {.batch_size = 2, .batch_timeout = 60s, .partitions = 4});

  std::vector<bs::future<std::vector<int>>> calls;
  for (int k = 0; k < 4; ++k) calls.push_back(srv.dispatch_many_async({2 * k, 2 * k + 1}));
  for (int k = 0; k < 4; ++k)
    EXPECT_EQ(calls[k].get().value(), (std::vector<int>{2 * k, 2 * k + 1}));

  EXPECT_EQ(r.most_inside, 4);
  EXPECT_TRUE(r.met);
  EXPECT_EQ(r.reentered.load(), 0);
}

TEST(ServerTest, APartitionNeverRunsItsFunctionConcurrentlyWithItself) {
  rendezvous r;  // expected 1: nobody waits for company
  auto serving = bs::serving<int, int>::from_module<rendezvous_module>(&r, 1);
  bs::server srv(serving, {.batch_size = 4, .batch_timeout = 0ms, .partitions = 2});
  std::vector<std::thread> callers;
  for (int t = 0; t < 8; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) EXPECT_EQ(srv.dispatch(t * 1000 + i).value(), t * 1000 + i);
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(r.reentered.load(), 0);
  EXPECT_LE(r.most_inside, 2);
}

// The first execution of a split call finishes last; the caller still gets
// its results in its own order.
TEST(ServerTest, NeverReordersResultsWhenALaterExecutionFinishesFirst) {
  std::promise<void> second_done;
  auto second_done_future = second_done.get_future().share();
  std::atomic<int> finished_first{0};
  bs::serving<int, int> serving([&](std::span<const int> xs) {
    if (xs.front() == 1) {
      // Bounded wait: the test fails rather than hangs if [3, 4] never runs.
      EXPECT_EQ(second_done_future.wait_for(20s), std::future_status::ready);
    }
    std::vector<int> out;
    for (int x : xs) out.push_back(x * x);
    if (xs.front() == 3) {
      finished_first = 3;
      second_done.set_value();
    }
    return out;
  });
  bs::server srv(serving, {.batch_size = 2, .batch_timeout = 60s, .partitions = 2});

  EXPECT_EQ(srv.dispatch_many({1, 2, 3, 4}).value(), (std::vector<int>{1, 4, 9, 16}));
  EXPECT_EQ(finished_first.load(), 3);
}

bs::serving<int, int> poisonable_serving() {
  return bs::serving<int, int>([](std::span<const int> xs) {
    std::vector<int> out;
    for (int x : xs) {
      if (x == 13) throw std::runtime_error("13 is poison");
      out.push_back(x * x);
    }
    return out;
  });
}

// Only the callers with items in the failing execution get the error.
TEST(ServerTest, AThrowingBatchFunctionFailsOnlyThatExecutionsCallers) {
  bs::server srv(poisonable_serving(), {.batch_size = 2, .batch_timeout = 60s});

  auto poisoned = srv.dispatch_many_async({13, 1});
  auto neighbour = srv.dispatch_many_async({2, 3});

  auto failed = poisoned.get();
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code(), bs::errc::execution_failed);
  EXPECT_NE(failed.error().message().find("13 is poison"), std::string::npos);
  EXPECT_EQ(neighbour.get().value(), (std::vector<int>{4, 9}));

  // The server keeps serving.
  auto single = srv.dispatch_async(5);
  auto partner = srv.dispatch_async(6);
  EXPECT_EQ(single.get().value(), 25);
  EXPECT_EQ(partner.get().value(), 36);
  EXPECT_EQ(srv.stats().failed_executions, 1u);
}

TEST(ServerTest, AllCallersInAFailedExecutionGetTheError) {
  bs::server srv(poisonable_serving(), {.batch_size = 3, .batch_timeout = 60s});
  auto a = srv.dispatch_async(1);
  auto b = srv.dispatch_async(13);
  auto c = srv.dispatch_async(2);
  for (auto* f : {&a, &b, &c}) {
    auto r = f->get();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), bs::errc::execution_failed);
  }
}

TEST(ServerTest, ASplitCallFailsWholeWhenAnyOfItsExecutionsFails) {
  bs::server srv(poisonable_serving(), {.batch_size = 2, .batch_timeout = 60s});
  auto r = srv.dispatch_many({1, 2, 13, 4, 5, 6});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), bs::errc::execution_failed);
  EXPECT_EQ(srv.dispatch_many({7, 8}).value(), (std::vector<int>{49, 64}));
}

TEST(ServerTest, AWrongNumberOfOutputsIsAnExecutionFailureNamingTheCounts) {
  bs::serving<int, int> short_by_one([](std::span<const int> xs) {
    return std::vector<int>(xs.size() - 1, 0);
  });
  bs::server srv(short_by_one, {.batch_size = 3, .batch_timeout = 0ms});
  auto r = srv.dispatch_many({1, 2, 3});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), bs::errc::execution_failed);
  EXPECT_NE(r.error().message().find("2 outputs for 3 inputs"), std::string::npos)
      << r.error().message();
}

TEST(ServerTest, ANonStandardExceptionIsAnExecutionFailureToo) {
  bs::serving<int, int> throws_int([](std::span<const int>) -> std::vector<int> { throw 42; });
  bs::server srv(throws_int, {.batch_timeout = 0ms});
  auto r = srv.dispatch(1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), bs::errc::execution_failed);
}

TEST(ServerTest, RejectsAnEmptyExplicitBatch) {
  recorder rec;
  bs::server srv(recording_serving(rec), {.batch_timeout = 0ms});
  auto r = srv.dispatch_many(std::span<const int>());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), bs::errc::invalid_argument);
  EXPECT_NE(r.error().message().find("empty"), std::string::npos);
  EXPECT_TRUE(rec.executions().empty());
}

TEST(ServerTest, RejectsBadOptionsNamingTheField) {
  recorder rec;
  auto s = recording_serving(rec);
  auto message_of = [&](bs::server_options o) -> std::string {
    try {
      bs::server srv(s, std::move(o));
    } catch (const bs::serving_error& e) {
      EXPECT_EQ(e.code(), bs::errc::invalid_argument);
      return e.what();
    }
    return "no error";
  };
  EXPECT_NE(message_of({.batch_size = 0}).find("batch_size"), std::string::npos);
  EXPECT_NE(message_of({.partitions = 0}).find("partitions"), std::string::npos);
  EXPECT_NE(message_of({.batch_timeout = -1ms}).find("batch_timeout"), std::string::npos);
  EXPECT_NE(message_of({.shutdown_timeout = -1ms}).find("shutdown_timeout"), std::string::npos);
}

struct counted_module {
  explicit counted_module(const bs::partition_info& where, std::vector<int>* seen, std::mutex* mu) {
    std::lock_guard lock(*mu);
    seen->push_back(static_cast<int>(where.index));
    EXPECT_EQ(where.mode, bs::execution_mode::server);
  }
  std::vector<int> handle_batch(std::span<const int> xs, bs::execution_context& ctx) {
    EXPECT_EQ(ctx.mode(), bs::execution_mode::server);
    EXPECT_EQ(ctx.size(), xs.size());
    return std::vector<int>(xs.size(), static_cast<int>(ctx.partition()));
  }
};

TEST(ServerTest, CreatesEachPartitionsStateOnceWithItsIndex) {
  std::vector<int> seen;
  std::mutex mu;
  auto serving = bs::serving<int, int>::from_module<counted_module>(&seen, &mu);
  {
    bs::server srv(serving, {.batch_timeout = 0ms, .partitions = 3});
    EXPECT_GE(srv.dispatch(1).value(), 0);
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2}));
}

struct failing_init {
  explicit failing_init(const bs::partition_info& where) {
    if (where.index == 1) throw std::runtime_error("no device 1");
  }
  std::vector<int> handle_batch(std::span<const int> xs, bs::execution_context&) {
    return std::vector<int>(xs.begin(), xs.end());
  }
};

TEST(ServerTest, StartingFailsWithTheInitsExceptionAndReleasesTheName) {
  auto serving = bs::serving<int, int>::from_module<failing_init>();
  EXPECT_THROW({ bs::server srv(serving, {.name = "server_test_failing_init", .partitions = 2}); },
               std::runtime_error);
  bs::server ok(bs::serving<int, int>([](std::span<const int> xs) {
                  return std::vector<int>(xs.begin(), xs.end());
                }),
                {.name = "server_test_failing_init"});
  EXPECT_EQ(ok.dispatch(4).value(), 4);
}

TEST(ServerTest, MapsCallerTypesInTheCallersThread) {
  struct point {
    int x;
    int y;
  };
  recorder rec;
  auto serving = recording_serving(rec)
                     .map_inputs([](const point& p) { return p.x + p.y; })
                     .map_results([](int sq) { return std::to_string(sq); });
  bs::server srv(serving, {.batch_size = 4, .batch_timeout = 0ms});
  EXPECT_EQ(srv.dispatch(point{1, 2}).value(), "9");
  EXPECT_EQ(srv.dispatch_many({point{1, 0}, point{2, 0}}).value(),
            (std::vector<std::string>{"1", "4"}));
}

TEST(ServerTest, CountsCallsItemsAndExecutions) {
  recorder rec;
  bs::server srv(recording_serving(rec), {.batch_size = 4, .batch_timeout = 60s});
  auto a = srv.dispatch_many_async({1, 2, 3});
  auto b = srv.dispatch_async(4);
  (void)a.get();
  (void)b.get();
  const auto s = srv.stats();
  EXPECT_EQ(s.calls_accepted, 2u);
  EXPECT_EQ(s.items_accepted, 4u);
  EXPECT_EQ(s.executions, 1u);
  EXPECT_EQ(s.items_executed, 4u);
  EXPECT_DOUBLE_EQ(s.mean_batch(), 4.0);
}

struct context_free_module {
  std::vector<int> handle_batch(std::span<const int> xs) {
    return std::vector<int>(xs.size(), static_cast<int>(xs.size()));
  }
};

TEST(ServerTest, AcceptsAModuleWhoseHandleBatchTakesNoContext) {
  auto serving = bs::serving<int, int>::from_module<context_free_module>();
  bs::server srv(serving, {.batch_size = 3, .batch_timeout = 0ms});
  EXPECT_EQ(srv.dispatch_many({1, 2, 3}).value(), (std::vector<int>{3, 3, 3}));
}
