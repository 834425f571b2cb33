// What a user's code may do to the library, and what it gets: never a hang, a
// crash or a lost result. Extreme values, moved-from handles, conflicting
// options, stops and dispatches from the server's own threads, types whose
// moves throw.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "batch_serving/event_stream.hpp"
#include "batch_serving/future.hpp"
#include "batch_serving/registry.hpp"
#include "batch_serving/server.hpp"
#include "batch_serving/serving.hpp"
#include "batch_serving/streaming.hpp"
#include "batch_serving/streaming_server.hpp"
#include "support/callback_record.hpp"
#include "support/controlled_function.hpp"

namespace bs = batch_serving;
using namespace std::chrono_literals;
using bs::testing::controlled_function;
using bs::testing::open_on_exit;

namespace {
std::vector<int> squares_of(std::span<const int> xs) {
  std::vector<int> out;
  for (int x : xs) out.push_back(x * x);
  return out;
}
bs::serving<int, int> squares() { return bs::serving<int, int>(squares_of); }

::testing::AssertionResult contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\" does not contain \"" << part << "\"";
}
}  // namespace

// ---- extreme durations saturate ----------------------------------------------

TEST(MisuseTest, ACallTimeoutPastTheClocksRangeMeansNoTimeout) {
  bs::server srv(squares(), {.batch_size = 1, .batch_timeout = 0us});
  EXPECT_EQ(srv.dispatch(2, {.timeout = std::chrono::microseconds::max()}).value(), 4);
  EXPECT_EQ(srv.dispatch(3, {.timeout = std::chrono::duration_cast<std::chrono::microseconds>(
                                 std::chrono::years(300))})
                .value(),
            9);
  EXPECT_EQ(srv.dispatch(4, {.deadline = std::chrono::steady_clock::time_point::max()}).value(),
            16);
  EXPECT_EQ(srv.stats().calls_timed_out, 0u);
}

TEST(MisuseTest, ADefaultTimeoutPastTheClocksRangeTimesNothingOut) {
  bs::server srv(squares(), {.batch_size = 1,
                             .batch_timeout = 0us,
                             .default_timeout = std::chrono::microseconds::max()});
  EXPECT_EQ(srv.dispatch(5).value(), 25);
}

TEST(MisuseTest, ABatchTimeoutPastTheClocksRangeWaitsForAFullBatch) {
  bs::server srv(squares(), {.batch_size = 2, .batch_timeout = std::chrono::microseconds::max()});
  // Alone, it never runs: its own deadline answers it.
  auto alone = srv.dispatch(1, {.timeout = 50ms});
  ASSERT_FALSE(alone.ok());
  EXPECT_EQ(alone.error().code(), bs::errc::timeout);
  EXPECT_EQ(srv.stats().items_executed, 0u) << "an overflowed window ran the batch at once";
  EXPECT_EQ(srv.dispatch_many({2, 3}).value(), (std::vector<int>{4, 9}));  // a full batch runs
}

TEST(MisuseTest, AShutdownTimeoutPastTheClocksRangeStillDrains) {
  controlled_function fn;
  bs::server srv(bs::testing::serving_of(fn),
                 {.batch_size = 1,
                  .batch_timeout = 0us,
                  .shutdown_timeout = std::chrono::milliseconds::max()});
  auto running = bs::testing::block_executor(srv, fn);
  auto queued = srv.dispatch_async(3);
  std::thread releaser([&] {
    std::this_thread::sleep_for(20ms);
    fn.released.open();
  });
  srv.stop();  // waits for the running execution, then drains the queue
  releaser.join();
  EXPECT_EQ(running.get().value(), 0);
  EXPECT_EQ(queued.get().value(), 9);
}

// ---- moved-from handles --------------------------------------------------------

