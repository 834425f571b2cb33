// Streaming servings: per-caller event streams with hooks, mirroring the
// original library's own streaming tests.
#include "batch_serving/streaming.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "batch_serving/server.hpp"
#include "batch_serving/streaming_server.hpp"

namespace bs = batch_serving;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

// An event flattened for comparison: ("batch", values), ("item", {v}),
// ("progress", payload), ("error", {}).
struct seen {
  std::string what;
  std::vector<int> values;
  friend bool operator==(const seen&, const seen&) = default;
  friend std::ostream& operator<<(std::ostream& os, const seen& s) {
    os << s.what << "[";
    for (std::size_t i = 0; i < s.values.size(); ++i) os << (i ? " " : "") << s.values[i];
    return os << "]";
  }
};

seen flatten(bs::event<int>& ev) {
  switch (ev.kind()) {
    case bs::event_kind::batch: return {"batch", ev.batch()};
    case bs::event_kind::item: return {"item", {ev.item()}};
    case bs::event_kind::hook: {
      auto p = ev.payload<int>();
      return {ev.hook(), std::vector<int>(p.begin(), p.end())};
    }
    case bs::event_kind::error: return {"error", {}};
    case bs::event_kind::end: return {"end", {}};
  }
  return {"?", {}};
}

std::vector<seen> drain(bs::event_stream<int> stream) {
  std::vector<seen> all;
  for (auto& ev : stream) all.push_back(flatten(ev));
  return all;
}

// Emits `progress` with its inputs and returns x * 10; records executions.
struct progress_function {
  std::shared_ptr<std::mutex> mu = std::make_shared<std::mutex>();
  std::shared_ptr<std::vector<std::vector<int>>> executions =
      std::make_shared<std::vector<std::vector<int>>>();

  std::vector<int> operator()(std::span<const int> xs, bs::execution_context& ctx) const {
    {
      std::lock_guard lock(*mu);
      executions->emplace_back(xs.begin(), xs.end());
    }
    ctx.emit("progress", std::vector<int>(xs.begin(), xs.end()));
    std::vector<int> out;
    for (int x : xs) out.push_back(x * 10);
    return out;
  }
};

bs::streaming_serving<int, int> progress_serving(const progress_function& f) {
  return bs::serving<int, int>(f).streaming({.hooks = {"progress"}});
}

}  // namespace

// Seed: streaming returns the first batch before the whole request completes.
TEST(StreamingTest, DeliversEachBatchAsSoonAsItsExecutionFinishes) {
  auto serving = bs::serving<int, int>([](std::span<const int> xs) {
                   std::this_thread::sleep_for(200ms);
                   std::vector<int> out;
                   for (int x : xs) out.push_back(x * x);
                   return out;
                 }).streaming({});
  bs::server srv(serving, {.batch_size = 2, .batch_timeout = 0ms});

  const auto t0 = clock_type::now();
  auto stream = srv.dispatch_many({1, 2, 3, 4});
  auto first = stream.next();
  const auto first_at = clock_type::now() - t0;
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(flatten(*first), (seen{"batch", {1, 4}}));
  auto second = stream.next();
  const auto all_at = clock_type::now() - t0;
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(flatten(*second), (seen{"batch", {9, 16}}));
  EXPECT_FALSE(stream.next().has_value());

  EXPECT_GE(first_at, 190ms);
  EXPECT_LT(first_at, all_at - 150ms);  // the first came about one execution earlier
  EXPECT_GE(all_at, 390ms);
}

TEST(StreamingTest, InterleavesHookEventsWithTheBatchesTheyBelongTo) {
  progress_function f;
  bs::server srv(progress_serving(f), {.batch_size = 3, .batch_timeout = 0ms});
  EXPECT_EQ(drain(srv.dispatch_many({1, 2, 3, 4, 5})), (std::vector<seen>{{"progress", {1, 2, 3}},
                                                                          {"batch", {10, 20, 30}},
                                                                          {"progress", {4, 5}},
                                                                          {"batch", {40, 50}}}));
}

