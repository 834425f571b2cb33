// The call pool: a warm server makes no heap allocation per call in the
// caller's thread (the blocks of finished calls are reused, also when another
// thread finished them), and release_call_memory() gives the blocks back.
//
// This program counts each thread's allocations (support/counting_allocations).
#include "batch_serving/call_memory.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <span>
#include <thread>
#include <vector>

#include "batch_serving/future.hpp"
#include "batch_serving/result.hpp"
#include "batch_serving/server.hpp"
#include "batch_serving/serving.hpp"

#include "support/counting_allocations.hpp"

namespace bs = batch_serving;
using bs::testing::allocations_by_this_thread;

namespace {

bs::serving<int, int> squares() {
  return bs::serving<int, int>([](std::span<const int> xs) {
    std::vector<int> out;
    out.reserve(xs.size());
    for (const int x : xs) out.push_back(x * x);
    return out;
  });
}

bs::server_options small_batches() {
  return {.batch_size = 16, .batch_timeout = std::chrono::microseconds(0)};
}

// Runs `rounds` rounds of `per_round` futures (submit all, then collect)
// and returns the allocations this thread made meanwhile. Counts wrong
// answers into `wrong`.
std::size_t future_rounds(bs::server<int, int>& srv, int rounds, int per_round, int& wrong) {
  std::vector<bs::future<int>> futures;
  futures.reserve(static_cast<std::size_t>(per_round));
  const std::size_t before = allocations_by_this_thread();
  for (int r = 0; r < rounds; ++r) {
    for (int i = 0; i < per_round; ++i) futures.push_back(srv.dispatch_async(i));
    for (int i = 0; i < per_round; ++i) {
      const bs::result<int> answer = futures[static_cast<std::size_t>(i)].get();
      if (!answer.ok() || *answer != i * i) ++wrong;
    }
    futures.clear();  // keeps its capacity
  }
  return allocations_by_this_thread() - before;
}

// Runs `measure` (it returns the allocations one run made) until a run makes
// none, at most `attempts` times; returns the last run's allocations. The
// executor thread keeps some blocks in its own cache, so the pool needs a few
// runs after a warm-up to settle.
template <class Measure>
std::size_t allocations_once_settled(int attempts, Measure measure) {
  std::size_t last = 1;
  for (int attempt = 0; attempt < attempts && last != 0; ++attempt) last = measure();
  return last;
}

TEST(CallPool, AWarmServerAllocatesNothingPerFutureCall) {
  bs::server srv(squares(), small_batches());
  int wrong = 0;
  future_rounds(srv, 50, 100, wrong);  // warm-up: the pool grows to what is in flight
  const std::size_t steady =
      allocations_once_settled(200, [&] { return future_rounds(srv, 20, 100, wrong); });
  EXPECT_EQ(steady, 0u) << "a warm server still allocated in the caller's thread";
  EXPECT_EQ(wrong, 0);
}

TEST(CallPool, AWarmServerAllocatesNothingPerBlockingCall) {
  bs::server srv(squares(), small_batches());
  int wrong = 0;
  auto blocking_calls = [&](int n) {
    const std::size_t before = allocations_by_this_thread();
    for (int i = 0; i < n; ++i) {
      const bs::result<int> answer = srv.dispatch(i);
      if (!answer.ok() || *answer != i * i) ++wrong;
    }
    return allocations_by_this_thread() - before;
  };
  blocking_calls(1000);
  EXPECT_EQ(allocations_once_settled(200, [&] { return blocking_calls(1000); }), 0u);
  EXPECT_EQ(wrong, 0);
}

// Callback calls are usually freed by the executor thread (after their
// callback), so their blocks must travel back to the submitting thread.
TEST(CallPool, BlocksFreedByTheExecutorComeBackToTheSubmitter) {
  bs::server srv(squares(), small_batches());
  std::atomic<int> answered{0};
  std::atomic<int> wrong{0};
  auto window = [&](int n) {
    const std::size_t before = allocations_by_this_thread();
    answered.store(0);
    for (int i = 0; i < n; ++i) {
      srv.dispatch_async(i, [&answered, &wrong, i](bs::result<int> r) {
        if (!r.ok() || *r != i * i) wrong.fetch_add(1);
        answered.fetch_add(1);
        answered.notify_one();
      });
    }
    for (int seen = answered.load(); seen < n; seen = answered.load()) answered.wait(seen);
    return allocations_by_this_thread() - before;
  };
  for (int i = 0; i < 50; ++i) window(100);
  const std::size_t steady = allocations_once_settled(500, [&] {
    std::size_t made = 0;
    for (int i = 0; i < 20; ++i) made += window(100);
    return made;
  });
  EXPECT_EQ(steady, 0u);
  EXPECT_EQ(wrong.load(), 0);
}

TEST(CallPool, KeepsFinishedBlocksUntilReleased) {
  bs::release_call_memory();
  {
    bs::server srv(squares(), small_batches());
    int wrong = 0;
    future_rounds(srv, 1, 1000, wrong);
    EXPECT_EQ(wrong, 0);
  }  // the executor thread exits and hands its cache to the shared depot
  const bs::call_memory_stats kept = bs::pooled_call_memory();
  EXPECT_GE(kept.pooled_blocks, 1000u) << "every one of the 1000 calls had finished";
  EXPECT_GE(kept.pooled_bytes, kept.pooled_blocks * 8);

  EXPECT_EQ(bs::release_call_memory(), kept.pooled_bytes);
  const bs::call_memory_stats after = bs::pooled_call_memory();
  EXPECT_EQ(after.pooled_blocks, 0u);
  EXPECT_EQ(after.pooled_bytes, 0u);
}

TEST(CallPool, AnExitingThreadHandsItsBlocksToTheDepot) {
  bs::server srv(squares(), small_batches());
  bs::release_call_memory();
  std::thread worker([&] {
    int wrong = 0;
    future_rounds(srv, 1, 500, wrong);
    EXPECT_EQ(wrong, 0);
  });
  worker.join();
  // Blocks the worker freed went to the depot when it exited; some may still
  // sit in the (running) executor's cache.
  EXPECT_GT(bs::pooled_call_memory().pooled_blocks, 0u);
}

}  // namespace
