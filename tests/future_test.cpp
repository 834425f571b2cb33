// future<T> and the asynchronous dispatch forms of a server: futures,
// completion callbacks, dropped futures, mapping and failures.
#include "batch_serving/future.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <ratio>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "batch_serving/error.hpp"
#include "batch_serving/result.hpp"
#include "batch_serving/server.hpp"
#include "batch_serving/serving.hpp"

#include "support/callback_record.hpp"

namespace batch_serving {
// Lets GoogleTest print codes by name in failure messages.
inline void PrintTo(errc code, std::ostream* os) { *os << to_string(code); }
}  // namespace batch_serving

namespace bs = batch_serving;
using bs::testing::callback_record;
using bs::testing::gate;
using namespace std::chrono_literals;

namespace {

// Generous: only reached if the library is broken, never on the happy path.
constexpr auto patience = 10s;

::testing::AssertionResult contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\" does not contain \"" << part << "\"";
}

// Opens a gate when the scope ends, so a failed assertion never leaves a
// server's batch function blocked (declare it after the server).
struct open_on_exit {
  gate& g;
  ~open_on_exit() { g.open(); }
};

std::vector<int> squares_of(std::span<const int> xs) {
  std::vector<int> out;
  for (int x : xs) out.push_back(x * x);
  return out;
}

bs::serving<int, int> squares() { return bs::serving<int, int>(squares_of); }

// Options under which every call runs as soon as a partition is free.
bs::server_options immediate() { return {.batch_size = 1, .batch_timeout = 0ms}; }

// A squaring serving whose batch function announces it started (`entered`)
// and then blocks until `release` opens; it records every item it saw.
struct held_squares {
  gate entered;
  gate release;
  std::mutex mu;
  std::vector<int> seen;

  bs::serving<int, int> serving() {
    return bs::serving<int, int>([this](std::span<const int> xs) {
      {
        std::lock_guard lock(mu);
        seen.insert(seen.end(), xs.begin(), xs.end());
      }
      entered.open();
      release.wait();
      return squares_of(xs);
    });
  }
  std::vector<int> items_seen() {
    std::lock_guard lock(mu);
    return seen;
  }
};

}  // namespace

// ---- future basics -------------------------------------------------------------

TEST(FutureTest, DispatchAsyncReturnsAFutureWhoseGetGivesTheValue) {
  bs::server srv(squares(), immediate());
  bs::future<int> f = srv.dispatch_async(7);
  ASSERT_TRUE(f.valid());
  bs::result<int> r = f.get();
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r.value(), 49);
}

TEST(FutureTest, GetLeavesTheFutureInvalid) {
  bs::server srv(squares(), immediate());
  auto f = srv.dispatch_async(2);
  EXPECT_TRUE(f.valid());
  (void)f.get();
  EXPECT_FALSE(f.valid());
}

TEST(FutureTest, ADefaultConstructedFutureIsInvalid) {
  bs::future<int> f;
  EXPECT_FALSE(f.valid());
}

TEST(FutureTest, IsMoveOnly) {
  static_assert(!std::is_copy_constructible_v<bs::future<int>>);
  static_assert(!std::is_copy_assignable_v<bs::future<int>>);
  static_assert(std::is_nothrow_move_constructible_v<bs::future<int>>);
  static_assert(std::is_nothrow_move_assignable_v<bs::future<int>>);
}

TEST(FutureTest, MovingAFutureTransfersItsCallAndInvalidatesTheSource) {
  bs::server srv(squares(), immediate());
  auto f = srv.dispatch_async(3);
  bs::future<int> g = std::move(f);
  EXPECT_FALSE(f.valid());  // NOLINT(bugprone-use-after-move): testing the moved-from state
  ASSERT_TRUE(g.valid());
  bs::future<int> h;
  h = std::move(g);
  EXPECT_FALSE(g.valid());  // NOLINT(bugprone-use-after-move)
  ASSERT_TRUE(h.valid());
  EXPECT_EQ(h.get().value(), 9);
}

