// Telemetry observers (telemetry.hpp) and per-call timing
// (call_options::timing): what a server reports, and when.
#include "batch_serving/telemetry.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "batch_serving/server.hpp"
#include "support/controlled_function.hpp"
#include "support/squares.hpp"

namespace bs = batch_serving;
using namespace std::chrono_literals;

namespace {

// Everything reported, copied (the spans' serving views die with the call).
class recording_telemetry final : public bs::telemetry_observer {
 public:
  struct execution {
    std::string serving;
    bs::execution_span span;
  };

  void execution_started(const bs::execution_span& span) noexcept override {
    std::lock_guard lock(mu_);
    started_.push_back({std::string(span.serving), span});
  }
  void execution_finished(const bs::execution_span& span) noexcept override {
    std::lock_guard lock(mu_);
    finished_.push_back({std::string(span.serving), span});
  }
  void call_finished(const bs::call_span& span) noexcept override {
    std::lock_guard lock(mu_);
    calls_.push_back(span);
    calls_.back().serving = {};
  }
  void call_refused(const bs::refusal_span& span) noexcept override {
    std::lock_guard lock(mu_);
    refused_.push_back(span.code);
  }

  std::vector<execution> started() const {
    std::lock_guard lock(mu_);
    return started_;
  }
  std::vector<execution> finished() const {
    std::lock_guard lock(mu_);
    return finished_;
  }
  std::vector<bs::call_span> calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }
  std::vector<bs::errc> refused() const {
    std::lock_guard lock(mu_);
    return refused_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<execution> started_;
  std::vector<execution> finished_;
  std::vector<bs::call_span> calls_;
  std::vector<bs::errc> refused_;
};

bs::serving<int, int> squares() { return bs::testing::squares_failing_on_negatives(); }

// Squares after sleeping `pause`: an execution that lasts at least that long.
bs::serving<int, int> slow_squares(std::chrono::milliseconds pause) {
  return bs::serving<int, int>([pause](std::span<const int> xs) {
    std::this_thread::sleep_for(pause);
    std::vector<int> out;
    for (int x : xs) out.push_back(x * x);
    return out;
  });
}

}  // namespace

TEST(Telemetry, AFullBatchReportsItsSizeCallsTriggerAndDuration) {
  auto seen = std::make_shared<recording_telemetry>();
  {
    bs::server<int, int> srv(slow_squares(5ms), {.name = "full-batch",
                                                 .batch_size = 4,
                                                 .batch_timeout = std::chrono::seconds(10),
                                                 .observers = {seen}});
    auto a = srv.dispatch_async(1);
    auto b = srv.dispatch_many_async(std::vector<int>{2, 3});
    auto c = srv.dispatch_async(4);  // the fourth item fills the batch
    EXPECT_EQ(a.get().value(), 1);
    EXPECT_EQ(b.get().value(), (std::vector<int>{4, 9}));
    EXPECT_EQ(c.get().value(), 16);
  }
  const auto started = seen->started();
  const auto finished = seen->finished();
  ASSERT_EQ(started.size(), 1u);
  ASSERT_EQ(finished.size(), 1u);
  const bs::execution_span& run = finished[0].span;
  EXPECT_EQ(finished[0].serving, "full-batch");
  EXPECT_EQ(run.items, 4u);
  EXPECT_EQ(run.calls, 3u);
  EXPECT_EQ(run.batch_size, 4u);
  EXPECT_EQ(run.partition, 0u);
  EXPECT_EQ(run.trigger, bs::batch_trigger::full);
  EXPECT_FALSE(run.failed);
  EXPECT_FALSE(run.rerun);
  EXPECT_GE(run.duration, 5ms);
  EXPECT_GE(run.queue_wait.count(), 0);
  EXPECT_EQ(started[0].span.duration.count(), 0);  // not known yet when it starts
  EXPECT_EQ(started[0].span.items, 4u);

  const auto calls = seen->calls();
  ASSERT_EQ(calls.size(), 3u);
  for (const auto& call : calls) {
    EXPECT_FALSE(call.error.has_value());
    EXPECT_GE(call.latency, 5ms);  // it waited for its execution
  }
}

