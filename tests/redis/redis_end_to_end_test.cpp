// The worker and the client together, against a private redis-server, in one
// process: calls from many threads of one client, and from two clients,
// share executions on the worker's local server and each gets exactly its
// own results; two servings never see each other's calls; a worker that
// starts later takes the work; a slow live worker keeps its entries. (With
// separate worker and client processes, kill -9 and SIGSTOP included:
// multi_process_test.cpp.)
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "batch_serving/batch_serving.hpp"
#include "batch_serving/redis_client.hpp"
#include "batch_serving/redis_worker.hpp"
#include "redis/support/redis_server.hpp"

namespace bs = batch_serving;
using namespace std::chrono_literals;

namespace {

using clock_type = std::chrono::steady_clock;

bs::serving<std::int64_t, std::int64_t> affine(std::int64_t scale, std::int64_t offset) {
  return bs::serving<std::int64_t, std::int64_t>([scale, offset](std::span<const std::int64_t> xs) {
    std::vector<std::int64_t> out;
    out.reserve(xs.size());
    for (std::int64_t x : xs) out.push_back(scale * x + offset);
    return out;
  });
}

class RedisEndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!bs::test::require_redis_server()) GTEST_SKIP();
    redis_.emplace();
  }

  bs::redis_worker_options worker_options() const { return {.endpoint = redis_->tcp_endpoint()}; }
  bs::redis_client_options client_options(std::string serving) const {
    return {.endpoint = redis_->tcp_endpoint(), .serving = std::move(serving)};
  }

  std::optional<bs::test::redis_server> redis_;
};

