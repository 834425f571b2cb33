// co_dispatch, co_dispatch_many and co_next (coroutine.hpp): every form,
// every resume target (checked by the thread it resumed on), cancellation,
// errors, streams, a server stopped or destroyed mid-await, and randomized
// stress. The coroutine type is the test's own (support/test_task.hpp).
#include "batch_serving/coroutine.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "batch_serving/resume_pool.hpp"
#include "batch_serving/server.hpp"
#include "batch_serving/streaming_server.hpp"
#include "support/controlled_function.hpp"
#include "support/test_task.hpp"

namespace bs = batch_serving;
using namespace std::chrono_literals;
using bs::testing::controlled_function;
using bs::testing::open_on_exit;
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

// What a coroutine saw after one await: its answer and the thread it resumed on.
template <class T>
struct seen {
  std::optional<bs::result<T>> answer;
  std::thread::id thread;
};

template <class Where>
task await_one(bs::server<int, int>& srv, int x, seen<int>& out, Where&& where) {
  out.answer.emplace(co_await bs::co_dispatch(srv, x, std::forward<Where>(where)));
  out.thread = std::this_thread::get_id();
}

// An executor the test drives: execute() queues, run_all() runs in the caller.
class manual_executor {
 public:
  void execute(std::function<void()> f) {
    std::lock_guard lock(mu_);
    queued_.push_back(std::move(f));
    posted_.fetch_add(1);
    posted_.notify_all();
  }
  int posted() const { return posted_.load(); }
  void wait_for(int n) const {
    for (int p = posted_.load(); p < n; p = posted_.load()) posted_.wait(p);
  }
  void run_all() {
    std::deque<std::function<void()>> now;
    {
      std::lock_guard lock(mu_);
      now.swap(queued_);
    }
    for (auto& f : now) f();
  }

 private:
  std::mutex mu_;
  std::deque<std::function<void()>> queued_;
  std::atomic<int> posted_{0};
};

// An executor with only post(), run by a thread of its own.
class posting_executor {
 public:
  posting_executor() : thread_([this](std::stop_token stop) { run(stop); }) {}
  void post(std::function<void()> f) {
    {
      std::lock_guard lock(mu_);
      queued_.push_back(std::move(f));
    }
    cv_.notify_one();
  }
  std::thread::id id() const { return thread_.get_id(); }

 private:
  void run(const std::stop_token& stop) {
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, stop, [&] { return !queued_.empty(); });
      if (queued_.empty()) return;
      auto f = std::move(queued_.front());
      queued_.pop_front();
      lock.unlock();
      f();
      lock.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable_any cv_;
  std::deque<std::function<void()>> queued_;
  std::jthread thread_;
};

// A serving whose batch function keeps `fn` alive (for servers that stop
// with an execution still running).
bs::serving<int, int> shared_serving(std::shared_ptr<controlled_function> fn) {
  return bs::serving<int, int>([fn](std::span<const int> xs) { return (*fn)(xs); });
}

static_assert(bs::resume_executor<manual_executor>);
static_assert(bs::resume_executor<posting_executor>);
static_assert(!bs::resume_executor<int>);
static_assert(bs::resume_target<bs::resume_pool&>);
static_assert(bs::resume_target<const bs::resume_inline_t&>);

}  // namespace

// A server whose one partition is held by the blocker (0) until release():
// a call made meanwhile cannot be answered before its coroutine suspended,
// so the resume target is always taken. Records the partition's thread.
struct held_server {
  controlled_function fn;
  bs::server<int, int> srv{bs::testing::serving_of(fn), {.batch_size = 4, .batch_timeout = 0us}};
  std::atomic<std::thread::id> partition{};

  held_server() {
    srv.dispatch_async(0, [this](bs::result<int>) { partition = std::this_thread::get_id(); });
    fn.blocked.wait();
  }
  ~held_server() { fn.released.open(); }
  held_server(const held_server&) = delete;
  held_server& operator=(const held_server&) = delete;
  void release() { fn.released.open(); }
};

TEST(CoroutineTest, ByDefaultResumesOnTheSharedPoolNotOnAPartitionThread) {
  held_server held;
  seen<int> out;
  std::atomic<bool> on_shared{false};
  auto body = [&]() -> task {
    out.answer.emplace(co_await bs::co_dispatch(held.srv, 3));
    out.thread = std::this_thread::get_id();
    on_shared = bs::resume_pool::shared().owns_this_thread();
  };
  task t = body();
  t.start();
  EXPECT_FALSE(t.finished());
  held.release();
  t.wait();
  ASSERT_TRUE(out.answer.has_value());
  EXPECT_EQ(out.answer->value(), 9);
  EXPECT_TRUE(on_shared.load());
  EXPECT_NE(out.thread, held.partition.load());
}