// With hooks, explicit batches are never split, so hook events stay attributable.
TEST(StreamingTest, WithHooksNeverSplitsAnExplicitBatch) {
  progress_function f;
  // [5, 6] alone cannot fill an execution: it runs after the timeout.
  bs::server srv(progress_serving(f), {.batch_size = 3, .batch_timeout = 50ms});
  auto a = srv.dispatch_many({1, 2});
  auto b = srv.dispatch_many({3, 4});
  auto c = srv.dispatch_many({5, 6});
  EXPECT_EQ(drain(std::move(a)), (std::vector<seen>{{"progress", {1, 2}}, {"batch", {10, 20}}}));
  EXPECT_EQ(drain(std::move(b)), (std::vector<seen>{{"progress", {3, 4}}, {"batch", {30, 40}}}));
  EXPECT_EQ(drain(std::move(c)), (std::vector<seen>{{"progress", {5, 6}}, {"batch", {50, 60}}}));
  EXPECT_EQ(*f.executions, (std::vector<std::vector<int>>{{1, 2}, {3, 4}, {5, 6}}));
}

TEST(StreamingTest, WithoutHooksTheUsualPackingApplies) {
  auto serving = bs::serving<int, int>([](std::span<const int> xs) {
                   return std::vector<int>(xs.begin(), xs.end());
                 }).streaming({});
  bs::server srv(serving, {.batch_size = 3, .batch_timeout = 60s});
  auto a = srv.dispatch_many({1, 2});
  auto b = srv.dispatch_many({3, 4});
  auto c = srv.dispatch_many({5, 6});
  EXPECT_EQ(drain(std::move(a)), (std::vector<seen>{{"batch", {1, 2}}}));
  EXPECT_EQ(drain(std::move(b)), (std::vector<seen>{{"batch", {3}}, {"batch", {4}}}));
  EXPECT_EQ(drain(std::move(c)), (std::vector<seen>{{"batch", {5, 6}}}));
}

// With hooks, concurrent single dispatches are still batched together.
TEST(StreamingTest, WithHooksStillBatchesConcurrentSingleDispatches) {
  progress_function f;
  bs::server srv(progress_serving(f), {.batch_size = 3, .batch_timeout = 60s});
  std::vector<bs::event_stream<int>> streams;
  for (int k = 1; k <= 6; ++k) streams.push_back(srv.dispatch(k));
  for (int k = 1; k <= 6; ++k) {
    EXPECT_EQ(drain(std::move(streams[k - 1])),
              (std::vector<seen>{{"progress", {k}}, {"item", {k * 10}}}));
  }
  EXPECT_EQ(*f.executions, (std::vector<std::vector<int>>{{1, 2, 3}, {4, 5, 6}}));
}

// Partitions never reorder a caller's events, even when a later execution
// finishes first.
TEST(StreamingTest, PartitionsNeverReorderACallersEvents) {
  std::promise<void> later_done;
  auto later_done_future = later_done.get_future().share();
  auto serving = bs::serving<int, int>([&](std::span<const int> xs, bs::execution_context& ctx) {
                   ctx.emit("progress", std::vector<int>(xs.begin(), xs.end()));
                   if (xs.front() == 1) {
                     // Slow first execution: bounded so a broken test fails, not hangs.
                     EXPECT_EQ(later_done_future.wait_for(20s), std::future_status::ready);
                   }
                   if (xs.front() == 5) later_done.set_value();
                   return std::vector<int>(xs.begin(), xs.end());
                 }).streaming({.hooks = {"progress"}});
  bs::server srv(serving, {.batch_size = 4, .batch_timeout = 0ms, .partitions = 2});
  EXPECT_EQ(drain(srv.dispatch_many({1, 2, 3, 4, 5, 6, 7, 8, 9})),
            (std::vector<seen>{{"progress", {1, 2, 3, 4}},
                               {"batch", {1, 2, 3, 4}},
                               {"progress", {5, 6, 7, 8}},
                               {"batch", {5, 6, 7, 8}},
                               {"progress", {9}},
                               {"batch", {9}}}));
}