TEST_F(RedisEndToEndTest, CallsFromManyThreadsShareExecutionsAndGetTheirOwnResults) {
  const auto serving = affine(3, 1);
  bs::server local(serving, {.batch_size = 64, .batch_timeout = 2ms});
  bs::redis_worker worker(local, "affine", worker_options());
  bs::redis_client<std::int64_t, std::int64_t> client(client_options("affine"));

  constexpr std::uint64_t threads = 16;
  constexpr std::uint64_t calls_per_thread = 200;
  std::atomic<int> wrong{0};
  std::vector<std::thread> callers;
  for (std::uint64_t t = 0; t < threads; ++t) {
    callers.emplace_back([&, t] {
      for (std::uint64_t i = 0; i < calls_per_thread; ++i) {
        const auto x = static_cast<std::int64_t>(t * 1'000'000 + i);
        auto r = client.dispatch(x, {.timeout = 20s});
        if (!r.ok() || *r != 3 * x + 1) wrong.fetch_add(1);
      }
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(wrong.load(), 0);

  // An explicit batch keeps its order.
  const std::vector<std::int64_t> many = {5, -7, 0, 1'000'000'007};
  auto r = client.dispatch_many(many, {.timeout = 20s});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(*r, (std::vector<std::int64_t>{16, -20, 1, 3'000'000'022}));

  const bs::server_stats s = local.stats();
  EXPECT_EQ(s.items_executed, threads * calls_per_thread + 4);
  EXPECT_LT(s.executions, threads * calls_per_thread)
      << "calls from different threads never shared an execution";
  EXPECT_LT(client.stats().round_trips, client.stats().calls_sent);
}

TEST_F(RedisEndToEndTest, TwoClientsShareOneWorkersExecutions) {
  const auto serving = affine(2, 0);
  bs::server local(serving, {.batch_size = 32, .batch_timeout = 5ms});
  bs::redis_worker worker(local, "double", worker_options());
  bs::redis_client<std::int64_t, std::int64_t> first(client_options("double"));
  bs::redis_client<std::int64_t, std::int64_t> second(client_options("double"));
  ASSERT_NE(first.client_id(), second.client_id());

  std::vector<bs::future<std::int64_t>> a, b;
  for (std::int64_t i = 0; i < 300; ++i) {
    a.push_back(first.dispatch_async(i, {.timeout = 20s}));
    b.push_back(second.dispatch_async(-i, {.timeout = 20s}));
  }
  for (std::int64_t i = 0; i < 300; ++i) {
    auto ra = a[static_cast<std::size_t>(i)].get();
    auto rb = b[static_cast<std::size_t>(i)].get();
    ASSERT_TRUE(ra.ok() && rb.ok());
    EXPECT_EQ(*ra, 2 * i);
    EXPECT_EQ(*rb, -2 * i);
  }
  EXPECT_LT(local.stats().executions, 600U);
}

TEST_F(RedisEndToEndTest, TwoServingsNeverReceiveEachOthersCalls) {
  const auto plus = affine(1, 1000);
  const auto minus = affine(1, -1000);
  bs::server plus_local(plus, {.batch_size = 16, .batch_timeout = 1ms});
  bs::server minus_local(minus, {.batch_size = 16, .batch_timeout = 1ms});
  bs::redis_worker plus_worker(plus_local, "plus", worker_options());
  bs::redis_worker minus_worker(minus_local, "minus", worker_options());
  bs::redis_client<std::int64_t, std::int64_t> to_plus(client_options("plus"));
  bs::redis_client<std::int64_t, std::int64_t> to_minus(client_options("minus"));

  for (std::int64_t i = 0; i < 200; ++i) {
    EXPECT_EQ(to_plus.dispatch(i, {.timeout = 20s}).value(), i + 1000);
    EXPECT_EQ(to_minus.dispatch(i, {.timeout = 20s}).value(), i - 1000);
  }
  EXPECT_EQ(plus_local.stats().items_executed, 200U);
  EXPECT_EQ(minus_local.stats().items_executed, 200U);
}

TEST_F(RedisEndToEndTest, NoWorkerIsNoServingAndAWorkerStartedLaterTakesTheWork) {
  bs::redis_client<std::int64_t, std::int64_t> client(client_options("late"));
  auto before = client.dispatch(1, {.timeout = 5s});
  ASSERT_FALSE(before.ok());
  EXPECT_EQ(before.error().code(), bs::errc::no_serving);

  const auto serving = affine(1, 1);
  bs::server local(serving, {.batch_size = 8, .batch_timeout = 1ms});
  bs::redis_worker worker(local, "late", worker_options());
  // The client trusts its count of live workers for a moment.
  std::optional<bs::result<std::int64_t>> after;
  const auto until = clock_type::now() + 10s;
  do {
    after = client.dispatch(41, {.timeout = 5s});
    if (after->ok()) break;
    EXPECT_EQ(after->error().code(), bs::errc::no_serving);
    std::this_thread::sleep_for(20ms);
  } while (clock_type::now() < until);
  ASSERT_TRUE(after->ok()) << after->error().to_string();
  EXPECT_EQ(**after, 42);
}

TEST_F(RedisEndToEndTest, ASlowLiveWorkerKeepsItsEntries) {
  // One execution longer than the heartbeat expiry: another worker must not
  // claim it (that would run it twice), however long it is pending.
  std::atomic<int> slow_runs{0};
  bs::serving<std::int64_t, std::int64_t> slow([&](std::span<const std::int64_t> xs) {
    slow_runs.fetch_add(1);
    std::this_thread::sleep_for(2500ms);
    return std::vector<std::int64_t>(xs.begin(), xs.end());
  });
  std::atomic<int> other_runs{0};
  bs::serving<std::int64_t, std::int64_t> other([&](std::span<const std::int64_t> xs) {
    other_runs.fetch_add(1);
    return std::vector<std::int64_t>(xs.begin(), xs.end());
  });
  bs::server slow_local(slow, {.batch_size = 1, .batch_timeout = 0ms});
  auto fast = worker_options();
  fast.heartbeat_interval = 100ms;
  fast.heartbeat_expiry = 1s;
  fast.claim_interval = 100ms;
  bs::redis_worker slow_worker(slow_local, "slow", fast);
  bs::redis_client<std::int64_t, std::int64_t> client(client_options("slow"));
  auto pending = client.dispatch_async(7, {.timeout = 20s});
  // Wait until the slow worker runs it, then start a second worker.
  const auto until = clock_type::now() + 10s;
  while (slow_runs.load() == 0 && clock_type::now() < until) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(slow_runs.load(), 1);
  bs::server other_local(other, {.batch_size = 1, .batch_timeout = 0ms});
  bs::redis_worker other_worker(other_local, "slow", fast);
  auto r = pending.get();
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(*r, 7);
  EXPECT_EQ(other_runs.load(), 0) << "a live worker's entry was claimed and run again";
  EXPECT_EQ(other_worker.stats().entries_claimed, 0U);
}

}  // namespace