TEST(MisuseTest, AMovedFromServerAnswersEveryFormWithAClearError) {
  bs::server original(squares(), {.batch_size = 1, .batch_timeout = 0us});
  bs::server moved = std::move(original);
  EXPECT_EQ(moved.dispatch(2).value(), 4);
  auto expect_moved_from = [](const bs::error& e) {
    EXPECT_EQ(e.code(), bs::errc::invalid_argument);
    EXPECT_TRUE(contains(e.message(), "moved from"));
  };
  expect_moved_from(original.dispatch(2).error());  // NOLINT(bugprone-use-after-move)
  expect_moved_from(original.dispatch_many({1, 2}).error());  // NOLINT(bugprone-use-after-move)
  expect_moved_from(original.dispatch_async(2).get().error());  // NOLINT(bugprone-use-after-move)
  expect_moved_from(
      original.dispatch_many_async({1}).get().error());  // NOLINT(bugprone-use-after-move)
  bs::testing::callback_record<int> record;
  original.dispatch_async(2, record.callback());  // NOLINT(bugprone-use-after-move)
  expect_moved_from(record.only().error());
  EXPECT_EQ(original.stats().calls_accepted, 0u);  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(original.name(), "");  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(original.batch_size(), 0u);  // NOLINT(bugprone-use-after-move)
  original.stop();  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(moved.dispatch(3).value(), 9) << "stopping the moved-from one left the server running";
}

TEST(MisuseTest, AMovedFromStreamingServerAnswersWithAnErrorEvent) {
  bs::server original(squares().streaming({}), {.batch_size = 1, .batch_timeout = 0us});
  bs::server moved = std::move(original);
  auto all = original.dispatch(2).collect();  // NOLINT(bugprone-use-after-move)
  ASSERT_FALSE(all.ok());
  EXPECT_TRUE(contains(all.error().message(), "moved from"));
  bs::errc code{};
  original.dispatch_async(2, [&](bs::event<int> ev) {  // NOLINT(bugprone-use-after-move)
    if (ev.kind() == bs::event_kind::error) code = ev.error().code();
  });
  EXPECT_EQ(code, bs::errc::invalid_argument);
  EXPECT_EQ(moved.dispatch(3).collect().value(), (std::vector<int>{9}));
}

TEST(MisuseTest, AServerCanBeMoveAssignedAndStopsTheOneItHeld) {
  bs::server first(squares(), {.name = "misuse.first", .batch_size = 1, .batch_timeout = 0us});
  bs::server second(squares(), {.name = "misuse.second", .batch_size = 1, .batch_timeout = 0us});
  first = std::move(second);
  EXPECT_FALSE(bs::is_running("misuse.first")) << "the server it held is stopped";
  EXPECT_TRUE(bs::is_running("misuse.second"));
  EXPECT_EQ(first.name(), "misuse.second");
  EXPECT_EQ(first.dispatch(4).value(), 16);
}

TEST(MisuseTest, AFutureWithoutACallAnswersEveryMemberWithoutBlocking) {
  bs::server srv(squares(), {.batch_size = 1, .batch_timeout = 0us});
  auto f = srv.dispatch_async(3);
  EXPECT_EQ(f.get().value(), 9);
  EXPECT_FALSE(f.valid());
  EXPECT_TRUE(f.ready());
  f.wait();
  EXPECT_TRUE(f.wait_for(1s));
  EXPECT_FALSE(f.cancel());
  auto again = f.get();
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), bs::errc::invalid_argument);
  EXPECT_TRUE(contains(again.error().message(), "get() was called already"));
  bs::future<int> never;
  EXPECT_EQ(never.get().error().code(), bs::errc::invalid_argument);
}

TEST(MisuseTest, AMovedFromEventStreamEndsAtOnce) {
  bs::server srv(squares().streaming({}), {.batch_size = 1, .batch_timeout = 0us});
  auto stream = srv.dispatch(2);
  auto taken = std::move(stream);
  EXPECT_FALSE(stream.next().has_value());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(stream.collect().error().code(), bs::errc::invalid_argument);
  EXPECT_EQ(taken.collect().value(), (std::vector<int>{4}));
}

