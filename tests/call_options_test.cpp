// Per-call options: deadlines (timeout, deadline, the server's default) and
// cancellation (future::cancel, stop_token), in every dispatch form.
#include "batch_serving/call_options.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <iterator>
#include <stop_token>
#include <thread>
#include <vector>

#include "batch_serving/registry.hpp"
#include "batch_serving/server.hpp"
#include "support/callback_record.hpp"
#include "support/controlled_function.hpp"

namespace bs = batch_serving;
using namespace std::chrono_literals;
using bs::testing::block_executor;
using bs::testing::callback_record;
using bs::testing::controlled_function;
using bs::testing::open_on_exit;
using bs::testing::serving_of;
using clock_type = std::chrono::steady_clock;

namespace {

// One partition, one item per execution, no waiting for company: the
// blocker (0) holds the only executor while other calls queue behind it.
bs::server_options one_at_a_time() {
  return {.batch_size = 1, .batch_timeout = 0us, .partitions = 1};
}

// Starts the blocker with a deadline and waits until it runs. The deadline
// must not pass before it starts, so a slow machine (sanitizers) gets a
// longer one: doubling from 20 ms.
bs::future<int> block_executor_with_timeout(bs::server<int, int>& srv, controlled_function& fn) {
  for (auto timeout = std::chrono::microseconds(20ms);; timeout *= 2) {
    auto f = srv.dispatch_async(0, {.timeout = timeout});
    while (!fn.blocked.is_open() && !f.ready()) std::this_thread::sleep_for(100us);
    if (fn.blocked.is_open()) return f;
  }
}

bs::errc code_of(const bs::result<int>& r) { return r.error().code(); }

}  // namespace

// ---- deadlines --------------------------------------------------------------

#if defined(__linux__)
std::size_t threads_in_this_process() {
  const std::filesystem::directory_iterator tasks("/proc/self/task");
  return static_cast<std::size_t>(std::distance(begin(tasks), end(tasks)));
}

// A server runs its deadline timer's thread only once a call has a deadline.
TEST(CallOptionsTest, TheDeadlineTimerThreadStartsWithTheFirstCallThatHasADeadline) {
  controlled_function fn;
  std::thread([] {}).join();  // a sanitizer starts its own helper thread with the first one
  const std::size_t before = threads_in_this_process();
  bs::server srv(serving_of(fn), {.batch_size = 1, .batch_timeout = 0ms, .partitions = 2});
  EXPECT_EQ(threads_in_this_process(), before + 2) << "the two partitions, no timer";
  EXPECT_EQ(srv.dispatch(3).value(), 9);
  EXPECT_EQ(threads_in_this_process(), before + 2);
  EXPECT_EQ(srv.dispatch(4, {.timeout = 60s}).value(), 16);
  EXPECT_EQ(threads_in_this_process(), before + 3) << "the timer started";
  EXPECT_EQ(srv.dispatch(5, {.timeout = 60s}).value(), 25);
  EXPECT_EQ(threads_in_this_process(), before + 3) << "once";
  srv.stop();
  EXPECT_EQ(threads_in_this_process(), before) << "stop() joins every thread";
}
#endif

TEST(CallOptionsTest, ACallWhoseDeadlinePassesWhileQueuedIsAnsweredTimeoutAndNeverRuns) {
  controlled_function fn;
  bs::server srv(serving_of(fn), one_at_a_time());
  open_on_exit release{fn.released};
  auto blocker = block_executor(srv, fn);

  auto late = srv.dispatch_async(7, {.timeout = 20ms});
  // Answered at its deadline although the executor is still blocked.
  ASSERT_TRUE(late.wait_for(10s));
  EXPECT_EQ(code_of(late.get()), bs::errc::timeout);

  fn.released.open();
  EXPECT_EQ(blocker.get().value(), 0);
  EXPECT_EQ(srv.dispatch(3).value(), 9);  // runs after the expired call was skipped
  EXPECT_FALSE(fn.ran(7));
  EXPECT_EQ(srv.stats().calls_timed_out, 1u);
}

TEST(CallOptionsTest, ACallWhoseDeadlinePassesDuringExecutionIsAnsweredAtTheDeadline) {
  controlled_function fn;
  bs::server srv(serving_of(fn), one_at_a_time());
  open_on_exit release{fn.released};

  auto running = block_executor_with_timeout(srv, fn);
  // The execution is still running (the gate is closed), yet the call is answered.
  ASSERT_TRUE(running.wait_for(10s));
  EXPECT_EQ(code_of(running.get()), bs::errc::timeout);

  fn.released.open();  // the late result is discarded; the server goes on
  EXPECT_EQ(srv.dispatch(4).value(), 16);
  EXPECT_EQ(srv.stats().calls_timed_out, 1u);
}