TEST(StreamingTest, AFailureMidStreamEndsItWithAnErrorAfterWhatWasDelivered) {
  auto serving = bs::serving<int, int>([](std::span<const int> xs, bs::execution_context& ctx) {
                   ctx.emit("progress", std::vector<int>(xs.begin(), xs.end()));
                   if (xs.front() == 3) throw std::runtime_error("disk full");
                   return std::vector<int>(xs.begin(), xs.end());
                 }).streaming({.hooks = {"progress"}});
  bs::server srv(serving, {.batch_size = 2, .batch_timeout = 0ms});
  auto stream = srv.dispatch_many({1, 2, 3, 4, 5, 6});
  std::vector<seen> events;
  std::string reason;
  for (auto& ev : stream) {
    if (ev.kind() == bs::event_kind::error) reason = ev.error().to_string();
    events.push_back(flatten(ev));
  }
  EXPECT_EQ(events,
            (std::vector<seen>{
                {"progress", {1, 2}}, {"batch", {1, 2}}, {"progress", {3, 4}}, {"error", {}}}));
  EXPECT_NE(reason.find("disk full"), std::string::npos) << reason;
  EXPECT_EQ(srv.dispatch_many({7, 8}).collect().value(), (std::vector<int>{7, 8}));
}

// A reader that walks away neither blocks the server nor leaks (ASan/TSan).
TEST(StreamingTest, AnAbandonedStreamDropsItsEventsAndBlocksNobody) {
  progress_function f;
  bs::server srv(progress_serving(f), {.batch_size = 2, .batch_timeout = 0ms});
  {
    auto stream = srv.dispatch_many({1, 2, 3, 4, 5, 6, 7, 8});
    auto first = stream.next();
    ASSERT_TRUE(first.has_value());
  }  // abandoned half-way
  { auto never_read = srv.dispatch_many({9, 10}); }
  EXPECT_EQ(srv.dispatch_many({11, 12}).collect().value(), (std::vector<int>{110, 120}));
}

TEST(StreamingTest, CallbackFormDeliversEveryEventInOrderThenEnd) {
  progress_function f;
  bs::server srv(progress_serving(f), {.batch_size = 2, .batch_timeout = 0ms});
  std::mutex mu;
  std::vector<seen> events;
  std::promise<void> ended;
  srv.dispatch_many_async(std::vector<int>{1, 2, 3}, [&](bs::event<int> ev) {
    std::lock_guard lock(mu);
    events.push_back(flatten(ev));
    if (ev.kind() == bs::event_kind::end) ended.set_value();
  });
  ASSERT_EQ(ended.get_future().wait_for(20s), std::future_status::ready);
  std::lock_guard lock(mu);
  EXPECT_EQ(events, (std::vector<seen>{{"progress", {1, 2}},
                                       {"batch", {10, 20}},
                                       {"progress", {3}},
                                       {"batch", {30}},
                                       {"end", {}}}));
}

// Nx.Serving's rule: hook events the serving did not pick are ignored, so one
// batch function serves with or without progress (issue 11, item 9).
TEST(StreamingTest, AnUndeclaredHookIsDroppedAndCountedAndTheExecutionCarriesOn) {
  std::atomic<bool> told_unwanted{false};
  auto serving = bs::serving<int, int>([&](std::span<const int> xs, bs::execution_context& ctx) {
                   if (!ctx.wants("tokens")) told_unwanted = true;
                   ctx.emit("tokens", std::vector<int>(xs.size(), 1));
                   ctx.emit("progress", std::vector<int>(xs.begin(), xs.end()));
                   return std::vector<int>(xs.begin(), xs.end());
                 }).streaming({.hooks = {"progress"}});
  bs::server srv(serving, {.batch_timeout = 0ms});
  EXPECT_EQ(drain(srv.dispatch(1)), (std::vector<seen>{{"progress", {1}}, {"item", {1}}}));
  EXPECT_TRUE(told_unwanted);
  EXPECT_EQ(srv.stats().hook_events_dropped, 1u);
  EXPECT_EQ(srv.stats().failed_executions, 0u);
}

TEST(StreamingTest, APlainServerDropsHooksAndTellsTheBatchFunctionNoneAreWanted) {
  std::atomic<int> wanted{0};
  auto serving = bs::serving<int, int>([&](std::span<const int> xs, bs::execution_context& ctx) {
    if (ctx.wants("progress")) ++wanted;
    ctx.emit("progress", std::vector<int>(xs.size(), 1));
    return std::vector<int>(xs.begin(), xs.end());
  });
  bs::server srv(serving, {.batch_timeout = 0ms});
  EXPECT_EQ(srv.dispatch(2).value(), 2);
  EXPECT_EQ(serving.run(3).value(), 3) << "inline too";
  EXPECT_EQ(wanted.load(), 0);
  EXPECT_EQ(srv.stats().hook_events_dropped, 1u);
}

