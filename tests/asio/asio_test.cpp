// asio completion tokens (asio.hpp): every token kind, the executor a
// handler runs on, outstanding work, the allocator, per-operation
// cancellation (a signal, awaitable operators, races with completion),
// errors as results, and the server or the context going away first.
#include "batch_serving/asio.hpp"

#include <gtest/gtest.h>

#include <asio/awaitable.hpp>
#include <asio/bind_allocator.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <future>
#include <memory>
#include <optional>
#include <random>
#include <stop_token>
#include <thread>
#include <variant>
#include <vector>

#include "support/controlled_function.hpp"

namespace bs = batch_serving;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using bs::testing::block_executor;
using bs::testing::controlled_function;
using bs::testing::open_on_exit;
using bs::testing::serving_of;

namespace {

bs::server_options one_at_a_time() {
  return {.batch_size = 1, .batch_timeout = 0us, .partitions = 1};
}

// Waits (bounded) until the server has queued `calls` calls.
void wait_until_accepted(bs::server<int, int>& srv, std::uint64_t calls) {
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (srv.stats().calls_accepted < calls && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_GE(srv.stats().calls_accepted, calls);
}

bool is_error(const bs::result<int>& r, bs::errc code) {
  return !r.ok() && r.error().code() == code;
}

// Runs `body` as a coroutine on `io` and the context until it is done;
// rethrows what the coroutine threw.
template <class Body>
void run_coroutine(asio::io_context& io, Body body) {
  std::exception_ptr failure;
  asio::co_spawn(io, std::move(body), [&](std::exception_ptr e) { failure = e; });
  io.run();
  if (failure) std::rethrow_exception(failure);
}

TEST(AsioTest, CompletesACallbackOnItsExecutor) {
  bs::serving<int, int> squares([](std::span<const int> xs) {
    std::vector<int> out;
    for (int x : xs) out.push_back(x * x);
    return out;
  });
  bs::server srv(squares, {.batch_timeout = 0us});
  asio::io_context io;
  std::optional<bs::result<int>> answer;
  bool on_io_thread = false;
  bs::async_dispatch(srv, 3, asio::bind_executor(io, [&](bs::result<int> r) {
                       on_io_thread = io.get_executor().running_in_this_thread();
                       answer = std::move(r);
                     }));
  io.run();  // returns only once answered: the operation keeps work
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->value(), 9);
  EXPECT_TRUE(on_io_thread);
}

TEST(AsioTest, KeepsTheContextRunningUntilAnswered) {
  controlled_function fn;
  auto s = serving_of(fn);
  bs::server srv(s, one_at_a_time());
  open_on_exit release{fn.released};
  auto blocker = block_executor(srv, fn);
  asio::io_context io;
  bool answered = false;
  bs::async_dispatch(srv, 4, asio::bind_executor(io, [&](bs::result<int> r) {
                       answered = r.ok() && *r == 16;
                     }));
  std::jthread releaser([&] {
    std::this_thread::sleep_for(20ms);
    fn.released.open();
  });
  io.run();  // without outstanding work this would return at once
  EXPECT_TRUE(answered);
  EXPECT_EQ(blocker.get().value(), 0);
}

TEST(AsioTest, AwaitsOneItemAndAnExplicitBatch) {
  controlled_function fn;
  auto s = serving_of(fn);
  bs::server srv(s, {.batch_size = 8, .batch_timeout = 0us});
  asio::io_context io;
  // Outside the coroutine: GCC 12 rejects initializer lists inside one.
  const std::vector<int> items{1, 2, 3};
  const std::vector<int> squared{1, 4, 9};
  run_coroutine(io, [&]() -> asio::awaitable<void> {
    bs::result<int> one = co_await bs::async_dispatch(srv, 5, asio::use_awaitable);
    EXPECT_EQ(one.value(), 25);
    bs::result<std::vector<int>> many =
        co_await bs::async_dispatch_many(srv, items, asio::use_awaitable);
    EXPECT_EQ(many.value(), squared);
    bs::result<int> timed =
        co_await bs::async_dispatch(srv, 6, {.timeout = 10s}, asio::use_awaitable);
    EXPECT_EQ(timed.value(), 36);
  });
}

TEST(AsioTest, UseFutureGivesTheResult) {
  controlled_function fn;
  auto s = serving_of(fn);
  bs::server srv(s, {.batch_timeout = 0us});
  std::future<bs::result<int>> f = bs::async_dispatch(srv, 7, asio::use_future);
  EXPECT_EQ(f.get().value(), 49);
  std::future<bs::result<std::vector<int>>> g =
      bs::async_dispatch_many(srv, {2, 4}, asio::use_future);
  EXPECT_EQ(g.get().value(), (std::vector<int>{4, 16}));
}

TEST(AsioTest, DeferredDispatchesOnlyWhenStarted) {
  controlled_function fn;
  auto s = serving_of(fn);
  bs::server srv(s, {.batch_timeout = 0us});
  auto later = bs::async_dispatch(srv, 8, asio::experimental::deferred);
  EXPECT_EQ(srv.stats().calls_accepted, 0U);
  asio::io_context io;
  std::optional<bs::result<int>> answer;
  std::move(later)(asio::bind_executor(io, [&](bs::result<int> r) { answer = std::move(r); }));
  io.run();
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->value(), 64);
  EXPECT_EQ(srv.stats().calls_accepted, 1U);
}