TEST(CoroutineTest, ResumeInlineResumesOnThePartitionThread) {
  held_server held;
  seen<int> out;
  task t = await_one(held.srv, 5, out, bs::resume_inline);
  t.start();
  EXPECT_FALSE(t.finished());
  held.release();
  t.wait();
  EXPECT_EQ(out.answer->value(), 25);
  EXPECT_EQ(out.thread, held.partition.load());
}

TEST(CoroutineTest, ResumesOnAResumePoolItIsGiven) {
  bs::resume_pool pool(2);
  held_server held;
  std::atomic<bool> on_pool{false};
  bs::result<int> answer = bs::error(bs::errc::cancelled, "not run");
  auto body = [&]() -> task {
    answer = co_await bs::co_dispatch(held.srv, 4, pool);
    on_pool = pool.owns_this_thread();
  };
  task t = body();
  t.start();
  held.release();
  t.wait();
  EXPECT_EQ(answer.value(), 16);
  EXPECT_TRUE(on_pool.load());
  EXPECT_FALSE(pool.owns_this_thread());
}

TEST(CoroutineTest, ResumesOnAUserExecutorThroughExecute) {
  manual_executor ex;
  held_server held;
  seen<int> out;
  task t = await_one(held.srv, 6, out, ex);
  t.start();
  held.release();
  ex.wait_for(1);
  EXPECT_FALSE(t.finished());  // waits for the executor, not resumed elsewhere
  ex.run_all();
  ASSERT_TRUE(t.finished());
  EXPECT_EQ(out.answer->value(), 36);
  EXPECT_EQ(out.thread, std::this_thread::get_id());
}

TEST(CoroutineTest, OneExecutionsCallersShareOnePostToAnExecutorPassedByReference) {
  manual_executor ex;
  held_server held;  // batch_size 4: the four calls queued behind it share one execution
  std::vector<int> resumed;  // appended in the thread that runs the executor's work
  std::vector<task> tasks;
  for (int x = 1; x <= 4; ++x) {
    tasks.push_back([](bs::server<int, int>& s, manual_executor& e, int v,
                       std::vector<int>& order) -> task {
      const bs::result<int> r = co_await bs::co_dispatch(s, v, e);
      order.push_back(r.ok() && *r == v * v ? v : -v);
    }(held.srv, ex, x, resumed));
    tasks.back().start();
  }
  held.release();
  ex.wait_for(1);
  for (const auto& t : tasks) EXPECT_FALSE(t.finished());  // all wait on that one post
  ex.run_all();
  for (const auto& t : tasks) ASSERT_TRUE(t.finished());
  EXPECT_EQ(ex.posted(), 1);
  EXPECT_EQ(resumed, (std::vector<int>{1, 2, 3, 4}));  // in the order they were answered
}

TEST(CoroutineTest, ByNameAwaitsAServerOfThisProcessAndAnUnknownNameAnswersAtOnce) {
  // The server is held busy until the coroutine has suspended: an answer there
  // before that would go on in the starting thread, not on the pool.
  const std::string name = "coroutine_test.by_name";
  bs::testing::controlled_function fn;
  bs::server<int, int> srv(bs::testing::serving_of(fn),
                           {.name = name, .batch_size = 4, .batch_timeout = 0us});
  auto blocker = bs::testing::block_executor(srv, fn);
  bs::testing::open_on_exit release{fn.released};
  bs::resume_pool pool(1);
  std::optional<bs::result<int>> one;
  std::optional<bs::result<std::vector<int>>> many;
  bool on_pool = false;
  auto body = [&]() -> task {
    one.emplace(co_await bs::co_dispatch<int, int>(name, 3, pool));
    on_pool = pool.owns_this_thread();
    std::vector<int> items{1, 2};
    many.emplace(co_await bs::co_dispatch_many<int, int>(name, std::move(items), pool));
  };
  task t = body();
  t.start();
  EXPECT_FALSE(t.finished());
  fn.released.open();
  t.wait();
  EXPECT_EQ(one->value(), 9);
  EXPECT_EQ(many->value(), (std::vector<int>{1, 4}));
  EXPECT_TRUE(on_pool);

  std::optional<bs::result<int>> unknown;
  auto ask_nobody = [&]() -> task {
    unknown.emplace(co_await bs::co_dispatch<int, int>("coroutine_test.nobody", 3));
  };
  task u = ask_nobody();
  u.start();
  ASSERT_TRUE(u.finished());  // answered before it suspended: no hand-off
  EXPECT_EQ(unknown->error().code(), bs::errc::no_serving);
}

