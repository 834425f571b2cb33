// Failure isolation (server_options::isolate_failures): a failed execution
// holding several calls is re-run in halves so only the calls whose own
// items fail get execution_failed.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <vector>

#include "batch_serving/server.hpp"
#include "batch_serving/streaming.hpp"
#include "batch_serving/streaming_server.hpp"
#include "support/controlled_function.hpp"

namespace bs = batch_serving;
using namespace std::chrono_literals;
using bs::testing::controlled_function;
using bs::testing::serving_of;

namespace {

// All `items` as single async calls that fill exactly one execution (the
// batch waits for company far longer than the test runs).
std::vector<bs::future<int>> one_execution(bs::server<int, int>& srv,
                                           const std::vector<int>& items) {
  std::vector<bs::future<int>> futures;
  for (int x : items) futures.push_back(srv.dispatch_async(x));
  return futures;
}

bs::server_options batch_of(std::size_t n, bool isolate) {
  return {.batch_size = n, .batch_timeout = 10s, .partitions = 1, .isolate_failures = isolate};
}

std::vector<int> one_to(int n, int poisoned_at = -1) {
  std::vector<int> items;
  for (int i = 1; i <= n; ++i) items.push_back(i == poisoned_at ? -i : i);
  return items;
}

}  // namespace

TEST(FailureIsolationTest, WithoutItOnePoisonedItemFailsEveryCallInItsExecution) {
  controlled_function fn;
  bs::server srv(serving_of(fn), batch_of(8, false));
  auto futures = one_execution(srv, one_to(8, 3));
  for (auto& f : futures) EXPECT_EQ(f.get().error().code(), bs::errc::execution_failed);
  const auto stats = srv.stats();
  EXPECT_EQ(stats.executions, 1u);
  EXPECT_EQ(stats.calls_failed, 8u);
  EXPECT_EQ(stats.isolation_executions, 0u);
}

TEST(FailureIsolationTest, WithItOnlyThePoisonedCallFailsAndTheOthersGetTheirResults) {
  controlled_function fn;
  bs::server srv(serving_of(fn), batch_of(8, true));
  const auto items = one_to(8, 3);
  auto futures = one_execution(srv, items);
  for (std::size_t i = 0; i < items.size(); ++i) {
    auto r = futures[i].get();
    if (items[i] < 0) {
      EXPECT_EQ(r.error().code(), bs::errc::execution_failed);
    } else {
      EXPECT_EQ(r.value(), items[i] * items[i]) << i;
    }
  }
  const auto stats = srv.stats();
  EXPECT_EQ(stats.calls_failed, 1u);
  EXPECT_EQ(stats.calls_isolated, 7u);
  EXPECT_LE(stats.isolation_executions, 2u * 3u);  // 2 * log2(8)
  EXPECT_EQ(stats.executions, 1u + stats.isolation_executions);
}

TEST(FailureIsolationTest, ExtraExecutionsStayWithinTwiceLog2OfTheCallsPerFailingCall) {
  for (int poisoned_at : {1, 17, 32, 64}) {
    controlled_function fn;
    bs::server srv(serving_of(fn), batch_of(64, true));
    const auto items = one_to(64, poisoned_at);
    auto futures = one_execution(srv, items);
    int failed = 0;
    for (auto& f : futures) failed += f.get().ok() ? 0 : 1;
    EXPECT_EQ(failed, 1) << poisoned_at;
    EXPECT_LE(srv.stats().isolation_executions, 2u * 6u) << poisoned_at;
  }
}

TEST(FailureIsolationTest, SeveralPoisonedCallsFailAndOnlyThey) {
  controlled_function fn;
  bs::server srv(serving_of(fn), batch_of(16, true));
  std::vector<int> items = one_to(16);
  items[2] = -3;
  items[9] = -10;
  items[15] = -16;
  auto futures = one_execution(srv, items);
  for (std::size_t i = 0; i < items.size(); ++i) {
    auto r = futures[i].get();
    EXPECT_EQ(r.ok(), items[i] > 0) << i;
  }
  EXPECT_EQ(srv.stats().calls_failed, 3u);
  EXPECT_EQ(srv.stats().calls_isolated, 13u);
}

TEST(FailureIsolationTest, AnExplicitBatchFailsWholeWhenOneOfItsOwnItemsFails) {
  controlled_function fn;
  bs::server srv(serving_of(fn), batch_of(6, true));
  auto bad = srv.dispatch_many_async({1, -2, 3});
  auto good = srv.dispatch_many_async({4, 5, 6});
  EXPECT_EQ(bad.get().error().code(), bs::errc::execution_failed);
  EXPECT_EQ(good.get().value(), (std::vector<int>{16, 25, 36}));
}

TEST(FailureIsolationTest, AnExecutionOfOneCallIsNotRunAgain) {
  controlled_function fn;
  bs::server srv(serving_of(fn), batch_of(4, true));
  auto r = srv.dispatch_many({1, 2, -3, 4});
  EXPECT_EQ(r.error().code(), bs::errc::execution_failed);
  EXPECT_EQ(srv.stats().executions, 1u);
  EXPECT_EQ(srv.stats().isolation_executions, 0u);
}

TEST(FailureIsolationTest, IsRejectedForStreamingServingsWithHooks) {
  auto streaming = bs::serving<int, int>([](std::span<const int> xs, bs::execution_context& ctx) {
                     ctx.emit("progress", std::vector<int>(xs.begin(), xs.end()));
                     return std::vector<int>(xs.begin(), xs.end());
                   }).streaming({.hooks = {"progress"}});
  try {
    bs::server srv(streaming, {.isolate_failures = true});
    FAIL() << "isolate_failures was accepted with hooks";
  } catch (const bs::serving_error& e) {
    EXPECT_EQ(e.code(), bs::errc::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("isolate_failures"), std::string::npos) << e.what();
  }
}