TEST(AsioTest, APlainCallbackRunsOnTheSystemExecutor) {
  controlled_function fn;
  auto s = serving_of(fn);
  bs::server srv(s, {.batch_timeout = 0us});
  std::promise<bs::result<int>> p;
  bs::async_dispatch(srv, 9, [&](bs::result<int> r) { p.set_value(std::move(r)); });
  EXPECT_EQ(p.get_future().get().value(), 81);
}

TEST(AsioTest, HandlersRunOnTheirStrandNeverOnAServerThread) {
  controlled_function fn;
  auto s = serving_of(fn);
  bs::server srv(s, {.batch_size = 16, .batch_timeout = 100us, .partitions = 2});
  asio::io_context io;
  auto strand = asio::make_strand(io);
  constexpr int calls = 400;
  std::atomic<int> on_strand{0};
  std::atomic<int> right{0};
  for (int i = 1; i <= calls; ++i) {
    bs::async_dispatch(srv, i, asio::bind_executor(strand, [&, i](bs::result<int> r) {
                         if (strand.running_in_this_thread()) ++on_strand;
                         if (r.ok() && *r == i * i) ++right;
                       }));
  }
  std::jthread second([&] { io.run(); });
  io.run();
  second.join();
  EXPECT_EQ(on_strand.load(), calls);
  EXPECT_EQ(right.load(), calls);
}

// An allocator that counts what it allocates.
template <class T>
struct counting_allocator {
  using value_type = T;
  std::atomic<int>* count;
  explicit counting_allocator(std::atomic<int>* c) noexcept : count(c) {}
  template <class U>
  counting_allocator(const counting_allocator<U>& other) noexcept : count(other.count) {}
  T* allocate(std::size_t n) {
    ++*count;
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) noexcept { std::allocator<T>().deallocate(p, n); }
  template <class U>
  bool operator==(const counting_allocator<U>& other) const noexcept {
    return count == other.count;
  }
};

TEST(AsioTest, HandsTheAnswerOverWithTheHandlersAllocator) {
  controlled_function fn;
  auto s = serving_of(fn);
  bs::server srv(s, {.batch_timeout = 0us});
  asio::io_context io;
  std::atomic<int> allocations{0};
  bool answered = false;
  bs::async_dispatch(srv, 2,
                     asio::bind_allocator(counting_allocator<int>(&allocations),
                                          asio::bind_executor(io, [&](bs::result<int> r) {
                                            answered = r.ok();
                                          })));
  io.run();
  EXPECT_TRUE(answered);
  EXPECT_GE(allocations.load(), 1);
}

class AsioCancellationTest : public ::testing::TestWithParam<asio::cancellation_type_t> {};

