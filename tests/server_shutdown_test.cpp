// Shutdown: stop accepting, drain what is queued and running within the
// shutdown timeout, answer the rest shutting_down, never leave a caller waiting.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include "batch_serving/registry.hpp"
#include "batch_serving/server.hpp"

namespace bs = batch_serving;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

// A batch function that holds every execution until released, and tells
// when its partition state is destroyed (its thread is done with it).
struct gate {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> entered;
  std::atomic<bool> entered_once{false};
  std::promise<void> state_destroyed;
};

class gated_module {
 public:
  explicit gated_module(gate* g) : g_(g) {}
  gated_module(const gated_module&) = delete;
  ~gated_module() { g_->state_destroyed.set_value(); }

  std::vector<int> handle_batch(std::span<const int> xs, bs::execution_context&) {
    if (!g_->entered_once.exchange(true)) g_->entered.set_value();
    g_->released.wait_for(60s);  // bounded so a broken test cannot hang forever
    return std::vector<int>(xs.begin(), xs.end());
  }

 private:
  gate* g_;
};

bs::serving<int, int> identity() {
  return bs::serving<int, int>([](std::span<const int> xs) {
    return std::vector<int>(xs.begin(), xs.end());
  });
}

}  // namespace

TEST(ServerShutdownTest, DrainsQueuedCallsAtOnceInsteadOfWaitingForTheTimeout) {
  auto srv = std::make_optional<bs::server<int, int>>(identity(),
                                                      bs::server_options{.batch_size = 100,
                                                                         .batch_timeout = 60s});
  auto a = srv->dispatch_async(1);
  auto b = srv->dispatch_many_async({2, 3});
  const auto t0 = clock_type::now();
  srv.reset();  // the destructor shuts down
  EXPECT_LT(clock_type::now() - t0, 30s);
  EXPECT_EQ(a.get().value(), 1);
  EXPECT_EQ(b.get().value(), (std::vector<int>{2, 3}));
}

TEST(ServerShutdownTest, WaitsForARunningExecutionWithinTheTimeout) {
  gate g;
  auto serving = bs::serving<int, int>::from_module<gated_module>(&g);
  bs::server srv(serving, {.batch_timeout = 0ms, .shutdown_timeout = 60s});
  auto running = srv.dispatch_async(7);
  ASSERT_EQ(g.entered.get_future().wait_for(30s), std::future_status::ready);

  std::thread stopper([&] { srv.stop(); });
  // While draining, new calls are refused at once. Probe asynchronously: a
  // probe that beat the stopper is queued, and drained once released.
  std::vector<bs::future<int>> accepted;
  std::optional<bs::result<int>> refused;
  for (int i = 0; i < 30000 && !refused; ++i) {
    auto probe = srv.dispatch_async(8);
    if (probe.ready()) {
      refused = probe.get();
    } else {
      accepted.push_back(std::move(probe));
      std::this_thread::sleep_for(1ms);
    }
  }
  ASSERT_TRUE(refused.has_value());
  ASSERT_FALSE(refused->ok());
  EXPECT_EQ(refused->error().code(), bs::errc::shutting_down);

  g.release.set_value();
  stopper.join();
  EXPECT_EQ(running.get().value(), 7);
  for (auto& f : accepted) EXPECT_EQ(f.get().value(), 8);
  // Once stopped, the server is gone for callers.
  auto after = srv.dispatch(9);
  ASSERT_FALSE(after.ok());
  EXPECT_EQ(after.error().code(), bs::errc::no_serving);
}