TEST(CoroutineTest, ResumesOnAUserExecutorThroughPost) {
  posting_executor ex;
  held_server held;
  seen<int> out;
  task t = await_one(held.srv, 7, out, ex);
  t.start();
  held.release();
  t.wait();
  EXPECT_EQ(out.answer->value(), 49);
  EXPECT_EQ(out.thread, ex.id());
}

TEST(CoroutineTest, AnAnswerThereBeforeTheCoroutineSuspendedGoesOnInItsOwnThread) {
  // A fast partition may answer before await_suspend ended: then the
  // coroutine goes on in its own thread (no hand-off); otherwise on the
  // shared pool. Never on the partition thread.
  bs::server srv(squares(), {.batch_size = 4, .batch_timeout = 0us});
  const auto me = std::this_thread::get_id();
  int wrong_thread = 0;
  for (int i = 0; i < 200; ++i) {
    std::optional<bs::result<int>> answer;
    bool allowed = false;
    auto body = [&]() -> task {
      answer.emplace(co_await bs::co_dispatch(srv, i));
      allowed = std::this_thread::get_id() == me || bs::resume_pool::shared().owns_this_thread();
    };
    task t = body();
    t.start();
    t.wait();
    EXPECT_EQ(answer->value(), i * i);
    wrong_thread += allowed ? 0 : 1;
  }
  EXPECT_EQ(wrong_thread, 0);
}

TEST(CoroutineTest, AnExplicitBatchComesBackInOrder) {
  bs::resume_pool pool(1);
  bs::server srv(squares(), {.batch_size = 3, .batch_timeout = 0us});
  std::optional<bs::result<std::vector<int>>> all;
  std::optional<bs::result<std::vector<int>>> inline_all;
  std::optional<bs::result<std::vector<int>>> by_default;
  // The batches are named: GCC 12 miscompiles an initializer list that lives
  // across a co_await ("array used as initializer").
  const std::vector<int> first{1, 2, 3, 4, 5};
  const std::vector<int> second{6, 7};
  const std::vector<int> third{8};
  auto body = [&]() -> task {
    all.emplace(co_await bs::co_dispatch_many(srv, first, pool));
    inline_all.emplace(co_await bs::co_dispatch_many(srv, second, {}, bs::resume_inline));
    by_default.emplace(co_await bs::co_dispatch_many(srv, third));
  };
  task t = body();
  t.start();
  t.wait();
  EXPECT_EQ(all->value(), (std::vector<int>{1, 4, 9, 16, 25}));
  EXPECT_EQ(inline_all->value(), (std::vector<int>{36, 49}));
  EXPECT_EQ(by_default->value(), (std::vector<int>{64}));
}

TEST(CoroutineTest, AStopTokenCancelsAQueuedCallAndItsItemsNeverRun) {
  controlled_function fn;
  bs::server srv(bs::testing::serving_of(fn), {.batch_size = 1, .batch_timeout = 0us});
  open_on_exit release{fn.released};
  auto blocker = bs::testing::block_executor(srv, fn);
  std::stop_source cancel;
  std::stop_source cancel_many;
  seen<int> one;
  std::optional<bs::result<std::vector<int>>> many;
  auto body = [&]() -> task {
    one.answer.emplace(co_await bs::co_dispatch(srv, 7, cancel.get_token(), bs::resume_inline));
    one.thread = std::this_thread::get_id();
  };
  const std::vector<int> both{8, 9};
  auto body_many = [&]() -> task {
    many.emplace(co_await bs::co_dispatch_many(srv, both, cancel_many.get_token()));
  };
  task t = body();
  task m = body_many();
  t.start();
  m.start();
  EXPECT_FALSE(t.finished());
  cancel.request_stop();
  cancel_many.request_stop();
  t.wait();
  m.wait();
  EXPECT_EQ(one.answer->error().code(), bs::errc::cancelled);
  EXPECT_EQ(many->error().code(), bs::errc::cancelled);
  fn.released.open();
  EXPECT_EQ(blocker.get().value(), 0);
  srv.stop();
  EXPECT_FALSE(fn.ran(7));
  EXPECT_FALSE(fn.ran(8));
  EXPECT_EQ(srv.stats().calls_cancelled, 2u);
}