TEST(FutureTest, MoveAssigningOverAPendingFutureDropsItSafely) {
  held_squares held;
  bs::server srv(held.serving(), immediate());
  open_on_exit guard{held.release};
  auto f = srv.dispatch_async(2);
  held.entered.wait();
  f = srv.dispatch_async(3);  // drops the first, still running, call
  held.release.open();
  EXPECT_EQ(f.get().value(), 9);
  EXPECT_EQ(held.items_seen(), (std::vector<int>{2, 3}));
}

TEST(FutureTest, ReadyAndWaitForAreFalseUntilTheCallCompletes) {
  held_squares held;
  bs::server srv(held.serving(), immediate());
  open_on_exit guard{held.release};
  auto f = srv.dispatch_async(5);
  held.entered.wait();  // the batch function runs our item and is blocked

  EXPECT_FALSE(f.ready());
  EXPECT_FALSE(f.wait_for(20ms));
  EXPECT_FALSE(f.wait_until(std::chrono::steady_clock::now() + 1ms));
  EXPECT_FALSE(f.ready());
  EXPECT_TRUE(f.valid());

  held.release.open();
  EXPECT_TRUE(f.wait_for(patience));
  EXPECT_TRUE(f.ready());
  EXPECT_TRUE(f.wait_for(0ms));  // stays ready
  auto r = f.get();
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r.value(), 25);
}

TEST(FutureTest, WaitBlocksUntilTheCallCompletes) {
  held_squares held;
  bs::server srv(held.serving(), immediate());
  open_on_exit guard{held.release};
  auto f = srv.dispatch_async(6);
  held.entered.wait();
  std::thread releaser([&] { held.release.open(); });
  f.wait();
  EXPECT_TRUE(f.ready());
  releaser.join();
  EXPECT_EQ(f.get().value(), 36);
}

// hours::max() is the usual way to say "no timeout". Adding it to now() in
// nanoseconds overflows; the future must still wait for the answer rather
// than report a timeout at once.
TEST(FutureTest, WaitForAnEffectivelyInfiniteTimeoutWaitsForTheAnswer) {
  held_squares held;
  bs::server srv(held.serving(), immediate());
  open_on_exit guard{held.release};
  auto f = srv.dispatch_async(5);
  held.entered.wait();

  std::promise<bool> waited;
  std::future<bool> waited_result = waited.get_future();
  std::thread waiter([&] { waited.set_value(f.wait_for(std::chrono::hours::max())); });
  // A correct wait_for cannot return before the gate opens; give a broken one
  // time to return early so the check below sees it.
  const bool returned_early = waited_result.wait_for(200ms) == std::future_status::ready;
  held.release.open();
  waiter.join();
  EXPECT_FALSE(returned_early)
      << "wait_for(hours::max()) returned while the call was still running";
  EXPECT_TRUE(waited_result.get()) << "wait_for(hours::max()) reported a timeout";
  EXPECT_EQ(f.get().value(), 25);
}