TEST(Telemetry, AnExpiredWindowIsATimeoutTriggerAndItsWaitIsTheWindow) {
  auto seen = std::make_shared<recording_telemetry>();
  {
    bs::server<int, int> srv(squares(),
                             {.batch_size = 8, .batch_timeout = 20ms, .observers = {seen}});
    EXPECT_EQ(srv.dispatch(3).value(), 9);
  }
  const auto finished = seen->finished();
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].serving, "");
  EXPECT_EQ(finished[0].span.trigger, bs::batch_trigger::timeout);
  EXPECT_GE(finished[0].span.queue_wait, 19ms);  // the window, less clock granularity
  EXPECT_EQ(finished[0].span.items, 1u);
}

TEST(Telemetry, ZeroTimeoutIsEagerAndShutdownDrains) {
  auto eager = std::make_shared<recording_telemetry>();
  {
    bs::server<int, int> srv(squares(), {.batch_size = 8,
                                         .batch_timeout = std::chrono::microseconds(0),
                                         .observers = {eager}});
    EXPECT_EQ(srv.dispatch(2).value(), 4);
  }
  ASSERT_EQ(eager->finished().size(), 1u);
  EXPECT_EQ(eager->finished()[0].span.trigger, bs::batch_trigger::eager);

  auto drained = std::make_shared<recording_telemetry>();
  bs::future<int> waiting;
  {
    bs::server<int, int> srv(squares(), {.batch_size = 8,
                                         .batch_timeout = std::chrono::seconds(60),
                                         .observers = {drained}});
    waiting = srv.dispatch_async(5);
    srv.stop();  // runs what waits at once
  }
  EXPECT_EQ(waiting.get().value(), 25);
  ASSERT_EQ(drained->finished().size(), 1u);
  EXPECT_EQ(drained->finished()[0].span.trigger, bs::batch_trigger::drain);
}

TEST(Telemetry, FailuresAndRefusalsCarryTheirCodes) {
  auto seen = std::make_shared<recording_telemetry>();
  bs::testing::controlled_function fn;
  {
    bs::server<int, int> srv(bs::testing::serving_of(fn), {.batch_size = 1,
                                                           .batch_timeout = 0ms,
                                                           .max_queue = 1,
                                                           .observers = {seen}});
    bs::testing::open_on_exit release{fn.released};
    auto blocker = bs::testing::block_executor(srv, fn);
    auto queued = srv.dispatch_async(-1);  // fills the queue; its execution will throw
    auto refused = srv.dispatch(2);        // the queue is full
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code(), bs::errc::overloaded);
    fn.released.open();
    EXPECT_EQ(blocker.get().value(), 0);
    EXPECT_EQ(queued.get().error().code(), bs::errc::execution_failed);
  }
  EXPECT_EQ(seen->refused(), std::vector<bs::errc>{bs::errc::overloaded});
  const auto calls = seen->calls();
  ASSERT_EQ(calls.size(), 2u);
  std::size_t failed = 0;
  for (const auto& call : calls) {
    if (call.error) {
      EXPECT_EQ(*call.error, bs::errc::execution_failed);
      ++failed;
    }
  }
  EXPECT_EQ(failed, 1u);
  const auto finished = seen->finished();
  ASSERT_EQ(finished.size(), 2u);
  EXPECT_FALSE(finished[0].span.failed);
  EXPECT_TRUE(finished[1].span.failed);
}

TEST(Telemetry, ObserversRunOnceForEveryExecutionUnderLoad) {
  auto seen = std::make_shared<recording_telemetry>();
  constexpr int threads = 4;
  constexpr int per_thread = 200;
  std::size_t executed = 0;
  {
    bs::server<int, int> srv(squares(), {.batch_size = 16,
                                         .batch_timeout = std::chrono::microseconds(200),
                                         .partitions = 2,
                                         .observers = {seen, seen}});  // twice: both get it
    std::vector<std::thread> callers;
    for (int t = 0; t < threads; ++t) {
      callers.emplace_back([&srv, t] {
        for (int i = 0; i < per_thread; ++i) {
          const int x = t * per_thread + i;
          ASSERT_EQ(srv.dispatch(x).value(), x * x);
        }
      });
    }
    for (auto& c : callers) c.join();
    srv.stop();
    executed = srv.stats().executions;
  }
  EXPECT_EQ(seen->finished().size(), 2 * executed);
  EXPECT_EQ(seen->started().size(), 2 * executed);
  std::size_t items = 0;
  for (const auto& run : seen->finished()) items += run.span.items;
  EXPECT_EQ(items, 2u * threads * per_thread);
  EXPECT_EQ(seen->calls().size(), 2u * threads * per_thread);
}