TEST(CallOptionsTest, ABlockingDispatchWhoseDeadlinePassesWhileQueuedReturnsTimeout) {
  controlled_function fn;
  bs::server srv(serving_of(fn), one_at_a_time());
  open_on_exit release{fn.released};
  auto blocker = block_executor(srv, fn);
  EXPECT_EQ(code_of(srv.dispatch(8, {.timeout = 20ms})), bs::errc::timeout);
  EXPECT_EQ(srv.dispatch_many({8, 9}, {.timeout = 20ms}).error().code(), bs::errc::timeout);
  fn.released.open();
  EXPECT_EQ(blocker.get().value(), 0);
  EXPECT_FALSE(fn.ran(8));
  EXPECT_FALSE(fn.ran(9));
}

TEST(CallOptionsTest, ADeadlineAlreadyPassedIsAnsweredAtOnceWithoutQueueing) {
  controlled_function fn;
  bs::server srv(serving_of(fn), one_at_a_time());
  auto r = srv.dispatch(5, {.deadline = clock_type::now() - 1s});
  EXPECT_EQ(code_of(r), bs::errc::timeout);
  auto zero = srv.dispatch(5, {.timeout = 0us});
  EXPECT_EQ(code_of(zero), bs::errc::timeout);
  EXPECT_EQ(srv.stats().calls_accepted, 0u);
  EXPECT_EQ(srv.stats().calls_timed_out, 2u);
  EXPECT_FALSE(fn.ran(5));
}

TEST(CallOptionsTest, ANegativeTimeoutIsInvalidArgumentNamingTheField) {
  controlled_function fn;
  bs::server srv(serving_of(fn), one_at_a_time());
  auto r = srv.dispatch(5, {.timeout = -1ms});
  ASSERT_EQ(code_of(r), bs::errc::invalid_argument);
  EXPECT_NE(r.error().message().find("call_options.timeout"), std::string::npos);
  auto f = srv.dispatch_async(5, {.timeout = -1ms});
  EXPECT_EQ(code_of(f.get()), bs::errc::invalid_argument);
}

TEST(CallOptionsTest, TheEarlierOfTimeoutAndDeadlineApplies) {
  controlled_function fn;
  bs::server srv(serving_of(fn), one_at_a_time());
  open_on_exit release{fn.released};
  auto blocker = block_executor(srv, fn);

  const auto start = clock_type::now();
  auto by_deadline = srv.dispatch_async(1, {.timeout = 1h, .deadline = start + 20ms});
  auto by_timeout = srv.dispatch_async(2, {.timeout = 20ms, .deadline = start + 1h});
  EXPECT_EQ(code_of(by_deadline.get()), bs::errc::timeout);
  EXPECT_EQ(code_of(by_timeout.get()), bs::errc::timeout);
  EXPECT_LT(clock_type::now() - start, 10s);  // neither waited for its later bound
}

TEST(CallOptionsTest, TheServerDefaultTimeoutAppliesToCallsWithoutTheirOwn) {
  controlled_function fn;
  auto options = one_at_a_time();
  options.default_timeout = 20ms;
  bs::server srv(serving_of(fn), options);
  open_on_exit release{fn.released};
  auto blocker = srv.dispatch_async(0, {.timeout = 1h});
  fn.blocked.wait();

  auto defaulted = srv.dispatch_async(1);
  auto own = srv.dispatch_async(2, {.timeout = 1h});
  EXPECT_EQ(code_of(defaulted.get()), bs::errc::timeout);
  EXPECT_FALSE(own.ready());
  fn.released.open();
  EXPECT_EQ(own.get().value(), 4);
  EXPECT_FALSE(fn.ran(1));
}

TEST(CallOptionsTest, CallsThatFinishInTimeKeepTheirResults) {
  controlled_function fn;
  bs::server srv(serving_of(fn), {.batch_size = 8, .batch_timeout = 1ms, .default_timeout = 1h});
  std::vector<bs::future<int>> futures;
  for (int i = 1; i <= 100; ++i) futures.push_back(srv.dispatch_async(i, {.timeout = 1h}));
  for (int i = 1; i <= 100; ++i) {
    EXPECT_EQ(futures[static_cast<std::size_t>(i - 1)].get().value(), i * i);
  }
  EXPECT_EQ(srv.dispatch_many({3, 4}, {.timeout = 1h}).value(), (std::vector<int>{9, 16}));
  EXPECT_EQ(srv.stats().calls_timed_out, 0u);
}