// wait_for takes any std::chrono::duration, like std::future's: narrow and
// floating-point representations must time out as asked, not wait forever.
TEST(FutureTest, WaitForTimesOutWithAnyDurationType) {
  held_squares held;
  bs::server srv(held.serving(), immediate());
  open_on_exit guard{held.release};
  auto f = srv.dispatch_async(5);
  held.entered.wait();

  // Each wait must time out, as the call is held. A broken one may block until
  // the answer arrives, so each runs in a thread, given 2 s.
  auto times_out = [&](auto timeout, const char* what) -> ::testing::AssertionResult {
    std::promise<bool> returned;
    auto answer = returned.get_future();
    std::thread waiter([&] { returned.set_value(f.wait_for(timeout)); });
    if (answer.wait_for(2s) != std::future_status::ready) {  // asked for at most 2 ms
      held.release.open();  // lets it return; the later checks are moot
      waiter.join();
      return ::testing::AssertionFailure()
             << "wait_for(" << what << ") was still waiting after 2 s while the call was held";
    }
    waiter.join();
    if (answer.get()) {
      return ::testing::AssertionFailure()
             << "wait_for(" << what << ") returned true while the call was held";
    }
    return ::testing::AssertionSuccess();
  };
  ASSERT_TRUE(times_out(std::chrono::duration<int, std::micro>(100), "duration<int, micro>(100)"));
  ASSERT_TRUE(times_out(std::chrono::duration<int, std::milli>(2), "duration<int, milli>(2)"));
  ASSERT_TRUE(times_out(std::chrono::duration<unsigned, std::milli>(2),
                        "duration<unsigned, milli>(2)"));
  ASSERT_TRUE(times_out(0.002s, "0.002s (long double)"));
  ASSERT_TRUE(times_out(std::chrono::duration<double, std::milli>(1.5),
                        "duration<double, milli>(1.5)"));
  ASSERT_TRUE(times_out(2ms, "2ms"));
  ASSERT_TRUE(times_out(0ms, "0ms"));
  ASSERT_TRUE(times_out(-1s, "-1s"));

  held.release.open();
  EXPECT_TRUE(f.wait_for(std::chrono::duration<double>(10.0)));
  EXPECT_TRUE(f.wait_for(std::chrono::duration<int, std::milli>(10)));
  EXPECT_EQ(f.get().value(), 25);
}

TEST(FutureTest, WaitUntilTheLatestTimePointWaitsForTheAnswer) {
  held_squares held;
  bs::server srv(held.serving(), immediate());
  open_on_exit guard{held.release};
  auto f = srv.dispatch_async(5);
  held.entered.wait();
  std::thread releaser([&] { held.release.open(); });
  EXPECT_TRUE(f.wait_until(std::chrono::steady_clock::time_point::max()));
  releaser.join();
  EXPECT_EQ(f.get().value(), 25);
}

TEST(FutureTest, WaitUntilAPastDeadlineReportsWhetherItIsReady) {
  bs::server srv(squares(), immediate());
  auto f = srv.dispatch_async(4);
  ASSERT_TRUE(f.wait_for(patience));
  EXPECT_TRUE(f.wait_until(std::chrono::steady_clock::now() - 1s));
  EXPECT_EQ(f.get().value(), 16);
}

TEST(FutureTest, GetMayBeCalledOnAnotherThread) {
  bs::server srv(squares(), immediate());
  auto f = srv.dispatch_async(8);
  std::optional<bs::result<int>> seen;
  std::thread waiter([&, fut = std::move(f)]() mutable { seen.emplace(fut.get()); });
  waiter.join();
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->value(), 64);
}

TEST(FutureTest, ManyOutstandingFuturesEachGetTheirOwnValue) {
  bs::server srv(squares(), {.batch_size = 4, .batch_timeout = 0ms});
  std::vector<bs::future<int>> futures;
  for (int i = 0; i < 50; ++i) futures.push_back(srv.dispatch_async(i));
  for (int i = 0; i < 50; ++i) {
    auto r = futures[static_cast<std::size_t>(i)].get();
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r.value(), i * i);
  }
}

