// Streaming servers (streaming_server.hpp): the type, and call_options on
// every streaming dispatch form, as on plain dispatch.
#include "batch_serving/streaming_server.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stop_token>
#include <type_traits>
#include <vector>

#include "batch_serving/serving.hpp"
#include "batch_serving/streaming.hpp"
#include "support/controlled_function.hpp"

namespace bs = batch_serving;
using namespace std::chrono_literals;
using bs::testing::controlled_function;
using bs::testing::open_on_exit;

namespace {
bs::streaming_serving<int, int> streaming_of(controlled_function& fn) {
  return bs::testing::serving_of(fn).streaming({});
}

// Occupies the streaming server's executor with the blocker (0).
bs::event_stream<int> block(bs::streaming_server<int, int>& srv, controlled_function& fn) {
  auto s = srv.dispatch(0);
  fn.blocked.wait();
  return s;
}

bs::errc error_code_of(bs::event_stream<int> stream) {
  auto all = stream.collect();
  return all.ok() ? bs::errc{} : all.error().code();
}
}  // namespace

TEST(StreamingServerTest, AServerOfAStreamingServingIsAStreamingServer) {
  controlled_function fn;
  bs::server srv(streaming_of(fn), {.batch_size = 2, .batch_timeout = 0us});
  static_assert(std::is_same_v<decltype(srv), bs::streaming_server<int, int>>);
  EXPECT_EQ(srv.dispatch_many({1, 2, 3}).collect().value(), (std::vector<int>{1, 4, 9}));
}

TEST(StreamingServerTest, ATimeoutEndsAQueuedStreamWithATimeoutErrorAndItsItemsNeverRun) {
  controlled_function fn;
  bs::streaming_server<int, int> srv(streaming_of(fn), {.batch_size = 1, .batch_timeout = 0us});
  open_on_exit release{fn.released};
  auto blocker = block(srv, fn);
  auto late = srv.dispatch_many({5, 6}, {.timeout = 20ms});
  EXPECT_EQ(error_code_of(std::move(late)), bs::errc::timeout);
  fn.released.open();
  EXPECT_TRUE(blocker.collect().ok());
  srv.stop();
  EXPECT_FALSE(fn.ran(5));
  EXPECT_EQ(srv.stats().calls_timed_out, 1u);
}

TEST(StreamingServerTest, AStopTokenCancelsAQueuedStream) {
  controlled_function fn;
  bs::streaming_server<int, int> srv(streaming_of(fn), {.batch_size = 1, .batch_timeout = 0us});
  open_on_exit release{fn.released};
  auto blocker = block(srv, fn);
  std::stop_source cancel;
  auto doomed = srv.dispatch(7, {.stop_token = cancel.get_token()});
  cancel.request_stop();
  EXPECT_EQ(error_code_of(std::move(doomed)), bs::errc::cancelled);
  fn.released.open();
  EXPECT_TRUE(blocker.collect().ok());
  srv.stop();
  EXPECT_FALSE(fn.ran(7));
  EXPECT_EQ(srv.stats().calls_cancelled, 1u);
}

TEST(StreamingServerTest, ADeadlineAlreadyPassedEndsTheStreamAtOnce) {
  controlled_function fn;
  bs::streaming_server<int, int> srv(streaming_of(fn), {.batch_size = 1, .batch_timeout = 0us});
  auto past = srv.dispatch(1, {.deadline = std::chrono::steady_clock::now() - 1ms});
  EXPECT_EQ(error_code_of(std::move(past)), bs::errc::timeout);
  EXPECT_EQ(srv.stats().calls_accepted, 0u);
}

TEST(StreamingServerTest, ANegativeTimeoutIsInvalidArgument) {
  controlled_function fn;
  bs::streaming_server<int, int> srv(streaming_of(fn), {.batch_size = 1, .batch_timeout = 0us});
  EXPECT_EQ(error_code_of(srv.dispatch(1, {.timeout = -5us})), bs::errc::invalid_argument);
}

TEST(StreamingServerTest, CallbackFormsTakeCallOptionsToo) {
  controlled_function fn;
  bs::streaming_server<int, int> srv(streaming_of(fn), {.batch_size = 1, .batch_timeout = 0us});
  open_on_exit release{fn.released};
  auto blocker = block(srv, fn);
  std::mutex mu;
  std::vector<bs::event_kind> kinds;
  bs::errc code{};
  bs::testing::gate ended;
  srv.dispatch_many_async(std::vector<int>{8, 9}, {.timeout = 20ms}, [&](bs::event<int> ev) {
    std::lock_guard lock(mu);
    kinds.push_back(ev.kind());
    if (ev.kind() == bs::event_kind::error) {
      code = ev.error().code();
      ended.open();
    }
  });
  ended.wait();
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(kinds, (std::vector<bs::event_kind>{bs::event_kind::error}));
    EXPECT_EQ(code, bs::errc::timeout);
  }
  fn.released.open();
  EXPECT_TRUE(blocker.collect().ok());
}

TEST(StreamingServerTest, TheServersDefaultTimeoutAppliesToStreamsWithoutTheirOwn) {
  controlled_function fn;
  bs::streaming_server<int, int> srv(streaming_of(fn), {.batch_size = 1,
                                                        .batch_timeout = 0us,
                                                        .default_timeout = 20ms});
  open_on_exit release{fn.released};
  auto blocker = srv.dispatch(0, {.timeout = 10s});
  fn.blocked.wait();
  EXPECT_EQ(error_code_of(srv.dispatch(3)), bs::errc::timeout);
  fn.released.open();
  EXPECT_TRUE(blocker.collect().ok());
}

TEST(StreamingServerTest, AStreamThatFinishesInTimeKeepsItsEvents) {
  controlled_function fn;
  bs::streaming_server<int, int> srv(streaming_of(fn), {.batch_size = 2, .batch_timeout = 0us});
  std::stop_source never;
  auto events = srv.dispatch_many({1, 2, 3}, {.timeout = 10s, .stop_token = never.get_token()});
  EXPECT_EQ(events.collect().value(), (std::vector<int>{1, 4, 9}));
}