TEST_P(AsioCancellationTest, ASignalCancelsAQueuedCallWhoseItemNeverRuns) {
  controlled_function fn;
  auto s = serving_of(fn);
  bs::server srv(s, one_at_a_time());
  open_on_exit release{fn.released};
  auto blocker = block_executor(srv, fn);
  asio::io_context io;
  asio::cancellation_signal signal;
  std::optional<bs::result<int>> answer;
  bs::async_dispatch(srv, 7,
                     asio::bind_cancellation_slot(signal.slot(),
                                                  asio::bind_executor(io, [&](bs::result<int> r) {
                                                    answer = std::move(r);
                                                  })));
  wait_until_accepted(srv, 2);
  signal.emit(GetParam());  // the context is not running: this thread is its only one
  io.run();                 // cancelled while queued: answered with the blocker still held
  ASSERT_TRUE(answer.has_value());
  EXPECT_TRUE(is_error(*answer, bs::errc::cancelled)) << answer->error().to_string();
  fn.released.open();
  EXPECT_EQ(blocker.get().value(), 0);
  srv.stop();
  EXPECT_FALSE(fn.ran(7));
  signal.emit(GetParam());  // after completion: nothing
}

INSTANTIATE_TEST_SUITE_P(TerminalPartialAndAll, AsioCancellationTest,
                         ::testing::Values(asio::cancellation_type::terminal,
                                           asio::cancellation_type::partial,
                                           asio::cancellation_type::all));

TEST(AsioTest, TotalCancellationAloneIsIgnored) {
  controlled_function fn;
  auto s = serving_of(fn);
  bs::server srv(s, one_at_a_time());
  open_on_exit release{fn.released};
  auto blocker = block_executor(srv, fn);
  asio::io_context io;
  asio::cancellation_signal signal;
  std::optional<bs::result<int>> answer;
  bs::async_dispatch(srv, 7,
                     asio::bind_cancellation_slot(signal.slot(),
                                                  asio::bind_executor(io, [&](bs::result<int> r) {
                                                    answer = std::move(r);
                                                  })));
  wait_until_accepted(srv, 2);
  signal.emit(asio::cancellation_type::total);
  fn.released.open();
  io.run();
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->value(), 49);
}

TEST(AsioTest, TheCallersStopTokenStillCancelsWithASlotConnected) {
  controlled_function fn;
  auto s = serving_of(fn);
  bs::server srv(s, one_at_a_time());
  open_on_exit release{fn.released};
  auto blocker = block_executor(srv, fn);
  asio::io_context io;
  asio::cancellation_signal signal;
  std::stop_source stop;
  std::optional<bs::result<int>> answer;
  bs::async_dispatch(srv, 7, {.stop_token = stop.get_token()},
                     asio::bind_cancellation_slot(signal.slot(),
                                                  asio::bind_executor(io, [&](bs::result<int> r) {
                                                    answer = std::move(r);
                                                  })));
  wait_until_accepted(srv, 2);
  stop.request_stop();
  io.run();
  ASSERT_TRUE(answer.has_value());
  EXPECT_TRUE(is_error(*answer, bs::errc::cancelled));
  fn.released.open();
  srv.stop();
  EXPECT_FALSE(fn.ran(7));
}

TEST(AsioTest, OneSignalServesOperationAfterOperation) {
  controlled_function fn;
  auto s = serving_of(fn);
  bs::server srv(s, {.batch_timeout = 0us});
  asio::io_context io;
  asio::cancellation_signal signal;  // outlives every operation it was bound to
  int right = 0;
  run_coroutine(io, [&]() -> asio::awaitable<void> {
    for (int i = 1; i <= 20; ++i) {
      bs::result<int> r = co_await bs::async_dispatch(
          srv, i, asio::bind_cancellation_slot(signal.slot(), asio::use_awaitable));
      if (r.ok() && *r == i * i) ++right;
      signal.emit(asio::cancellation_type::all);  // between operations: nothing to cancel
    }
  });
  EXPECT_EQ(right, 20);
}