TEST(FutureTest, FuturesFromManyThreadsEachGetTheirOwnValue) {
  bs::server srv(squares(), {.batch_size = 8, .batch_timeout = 1ms});
  constexpr int threads = 4;
  constexpr int per_thread = 50;
  std::latch start(threads);
  std::vector<int> wrong(threads, 0);
  std::vector<std::thread> callers;
  for (int t = 0; t < threads; ++t) {
    callers.emplace_back([&, t] {
      start.arrive_and_wait();
      std::vector<bs::future<int>> mine;
      for (int i = 0; i < per_thread; ++i) mine.push_back(srv.dispatch_async(t * 1000 + i));
      for (int i = 0; i < per_thread; ++i) {
        const int x = t * 1000 + i;
        auto r = mine[static_cast<std::size_t>(i)].get();
        if (!r.ok() || *r != x * x) ++wrong[static_cast<std::size_t>(t)];
      }
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(wrong, std::vector<int>(threads, 0));
}

// ---- dropping futures ------------------------------------------------------------

TEST(FutureTest, DroppingAFutureWhileItsCallRunsIsSafeAndTheCallStillRuns) {
  held_squares held;
  bs::server srv(held.serving(), immediate());
  open_on_exit guard{held.release};
  {
    auto f = srv.dispatch_async(5);
    held.entered.wait();  // our item is inside the batch function
  }                       // the future is dropped here, before the call completes
  held.release.open();

  auto later = srv.dispatch(6);  // runs after the first execution finished
  ASSERT_TRUE(later.ok()) << later.error().to_string();
  EXPECT_EQ(later.value(), 36);
  EXPECT_EQ(held.items_seen(), (std::vector<int>{5, 6}));
  const auto stats = srv.stats();
  EXPECT_EQ(stats.executions, 2u);
  EXPECT_EQ(stats.items_executed, 2u);
  EXPECT_EQ(stats.failed_executions, 0u);
}

TEST(FutureTest, DroppingAFutureWhoseCallIsStillQueuedIsSafeAndTheCallStillRuns) {
  held_squares held;
  bs::server srv(held.serving(), immediate());
  open_on_exit guard{held.release};
  auto first = srv.dispatch_async(1);
  held.entered.wait();  // the only partition is busy with item 1
  {
    auto queued = srv.dispatch_async(2);
    EXPECT_FALSE(queued.ready());
  }  // dropped while still in the queue
  held.release.open();

  EXPECT_EQ(first.get().value(), 1);
  EXPECT_EQ(srv.dispatch(3).value(), 9);
  EXPECT_EQ(held.items_seen(), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(srv.stats().executions, 3u);
}

TEST(FutureTest, DroppingAFutureAfterItCompletedIsSafe) {
  bs::server srv(squares(), immediate());
  {
    auto f = srv.dispatch_async(5);
    ASSERT_TRUE(f.wait_for(patience));
  }
  EXPECT_EQ(srv.dispatch(2).value(), 4);
}

TEST(FutureTest, DroppingAManyFutureWhileItRunsIsSafe) {
  held_squares held;
  bs::server srv(held.serving(), {.batch_size = 2, .batch_timeout = 0ms});
  open_on_exit guard{held.release};
  {
    auto f = srv.dispatch_many_async({1, 2, 3});  // split across two executions
    held.entered.wait();
  }
  held.release.open();
  EXPECT_EQ(srv.dispatch_many({4, 5}).value(), (std::vector<int>{16, 25}));
  const auto seen = held.items_seen();
  EXPECT_EQ(seen, (std::vector<int>{1, 2, 3, 4, 5}));
}

TEST(FutureTest, FuturesMayOutliveTheirServerAndServing) {
  std::optional<bs::future<std::string>> f;
  {
    bs::server srv(squares().map_results([](int v) { return std::to_string(v); }), immediate());
    f.emplace(srv.dispatch_async(9));
  }  // stop() drains: the call is answered before the server is gone
  ASSERT_TRUE(f->valid());
  EXPECT_TRUE(f->ready());
  auto r = f->get();  // map_results still runs: the future keeps what it needs
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r.value(), "81");
}

// ---- dispatch_many_async -------------------------------------------------------------

TEST(FutureTest, DispatchManyAsyncGivesAllResultsInOrder) {
  bs::server srv(squares(), {.batch_size = 2, .batch_timeout = 0ms});
  bs::future<std::vector<int>> f = srv.dispatch_many_async({1, 2, 3, 4, 5});
  auto r = f.get();
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r.value(), (std::vector<int>{1, 4, 9, 16, 25}));
}

TEST(FutureTest, AnEmptyDispatchManyAsyncIsAReadyFutureWithInvalidArgument) {
  bs::server srv(squares(), immediate());
  auto f = srv.dispatch_many_async(std::vector<int>{});
  ASSERT_TRUE(f.valid());
  EXPECT_TRUE(f.ready());
  auto r = f.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), bs::errc::invalid_argument);
  EXPECT_TRUE(contains(r.error().message(), "empty"));
  EXPECT_EQ(srv.stats().calls_accepted, 0u);
}