// ---- conflicting options -------------------------------------------------------

TEST(MisuseTest, AServerBatchSizeAboveTheServingsIsRejectedNamingBoth) {
  try {
    bs::server srv(squares().batch_size(2), {.batch_size = 4});
    FAIL() << "started with executions larger than the serving allows";
  } catch (const bs::serving_error& e) {
    EXPECT_EQ(e.code(), bs::errc::invalid_argument);
    EXPECT_TRUE(contains(e.what(), "server_options.batch_size 4"));
    EXPECT_TRUE(contains(e.what(), "batch_size(2)"));
  }
}

TEST(MisuseTest, AServerBatchSizeBelowTheServingsIsKept) {
  bs::server srv(squares().batch_size(8), {.batch_size = 2, .batch_timeout = 0us});
  EXPECT_EQ(srv.batch_size(), 2u);
}

// ---- stop requested before the call finishes ------------------------------------

// The stop callback is armed before the call is queued, so a stop requested
// while the call runs (here by the batch function itself) always cancels it.
TEST(MisuseTest, AStopRequestedBeforeTheCallFinishesAlwaysCancelsIt) {
  std::atomic<std::stop_source*> current{nullptr};
  bs::serving<int, int> stops_its_caller([&](std::span<const int> xs) {
    current.load()->request_stop();
    return std::vector<int>(xs.begin(), xs.end());
  });
  bs::server srv(stops_its_caller, {.batch_size = 1, .batch_timeout = 0us});
  for (int i = 0; i < 200; ++i) {
    std::stop_source source;
    current = &source;
    auto r = i % 2 == 0 ? srv.dispatch(i, {.stop_token = source.get_token()})
                        : srv.dispatch_async(i, {.stop_token = source.get_token()}).get();
    ASSERT_FALSE(r.ok()) << "call " << i << " answered ok after its stop was requested";
    ASSERT_EQ(r.error().code(), bs::errc::cancelled);
  }
}

// ---- user types whose copies and moves throw -------------------------------------

namespace {
// A value whose copy throws when it is `copy_throws`, and whose move throws
// when it is negative and the move happens off the test's thread (a
// partition thread), or on it when `moves_throw_on_caller` is set.
struct fragile {
  static constexpr int copy_throws = -100;
  static inline std::atomic<bool> moves_throw_on_caller{false};
  static inline std::thread::id caller;
  int value = 0;

  fragile(int v) : value(v) {}  // NOLINT(google-explicit-constructor)
  fragile(const fragile& other) : value(other.value) {
    if (value == copy_throws) throw std::runtime_error("fragile copy");
  }
  fragile(fragile&& other) : value(other.value) {  // NOLINT(bugprone-exception-escape): on purpose
    const bool on_caller = std::this_thread::get_id() == caller;
    if (value < 0 && on_caller == moves_throw_on_caller.load()) {
      throw std::runtime_error("fragile move");
    }
  }
  fragile& operator=(const fragile&) = default;
  fragile& operator=(fragile&&) = default;
};

// A serving whose results are fragile: its value, wrapped.
bs::serving<int, fragile> fragile_results() {
  return bs::serving<int, fragile>([](std::span<const int> xs) {
    std::vector<fragile> out;
    for (int x : xs) out.emplace_back(x);
    return out;
  });
}

// Sets who throws for one test.
struct fragile_moves {
  explicit fragile_moves(bool on_caller) {
    fragile::caller = std::this_thread::get_id();
    fragile::moves_throw_on_caller = on_caller;
  }
  ~fragile_moves() { fragile::moves_throw_on_caller = false; }
};
}  // namespace