TEST(AsioTest, AwaitableOrCancelsTheLosingDispatch) {
  controlled_function fn;
  auto s = serving_of(fn);
  bs::server srv(s, one_at_a_time());
  open_on_exit release{fn.released};
  auto blocker = block_executor(srv, fn);
  asio::io_context io;
  std::optional<std::size_t> winner;
  run_coroutine(io, [&]() -> asio::awaitable<void> {
    asio::steady_timer timer(io, 20ms);
    auto first = co_await (bs::async_dispatch(srv, 7, asio::use_awaitable) ||
                           timer.async_wait(asio::use_awaitable));
    winner = first.index();
  });
  ASSERT_TRUE(winner.has_value());
  EXPECT_EQ(*winner, 1U);  // the timer: the dispatch waited behind the blocker
  EXPECT_EQ(srv.stats().calls_cancelled, 1U);
  fn.released.open();
  srv.stop();
  EXPECT_FALSE(fn.ran(7));
}

TEST(AsioTest, AwaitableOrReturnsTheDispatchThatWins) {
  controlled_function fn;
  auto s = serving_of(fn);
  bs::server srv(s, {.batch_timeout = 0us});
  asio::io_context io;
  run_coroutine(io, [&]() -> asio::awaitable<void> {
    asio::steady_timer timer(io, 60s);
    auto first = co_await (bs::async_dispatch(srv, 3, asio::use_awaitable) ||
                           timer.async_wait(asio::use_awaitable));
    EXPECT_EQ(first.index(), 0U);
    if (first.index() == 0) {
      EXPECT_EQ(std::get<0>(first).value(), 9);
    }
  });
}

TEST(AsioTest, ErrorsAreResults) {
  controlled_function fn;
  auto s = serving_of(fn);
  bs::server srv(s, one_at_a_time());
  asio::io_context io;
  run_coroutine(io, [&]() -> asio::awaitable<void> {
    bs::result<int> late =
        co_await bs::async_dispatch(srv, 2, {.timeout = 0us}, asio::use_awaitable);
    EXPECT_TRUE(is_error(late, bs::errc::timeout));
    bs::result<std::vector<int>> empty =
        co_await bs::async_dispatch_many(srv, std::vector<int>{}, asio::use_awaitable);
    EXPECT_TRUE(!empty.ok() && empty.error().code() == bs::errc::invalid_argument);
    bs::result<int> poisoned = co_await bs::async_dispatch(srv, -1, asio::use_awaitable);
    EXPECT_TRUE(is_error(poisoned, bs::errc::execution_failed));
  });
}

TEST(AsioTest, AnAnswerReadyAtOnceIsPostedNotRunInside) {
  controlled_function fn;
  auto s = serving_of(fn);
  bs::server srv(s, {.batch_timeout = 0us});
  asio::io_context io;
  bool answered = false;
  bs::async_dispatch_many(srv, std::vector<int>{},
                          asio::bind_executor(io, [&](auto r) { answered = !r.ok(); }));
  EXPECT_FALSE(answered);  // nothing ran inside async_dispatch_many
  io.run();
  EXPECT_TRUE(answered);
}

TEST(AsioTest, AStoppedServerAnswersOutstandingOperationsShuttingDown) {
  // The blocker outlives the server (shutdown_timeout passes while it runs):
  // its function is shared with it, so it may finish after this test.
  auto shared_fn = std::make_shared<controlled_function>();
  controlled_function& fn = *shared_fn;
  bs::serving<int, int> s([shared_fn](std::span<const int> xs) { return (*shared_fn)(xs); });
  auto srv = std::make_unique<bs::server<int, int>>(s, bs::server_options{.batch_size = 1,
                                                                          .batch_timeout = 0us,
                                                                          .shutdown_timeout = 1ms});
  open_on_exit release{fn.released};
  auto blocker = block_executor(*srv, fn);
  asio::io_context io;
  std::optional<bs::result<int>> answer;
  bs::async_dispatch(*srv, 5,
                     asio::bind_executor(io, [&](bs::result<int> r) { answer = std::move(r); }));
  wait_until_accepted(*srv, 2);
  srv.reset();  // the blocker keeps its thread past shutdown_timeout
  io.run();
  ASSERT_TRUE(answer.has_value());
  EXPECT_TRUE(is_error(*answer, bs::errc::shutting_down));
  // A dispatch to a stopped server is answered too (no_serving: it is gone).
  bs::server stopped(s, {.batch_timeout = 0us});
  stopped.stop();
  std::future<bs::result<int>> refused = bs::async_dispatch(stopped, 1, asio::use_future);
  const bs::result<int> answer_when_stopped = refused.get();
  EXPECT_TRUE(is_error(answer_when_stopped, bs::errc::no_serving))
      << (answer_when_stopped.ok() ? "ok" : answer_when_stopped.error().to_string());
}