TEST(CoroutineTest, TheCoroutinesOwnStopTokenCancelsThroughCallOptions) {
  controlled_function fn;
  bs::server srv(bs::testing::serving_of(fn), {.batch_size = 1, .batch_timeout = 0us});
  open_on_exit release{fn.released};
  auto blocker = bs::testing::block_executor(srv, fn);
  std::stop_source mine;
  std::optional<bs::result<int>> answer;
  auto body = [&](std::stop_token stop) -> task {
    // Named, not a braced temporary in the co_await: GCC 12 destroys such a
    // temporary twice when it outlives a suspension.
    const bs::call_options options{.stop_token = std::move(stop)};
    answer.emplace(co_await bs::co_dispatch(srv, 3, options));
  };
  task t = body(mine.get_token());
  t.start();
  mine.request_stop();
  t.wait();
  EXPECT_EQ(answer->error().code(), bs::errc::cancelled);
  fn.released.open();
  (void)blocker.get();
}

TEST(CoroutineTest, ATimeoutAndAFailedExecutionComeAsTheResult) {
  controlled_function fn;
  bs::server srv(bs::testing::serving_of(fn), {.batch_size = 1, .batch_timeout = 0us});
  open_on_exit release{fn.released};
  std::optional<bs::result<int>> late;
  std::optional<bs::result<int>> poisoned;
  bs::resume_pool pool(1);
  auto blocker = bs::testing::block_executor(srv, fn);
  auto body = [&]() -> task {
    late.emplace(co_await bs::co_dispatch(srv, 5, {.timeout = 10ms}, pool));
  };
  task t = body();
  t.start();
  t.wait();
  EXPECT_EQ(late->error().code(), bs::errc::timeout);
  fn.released.open();
  (void)blocker.get();
  auto poison = [&]() -> task { poisoned.emplace(co_await bs::co_dispatch(srv, -1, pool)); };
  task p = poison();
  p.start();
  p.wait();
  EXPECT_EQ(poisoned->error().code(), bs::errc::execution_failed);
}

TEST(CoroutineTest, ACallRefusedAtOnceGoesOnInTheCoroutinesOwnThread) {
  bs::server srv(squares(), {.batch_size = 4, .batch_timeout = 0us});
  srv.stop();
  seen<int> out;
  std::optional<bs::result<std::vector<int>>> empty;
  task t = await_one(srv, 2, out, bs::resume_pool::shared());
  t.start();
  EXPECT_TRUE(t.finished());  // never suspended
  EXPECT_EQ(out.answer->error().code(), bs::errc::no_serving);  // a stopped server
  EXPECT_EQ(out.thread, std::this_thread::get_id());
  bs::server running(squares(), {.batch_size = 4, .batch_timeout = 0us});
  auto body = [&]() -> task { empty.emplace(co_await bs::co_dispatch_many(running, {})); };
  task e = body();
  e.start();
  EXPECT_TRUE(e.finished());
  EXPECT_EQ(empty->error().code(), bs::errc::invalid_argument);
}

TEST(CoroutineTest, AMovedFromServerAnswersInvalidArgument) {
  bs::server srv(squares(), {.batch_size = 4, .batch_timeout = 0us});
  bs::server moved = std::move(srv);
  seen<int> out;
  task t = await_one(srv, 2, out, bs::resume_inline);  // NOLINT(bugprone-use-after-move)
  t.start();
  EXPECT_TRUE(t.finished());
  EXPECT_EQ(out.answer->error().code(), bs::errc::invalid_argument);
}

