#include "batch_serving/detail/reconnect_backoff.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <set>
#include <stop_token>
#include <thread>
#include <vector>

#include "batch_serving/error.hpp"

namespace {

using namespace std::chrono_literals;
using batch_serving::detail::reconnect_backoff;
using batch_serving::detail::reconnect_backoff_options;
using clock_type = std::chrono::steady_clock;

std::vector<std::chrono::milliseconds> schedule(reconnect_backoff& backoff, int count) {
  std::vector<std::chrono::milliseconds> delays;
  for (int i = 0; i < count; ++i) delays.push_back(backoff.next_delay());
  return delays;
}

TEST(ReconnectBackoffTest, WithoutJitterGrowsByTheMultiplierUpToTheMaximum) {
  reconnect_backoff backoff({.min_delay = 50ms, .max_delay = 1000ms, .jitter = 0.0, .seed = 1});
  const std::vector<std::chrono::milliseconds> expected = {50ms,  100ms,  200ms,  400ms,
                                                           800ms, 1000ms, 1000ms, 1000ms};
  EXPECT_EQ(schedule(backoff, 8), expected);
  EXPECT_EQ(backoff.failures(), 8U);
}

TEST(ReconnectBackoffTest, DelaysStayWithinTheBoundsWhateverTheSeed) {
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    reconnect_backoff backoff(
        {.min_delay = 20ms, .max_delay = 700ms, .multiplier = 3.0, .jitter = 1.0, .seed = seed});
    for (std::chrono::milliseconds delay : schedule(backoff, 40)) {
      ASSERT_GE(delay, 20ms) << "seed " << seed;
      ASSERT_LE(delay, 700ms) << "seed " << seed;
    }
  }
}

TEST(ReconnectBackoffTest, JitterDrawsFromTheLowerPartOfEachDelayAndVaries) {
  std::set<std::int64_t> seen;
  for (std::uint64_t seed = 0; seed < 100; ++seed) {
    reconnect_backoff backoff(
        {.min_delay = 100ms, .max_delay = 100'000ms, .jitter = 0.25, .seed = seed});
    const std::vector<std::chrono::milliseconds> delays = schedule(backoff, 6);
    for (std::size_t i = 0; i < delays.size(); ++i) {
      const auto full = 100ms * (1 << i);
      // [full * 0.75, full], except that the first is never below min_delay.
      ASSERT_LE(delays[i], full);
      ASSERT_GE(delays[i], i == 0 ? 100ms : full * 3 / 4 - 1ms);
    }
    seen.insert(delays[5].count());
  }
  EXPECT_GT(seen.size(), 50U);  // 100 seeds, a 800 ms wide range: spread, not lockstep
}

TEST(ReconnectBackoffTest, TheSameSeedGivesTheSameScheduleAndOthersDiffer) {
  reconnect_backoff a({.seed = 42});
  reconnect_backoff b({.seed = 42});
  reconnect_backoff c({.seed = 43});
  const auto first = schedule(a, 20);
  EXPECT_EQ(first, schedule(b, 20));
  EXPECT_NE(first, schedule(c, 20));
}

TEST(ReconnectBackoffTest, ResetStartsOverAtTheMinimum) {
  reconnect_backoff backoff({.min_delay = 10ms, .max_delay = 10s, .jitter = 0.0});
  (void)schedule(backoff, 10);
  backoff.reset();
  EXPECT_EQ(backoff.failures(), 0U);
  EXPECT_EQ(backoff.next_delay(), 10ms);
  EXPECT_EQ(backoff.next_delay(), 20ms);
}

TEST(ReconnectBackoffTest, ManyFailuresStayAtTheMaximum) {
  reconnect_backoff backoff(
      {.min_delay = 1ms, .max_delay = 30s, .multiplier = 10.0, .jitter = 0.0});
  (void)schedule(backoff, 5000);
  EXPECT_EQ(backoff.next_delay(), 30s);
}

TEST(ReconnectBackoffTest, BadOptionsThrowNamingTheField) {
  auto message_of = [](reconnect_backoff_options options) -> std::string {
    try {
      reconnect_backoff backoff(options);
    } catch (const batch_serving::serving_error& e) {
      EXPECT_EQ(e.code(), batch_serving::errc::invalid_argument);
      return e.what();
    }
    ADD_FAILURE() << "no error";
    return "";
  };
  EXPECT_NE(message_of({.min_delay = 0ms}).find("min_delay"), std::string::npos);
  EXPECT_NE(message_of({.min_delay = 2s, .max_delay = 1s}).find("max_delay"), std::string::npos);
  EXPECT_NE(message_of({.multiplier = 0.5}).find("multiplier"), std::string::npos);
  EXPECT_NE(message_of({.jitter = 1.5}).find("jitter"), std::string::npos);
  EXPECT_NE(message_of({.jitter = -0.1}).find("jitter"), std::string::npos);
}

TEST(ReconnectBackoffTest, WaitSleepsOutTheDelay) {
  reconnect_backoff backoff({.min_delay = 30ms, .max_delay = 30ms});
  std::stop_source never;
  const auto start = clock_type::now();
  EXPECT_TRUE(backoff.wait(never.get_token()));
  EXPECT_GE(clock_type::now() - start, 30ms);
}

TEST(ReconnectBackoffTest, AStopRequestCutsTheWaitShort) {
  reconnect_backoff backoff({.min_delay = 20s, .max_delay = 20s});
  std::stop_source stop;
  std::thread stopper([&] {
    std::this_thread::sleep_for(50ms);
    stop.request_stop();
  });
  const auto start = clock_type::now();
  EXPECT_FALSE(backoff.wait(stop.get_token()));
  const auto took = clock_type::now() - start;
  stopper.join();
  EXPECT_GE(took, 40ms);
  EXPECT_LT(took, 5s);  // far below the 20 s delay, generous for a loaded machine
}

TEST(ReconnectBackoffTest, AnAlreadyRequestedStopReturnsAtOnce) {
  std::stop_source stop;
  stop.request_stop();
  const auto start = clock_type::now();
  EXPECT_FALSE(reconnect_backoff::sleep_for(stop.get_token(), 20s));
  EXPECT_LT(clock_type::now() - start, 1s);
}

}  // namespace
