// No allocation per co_await beyond the call block: starting N awaits makes
// no more allocations in the awaiting thread than N calls of the plain
// callback form, and, once the call pool is warm, none at all. This program
// counts each thread's allocations (support/counting_allocations).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <vector>

#include "batch_serving/coroutine.hpp"
#include "batch_serving/resume_pool.hpp"
#include "batch_serving/server.hpp"
#include "support/counting_allocations.hpp"
#include "support/test_task.hpp"

namespace bs = batch_serving;
using namespace std::chrono_literals;
using bs::testing::allocations_by_this_thread;
using bs::testing::task;

namespace {

bs::serving<int, int> squares() {
  return bs::serving<int, int>([](std::span<const int> xs) {
    std::vector<int> out;
    out.reserve(xs.size());
    for (const int x : xs) out.push_back(x * x);
    return out;
  });
}

template <class Where>
task await_one(bs::server<int, int>& srv, int x, std::atomic<int>& wrong, Where& where) {
  auto r = co_await bs::co_dispatch(srv, x, where);
  if (!r.ok() || *r != x * x) wrong.fetch_add(1);
}

// Starts n coroutines (frames made beforehand) and returns the allocations
// this thread made while starting them, i.e. while each ran up to its await.
template <class Where>
std::size_t coroutine_window(bs::server<int, int>& srv, int n, std::atomic<int>& wrong,
                             Where& where) {
  std::vector<task> tasks;
  tasks.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) tasks.push_back(await_one(srv, i, wrong, where));
  const std::size_t before = allocations_by_this_thread();
  for (auto& t : tasks) t.start();
  const std::size_t made = allocations_by_this_thread() - before;
  for (auto& t : tasks) t.wait();
  return made;
}

// The same calls through the callback form, with a callback of one pointer.
std::size_t callback_window(bs::server<int, int>& srv, int n, std::atomic<int>& wrong) {
  std::atomic<int> answered{0};
  struct on_answer {
    std::atomic<int>* answered;
    std::atomic<int>* wrong;
    int x;
    void operator()(bs::result<int> r) const {
      if (!r.ok() || *r != x * x) wrong->fetch_add(1);
      answered->fetch_add(1);
      answered->notify_all();
    }
  };
  const std::size_t before = allocations_by_this_thread();
  for (int i = 0; i < n; ++i) srv.dispatch_async(i, on_answer{&answered, &wrong, i});
  const std::size_t made = allocations_by_this_thread() - before;
  for (int seen = answered.load(); seen < n; seen = answered.load()) answered.wait(seen);
  return made;
}

template <class Measure>
std::size_t settled(int attempts, Measure measure) {
  std::size_t last = 1;
  for (int attempt = 0; attempt < attempts && last != 0; ++attempt) last = measure();
  return last;
}

template <class Where>
void expect_no_allocation_beyond_the_callback_form(Where& where) {
  bs::server srv(squares(), {.batch_size = 16, .batch_timeout = 0us});
  std::atomic<int> wrong{0};
  for (int i = 0; i < 50; ++i) {
    (void)callback_window(srv, 100, wrong);
    (void)coroutine_window(srv, 100, wrong, where);
  }
  // The fewest of 20 windows each: a window may refill the call pool (the
  // calls of the one before may still be in flight on a loaded host), but an
  // allocation per await would show in every window, 100 at least.
  std::size_t callbacks = SIZE_MAX;
  std::size_t coroutines = SIZE_MAX;
  for (int i = 0; i < 20; ++i) {
    callbacks = std::min(callbacks, callback_window(srv, 100, wrong));
    coroutines = std::min(coroutines, coroutine_window(srv, 100, wrong, where));
  }
  EXPECT_LE(coroutines, callbacks) << "co_dispatch allocated more than the callback form";
  EXPECT_EQ(settled(500, [&] { return coroutine_window(srv, 100, wrong, where); }), 0u)
      << "a warm server still allocated per co_await";
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace

TEST(CoroutineAllocationTest, AwaitingWithAResumePoolAllocatesNothingBeyondTheCallBlock) {
  bs::resume_pool pool(2);
  expect_no_allocation_beyond_the_callback_form(pool);
}

TEST(CoroutineAllocationTest, AwaitingInlineAllocatesNothingBeyondTheCallBlock) {
  const bs::resume_inline_t where = bs::resume_inline;
  expect_no_allocation_beyond_the_callback_form(where);
}

TEST(CoroutineAllocationTest, TheResumePoolAllocatesNothingPerResumption) {
  // Counted in a pool thread: a coroutine that keeps calling, resumed there.
  bs::resume_pool pool(1);
  bs::server srv(squares(), {.batch_size = 16, .batch_timeout = 0us});
  std::size_t made = 1;
  int wrong = 0;
  auto body = [&]() -> task {
    auto round = [&]() -> std::size_t { return allocations_by_this_thread(); };
    for (int i = 0; i < 2000; ++i) {  // warm-up, in the pool thread
      auto r = co_await bs::co_dispatch(srv, i, pool);
      wrong += (r.ok() && *r == i * i) ? 0 : 1;
    }
    for (int attempt = 0; attempt < 100 && made != 0; ++attempt) {
      const std::size_t before = round();
      for (int i = 0; i < 200; ++i) {
        auto r = co_await bs::co_dispatch(srv, i, pool);
        wrong += (r.ok() && *r == i * i) ? 0 : 1;
      }
      made = round() - before;
    }
  };
  task t = body();
  t.start();
  t.wait();
  EXPECT_EQ(made, 0u);
  EXPECT_EQ(wrong, 0);
}