TEST(StreamingTest, APayloadReadAsTheWrongTypeIsAClearError) {
  progress_function f;
  bs::server srv(progress_serving(f), {.batch_timeout = 0ms});
  auto stream = srv.dispatch(1);
  auto hook = stream.next();
  ASSERT_TRUE(hook.has_value());
  ASSERT_EQ(hook->kind(), bs::event_kind::hook);
  try {
    (void)hook->payload<double>();
    ADD_FAILURE() << "payload<double>() on an int payload did not throw";
  } catch (const bs::serving_error& e) {
    EXPECT_EQ(e.code(), bs::errc::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("carries int, not double"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)hook->batch(), bs::serving_error);
}

TEST(StreamingTest, RejectsEmptyOrRepeatedHookNames) {
  bs::serving<int, int> plain([](std::span<const int> xs) {
    return std::vector<int>(xs.begin(), xs.end());
  });
  EXPECT_THROW((void)plain.streaming({.hooks = {"progress", "progress"}}), bs::serving_error);
  EXPECT_THROW((void)plain.streaming({.hooks = {""}}), bs::serving_error);
}

TEST(StreamingTest, InlineRunManyYieldsTheSameEvents) {
  progress_function f;
  auto serving = progress_serving(f).batch_size(3);
  EXPECT_EQ(drain(serving.run_many({1, 2, 3})),
            (std::vector<seen>{{"progress", {1, 2, 3}}, {"batch", {10, 20, 30}}}));
  EXPECT_EQ(drain(serving.run(4)), (std::vector<seen>{{"progress", {4}}, {"item", {40}}}));
  auto no_hooks = bs::serving<int, int>([](std::span<const int> xs) {
                    return std::vector<int>(xs.begin(), xs.end());
                  })
                      .batch_size(2)
                      .streaming({});
  EXPECT_EQ(drain(no_hooks.run_many({1, 2, 3})),
            (std::vector<seen>{{"batch", {1, 2}}, {"batch", {3}}}));
}

// Issue 11, item 11: an inline run cuts an explicit batch larger than
// batch_size as a server does, instead of refusing it.
TEST(StreamingTest, InlineWithHooksCutsAnOversizedBatchAsAServerDoes) {
  progress_function f;
  const auto serving = progress_serving(f).batch_size(2);
  auto inline_events = drain(serving.run_many({1, 2, 3}));
  bs::server srv(serving, {.batch_size = 2, .batch_timeout = 0ms});
  auto served_events = drain(srv.dispatch_many({1, 2, 3}));
  EXPECT_EQ(inline_events, served_events);
  ASSERT_EQ(inline_events.size(), 4u);
  EXPECT_EQ(inline_events[0], (seen{"progress", {1, 2}}));
  EXPECT_EQ(inline_events[2], (seen{"progress", {3}}));
}

TEST(StreamingTest, MapsResultsForTheReader) {
  auto serving = bs::serving<int, int>([](std::span<const int> xs) {
                   return std::vector<int>(xs.begin(), xs.end());
                 }).map_results([](int x) {
                     return std::to_string(x);
                   }).streaming({});
  bs::server srv(serving, {.batch_size = 2, .batch_timeout = 0ms});
  EXPECT_EQ(srv.dispatch_many({1, 2}).collect().value(), (std::vector<std::string>{"1", "2"}));
  auto item = srv.dispatch(3).next();
  ASSERT_TRUE(item.has_value());
  EXPECT_EQ(item->item(), "3");
}

TEST(StreamingTest, RefusedCallsGetOneErrorEvent) {
  progress_function f;
  bs::server srv(progress_serving(f), {.batch_timeout = 0ms});
  auto empty = srv.dispatch_many(std::span<const int>()).collect();
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code(), bs::errc::invalid_argument);
  srv.stop();
  auto late = srv.dispatch(1).collect();
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code(), bs::errc::no_serving);
}

