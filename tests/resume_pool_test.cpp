// resume_pool (resume_pool.hpp): bad sizes, bulk hand-off, exceptions that
// escape a coroutine, destruction with coroutines still waiting, and from
// one of its own coroutines.
#include "batch_serving/resume_pool.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <thread>
#include <vector>

#include "batch_serving/coroutine.hpp"
#include "batch_serving/server.hpp"
#include "support/controlled_function.hpp"
#include "support/test_task.hpp"

namespace bs = batch_serving;
using namespace std::chrono_literals;
using bs::testing::controlled_function;
using bs::testing::open_on_exit;
using bs::testing::task;

TEST(ResumePoolTest, AtLeastOneThread) {
  try {
    bs::resume_pool pool(0);
    FAIL() << "a pool of no threads started";
  } catch (const bs::serving_error& e) {
    EXPECT_EQ(e.code(), bs::errc::invalid_argument);
  }
}

TEST(ResumePoolTest, ResumesAWholeExecutionsCallersOnItsThreads) {
  controlled_function fn;
  bs::server srv(bs::testing::serving_of(fn), {.batch_size = 64, .batch_timeout = 0us});
  open_on_exit release{fn.released};
  bs::resume_pool pool(2);
  auto blocker = bs::testing::block_executor(srv, fn);
  constexpr int n = 64;  // queued behind the blocker: they share one execution
  std::atomic<int> on_pool{0};
  std::atomic<int> right{0};
  std::vector<task> tasks;
  for (int i = 1; i <= n; ++i) {
    tasks.push_back([](bs::server<int, int>& s, bs::resume_pool& p, int x, std::atomic<int>& ok,
                       std::atomic<int>& on) -> task {
      auto r = co_await bs::co_dispatch(s, x, p);
      if (r.ok() && *r == x * x) ++ok;
      if (p.owns_this_thread()) ++on;
    }(srv, pool, i, right, on_pool));
    tasks.back().start();
  }
  fn.released.open();
  for (auto& t : tasks) t.wait();
  EXPECT_EQ(right.load(), n);
  EXPECT_EQ(on_pool.load(), n);
  (void)blocker.get();
}

TEST(ResumePoolTest, OneThreadTakesAWholeExecutionsCallersInOneHandOff) {
  // The partition hands the pool all 64 callers of an execution at once
  // (resume_batch.hpp): one pool thread resumes them all, in the order they
  // were answered, rather than a second thread woken for the last few.
  controlled_function fn;
  bs::server srv(bs::testing::serving_of(fn), {.batch_size = 64, .batch_timeout = 0us});
  open_on_exit release{fn.released};
  bs::resume_pool pool(2);
  auto blocker = bs::testing::block_executor(srv, fn);
  constexpr int n = 64;
  std::vector<std::thread::id> threads(n);
  std::vector<int> order;  // appended by the one thread that resumes them
  order.reserve(n);
  std::vector<task> tasks;
  for (int i = 0; i < n; ++i) {
    tasks.push_back([](bs::server<int, int>& s, bs::resume_pool& p, int x, std::thread::id& on,
                       std::vector<int>& seen) -> task {
      auto r = co_await bs::co_dispatch(s, x, p);
      on = std::this_thread::get_id();
      seen.push_back(r.ok() && *r == x * x ? x : -1);
    }(srv, pool, i, threads[static_cast<std::size_t>(i)], order));
    tasks.back().start();
  }
  fn.released.open();
  for (auto& t : tasks) t.wait();
  for (const auto& id : threads) EXPECT_EQ(id, threads.front());
  ASSERT_EQ(order.size(), static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) EXPECT_EQ(order[static_cast<std::size_t>(i)], i);
  (void)blocker.get();
}

TEST(ResumePoolTest, ACoroutineThatRunsLongDoesNotHoldBackTheOthers) {
  // Pool of 2: while one pool thread is inside a coroutine that waits (for
  // `go`, opened only by the second coroutine), the second coroutine's
  // answer must reach the other pool thread. Hangs if it does not. The
  // server is held until the first has suspended: answered before that, it
  // would go on (and wait) in this thread.
  controlled_function fn;
  bs::server srv(bs::testing::serving_of(fn), {.batch_size = 1, .batch_timeout = 0us});
  open_on_exit release{fn.released};
  bs::resume_pool pool(2);
  auto blocker = bs::testing::block_executor(srv, fn);
  bs::testing::gate go;
  std::atomic<bool> first_running{false};
  task first = [](bs::server<int, int>& s, bs::resume_pool& p, bs::testing::gate& g,
                  std::atomic<bool>& running) -> task {
    (void)co_await bs::co_dispatch(s, 1, p);
    running = true;
    running.notify_all();
    g.wait();  // holds this pool thread
  }(srv, pool, go, first_running);
  first.start();
  ASSERT_FALSE(first.finished());
  fn.released.open();
  first_running.wait(false);
  task second = [](bs::server<int, int>& s, bs::resume_pool& p, bs::testing::gate& g) -> task {
    (void)co_await bs::co_dispatch(s, 2, p);
    g.open();
  }(srv, pool, go);
  second.start();
  second.wait();
  first.wait();
  (void)blocker.get();
}