TEST(MisuseTest, AnInputWhoseMoveThrowsFailsOnlyItsOwnCall) {
  const fragile_moves off_caller(false);
  bs::serving<fragile, int> values([](std::span<const fragile> xs) {
    std::vector<int> out;
    for (const auto& x : xs) out.push_back(x.value);
    return out;
  });
  bs::server srv(values, {.batch_size = 3, .batch_timeout = 100ms});
  auto first = srv.dispatch_async(fragile(1));
  auto poisoned = srv.dispatch_async(fragile(-1));
  auto last = srv.dispatch_async(fragile(3));  // the batch is full: it runs
  EXPECT_EQ(first.get().value(), 1);
  EXPECT_EQ(last.get().value(), 3);
  auto bad = poisoned.get();
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), bs::errc::execution_failed);
  EXPECT_TRUE(contains(bad.error().message(),
                       "moving an input into the batch threw: fragile move"));
  EXPECT_EQ(srv.dispatch(fragile(4)).value(), 4) << "the server kept serving";
}

TEST(MisuseTest, AResultWhoseMoveThrowsFailsOnlyItsOwnCall) {
  const fragile_moves off_caller(false);
  const auto wrap = fragile_results();
  bs::server srv(wrap, {.batch_size = 3, .batch_timeout = 10s});
  auto first = srv.dispatch_async(1);
  auto poisoned = srv.dispatch_async(-1);  // its result is moved to it on the partition thread
  auto last = srv.dispatch_async(3);
  EXPECT_EQ(first.get().value().value, 1);
  EXPECT_EQ(last.get().value().value, 3);
  auto bad = poisoned.get();
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), bs::errc::execution_failed);
  EXPECT_TRUE(contains(bad.error().message(), "moving a result to its caller threw: fragile move"));
}

TEST(MisuseTest, AResultWhoseMoveThrowsInTheCallersThreadIsAnErrorThere) {
  const fragile_moves on_caller(true);
  const auto wrap = fragile_results();
  bs::server srv(wrap, {.batch_size = 1, .batch_timeout = 0us});
  auto bad = srv.dispatch_async(-1).get();
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), bs::errc::execution_failed);
  EXPECT_TRUE(contains(bad.error().message(), "moving the result to its caller threw"));
  EXPECT_FALSE(srv.dispatch(-2).ok());
}

TEST(MisuseTest, AThrowingCopyOfAnInputIsReportedAsSuchNotAsMapInputs) {
  bs::serving<fragile, int> values([](std::span<const fragile> xs) {
    return std::vector<int>(xs.size(), 0);
  });
  bs::server srv(values, {.batch_size = 1, .batch_timeout = 0us});
  std::vector<fragile> copy_fails;
  copy_fails.reserve(2);  // fragile's move may throw: a reallocation would copy
  copy_fails.emplace_back(1);
  copy_fails.emplace_back(fragile::copy_throws);
  auto r = srv.dispatch_many(copy_fails);  // copied into the call
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), bs::errc::invalid_argument);
  EXPECT_TRUE(contains(r.error().message(), "copying the input threw: fragile copy"))
      << r.error().message();
}

TEST(MisuseTest, TheAsyncSpanFormsAnswerAThrowingCopyInsteadOfThrowing) {
  bs::serving<fragile, int> values([](std::span<const fragile> xs) {
    return std::vector<int>(xs.size(), 0);
  });
  bs::server srv(values, {.batch_size = 1, .batch_timeout = 0us});
  std::vector<fragile> copy_fails;
  copy_fails.reserve(2);
  copy_fails.emplace_back(1);
  copy_fails.emplace_back(fragile::copy_throws);
  const std::span<const fragile> items(copy_fails);

  auto by_future = srv.dispatch_many_async(items).get();
  ASSERT_FALSE(by_future.ok());
  EXPECT_EQ(by_future.error().code(), bs::errc::invalid_argument);
  EXPECT_TRUE(contains(by_future.error().message(), "copying the input threw: fragile copy"))
      << by_future.error().message();

  std::optional<bs::result<std::vector<int>>> by_callback;
  srv.dispatch_many_async(items, [&](bs::result<std::vector<int>> r) { by_callback = r; });
  ASSERT_TRUE(by_callback.has_value());  // refused at once: answered in this thread
  ASSERT_FALSE(by_callback->ok());
  EXPECT_EQ(by_callback->error().code(), bs::errc::invalid_argument);
  EXPECT_EQ(srv.stats().calls_accepted, 0U);
}