// ---- callbacks -------------------------------------------------------------------------

TEST(FutureTest, DispatchAsyncWithACallbackRunsItExactlyOnceWithTheResult) {
  callback_record<int> rec;
  {
    bs::server srv(squares(), immediate());
    srv.dispatch_async(4, rec.callback());
    rec.done.wait();
    EXPECT_EQ(rec.only().value(), 16);
  }  // the server's threads are gone: no second run can still come
  EXPECT_EQ(rec.calls.load(), 1);
}

TEST(FutureTest, DispatchAsyncAcceptsALambdaTakingAResult) {
  std::atomic<int> got{0};
  gate done;
  bs::server srv(squares(), immediate());
  srv.dispatch_async(3, [&](bs::result<int> r) {
    got.store(r.ok() ? *r : -1);
    done.open();
  });
  done.wait();
  EXPECT_EQ(got.load(), 9);
}

TEST(FutureTest, DispatchManyAsyncWithACallbackRunsItExactlyOnceWithAllResults) {
  callback_record<std::vector<int>> rec;
  {
    bs::server srv(squares(), {.batch_size = 2, .batch_timeout = 0ms});
    srv.dispatch_many_async({1, 2, 3}, rec.callback());
    rec.done.wait();
    ASSERT_TRUE(rec.only().ok()) << rec.only().error().to_string();
    EXPECT_EQ(rec.only().value(), (std::vector<int>{1, 4, 9}));
  }
  EXPECT_EQ(rec.calls.load(), 1);
}

TEST(FutureTest, ACallbackPassedAsAnLvalueIsCopiedAndRunOnce) {
  callback_record<int> rec;
  {
    bs::server srv(squares(), immediate());
    auto callback = rec.callback();
    srv.dispatch_async(7, callback);
    rec.done.wait();
    EXPECT_EQ(rec.only().value(), 49);
  }
  EXPECT_EQ(rec.calls.load(), 1);
}

TEST(FutureTest, AMoveOnlyCallbackSuchAsOneOwningAPromiseIsAccepted) {
  bs::server srv(squares(), immediate());
  std::promise<int> promise;
  std::future<int> answer = promise.get_future();
  srv.dispatch_async(8, [p = std::move(promise)](bs::result<int> r) mutable {
    p.set_value(r.value_or(-1));
  });
  ASSERT_EQ(answer.wait_for(patience), std::future_status::ready);
  EXPECT_EQ(answer.get(), 64);

  std::promise<std::vector<int>> many_promise;
  auto many_answer = many_promise.get_future();
  auto owned = std::make_unique<int>(10);
  srv.dispatch_many_async({1, 2}, [p = std::move(many_promise),
                                   o = std::move(owned)](bs::result<std::vector<int>> r) mutable {
    std::vector<int> v = r.value_or(std::vector<int>{});
    v.push_back(*o);
    p.set_value(std::move(v));
  });
  ASSERT_EQ(many_answer.wait_for(patience), std::future_status::ready);
  EXPECT_EQ(many_answer.get(), (std::vector<int>{1, 4, 10}));
}

TEST(FutureTest, ACallbackRunsOnAServerThread) {
  callback_record<int> rec;
  bs::server srv(squares(), immediate());
  srv.dispatch_async(2, rec.callback());
  rec.done.wait();
  std::lock_guard lock(rec.mu);
  EXPECT_NE(rec.thread, std::this_thread::get_id());
}

TEST(FutureTest, ACallbackThatThrowsDoesNotTakeDownTheServer) {
  gate thrown;
  bs::server srv(squares(), immediate());
  srv.dispatch_async(1, [&](bs::result<int>) {
    thrown.open();
    throw std::runtime_error("callback failure");
  });
  thrown.wait();
  srv.dispatch_many_async({1, 2}, [](bs::result<std::vector<int>>) { throw 7; });

  EXPECT_EQ(srv.dispatch(3).value(), 9);
  EXPECT_EQ(srv.dispatch_async(4).get().value(), 16);
  callback_record<int> rec;
  srv.dispatch_async(5, rec.callback());
  rec.done.wait();
  EXPECT_EQ(rec.only().value(), 25);
}