TEST(StreamingTest, ConcurrentStreamsEachSeeOnlyTheirOwnEvents) {
  progress_function f;
  bs::server srv(progress_serving(f), {.batch_size = 4, .batch_timeout = 100us, .partitions = 2});
  std::vector<std::thread> callers;
  for (int t = 0; t < 8; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        const int base = t * 10000 + i * 10;
        std::vector<int> items{base, base + 1, base + 2, base + 3, base + 4, base + 5};
        std::vector<int> progress, results;
        for (auto& ev : srv.dispatch_many(items)) {
          if (ev.kind() == bs::event_kind::hook) {
            for (int p : ev.payload<int>()) progress.push_back(p);
          } else if (ev.kind() == bs::event_kind::batch) {
            for (int r : ev.batch()) results.push_back(r);
            EXPECT_EQ(progress.size(), results.size()) << "a batch came before its hooks";
          } else {
            ADD_FAILURE() << "unexpected event";
          }
        }
        EXPECT_EQ(progress, items);
        std::vector<int> expected;
        for (int x : items) expected.push_back(x * 10);
        EXPECT_EQ(results, expected);
      }
    });
  }
  for (auto& t : callers) t.join();
}

// A later slice that fails first must not overtake the slices before it: the
// reader sees everything up to the failing slice, then the error.
TEST(StreamingTest, AFailureOnOnePartitionWaitsForEarlierSlicesOnAnother) {
  std::promise<void> about_to_fail;
  auto about_to_fail_future = about_to_fail.get_future().share();
  auto serving = bs::serving<int, int>([&](std::span<const int> xs, bs::execution_context& ctx) {
                   ctx.emit("progress", std::vector<int>(xs.begin(), xs.end()));
                   if (xs.front() == 3) {
                     about_to_fail.set_value();
                     throw std::runtime_error("shard offline");
                   }
                   if (xs.front() == 1) {
                     EXPECT_EQ(about_to_fail_future.wait_for(20s), std::future_status::ready);
                     std::this_thread::sleep_for(100ms);  // let the failure land first
                   }
                   return std::vector<int>(xs.begin(), xs.end());
                 }).streaming({.hooks = {"progress"}});
  bs::server srv(serving, {.batch_size = 2, .batch_timeout = 0ms, .partitions = 2});
  EXPECT_EQ(drain(srv.dispatch_many({1, 2, 3, 4, 5, 6})),
            (std::vector<seen>{
                {"progress", {1, 2}}, {"batch", {1, 2}}, {"progress", {3, 4}}, {"error", {}}}));
}

// Streaming servers honour max_queue and default_timeout: a refused or timed
// out stream ends with its one error event.
TEST(StreamingTest, AStreamTimesOutAndIsRefusedWhenTheQueueIsFull) {
  std::atomic<bool> started{false};
  std::atomic<bool> release{false};
  auto serving = bs::serving<int, int>([&](std::span<const int> xs) {
                   started.store(true);
                   while (!release.load()) std::this_thread::sleep_for(1ms);
                   return std::vector<int>(xs.begin(), xs.end());
                 }).streaming({});
  bs::server srv(serving, {.batch_size = 1,
                           .batch_timeout = 0us,
                           .partitions = 1,
                           .max_queue = 1,
                           .default_timeout = 50ms});
  auto running = srv.dispatch(1);  // blocks the executor past its deadline
  while (!started.load()) std::this_thread::sleep_for(1ms);
  auto queued = srv.dispatch(2);  // fills the queue
  auto refused = srv.dispatch(3);
  const auto refused_result = refused.collect();
  ASSERT_FALSE(refused_result.ok());
  EXPECT_EQ(refused_result.error().code(), bs::errc::overloaded);
  const auto running_result = running.collect();  // answered at its deadline
  ASSERT_FALSE(running_result.ok());
  EXPECT_EQ(running_result.error().code(), bs::errc::timeout);
  const auto queued_result = queued.collect();
  ASSERT_FALSE(queued_result.ok());
  EXPECT_EQ(queued_result.error().code(), bs::errc::timeout);
  release.store(true);
  EXPECT_EQ(srv.stats().calls_timed_out, 2u);
  EXPECT_EQ(srv.stats().calls_overloaded, 1u);
}