// Copying throws for `copy_throws`; moving never throws but is not noexcept,
// so a growing std::vector copies it.
struct copy_throws_on_growth {
  static constexpr int copy_throws = -1;
  int value = 0;

  copy_throws_on_growth(int v) : value(v) {}  // NOLINT(google-explicit-constructor)
  copy_throws_on_growth(const copy_throws_on_growth& other) : value(other.value) {
    if (value == copy_throws) throw std::runtime_error("copy on growth");
  }
  copy_throws_on_growth(copy_throws_on_growth&& other) : value(other.value) {}  // NOLINT
  copy_throws_on_growth& operator=(const copy_throws_on_growth&) = default;
  copy_throws_on_growth& operator=(copy_throws_on_growth&&) = default;
};

TEST(MisuseTest, GatheringABatchNeverCopiesOneCallsItemsOnAnothersAccount) {
  bs::serving<copy_throws_on_growth, int> values([](std::span<const copy_throws_on_growth> xs) {
    std::vector<int> out;
    for (const auto& x : xs) out.push_back(x.value);
    return out;
  });
  // Both calls in one batch: it runs when full.
  bs::server srv(values, {.batch_size = 2, .batch_timeout = 10s});
  auto first = srv.dispatch_async(copy_throws_on_growth(copy_throws_on_growth::copy_throws));
  auto second = srv.dispatch_async(copy_throws_on_growth(7));
  EXPECT_EQ(first.get().value(), copy_throws_on_growth::copy_throws);
  EXPECT_EQ(second.get().value(), 7);
  EXPECT_EQ(srv.stats().executions, 1U);
}

TEST(MisuseTest, MoveOnlyInputsAreMovedThrough) {
  bs::serving<std::unique_ptr<int>, int> deref([](std::span<const std::unique_ptr<int>> xs) {
    std::vector<int> out;
    for (const auto& x : xs) out.push_back(*x);
    return out;
  });
  bs::server srv(deref, {.batch_size = 2, .batch_timeout = 0us});
  EXPECT_EQ(srv.dispatch(std::make_unique<int>(7)).value(), 7);
  EXPECT_EQ(srv.dispatch_async(std::make_unique<int>(8)).get().value(), 8);
  std::vector<std::unique_ptr<int>> two;
  two.push_back(std::make_unique<int>(1));
  two.push_back(std::make_unique<int>(2));
  EXPECT_EQ(srv.dispatch_many_async(std::move(two)).get().value(), (std::vector<int>{1, 2}));
}

// ---- blocking and stopping from the server's own threads -------------------------

namespace {
using clock_type = std::chrono::steady_clock;

// A squaring server whose batch function and callbacks can reach it.
struct self_reaching {
  std::atomic<bs::server<int, int>*> srv{nullptr};
};
}  // namespace

TEST(MisuseTest, ABlockingDispatchFromTheBatchFunctionIsRefusedAtOnce) {
  self_reaching self;
  std::optional<bs::error> inner;
  bs::serving<int, int> nested([&](std::span<const int> xs) {
    if (xs[0] == 1) inner = self.srv.load()->dispatch(2).error();
    return squares_of(xs);
  });
  bs::server srv(nested, {.batch_size = 1, .batch_timeout = 0us});
  self.srv = &srv;
  EXPECT_EQ(srv.dispatch(1).value(), 1);
  ASSERT_TRUE(inner.has_value());
  EXPECT_EQ(inner->code(), bs::errc::invalid_argument);
  EXPECT_TRUE(contains(inner->message(), "would wait for that thread itself"));
}