TEST(CoroutineTest, ServerDestroyedWhileCoroutinesWaitResumesThemShuttingDown) {
  // Shared with the batch function: its thread outlives the server (and may
  // outlive this test) until the blocked execution returns.
  auto owned = std::make_shared<controlled_function>();
  controlled_function& fn = *owned;
  auto srv = std::make_unique<bs::server<int, int>>(shared_serving(owned),
                                                    bs::server_options{.batch_size = 1,
                                                                       .batch_timeout = 0us,
                                                                       .shutdown_timeout = 10ms});
  auto blocker = bs::testing::block_executor(*srv, fn);
  std::vector<seen<int>> outs(8);
  std::vector<task> tasks;
  bs::resume_pool pool(2);
  for (int i = 0; i < 8; ++i) {
    tasks.push_back(i % 2 == 0 ? await_one(*srv, i + 1, outs[static_cast<std::size_t>(i)], pool)
                               : await_one(*srv, i + 1, outs[static_cast<std::size_t>(i)],
                                           bs::resume_inline));
    tasks.back().start();
  }
  srv.reset();  // waits 10 ms for the blocked execution, then answers the rest
  for (auto& t : tasks) t.wait();
  for (auto& o : outs) EXPECT_EQ(o.answer->error().code(), bs::errc::shutting_down);
  fn.released.open();
  EXPECT_FALSE(blocker.get().ok());
}

TEST(CoroutineTest, ACoroutineResumedInlineMayDestroyTheServer) {
  auto srv =
      std::make_unique<bs::server<int, int>>(squares(), bs::server_options{.batch_size = 2,
                                                                           .batch_timeout = 0us});
  std::optional<bs::result<int>> first;
  std::optional<bs::result<int>> after;
  auto body = [&]() -> task {
    first.emplace(co_await bs::co_dispatch(*srv, 3, bs::resume_inline));
    srv.reset();  // on the partition thread, from inside its completion
    after.emplace(bs::error(bs::errc::no_serving, "gone"));
  };
  task t = body();
  t.start();
  t.wait();
  EXPECT_EQ(first->value(), 9);
  EXPECT_EQ(srv, nullptr);
}

TEST(CoroutineTest, ACoroutineResumedInlineMayCallAgainFromThePartitionThread) {
  bs::server srv(squares(), {.batch_size = 2, .batch_timeout = 0us});
  int sum = 0;
  auto body = [&]() -> task {
    for (int i = 1; i <= 100; ++i)
      sum += (co_await bs::co_dispatch(srv, i, bs::resume_inline)).value();
  };
  task t = body();
  t.start();
  t.wait();
  EXPECT_EQ(sum, 338350);
}

// ---- streams ------------------------------------------------------------

namespace {
bs::streaming_serving<int, int> streaming_squares() { return squares().streaming({}); }

template <class Where>
task read_all(bs::event_stream<int>& stream, std::vector<int>& got,
              std::optional<bs::error>& failure, Where&& where) {
  while (auto ev = co_await bs::co_next(stream, where)) {
    if (ev->kind() == bs::event_kind::batch) {
      for (int v : ev->batch()) got.push_back(v);
    } else if (ev->kind() == bs::event_kind::item) {
      got.push_back(ev->item());
    } else if (ev->kind() == bs::event_kind::error) {
      failure = ev->error();
    }
  }
}
}  // namespace

TEST(CoroutineTest, StreamEventsArriveInOrderOnEveryTarget) {
  bs::streaming_server<int, int> srv(streaming_squares(), {.batch_size = 3, .batch_timeout = 0us});
  bs::resume_pool pool(2);
  std::vector<int> items(40);
  std::vector<int> expected;
  for (int i = 0; i < 40; ++i) {
    items[static_cast<std::size_t>(i)] = i + 1;
    expected.push_back((i + 1) * (i + 1));
  }
  for (int target = 0; target < 3; ++target) {
    auto stream = srv.dispatch_many(std::span<const int>(items));
    std::vector<int> got;
    std::optional<bs::error> failure;
    task t = target == 0   ? read_all(stream, got, failure, pool)
             : target == 1 ? read_all(stream, got, failure, bs::resume_inline)
                           : read_all(stream, got, failure, bs::resume_pool::shared());
    t.start();
    t.wait();
    EXPECT_EQ(got, expected) << "target " << target;
    EXPECT_FALSE(failure.has_value());
  }
}

TEST(CoroutineTest, AStreamThatFailsEndsWithItsErrorEvent) {
  bs::streaming_server<int, int> srv(streaming_squares(), {.batch_size = 2, .batch_timeout = 0us});
  srv.stop();
  auto stream = srv.dispatch(4);
  std::vector<int> got;
  std::optional<bs::error> failure;
  task t = read_all(stream, got, failure, bs::resume_inline);
  t.start();
  EXPECT_TRUE(t.finished());  // the refusal is there already: no suspension
  ASSERT_TRUE(failure.has_value());
  EXPECT_EQ(failure->code(), bs::errc::no_serving);  // a stopped server
  EXPECT_TRUE(got.empty());
}

