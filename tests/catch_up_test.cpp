// A batch whose window closed while the partition was executing waits for
// the callers that execution answers, when they could fill it
// (detail/catch_up.hpp): closed-loop callers stay in one batch instead of
// splitting into groups that stay out of step.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "batch_serving/server.hpp"
#include "support/controlled_function.hpp"

namespace bs = batch_serving;
using namespace std::chrono_literals;
using bs::testing::controlled_function;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr auto window = 200ms;  // the quiet gap is window / 8 = 25 ms

std::vector<std::size_t> sizes_of(const std::vector<std::vector<int>>& executions) {
  std::vector<std::size_t> sizes;
  for (const auto& e : executions) sizes.push_back(e.size());
  return sizes;
}

// Lets the late call's window close behind the blocked execution, releases
// it, and returns how long the late call then took to be answered.
clock_type::duration answered_after_release(controlled_function& fn, bs::future<int>& late,
                                            int expected) {
  std::this_thread::sleep_for(window + 100ms);
  const auto released_at = clock_type::now();
  fn.released.open();
  EXPECT_EQ(late.get().value(), expected);
  return clock_type::now() - released_at;
}

std::vector<int> sorted(std::vector<int> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(CatchUpTest, LateItemsWaitForTheCallersTheExecutionAnswersAndRunWithThem) {
  controlled_function fn;
  bs::server srv(bs::testing::serving_of(fn), {.batch_size = 4, .batch_timeout = window});
  const bs::testing::open_on_exit release{fn.released};
  // Two closed-loop callers; their first calls (0 blocks) form one execution.
  std::thread second([&] {
    EXPECT_EQ(srv.dispatch(1).value(), 1);
    EXPECT_EQ(srv.dispatch(12).value(), 144);
  });
  std::thread first([&] {
    EXPECT_EQ(srv.dispatch(0).value(), 0);
    EXPECT_EQ(srv.dispatch(11).value(), 121);
  });
  fn.blocked.wait();
  // Two late items queue behind it; their window closes while it runs.
  auto late_a = srv.dispatch_async(21);
  auto late_b = srv.dispatch_async(22);
  std::this_thread::sleep_for(window + 100ms);
  fn.released.open();
  EXPECT_EQ(late_a.get().value(), 441);
  EXPECT_EQ(late_b.get().value(), 484);
  first.join();
  second.join();

  const auto executions = fn.executions();
  ASSERT_EQ(sizes_of(executions), (std::vector<std::size_t>{2, 4}));
  EXPECT_EQ(sorted(executions[0]), (std::vector<int>{0, 1}));
  EXPECT_EQ(sorted(executions[1]), (std::vector<int>{11, 12, 21, 22}));
}

TEST(CatchUpTest, AnItemBehindAnExecutionThatCannotFillItsBatchRunsAtOnce) {
  controlled_function fn;
  bs::server srv(bs::testing::serving_of(fn), {.batch_size = 4, .batch_timeout = window});
  const bs::testing::open_on_exit release{fn.released};
  auto blocker = bs::testing::block_executor(srv, fn);  // 1 item: 1 + 1 < 4
  auto late = srv.dispatch_async(5);
  // Well under another window: it did not wait for company again.
  EXPECT_LT(answered_after_release(fn, late, 25), window * 3 / 4);
  EXPECT_EQ(blocker.get().value(), 0);
  EXPECT_EQ(sizes_of(fn.executions()), (std::vector<std::size_t>{1, 1}));
}

TEST(CatchUpTest, CallersThatDoNotComeBackDelayALateItemByOneQuietGapOnly) {
  controlled_function fn;
  bs::server srv(bs::testing::serving_of(fn), {.batch_size = 4, .batch_timeout = window});
  const bs::testing::open_on_exit release{fn.released};
  // Three one-shot calls in the execution: 1 + 3 >= 4, so the rule applies,
  // but nobody comes back.
  auto one = srv.dispatch_async(1);
  auto two = srv.dispatch_async(2);
  auto blocker = bs::testing::block_executor(srv, fn);
  auto late = srv.dispatch_async(5);
  EXPECT_LT(answered_after_release(fn, late, 25), window * 3 / 4);
  EXPECT_EQ(one.get().value(), 1);
  EXPECT_EQ(two.get().value(), 4);
  EXPECT_EQ(blocker.get().value(), 0);
  EXPECT_EQ(sizes_of(fn.executions()), (std::vector<std::size_t>{3, 1}));
}

}  // namespace