TEST(Telemetry, ANullObserverIsRefusedNamingIt) {
  try {
    bs::server<int, int> srv(squares(), {.observers = {nullptr}});
    FAIL() << "a null observer was accepted";
  } catch (const bs::serving_error& e) {
    EXPECT_EQ(e.error().code(), bs::errc::invalid_argument);
    EXPECT_NE(e.error().message().find("observers[0]"), std::string::npos) << e.what();
  }
}

TEST(CallTiming, ACallerLearnsHowLongItQueuedAndExecuted) {
  bs::server<int, int> srv(slow_squares(10ms), {.batch_size = 8, .batch_timeout = 20ms});
  bs::call_timing took;
  EXPECT_EQ(srv.dispatch(4, {.timing = &took}).value(), 16);
  EXPECT_EQ(took.executions, 1u);
  EXPECT_GE(took.queued, 19ms);    // its window
  EXPECT_GE(took.executing, 10ms);  // the batch function's sleep
}

TEST(CallTiming, AnExplicitBatchSpreadOverExecutionsSumsThem) {
  bs::server<int, int> srv(slow_squares(2ms), {.batch_size = 2, .batch_timeout = 0ms});
  bs::call_timing took;
  auto r = srv.dispatch_many(std::vector<int>{1, 2, 3, 4, 5}, {.timing = &took});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(took.executions, 3u);
  EXPECT_GE(took.executing, 6ms);
}

TEST(CallTiming, ARefusedCallLeavesItUntouched) {
  bs::server<int, int> srv(squares(), {.batch_size = 1});
  srv.stop();
  bs::call_timing took;
  took.executions = 7;
  EXPECT_FALSE(srv.dispatch(1, {.timing = &took}).ok());
  EXPECT_EQ(took.executions, 7u);
}

namespace {

class mapping_recorder final : public bs::telemetry_observer {
 public:
  void mapping_finished(const bs::mapping_span& span) noexcept override {
    std::lock_guard lock(mu_);
    spans_.push_back(span);
    spans_.back().serving = {};
  }
  std::vector<bs::mapping_span> spans() const {
    std::lock_guard lock(mu_);
    return spans_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<bs::mapping_span> spans_;
};

}  // namespace

TEST(Telemetry, CallerSideMappingsAreTimedWhereTheyRun) {
  auto seen = std::make_shared<mapping_recorder>();
  auto mapped = squares()
                    .map_inputs([](const std::string& s) { return static_cast<int>(s.size()); })
                    .map_results([](int sq) { return std::to_string(sq); });
  bs::server srv(mapped, {.batch_size = 8, .batch_timeout = 0ms, .observers = {seen}});
  EXPECT_EQ(srv.dispatch(std::string("abc")).value(), "9");
  EXPECT_EQ(srv.dispatch_many(std::vector<std::string>{"a", "bb"}).value(),
            (std::vector<std::string>{"1", "4"}));
  EXPECT_EQ(srv.dispatch_async(std::string("abcd")).get().value(), "16");
  const auto spans = seen->spans();
  ASSERT_EQ(spans.size(), 6u);
  EXPECT_EQ(spans[0].phase, bs::mapping_phase::map_inputs);
  EXPECT_EQ(spans[0].items, 1u);
  EXPECT_EQ(spans[1].phase, bs::mapping_phase::map_results);
  EXPECT_EQ(spans[2].phase, bs::mapping_phase::map_inputs);
  EXPECT_EQ(spans[2].items, 2u);
  EXPECT_EQ(spans[3].phase, bs::mapping_phase::map_results);
  EXPECT_EQ(spans[3].items, 2u);
  EXPECT_EQ(spans[4].phase, bs::mapping_phase::map_inputs);
  EXPECT_EQ(spans[5].phase, bs::mapping_phase::map_results);
}

TEST(Telemetry, AServingWithoutMappingsReportsNoMappingSpans) {
  auto seen = std::make_shared<mapping_recorder>();
  bs::server<int, int> srv(squares(), {.batch_timeout = 0ms, .observers = {seen}});
  EXPECT_EQ(srv.dispatch(3).value(), 9);
  EXPECT_TRUE(seen->spans().empty());
}