TEST(FutureTest, ACallbackThatThrowsDoesNotStopOtherCallersInTheSameExecution) {
  bs::server srv(squares(), {.batch_size = 2, .batch_timeout = patience});
  srv.dispatch_async(1, [](bs::result<int>) { throw std::runtime_error("callback failure"); });
  auto f = srv.dispatch_async(2);  // fills the batch: both run together at once
  auto r = f.get();
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r.value(), 4);
  EXPECT_EQ(srv.stats().executions, 1u);
}

TEST(FutureTest, AnEmptyDispatchManyAsyncCallsTheCallbackOnceWithInvalidArgument) {
  callback_record<std::vector<int>> rec;
  {
    bs::server srv(squares(), immediate());
    srv.dispatch_many_async(std::vector<int>{}, rec.callback());
    // Refused at once: answered in this thread before dispatch returned.
    EXPECT_EQ(rec.calls.load(), 1);
    ASSERT_FALSE(rec.only().ok());
    EXPECT_EQ(rec.only().error().code(), bs::errc::invalid_argument);
    std::lock_guard lock(rec.mu);
    EXPECT_EQ(rec.thread, std::this_thread::get_id());
  }
  EXPECT_EQ(rec.calls.load(), 1);
}

TEST(FutureTest, ACallbackMayDispatchAgainFromTheServerThread) {
  bs::server srv(squares(), immediate());
  callback_record<int> inner;
  gate outer_done;
  srv.dispatch_async(2, [&](bs::result<int> r) {
    srv.dispatch_async(r.value_or(0), inner.callback());  // 4 -> 16
    outer_done.open();
  });
  outer_done.wait();
  inner.done.wait();
  EXPECT_EQ(inner.only().value(), 16);
}

// ---- map_results and map_inputs ---------------------------------------------------------

TEST(FutureTest, MapResultsRunsForFuturesAndChangesTheResultType) {
  bs::server srv(squares().map_results([](int v) { return "sq=" + std::to_string(v); }),
                 {.batch_size = 2, .batch_timeout = 0ms});
  bs::future<std::string> one = srv.dispatch_async(3);
  bs::future<std::vector<std::string>> many = srv.dispatch_many_async({1, 2, 3});
  EXPECT_EQ(one.get().value(), "sq=9");
  EXPECT_EQ(many.get().value(), (std::vector<std::string>{"sq=1", "sq=4", "sq=9"}));
}

TEST(FutureTest, MapResultsRunsInTheThreadThatCallsGet) {
  std::mutex mu;
  std::vector<std::thread::id> threads;
  bs::server srv(squares().map_results([&](int v) {
    std::lock_guard lock(mu);
    threads.push_back(std::this_thread::get_id());
    return v;
  }),
                 immediate());
  auto f = srv.dispatch_async(3);
  ASSERT_TRUE(f.wait_for(patience));
  {
    std::lock_guard lock(mu);
    EXPECT_TRUE(threads.empty()) << "map_results ran before get()";
  }
  EXPECT_EQ(f.get().value(), 9);
  std::lock_guard lock(mu);
  EXPECT_EQ(threads, (std::vector<std::thread::id>{std::this_thread::get_id()}));
}

TEST(FutureTest, MapResultsRunsForCallbacksAndTheCallbackGetsTheMappedType) {
  bs::server srv(squares().map_results([](int v) { return std::to_string(v); }), immediate());
  callback_record<std::string> one;
  callback_record<std::vector<std::string>> many;
  srv.dispatch_async(5, one.callback());
  srv.dispatch_many_async({1, 2}, many.callback());
  one.done.wait();
  many.done.wait();
  EXPECT_EQ(one.only().value(), "25");
  EXPECT_EQ(many.only().value(), (std::vector<std::string>{"1", "4"}));
}

