// The measured floors spinning is budgeted by (detail/host_costs.hpp), the
// time-bounded spin (detail/timed_spin.hpp) and the count of waiting
// threads that turns spinning off under oversubscription.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <thread>

#include "batch_serving/detail/completion_flag.hpp"
#include "batch_serving/detail/host_costs.hpp"
#include "batch_serving/detail/timed_spin.hpp"

namespace {

using namespace std::chrono_literals;
using batch_serving::detail::completion_flag;
using batch_serving::detail::spin_for;
using clock_type = std::chrono::steady_clock;

TEST(SpinForTest, ReturnsAtOnceWhenAlreadyDone) {
  int polls = 0;
  EXPECT_TRUE(spin_for(1h, [&] {
    ++polls;
    return true;
  }));
  EXPECT_EQ(polls, 1);
}

TEST(SpinForTest, GivesUpOnceItsBudgetHasPassed) {
  const auto start = clock_type::now();
  EXPECT_FALSE(spin_for(200us, [] { return false; }));
  EXPECT_GE(clock_type::now() - start, 200us);
}

TEST(SpinForTest, SeesWhatAnotherThreadSets) {
  std::atomic<bool> done{false};
  std::thread setter([&] { done.store(true, std::memory_order_release); });
  // Long enough for any scheduler to run the setter; returns when it has.
  EXPECT_TRUE(spin_for(60s, [&] { return done.load(std::memory_order_acquire); }));
  setter.join();
}

TEST(HostCostsTest, MeasuresEveryFloor) {
  const auto costs = batch_serving::detail::measure_host_costs();
  EXPECT_GT(costs.pause_ns, 0);
  EXPECT_GT(costs.clock_ns, 0);
  EXPECT_GT(costs.futex_rtt_ns, 0);
  // 0 when the other thread got no core within the measurement's 20 ms:
  // one core, or a loaded machine (the tests run two at a time).
  EXPECT_GE(costs.spin_rtt_ns, 0);
  if (std::thread::hardware_concurrency() < 2) {
    EXPECT_EQ(costs.spin_rtt_ns, 0);
  }
  for (const double v : {costs.pause_ns, costs.clock_ns, costs.spin_rtt_ns, costs.futex_rtt_ns}) {
    EXPECT_TRUE(std::isfinite(v));
  }
}

TEST(HostCostsTest, TheSpinBudgetIsTwoBlockingRoundTripsWithinItsBounds) {
  const double rtt_ns = batch_serving::detail::this_host().futex_rtt_ns;
  const auto budget = batch_serving::detail::spin_budget();
  EXPECT_GE(budget, 2us);
  EXPECT_LE(budget, 50us);
  const auto expected = std::clamp(2 * rtt_ns, 2'000.0, 50'000.0);
  EXPECT_NEAR(static_cast<double>(budget.count()), expected, 1.0);
  EXPECT_EQ(budget, batch_serving::detail::spin_budget());  // measured once
}

TEST(CompletionFlagTest, CountsTheThreadsWaitingOnFlags) {
  ASSERT_EQ(batch_serving::detail::threads_waiting_on_flags(), 0);
  completion_flag first;
  completion_flag second;
  std::thread a([&] { first.wait(); });
  std::thread b([&] { EXPECT_TRUE(second.wait_until(clock_type::now() + 1h)); });
  while (batch_serving::detail::threads_waiting_on_flags() < 2) std::this_thread::yield();
  first.set();
  a.join();
  EXPECT_EQ(batch_serving::detail::threads_waiting_on_flags(), 1);
  second.set();
  b.join();
  EXPECT_EQ(batch_serving::detail::threads_waiting_on_flags(), 0);
}

TEST(CompletionFlagTest, AFlagAlreadySetIsNotWaitedFor) {
  completion_flag flag;
  flag.set();
  flag.wait();
  EXPECT_TRUE(flag.wait_until(clock_type::now() - 1h));
  EXPECT_EQ(batch_serving::detail::threads_waiting_on_flags(), 0);
}

TEST(CompletionFlagTest, WaitUntilAPastDeadlineReturnsUnset) {
  completion_flag flag;
  EXPECT_FALSE(flag.wait_until(clock_type::now() - 1ms));
  EXPECT_EQ(batch_serving::detail::threads_waiting_on_flags(), 0);
}

}  // namespace