TEST(MisuseTest, ABlockingDispatchFromACompletionCallbackIsRefusedAtOnce) {
  bs::server srv(squares(), {.batch_size = 1, .batch_timeout = 0us});
  bs::testing::callback_record<int> nested;
  bs::testing::gate done;
  srv.dispatch_async(3, [&](bs::result<int>) {
    nested.callback()(srv.dispatch(4));
    done.open();
  });
  done.wait();
  EXPECT_EQ(nested.only().error().code(), bs::errc::invalid_argument);
  EXPECT_EQ(srv.dispatch(5).value(), 25) << "the server kept serving";
}

TEST(MisuseTest, WaitingForAQueuedCallOnTheServersOwnThreadAnswersItInsteadOfHanging) {
  bs::server srv(squares(), {.batch_size = 1, .batch_timeout = 0us});
  bs::testing::callback_record<int> waited;
  srv.dispatch_async(3, [&](bs::result<int>) { waited.callback()(srv.dispatch_async(4).get()); });
  waited.done.wait();
  EXPECT_EQ(waited.only().error().code(), bs::errc::invalid_argument);
  EXPECT_TRUE(contains(waited.only().error().message(), "while still queued"));
}

namespace {
// Seven callers share one execution; the batch function (or the first
// caller's callback) stops the server. Returns how long that stop() took.
template <class StopFrom>
clock_type::duration stop_from_inside(StopFrom where, std::vector<bs::result<int>>& answers) {
  self_reaching self;
  std::atomic<clock_type::duration::rep> took{-1};
  const auto timed_stop = [&] {
    const auto start = clock_type::now();
    self.srv.load()->stop();
    took = (clock_type::now() - start).count();
  };
  bs::serving<int, int> stopping([&](std::span<const int> xs) {
    if (where == 0) timed_stop();
    return squares_of(xs);
  });
  auto srv = std::make_unique<bs::server<int, int>>(
      stopping, bs::server_options{.batch_size = 7, .batch_timeout = 10s, .shutdown_timeout = 10s});
  self.srv = srv.get();
  std::vector<bs::future<int>> futures;
  bs::testing::gate first_answered;
  srv->dispatch_async(0, [&](bs::result<int> r) {
    if (where == 1) timed_stop();
    answers.push_back(std::move(r));
    first_answered.open();
  });
  for (int i = 1; i < 7; ++i) futures.push_back(srv->dispatch_async(i));
  first_answered.wait();
  for (auto& f : futures) answers.push_back(f.get());
  srv.reset();  // waits for the shutdown the stop began
  return clock_type::duration(took.load());
}
}  // namespace

TEST(MisuseTest, StopFromTheBatchFunctionReturnsPromptlyAndItsCallersGetTheirResults) {
  std::vector<bs::result<int>> answers;
  const auto took = stop_from_inside(0, answers);
  EXPECT_LT(took, 1s) << "stop() waited for the partition it runs on";
  ASSERT_EQ(answers.size(), 7u);
  for (std::size_t i = 0; i < answers.size(); ++i) {
    ASSERT_TRUE(answers[i].ok()) << i << ": " << answers[i].error().to_string();
  }
}

TEST(MisuseTest, StopFromACompletionCallbackReturnsPromptlyAndTheOthersGetTheirResults) {
  std::vector<bs::result<int>> answers;
  const auto took = stop_from_inside(1, answers);
  EXPECT_LT(took, 1s) << "stop() waited for the partition it runs on";
  ASSERT_EQ(answers.size(), 7u);
  for (const auto& a : answers) ASSERT_TRUE(a.ok()) << a.error().to_string();
}