// Counts how often it is called and whether it was destroyed uncalled.
struct watched_handler {
  std::shared_ptr<std::atomic<int>> calls;
  void operator()(const bs::result<int>& /*answer*/) { ++*calls; }
};

TEST(AsioTest, AContextDestroyedFirstDestroysTheHandlerUncalled) {
  controlled_function fn;
  auto s = serving_of(fn);
  bs::server srv(s, one_at_a_time());
  open_on_exit release{fn.released};
  auto blocker = block_executor(srv, fn);
  auto calls = std::make_shared<std::atomic<int>>(0);
  asio::cancellation_signal signal;
  {
    auto io = std::make_unique<asio::io_context>();
    bs::async_dispatch(srv, 6, asio::bind_executor(*io, watched_handler{calls}));
    bs::async_dispatch(srv, 7,
                       asio::bind_cancellation_slot(signal.slot(),
                                                    asio::bind_executor(*io,
                                                                        watched_handler{calls})));
    wait_until_accepted(srv, 3);
    io.reset();  // never run
  }
  EXPECT_EQ(calls->load(), 0);
  std::weak_ptr<std::atomic<int>> watch = calls;
  calls.reset();
  EXPECT_TRUE(watch.expired());  // both handlers destroyed with their context
  fn.released.open();
  EXPECT_EQ(blocker.get().value(), 0);
  srv.stop();  // the late answers find no context: nothing to do
  EXPECT_FALSE(fn.ran(7));  // nobody waited for it: cancelled
}

// Contexts destroyed (never run) while the server answers their operations
// on its own threads: the shutdown and the answers race. No handler is
// called, every one is destroyed, nothing touches a gone context.
TEST(AsioTest, ContextsDestroyedWhileAnswersArriveDropEveryHandler) {
  bs::serving<int, int> echo([](std::span<const int> xs) {
    return std::vector<int>(xs.begin(), xs.end());
  });
  bs::server srv(echo, {.batch_size = 8, .batch_timeout = 0us, .partitions = 2});
  std::minstd_rand rng(7);
  for (int round = 0; round < 50; ++round) {
    auto calls = std::make_shared<std::atomic<int>>(0);
    std::weak_ptr<std::atomic<int>> watch = calls;
    std::vector<asio::cancellation_signal> signals(64);  // one per operation, outliving them
    {
      asio::io_context io;
      const int operations = 1 + static_cast<int>(rng() % 64);
      for (int i = 0; i < operations; ++i) {
        if (i % 3 == 0) {
          bs::async_dispatch(
              srv, i,
              asio::bind_cancellation_slot(signals[static_cast<std::size_t>(i)].slot(),
                                           asio::bind_executor(io, watched_handler{calls})));
        } else {
          bs::async_dispatch(srv, i, asio::bind_executor(io, watched_handler{calls}));
        }
      }
      if (rng() % 2 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 200));
    }  // destroyed without running
    EXPECT_EQ(calls->load(), 0);
    calls.reset();
    EXPECT_TRUE(watch.expired());
  }
}

TEST(AsioTest, AStoppedContextRunsTheAnswerWhenItRunsAgain) {
  controlled_function fn;
  auto s = serving_of(fn);
  bs::server srv(s, one_at_a_time());
  open_on_exit release{fn.released};
  auto blocker = block_executor(srv, fn);
  asio::io_context io;
  std::optional<bs::result<int>> answer;
  bs::async_dispatch(srv, 5,
                     asio::bind_executor(io, [&](bs::result<int> r) { answer = std::move(r); }));
  io.stop();
  io.run();  // stopped: returns at once
  EXPECT_FALSE(answer.has_value());
  fn.released.open();
  EXPECT_EQ(blocker.get().value(), 0);
  io.restart();
  io.run();
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->value(), 25);
}