TEST(CallOptionsTest, AnExplicitBatchThatTimesOutRunsNoneOfItsQueuedItems) {
  controlled_function fn;
  bs::server srv(serving_of(fn), {.batch_size = 2, .batch_timeout = 0us, .partitions = 1});
  open_on_exit release{fn.released};
  auto blocker = block_executor(srv, fn);

  auto r = srv.dispatch_many({11, 12, 13, 14, 15}, {.timeout = 20ms});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), bs::errc::timeout);
  fn.released.open();
  EXPECT_EQ(blocker.get().value(), 0);
  EXPECT_EQ(srv.dispatch(2).value(), 4);
  for (int item = 11; item <= 15; ++item) EXPECT_FALSE(fn.ran(item)) << item;
}

TEST(CallOptionsTest, ACallbackCallIsAnsweredTimeoutAtItsDeadline) {
  controlled_function fn;
  bs::server srv(serving_of(fn), one_at_a_time());
  open_on_exit release{fn.released};
  auto blocker = block_executor(srv, fn);

  callback_record<int> record;
  srv.dispatch_async(9, {.timeout = 20ms}, record.callback());
  record.done.wait();  // while the executor is still blocked
  EXPECT_EQ(record.only().error().code(), bs::errc::timeout);
  fn.released.open();
  EXPECT_EQ(blocker.get().value(), 0);
  EXPECT_EQ(record.calls.load(), 1);
}

TEST(CallOptionsTest, AStuckExecutionDoesNotDelayOtherCallsDeadlines) {
  controlled_function fn;
  bs::server srv(serving_of(fn), {.batch_size = 4, .batch_timeout = 0us, .partitions = 1});
  open_on_exit release{fn.released};
  auto blocker = block_executor_with_timeout(srv, fn);
  std::vector<bs::future<int>> queued;
  for (int i = 1; i <= 10; ++i) queued.push_back(srv.dispatch_async(i, {.timeout = 20ms}));
  EXPECT_EQ(code_of(blocker.get()), bs::errc::timeout);
  for (auto& f : queued) EXPECT_EQ(code_of(f.get()), bs::errc::timeout);
  EXPECT_EQ(srv.stats().calls_timed_out, 11u);
}

// ---- cancellation -----------------------------------------------------------

TEST(CallOptionsTest, CancellingAQueuedCallAnswersCancelledAndDropsItsItems) {
  controlled_function fn;
  bs::server srv(serving_of(fn), one_at_a_time());
  open_on_exit release{fn.released};
  auto blocker = block_executor(srv, fn);

  auto f = srv.dispatch_many_async({21, 22, 23});
  EXPECT_TRUE(f.cancel());
  EXPECT_TRUE(f.ready());
  EXPECT_EQ(f.get().error().code(), bs::errc::cancelled);

  fn.released.open();
  EXPECT_EQ(blocker.get().value(), 0);
  EXPECT_EQ(srv.dispatch(2).value(), 4);
  for (int item = 21; item <= 23; ++item) EXPECT_FALSE(fn.ran(item)) << item;
  EXPECT_EQ(srv.stats().calls_cancelled, 1u);
}

TEST(CallOptionsTest, CancellingAFinishedCallChangesNothing) {
  controlled_function fn;
  bs::server srv(serving_of(fn), one_at_a_time());
  auto f = srv.dispatch_async(6);
  f.wait();
  EXPECT_FALSE(f.cancel());
  EXPECT_EQ(f.get().value(), 36);
  EXPECT_EQ(srv.stats().calls_cancelled, 0u);
}

TEST(CallOptionsTest, CancellingARunningCallAnswersAtOnceAndDiscardsTheLateResult) {
  controlled_function fn;
  bs::server srv(serving_of(fn), one_at_a_time());
  open_on_exit release{fn.released};
  auto running = block_executor(srv, fn);
  EXPECT_TRUE(running.cancel());
  EXPECT_FALSE(running.cancel());  // once is enough
  EXPECT_EQ(code_of(running.get()), bs::errc::cancelled);
  fn.released.open();
  EXPECT_EQ(srv.dispatch(3).value(), 9);
}

TEST(CallOptionsTest, CancellingOneSliceOfASplitBatchDropsTheSlicesNotYetRunning) {
  controlled_function fn;
  bs::server srv(serving_of(fn), {.batch_size = 2, .batch_timeout = 0us, .partitions = 1});
  open_on_exit release{fn.released};
  auto f = srv.dispatch_many_async({0, 31, 32, 33, 34, 35});  // [0, 31] blocks
  fn.blocked.wait();
  EXPECT_TRUE(f.cancel());
  EXPECT_EQ(f.get().error().code(), bs::errc::cancelled);
  fn.released.open();
  EXPECT_EQ(srv.dispatch(2).value(), 4);
  for (int item = 32; item <= 35; ++item) EXPECT_FALSE(fn.ran(item)) << item;
}

