// Backpressure: server_options::max_queue bounds the items waiting; a call
// past it is answered overloaded at once and the server keeps serving.
#include <gtest/gtest.h>

#include <chrono>
#include <vector>

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

namespace {

// The executor runs one item at a time; at most `max_queue` items wait.
bs::server_options bounded(std::size_t max_queue) {
  return {.batch_size = 1, .batch_timeout = 0us, .partitions = 1, .max_queue = max_queue};
}

}  // namespace

TEST(BackpressureTest, ACallPastMaxQueueIsAnsweredOverloadedAtOnce) {
  controlled_function fn;
  bs::server srv(serving_of(fn), bounded(4));
  open_on_exit release{fn.released};
  auto blocker = block_executor(srv, fn);  // executing: does not count

  std::vector<bs::future<int>> queued;
  for (int i = 1; i <= 4; ++i) queued.push_back(srv.dispatch_async(i));
  auto refused = srv.dispatch_async(5);
  ASSERT_TRUE(refused.ready());  // answered before anything ran
  auto r = refused.get();
  ASSERT_EQ(r.error().code(), bs::errc::overloaded);
  EXPECT_NE(r.error().message().find("max_queue 4"), std::string::npos) << r.error().message();
  EXPECT_EQ(srv.dispatch(6).error().code(), bs::errc::overloaded);
  callback_record<int> record;
  srv.dispatch_async(7, record.callback());
  EXPECT_EQ(record.only().error().code(), bs::errc::overloaded);
  EXPECT_EQ(srv.stats().calls_overloaded, 3u);

  fn.released.open();
  EXPECT_EQ(blocker.get().value(), 0);
  for (int i = 1; i <= 4; ++i) {
    EXPECT_EQ(queued[static_cast<std::size_t>(i - 1)].get().value(), i * i);
  }
  EXPECT_FALSE(fn.ran(5));
  EXPECT_EQ(srv.dispatch(8).value(), 64);  // room again
}

TEST(BackpressureTest, AnExplicitBatchCountsAllItsItems) {
  controlled_function fn;
  bs::server srv(serving_of(fn), bounded(4));
  open_on_exit release{fn.released};
  auto blocker = block_executor(srv, fn);

  auto three = srv.dispatch_many_async({1, 2, 3});
  auto two = srv.dispatch_many_async({4, 5});  // 3 + 2 > 4
  EXPECT_EQ(two.get().error().code(), bs::errc::overloaded);
  auto one = srv.dispatch_many_async({6});  // 3 + 1 fits
  fn.released.open();
  EXPECT_EQ(three.get().value(), (std::vector<int>{1, 4, 9}));
  EXPECT_EQ(one.get().value(), (std::vector<int>{36}));
}

TEST(BackpressureTest, AnExplicitBatchLargerThanMaxQueueIsInvalidArgument) {
  controlled_function fn;
  bs::server srv(serving_of(fn), bounded(2));
  auto r = srv.dispatch_many({1, 2, 3});
  ASSERT_EQ(r.error().code(), bs::errc::invalid_argument);
  EXPECT_NE(r.error().message().find("max_queue 2"), std::string::npos) << r.error().message();
}

TEST(BackpressureTest, CancelledAndExpiredCallsLeaveRoomAtOnce) {
  controlled_function fn;
  bs::server srv(serving_of(fn), bounded(2));
  open_on_exit release{fn.released};
  auto blocker = block_executor(srv, fn);
  auto a = srv.dispatch_async(1);
  auto b = srv.dispatch_async(2, {.timeout = 10ms});
  EXPECT_TRUE(a.cancel());
  EXPECT_EQ(b.get().error().code(), bs::errc::timeout);
  // Both left the queue when they were answered: room for two, while the
  // executor is still blocked.
  auto c = srv.dispatch_many_async({3, 4});
  EXPECT_FALSE(c.ready());
  fn.released.open();
  EXPECT_EQ(blocker.get().value(), 0);
  EXPECT_EQ(c.get().value(), (std::vector<int>{9, 16}));
  EXPECT_FALSE(fn.ran(1));
  EXPECT_FALSE(fn.ran(2));
}

TEST(BackpressureTest, MaxQueueZeroIsRejectedNamingTheField) {
  controlled_function fn;
  try {
    bs::server srv(serving_of(fn), bounded(0));
    FAIL() << "max_queue 0 was accepted";
  } catch (const bs::serving_error& e) {
    EXPECT_EQ(e.code(), bs::errc::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("max_queue"), std::string::npos) << e.what();
  }
}

TEST(BackpressureTest, WithoutMaxQueueTheQueueIsUnbounded) {
  controlled_function fn;
  bs::server srv(serving_of(fn), {.batch_size = 1, .batch_timeout = 0us, .partitions = 1});
  open_on_exit release{fn.released};
  auto blocker = block_executor(srv, fn);
  std::vector<bs::future<int>> queued;
  for (int i = 1; i <= 1000; ++i) queued.push_back(srv.dispatch_async(i));
  fn.released.open();
  for (int i = 1; i <= 1000; ++i) {
    EXPECT_EQ(queued[static_cast<std::size_t>(i - 1)].get().value(), i * i);
  }
  EXPECT_EQ(srv.stats().calls_overloaded, 0u);
}