// x, x + step, x + 2 step (GCC 12 rejects initializer lists in coroutines).
std::vector<int> three_from(int x, int step = 1) { return {x, x + step, x + 2 * step}; }

// Many coroutines on a context run by two threads, each dispatching single
// items and batches, some cancelled through a signal or a racing timer:
// every answer is the right result or cancelled.
TEST(AsioTest, ManyCoroutinesOnTwoThreadsGetEveryAnswerRight) {
  bs::serving<int, int> doubles([](std::span<const int> xs) {
    std::vector<int> out;
    for (int x : xs) out.push_back(2 * x);
    return out;
  });
  bs::server srv(doubles, {.batch_size = 32, .batch_timeout = 200us, .partitions = 2});
  asio::io_context io;
  constexpr int coroutines = 128;
  constexpr int rounds = 40;
  std::atomic<int> right{0};
  std::atomic<int> cancelled{0};
  std::atomic<int> wrong{0};
  std::atomic<int> finished{0};
  for (int c = 0; c < coroutines; ++c) {
    // Each on a strand of its own: a signal is emitted where its operation
    // was started and is answered, as asio requires.
    asio::co_spawn(
        asio::make_strand(io),
        [&, c]() -> asio::awaitable<void> {
          std::minstd_rand rng(static_cast<unsigned>(c) + 1);
          auto strand = co_await asio::this_coro::executor;
          for (int round = 0; round < rounds; ++round) {
            const int x = c * 1000 + round;
            const unsigned kind = rng() % 4;
            if (kind == 0) {
              auto many = co_await bs::async_dispatch_many(srv, three_from(x), asio::use_awaitable);
              if (many.ok() && *many == three_from(2 * x, 2)) {
                ++right;
              } else {
                ++wrong;
              }
            } else if (kind == 1) {
              asio::steady_timer timer(io, std::chrono::microseconds(rng() % 300));
              auto first = co_await (bs::async_dispatch(srv, x, asio::use_awaitable) ||
                                     timer.async_wait(asio::use_awaitable));
              const bool timer_won = first.index() == 1;
              if (!timer_won && std::get<0>(first).ok() && *std::get<0>(first) == 2 * x) {
                ++right;
              } else if (timer_won || is_error(std::get<0>(first), bs::errc::cancelled)) {
                ++cancelled;  // a cancelled answer: the timer's cancel and the answer crossed
              } else {
                ++wrong;
              }
            } else if (kind == 2) {
              // A signal emitted on the coroutine's strand, racing the answer.
              asio::cancellation_signal signal;
              asio::post(strand, [&signal] { signal.emit(asio::cancellation_type::terminal); });
              auto r = co_await bs::async_dispatch(
                  srv, x, asio::bind_cancellation_slot(signal.slot(), asio::use_awaitable));
              if (r.ok() && *r == 2 * x) {
                ++right;
              } else if (is_error(r, bs::errc::cancelled)) {
                ++cancelled;
              } else {
                ++wrong;
              }
              // The posted emit may still be queued: let it run before the
              // signal goes.
              co_await asio::post(strand, asio::use_awaitable);
            } else {
              auto r = co_await bs::async_dispatch(srv, x, asio::use_awaitable);
              if (r.ok() && *r == 2 * x) {
                ++right;
              } else {
                ++wrong;
              }
            }
          }
          ++finished;
        },
        asio::detached);
  }
  std::jthread second([&] { io.run(); });
  io.run();
  second.join();
  EXPECT_EQ(finished.load(), coroutines);
  EXPECT_EQ(wrong.load(), 0);
  constexpr int operations = coroutines * rounds;
  EXPECT_EQ(right.load() + cancelled.load(), operations);
  EXPECT_GT(right.load(), 0);
}

}  // namespace