TEST(MisuseTest, DestroyingTheServerFromACompletionCallbackReturnsPromptly) {
  auto* srv =
      new bs::server<int, int>(squares(),
                               {.batch_size = 2, .batch_timeout = 10s, .shutdown_timeout = 10s});
  std::atomic<clock_type::duration::rep> took{-1};
  bs::testing::gate destroyed;
  srv->dispatch_async(1, [&](bs::result<int>) {
    const auto start = clock_type::now();
    delete srv;
    took = (clock_type::now() - start).count();
    destroyed.open();
  });
  auto other = srv->dispatch_async(2);  // fills the batch: both run at once
  destroyed.wait();
  EXPECT_LT(clock_type::duration(took.load()), 1s);
  EXPECT_EQ(other.get().value(), 4);
}

TEST(MisuseTest, StopFromAStreamsEventCallbackReturnsPromptly) {
  auto srv = std::make_unique<bs::streaming_server<int, int>>(
      squares().streaming({}),
      bs::server_options{.batch_size = 1, .batch_timeout = 0us, .shutdown_timeout = 10s});
  std::atomic<clock_type::duration::rep> took{-1};
  bs::testing::gate ended;
  srv->dispatch_async(3, [&](bs::event<int> ev) {
    if (ev.kind() == bs::event_kind::item) {
      const auto start = clock_type::now();
      srv->stop();
      took = (clock_type::now() - start).count();
    }
    if (ev.kind() == bs::event_kind::end || ev.kind() == bs::event_kind::error) ended.open();
  });
  ended.wait();
  srv.reset();
  EXPECT_GE(took.load(), 0);
  EXPECT_LT(clock_type::duration(took.load()), 1s);
}

// ---- fork() ---------------------------------------------------------------------