namespace {
// Thrown out of a coroutine; opens `dropped` when the pool lets go of it (by
// then the coroutine has unwound and the pool no longer touches its frame).
struct signalling_error {
  explicit signalling_error(bs::testing::gate* g) : dropped(g) {}
  ~signalling_error() { dropped->open(); }  // thrown as a prvalue: one object, no copies
  bs::testing::gate* dropped;
};
}  // namespace

TEST(ResumePoolTest, AnExceptionEscapingACoroutineIsDroppedAndThePoolGoesOn) {
  controlled_function fn;
  bs::server srv(bs::testing::serving_of(fn), {.batch_size = 4, .batch_timeout = 0us});
  open_on_exit release{fn.released};
  bs::resume_pool pool(1);
  bs::testing::gate dropped;
  std::atomic<bool> on_pool{false};
  auto thrower = [&]() -> bs::testing::basic_task<true> {
    (void)co_await bs::co_dispatch(srv, 1, pool);
    on_pool = pool.owns_this_thread();
    throw signalling_error{&dropped};
  };
  auto blocker = bs::testing::block_executor(srv, fn);  // so the await suspends
  auto t = thrower();
  t.start();
  fn.released.open();
  dropped.wait();
  EXPECT_TRUE(on_pool.load());
  EXPECT_FALSE(t.finished());  // it never reached its final suspend
  (void)blocker.get();

  // The pool's thread is still there: a coroutine held behind another blocker resumes on it.
  controlled_function fn2;
  bs::server srv2(bs::testing::serving_of(fn2), {.batch_size = 4, .batch_timeout = 0us});
  open_on_exit release2{fn2.released};
  auto blocker2 = bs::testing::block_executor(srv2, fn2);
  std::optional<bs::result<int>> after;
  std::atomic<bool> after_on_pool{false};
  auto next = [&]() -> task {
    after.emplace(co_await bs::co_dispatch(srv2, 2, pool));
    after_on_pool = pool.owns_this_thread();
  };
  task n = next();
  n.start();
  fn2.released.open();
  n.wait();
  EXPECT_EQ(after->value(), 4);
  EXPECT_TRUE(after_on_pool.load());
  (void)blocker2.get();
}

TEST(ResumePoolTest, CoroutinesStillWaitingWhenThePoolGoesResumeWhereTheirCallCompletes) {
  controlled_function fn;
  std::atomic<std::thread::id> ran_on{};
  bs::server srv(bs::testing::serving_of(fn), {.batch_size = 8, .batch_timeout = 0us});
  open_on_exit release{fn.released};
  auto pool = std::make_unique<bs::resume_pool>(2);
  auto blocker = bs::testing::block_executor(srv, fn);
  std::vector<std::optional<bs::result<int>>> answers(5);
  std::vector<task> tasks;
  for (int i = 0; i < 5; ++i) {
    tasks.push_back([](bs::server<int, int>& s, bs::resume_pool& p, int x,
                       std::optional<bs::result<int>>& out) -> task {
      out.emplace(co_await bs::co_dispatch(s, x, p));
    }(srv, *pool, i + 1, answers[static_cast<std::size_t>(i)]));
    tasks.back().start();
  }
  pool.reset();  // nobody resumed yet: their calls are queued behind the blocker
  fn.released.open();
  for (auto& t : tasks) t.wait();
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(answers[static_cast<std::size_t>(i)]->value(), (i + 1) * (i + 1));
  }
  (void)blocker.get();
}

TEST(ResumePoolTest, ACoroutineMayDestroyThePoolItRunsOn) {
  controlled_function fn;
  bs::server srv(bs::testing::serving_of(fn), {.batch_size = 4, .batch_timeout = 0us});
  open_on_exit release{fn.released};
  auto pool = std::make_unique<bs::resume_pool>(2);
  std::optional<bs::result<int>> first;
  std::optional<bs::result<int>> second;
  std::atomic<bool> on_pool{false};
  auto body = [&]() -> task {
    first.emplace(co_await bs::co_dispatch(srv, 1, *pool));
    on_pool = pool->owns_this_thread();
    pool.reset();  // from one of its own threads
    second.emplace(co_await bs::co_dispatch(srv, 2, bs::resume_inline));
  };
  auto blocker = bs::testing::block_executor(srv, fn);  // so the first await suspends
  task t = body();
  t.start();
  fn.released.open();
  t.wait();
  EXPECT_TRUE(on_pool.load());
  EXPECT_EQ(first->value(), 1);
  EXPECT_EQ(second->value(), 4);
  EXPECT_EQ(pool, nullptr);
  (void)blocker.get();
}