TEST(FutureTest, AThrowingMapResultsGivesTheFutureExecutionFailed) {
  bs::server srv(squares().map_results([](int v) -> int {
    if (v == 4) throw std::runtime_error("cannot map four");
    return v;
  }),
                 immediate());
  auto r = srv.dispatch_async(2).get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), bs::errc::execution_failed);
  EXPECT_TRUE(contains(r.error().message(), "cannot map four"));
  EXPECT_EQ(srv.dispatch_async(3).get().value(), 9);  // only that call failed
}

TEST(FutureTest, MapInputsRunsForFuturesAndAThrowingOneGivesAReadyInvalidArgument) {
  struct point {
    int x;
    int y;
  };
  bs::server srv(squares().map_inputs([](const point& p) {
    if (p.x < 0) throw std::invalid_argument("negative x");
    return p.x;
  }),
                 immediate());
  EXPECT_EQ(srv.dispatch_async(point{3, 0}).get().value(), 9);
  EXPECT_EQ(srv.dispatch_many_async({point{1, 0}, point{2, 0}}).get().value(),
            (std::vector<int>{1, 4}));

  auto bad = srv.dispatch_async(point{-1, 0});
  EXPECT_TRUE(bad.ready());
  auto r = bad.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), bs::errc::invalid_argument);
  EXPECT_TRUE(contains(r.error().message(), "negative x"));

  callback_record<int> rec;
  srv.dispatch_async(point{-2, 0}, rec.callback());
  EXPECT_EQ(rec.calls.load(), 1);
  EXPECT_EQ(rec.only().error().code(), bs::errc::invalid_argument);
}

// ---- failures --------------------------------------------------------------------------

TEST(FutureTest, FuturesOfAFailingBatchFunctionGetExecutionFailed) {
  bs::serving<int, int> failing([](std::span<const int>) -> std::vector<int> {
    throw std::runtime_error("model exploded");
  });
  bs::server srv(failing, {.batch_size = 2, .batch_timeout = 0ms});

  auto one = srv.dispatch_async(1).get();
  ASSERT_FALSE(one.ok());
  EXPECT_EQ(one.error().code(), bs::errc::execution_failed);
  EXPECT_TRUE(contains(one.error().message(), "model exploded"));

  auto many = srv.dispatch_many_async({1, 2, 3}).get();
  ASSERT_FALSE(many.ok());
  EXPECT_EQ(many.error().code(), bs::errc::execution_failed);
  EXPECT_TRUE(contains(many.error().message(), "model exploded"));

  callback_record<int> rec;
  srv.dispatch_async(4, rec.callback());
  rec.done.wait();
  EXPECT_EQ(rec.only().error().code(), bs::errc::execution_failed);
}

TEST(FutureTest, FuturesOfABatchFunctionReturningTheWrongCountGetExecutionFailed) {
  bs::serving<int, int> short_by_one([](std::span<const int> xs) {
    return std::vector<int>(xs.size() - 1, 0);
  });
  bs::server srv(short_by_one, immediate());
  auto r = srv.dispatch_async(1).get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), bs::errc::execution_failed);
  EXPECT_TRUE(contains(r.error().message(), "0 outputs"));
}

TEST(FutureTest, AFutureFromAStoppedServerIsReadyAtOnceWithAnError) {
  bs::server srv(squares(), immediate());
  srv.stop();
  auto f = srv.dispatch_async(1);
  ASSERT_TRUE(f.valid());
  EXPECT_TRUE(f.ready());
  auto r = f.get();
  ASSERT_FALSE(r.ok());
  // Once stopped, calls get no_serving (README, Semantics 8).
  EXPECT_EQ(r.error().code(), bs::errc::no_serving) << r.error().to_string();

  callback_record<int> rec;
  srv.dispatch_async(2, rec.callback());
  EXPECT_EQ(rec.calls.load(), 1);  // answered in this thread, at once
  ASSERT_FALSE(rec.only().ok());
  EXPECT_EQ(rec.only().error().code(), bs::errc::no_serving);
}