TEST(ServerShutdownTest, AnswersEverythingLeftShuttingDownWhenTheTimeoutPasses) {
  gate g;
  auto serving = bs::serving<int, int>::from_module<gated_module>(&g);
  auto destroyed = g.state_destroyed.get_future();
  std::optional<bs::future<int>> running, queued;
  std::optional<bs::future<std::vector<int>>> queued_many;
  std::atomic<int> callback_answers{0};
  {
    bs::server srv(serving, {.batch_size = 1, .batch_timeout = 0ms, .shutdown_timeout = 200ms});
    running = srv.dispatch_async(1);
    ASSERT_EQ(g.entered.get_future().wait_for(30s), std::future_status::ready);
    queued = srv.dispatch_async(2);
    queued_many = srv.dispatch_many_async({3, 4});
    srv.dispatch_async(5, [&](bs::result<int> r) {
      EXPECT_FALSE(r.ok());
      if (!r.ok()) {
        EXPECT_EQ(r.error().code(), bs::errc::shutting_down);
      }
      ++callback_answers;
    });
    const auto t0 = clock_type::now();
    srv.stop();
    EXPECT_GE(clock_type::now() - t0, 150ms);
    EXPECT_GE(srv.stats().calls_shut_down, 4u);
  }
  // Nobody waits for the stuck execution: everyone was answered at the deadline.
  for (auto* f : {&*running, &*queued}) {
    ASSERT_TRUE(f->ready());
    auto r = f->get();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), bs::errc::shutting_down);
  }
  auto many = queued_many->get();
  ASSERT_FALSE(many.ok());
  EXPECT_EQ(many.error().code(), bs::errc::shutting_down);
  EXPECT_EQ(callback_answers.load(), 1);

  // The stuck execution finishes later; its result is discarded safely and
  // its partition state is destroyed in its own thread.
  g.release.set_value();
  EXPECT_EQ(destroyed.wait_for(30s), std::future_status::ready);
}

TEST(ServerShutdownTest, UnregistersTheNameSoNamedCallsGetNoServing) {
  {
    bs::server srv(identity(), {.name = "shutdown_test_named", .batch_timeout = 0ms});
    EXPECT_EQ((bs::dispatch<int, int>("shutdown_test_named", 3).value()), 3);
  }
  auto r = bs::dispatch<int, int>("shutdown_test_named", 3);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), bs::errc::no_serving);
}

TEST(ServerShutdownTest, StopIsIdempotentAndConcurrentStopsAllReturn) {
  bs::server srv(identity(), {.batch_timeout = 0ms});
  std::vector<std::thread> stoppers;
  for (int i = 0; i < 4; ++i) stoppers.emplace_back([&] { srv.stop(); });
  for (auto& t : stoppers) t.join();
  srv.stop();
  EXPECT_FALSE(srv.dispatch(1).ok());
}

// Many callers blocked in dispatch while the server shuts down: each gets
// exactly one answer, a result or shutting_down / no_serving.
TEST(ServerShutdownTest, NoCallerIsLeftWaitingWhenShutdownRacesDispatch) {
  for (int round = 0; round < 20; ++round) {
    auto srv =
        std::make_optional<bs::server<int, int>>(identity(),
                                                 bs::server_options{.batch_size = 4,
                                                                    .batch_timeout = 1ms,
                                                                    .partitions = 2,
                                                                    .shutdown_timeout = 50ms});
    std::atomic<int> answered{0};
    std::atomic<bool> stop_calling{false};
    std::vector<std::thread> callers;
    for (int t = 0; t < 6; ++t) {
      callers.emplace_back([&, t] {
        // At least one call each, however early the shutdown comes.
        for (int i = 0; i == 0 || !stop_calling; ++i) {
          auto r = srv->dispatch_many({t, i});
          if (r.ok()) {
            EXPECT_EQ(*r, (std::vector<int>{t, i}));
          } else {
            EXPECT_TRUE(r.error().code() == bs::errc::shutting_down ||
                        r.error().code() == bs::errc::no_serving)
                << r.error().to_string();
          }
          ++answered;
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(round % 5));
    srv->stop();
    stop_calling = true;
    for (auto& t : callers) t.join();
    EXPECT_GT(answered.load(), 0);
  }
}