TEST(CallOptionsTest, AStopTokenCancelsAFutureCall) {
  controlled_function fn;
  bs::server srv(serving_of(fn), one_at_a_time());
  open_on_exit release{fn.released};
  auto blocker = block_executor(srv, fn);
  std::stop_source source;
  auto f = srv.dispatch_async(41, {.stop_token = source.get_token()});
  EXPECT_FALSE(f.ready());
  source.request_stop();
  EXPECT_TRUE(f.ready());
  EXPECT_EQ(code_of(f.get()), bs::errc::cancelled);
  fn.released.open();
  EXPECT_EQ(blocker.get().value(), 0);
  EXPECT_EQ(srv.dispatch(2).value(), 4);
  EXPECT_FALSE(fn.ran(41));
}

TEST(CallOptionsTest, AStopTokenCancelsABlockingDispatchFromAnotherThread) {
  controlled_function fn;
  bs::server srv(serving_of(fn), one_at_a_time());
  open_on_exit release{fn.released};
  auto blocker = block_executor(srv, fn);
  std::stop_source source;
  std::thread canceller([&] {
    std::this_thread::sleep_for(20ms);
    source.request_stop();
  });
  auto r = srv.dispatch(42, {.stop_token = source.get_token()});
  canceller.join();
  EXPECT_EQ(code_of(r), bs::errc::cancelled);
  fn.released.open();
  EXPECT_EQ(blocker.get().value(), 0);
  EXPECT_FALSE(fn.ran(42));
}

TEST(CallOptionsTest, AStopTokenCancelsACallbackCallOnce) {
  controlled_function fn;
  bs::server srv(serving_of(fn), one_at_a_time());
  open_on_exit release{fn.released};
  auto blocker = block_executor(srv, fn);
  std::stop_source source;
  callback_record<std::vector<int>> record;
  srv.dispatch_many_async({43, 44}, {.stop_token = source.get_token()}, record.callback());
  source.request_stop();
  record.done.wait();
  EXPECT_EQ(record.only().error().code(), bs::errc::cancelled);
  fn.released.open();
  EXPECT_EQ(blocker.get().value(), 0);
  EXPECT_EQ(srv.dispatch(2).value(), 4);
  EXPECT_EQ(record.calls.load(), 1);
}

TEST(CallOptionsTest, AStopAlreadyRequestedAnswersCancelledAtOnce) {
  controlled_function fn;
  bs::server srv(serving_of(fn), one_at_a_time());
  std::stop_source source;
  source.request_stop();
  EXPECT_EQ(code_of(srv.dispatch(1, {.stop_token = source.get_token()})), bs::errc::cancelled);
  EXPECT_EQ(code_of(srv.dispatch_async(1, {.stop_token = source.get_token()}).get()),
            bs::errc::cancelled);
  EXPECT_EQ(srv.stats().calls_accepted, 0u);
  EXPECT_EQ(srv.stats().calls_cancelled, 2u);
  EXPECT_FALSE(fn.ran(1));
}

TEST(CallOptionsTest, AStopRequestedAfterTheCallFinishedChangesNothing) {
  controlled_function fn;
  bs::server srv(serving_of(fn), one_at_a_time());
  std::stop_source source;
  auto f = srv.dispatch_async(5, {.stop_token = source.get_token()});
  f.wait();
  source.request_stop();
  EXPECT_EQ(f.get().value(), 25);
  EXPECT_EQ(srv.stats().calls_cancelled, 0u);
}

TEST(CallOptionsTest, AFutureOutlivingItsServerCanStillBeCancelledHarmlessly) {
  controlled_function fn;
  std::stop_source source;
  bs::future<int> f;
  {
    bs::server srv(serving_of(fn), one_at_a_time());
    f = srv.dispatch_async(5, {.stop_token = source.get_token()});
  }
  source.request_stop();
  EXPECT_FALSE(f.cancel());
  EXPECT_EQ(f.get().value(), 25);
}

TEST(CallOptionsTest, NamedDispatchTakesCallOptions) {
  controlled_function fn;
  bs::server srv(serving_of(fn),
                 {.name = "call-options-named", .batch_size = 1, .batch_timeout = 0us});
  open_on_exit release{fn.released};
  auto blocker = block_executor(srv, fn);
  auto r = bs::dispatch<int, int>("call-options-named", 3, {.timeout = 20ms});
  EXPECT_EQ(code_of(r), bs::errc::timeout);
  std::stop_source source;
  auto f =
      bs::dispatch_async<int, int>("call-options-named", 4, {.stop_token = source.get_token()});
  source.request_stop();
  EXPECT_EQ(code_of(f.get()), bs::errc::cancelled);
  fn.released.open();
  EXPECT_EQ(blocker.get().value(), 0);
}