TEST(CoroutineTest, AStreamWaitedOnWhileTheServerStopsEnds) {
  auto owned = std::make_shared<controlled_function>();  // see above
  controlled_function& fn = *owned;
  bs::streaming_server<int, int> srv(shared_serving(owned).streaming({}),
                                     {.batch_size = 1,
                                      .batch_timeout = 0us,
                                      .shutdown_timeout = 10ms});
  auto blocker = srv.dispatch(0);
  fn.blocked.wait();
  auto stream = srv.dispatch_many({1, 2});
  std::vector<int> got;
  std::optional<bs::error> failure;
  task t = read_all(stream, got, failure, bs::resume_pool::shared());
  t.start();
  EXPECT_FALSE(t.finished());
  srv.stop();
  t.wait();
  ASSERT_TRUE(failure.has_value());
  EXPECT_EQ(failure->code(), bs::errc::shutting_down);
  fn.released.open();
}

TEST(CoroutineTest, AMovedFromStreamHasEnded) {
  bs::streaming_server<int, int> srv(streaming_squares(), {.batch_size = 2, .batch_timeout = 0us});
  auto stream = srv.dispatch(4);
  auto taken = std::move(stream);
  std::vector<int> got;
  std::optional<bs::error> failure;
  task t = read_all(stream, got, failure, bs::resume_inline);  // NOLINT(bugprone-use-after-move)
  t.start();
  EXPECT_TRUE(t.finished());
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(taken.collect().value(), (std::vector<int>{16}));
}

// ---- stress -------------------------------------------------------------

TEST(CoroutineTest, ManyCoroutinesOnPoolsAndInlineAllGetTheirOwnResults) {
  bs::server srv(squares(), {.batch_size = 16, .batch_timeout = 50us, .partitions = 2});
  bs::resume_pool pool(2);
  constexpr int coroutines = 200;
  std::atomic<int> wrong{0};
  std::atomic<int> answered{0};
  auto body = [&](unsigned seed) -> task {
    std::mt19937 rng(seed);
    const int calls = 5 + static_cast<int>(rng() % 40);
    for (int i = 0; i < calls; ++i) {
      const int x = static_cast<int>(rng() % 1000);
      const unsigned form = rng() % 4;
      if (form == 3) {
        std::vector<int> xs(1 + rng() % 40, x);
        auto r = co_await bs::co_dispatch_many(srv, xs, pool);
        if (!r.ok() || r->size() != xs.size()) {
          ++wrong;
        } else {
          for (int v : *r) wrong += v != x * x ? 1 : 0;
        }
      } else {
        auto r = form == 0   ? co_await bs::co_dispatch(srv, x, pool)
                 : form == 1 ? co_await bs::co_dispatch(srv, x, bs::resume_inline)
                             : co_await bs::co_dispatch(srv, x);
        if (!r.ok() || *r != x * x) ++wrong;
      }
      ++answered;
    }
  };
  std::vector<task> tasks;
  tasks.reserve(coroutines);
  for (int i = 0; i < coroutines; ++i) tasks.push_back(body(static_cast<unsigned>(i) * 7919U + 1));
  for (auto& t : tasks) t.start();
  for (auto& t : tasks) t.wait();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(answered.load(), 0);
}

namespace {
// Thrown out of a coroutine; opens `dropped` when the library lets go of it.
struct signalling_error {
  explicit signalling_error(bs::testing::gate* g) : dropped(g) {}
  ~signalling_error() { dropped->open(); }  // thrown as a prvalue: one object, no copies
  bs::testing::gate* dropped;
};
}  // namespace

TEST(CoroutineTest, AnExceptionEscapingACoroutineResumedInlineIsDroppedAndTheServerGoesOn) {
  held_server held;
  bs::testing::gate dropped;
  auto thrower = [&]() -> bs::testing::basic_task<true> {
    (void)co_await bs::co_dispatch(held.srv, 2, bs::resume_inline);
    throw signalling_error{&dropped};
  };
  auto t = thrower();
  t.start();
  held.release();
  dropped.wait();
  EXPECT_FALSE(t.finished());
  EXPECT_EQ(held.srv.dispatch(3).value(), 9);  // the partition thread lived through it
}