namespace {
#if defined(__SANITIZE_THREAD__)
constexpr bool thread_sanitizer = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr bool thread_sanitizer = true;
#else
constexpr bool thread_sanitizer = false;
#endif
#else
constexpr bool thread_sanitizer = false;
#endif

// Runs `child` in a fork()ed child and returns its exit status, or -1 if it
// has not exited within `limit` (it is then killed: a hang).
template <class Child>
int exit_status_of_fork(Child child, std::chrono::milliseconds limit) {
  const pid_t pid = fork();
  if (pid == 0) _exit(child());
  const auto until = clock_type::now() + limit;
  int status = 0;
  while (clock_type::now() < until) {
    if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -2;
    std::this_thread::sleep_for(5ms);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1;
}
}  // namespace

TEST(MisuseTest, AForkedChildGetsNoServingAtOnceFromItsParentsServerAndCanStartItsOwn) {
  bs::server srv(squares(), {.name = "misuse.fork", .batch_size = 1, .batch_timeout = 0us});
  EXPECT_EQ(srv.dispatch(2, {.timeout = 1s}).value(), 4);  // the deadline timer runs too
  // POSIX lets the child of a multi-threaded process use only async-signal-safe
  // functions; glibc's malloc is fork-safe anyway, AddressSanitizer's is not
  // while another thread is inside it. Let the server's threads go idle first.
  std::this_thread::sleep_for(50ms);
  const int status = exit_status_of_fork(
      [&] {
        auto r = srv.dispatch(3, {.timeout = 1s});
        if (r.ok() || r.error().code() != bs::errc::no_serving) return 1;
        auto by_name = bs::dispatch<int, int>("misuse.fork", 3);
        if (by_name.ok() || by_name.error().code() != bs::errc::no_serving) return 2;
        srv.stop();  // returns at once
        if (thread_sanitizer) return 0;  // TSan cannot start threads after such a fork()
        bs::server own(squares(), {.batch_size = 1, .batch_timeout = 0us});
        if (own.dispatch(4).value_or(0) != 16) return 3;
        return 0;
      },
      5s);
  EXPECT_EQ(status, 0) << "-1: the child hung; 1-3: which check failed";
  EXPECT_EQ(srv.dispatch(5).value(), 25) << "the parent's server is untouched";
}

// ---- what the types accept --------------------------------------------------------

namespace {
struct not_a_module {};
template <class Module>
concept makes_a_serving = requires { bs::serving<int, int>::from_module<Module>(); };
}  // namespace

TEST(MisuseTest, WrongBatchFunctionsAndModulesAreRejectedByOneDeletedOverload) {
  auto takes_vector = [](const std::vector<int>& xs) { return xs; };
  auto returns_one = [](std::span<const int>) { return 1; };
  static_assert(!std::is_constructible_v<bs::serving<int, int>, decltype(takes_vector)>);
  static_assert(!std::is_constructible_v<bs::serving<int, int>, decltype(returns_one)>);
  static_assert(!makes_a_serving<not_a_module>);
  SUCCEED();
}

TEST(MisuseTest, MapInputsAndMapResultsMayBeMoveOnly) {
  auto offset = std::make_unique<int>(100);
  auto suffix = std::make_unique<std::string>(" units");
  const auto mapped =
      squares()
          .map_inputs([o = std::move(offset)](const std::string& s) {
            return std::stoi(s) + *o - 100;
          })
          .map_results([s = std::move(suffix)](int x) { return std::to_string(x) + *s; });
  bs::server srv(mapped, {.batch_size = 2, .batch_timeout = 0us});
  EXPECT_EQ(srv.dispatch("3").value(), "9 units");
  EXPECT_EQ(mapped.run("4").value(), "16 units");
}

TEST(MisuseTest, ByNameCallbacksMayBeMoveOnly) {
  bs::server srv(squares(),
                 {.name = "misuse.move_only_callback", .batch_size = 1, .batch_timeout = 0us});
  auto answer = std::make_unique<std::promise<int>>();
  auto got = answer->get_future();
  bs::dispatch_async<int, int>("misuse.move_only_callback", 6,
                               [p = std::move(answer)](bs::result<int> r) {
                                 p->set_value(r.value_or(-1));
                               });
  EXPECT_EQ(got.get(), 36);
}

TEST(MisuseTest, SyncAndAsyncFormsTakeTheSameArguments) {
  bs::server srv(squares(), {.batch_size = 4, .batch_timeout = 0us});
  const std::vector<int> items{1, 2};
  const std::span<const int> view(items);
  EXPECT_EQ(srv.dispatch_many(view).value(), srv.dispatch_many_async(view).get().value());
  EXPECT_EQ(srv.dispatch_many({3, 4}).value(), srv.dispatch_many_async({3, 4}).get().value());
  EXPECT_EQ(srv.dispatch_many(std::vector<int>{5}).value(),
            srv.dispatch_many_async(std::vector<int>{5}).get().value());
  bs::testing::callback_record<std::vector<int>> record;
  srv.dispatch_many_async(view, record.callback());
  record.done.wait();
  EXPECT_EQ(record.only().value(), (std::vector<int>{1, 4}));
}

TEST(MisuseTest, AMoveOnlyExplicitBatchIsMovedThroughTheBlockingForm) {
  bs::serving<std::unique_ptr<int>, int> deref([](std::span<const std::unique_ptr<int>> xs) {
    std::vector<int> out;
    for (const auto& x : xs) out.push_back(*x);
    return out;
  });
  bs::server srv(deref, {.batch_size = 4, .batch_timeout = 0us});
  std::vector<std::unique_ptr<int>> items;
  items.push_back(std::make_unique<int>(4));
  items.push_back(std::make_unique<int>(5));
  EXPECT_EQ(srv.dispatch_many(std::move(items)).value(), (std::vector<int>{4, 5}));
  const std::vector<std::unique_ptr<int>> kept;
  auto copied = srv.dispatch_many(std::span<const std::unique_ptr<int>>(kept));
  EXPECT_EQ(copied.error().code(), bs::errc::invalid_argument) << "empty batch";
}
