// Library bugs the randomized stress test (stress_test.cpp) found, each cut
// down to a small test that fails while the bug is there (a regression test
// once it is fixed).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <stop_token>
#include <thread>
#include <vector>

#include "batch_serving/server.hpp"

namespace bs = batch_serving;
using namespace std::chrono_literals;

namespace {
using clock_type = std::chrono::steady_clock;
using item_t = std::int64_t;
using server_t = bs::server<item_t, item_t>;

bs::serving<int, int> identity_serving(int slow_item = -1,
                                       std::chrono::milliseconds slow_for = 0ms) {
  return bs::serving<int, int>([=](std::span<const int> xs) {
    if (xs[0] == slow_item) std::this_thread::sleep_for(slow_for);
    return std::vector<int>(xs.begin(), xs.end());
  });
}

// Runs `f` in a thread of its own; false if it has not returned within
// `limit` (the thread is then left behind, blocked: a deadlock).
template <class F>
bool returns_within(std::chrono::milliseconds limit, F f) {
  auto done = std::make_shared<std::atomic<bool>>(false);
  std::thread([done, f = std::move(f)]() mutable {
    f();
    done->store(true);
  }).detach();
  const auto until = clock_type::now() + limit;
  while (!done->load() && clock_type::now() < until) std::this_thread::sleep_for(1ms);
  return done->load();
}

// Stops `srv` from a thread of its own and deletes it; a stop() that has not
// returned within 5 s is a deadlock, reported as a failure (the server is
// then leaked: its threads may still use it).
template <class Server>
void stop_and_delete_or_report_deadlock(Server* srv) {
  if (returns_within(5s, [srv] { srv->stop(); })) {
    delete srv;
  } else {
    ADD_FAILURE() << "deadlock: stop() has not returned after 5 s (the server is leaked)";
  }
}
}  // namespace

// B's deadline passes while it waits alone in the queue; the idle partition
// wakes at that deadline and finds it expired before the deadline timer does
// (the timer's thread is busy in A's completion callback). The partition
// used to fail B but answer it only after its next wake-up, and went back to
// sleep with nothing queued: B hung until the next call or the shutdown.
TEST(StressFindings, CallExpiredByAnIdlePartitionIsAnsweredAtItsDeadline) {
  bs::server<int, int> srv(identity_serving(100, 500ms),
                           {.batch_size = 3, .batch_timeout = 10s, .partitions = 2});
  // A fills a batch and runs at once (500 ms); its deadline passes while it
  // runs, so the timer answers it, and A's callback holds the timer's thread.
  srv.dispatch_many_async({100, 101, 102}, {.timeout = 10ms},
                          [](bs::result<std::vector<int>>) { std::this_thread::sleep_for(300ms); });
  auto b = srv.dispatch_async(2, {.timeout = 50ms});
  EXPECT_TRUE(b.wait_for(1s)) << "B is still unanswered 950 ms after its deadline";
  srv.stop();
  auto r = b.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), bs::errc::timeout);
}

// The deadline timer sleeps until its earliest deadline while calls with
// later deadlines are watched, which grows (reallocates) its heap. It used
// to sleep on a reference into that heap: heap-use-after-free, which only
// ASan reports (deadline_timer::run).
TEST(StressFindings, DeadlineTimerSurvivesWatchingCallsWhileItSleeps) {
  bs::server<int, int> srv(identity_serving(), {.batch_size = 1000, .batch_timeout = 10s});
  auto first = srv.dispatch_async(0, {.timeout = 100ms});
  std::this_thread::sleep_for(20ms);  // the timer sleeps until first's deadline
  std::vector<bs::future<int>> later;
  const bs::call_options in_ten_seconds{.timeout = 10s};
  for (int i = 1; i <= 100; ++i) later.push_back(srv.dispatch_async(i, in_ten_seconds));
  auto r = first.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), bs::errc::timeout);
}

// A call with a stop_token arms its stop callback after it was submitted
// (cancel_on creates the call's cold block under its lock), while a partition
// may already deliver it and read that block without the lock (failed()).
// A data race that TSan reports; the test passes in other builds.
TEST(StressFindings, StopTokenCallsDoNotRaceWithTheirDelivery) {
  bs::server<int, int> srv(identity_serving(),
                           {.batch_size = 4, .batch_timeout = 0us, .partitions = 2});
  for (int i = 0; i < 2000; ++i) {
    std::stop_source never;  // a stop is possible, never requested
    auto f = srv.dispatch_many_async({i, i + 1}, {.stop_token = never.get_token()});
    ASSERT_TRUE(f.get().ok());
  }
}

// With batch_timeout 0 an idle partition spins for the next call with mu_
// released, then goes to sleep on work_cv_ without looking at the lifecycle
// again: a stop() that came during the spin (and notified nobody) is missed.
// stop() then waits out its shutdown_timeout, and the partition thread sleeps
// forever, keeping the server core alive. About 1 start/stop in 1,000 here
// (this loop runs ~3,000 in its 3 s).
TEST(StressFindings, StopWakesAPartitionThatWasSpinningForWork) {
  const auto until = clock_type::now() + 3s;
  for (int i = 0; i < 5'000 && clock_type::now() < until; ++i) {
    auto token = std::make_shared<int>(0);  // held by the serving: alive while the core is
    const std::weak_ptr<int> core_alive = token;
    clock_type::duration took{};
    {
      server_t srv(bs::serving<item_t, item_t>([token](std::span<const item_t> xs) {
                     return std::vector<item_t>(xs.begin(), xs.end());
                   }),
                   {.batch_timeout = 0us, .shutdown_timeout = 1s});
      token.reset();
      const auto start = clock_type::now();
      srv.stop();  // idle: nothing to drain
      took = clock_type::now() - start;
    }
    ASSERT_LT(took, 500ms) << "start/stop " << i
                           << ": stop() of an idle server waited out its shutdown_timeout";
    ASSERT_TRUE(core_alive.expired()) << "start/stop " << i << ": a partition outlived its server";
  }
}

// A completion callback may stop its server (server.hpp). When another
// thread is already stopping it, the callback's stop() used to wait for that
// stop to finish, while that stop waited for the callback's thread: here the
// deadline timer's (joined by stop()). Deadlock.
TEST(StressFindings, StopInATimerCallbackDuringStopReturns) {
  auto* srv = new server_t(bs::serving<item_t, item_t>([](std::span<const item_t> xs) {
                             std::this_thread::sleep_for(200ms);
                             return std::vector<item_t>(xs.begin(), xs.end());
                           }),
                           {.batch_size = 1, .batch_timeout = 0us});
  srv->dispatch_async(1, [](bs::result<item_t>) {});  // executes for 200 ms
  // Queued behind it, times out at 50 ms: its callback runs on the timer's
  // thread and stops the server at 150 ms, while the owner is stopping it.
  srv->dispatch_async(2, {.timeout = 50ms}, [srv](bs::result<item_t>) {
    std::this_thread::sleep_for(100ms);
    srv->stop();
  });
  std::this_thread::sleep_for(80ms);
  stop_and_delete_or_report_deadlock(srv);
}

// The same in stop()'s own thread: stop() answers a leftover call
// shutting_down, running its callback, which calls stop(), which used to
// wait for the stop() it runs in.
TEST(StressFindings, StopInACallbackRunByStopReturns) {
  auto* srv = new server_t(bs::serving<item_t, item_t>([](std::span<const item_t> xs) {
                             std::this_thread::sleep_for(200ms);
                             return std::vector<item_t>(xs.begin(), xs.end());
                           }),
                           {.batch_size = 1, .batch_timeout = 0us, .shutdown_timeout = 0ms});
  srv->dispatch_async(1, [](bs::result<item_t>) {});  // executes for 200 ms
  srv->dispatch_async(2, [srv](bs::result<item_t>) { srv->stop(); });  // left over by stop()
  std::this_thread::sleep_for(20ms);
  stop_and_delete_or_report_deadlock(srv);
}

// stop() takes the queued calls off the queue, then answers them one by one
// (running their callbacks) and releases them. Y, taken but not yet
// answered, is cancelled meanwhile from thread B: its callback runs in B and
// stops the server, so it waits for the stop in progress. That stop then
// drops the last reference to Y, and destroying Y's stop callback waits for
// B's cancellation to return. Deadlock (seen in a soak: seed 20261127, round
// 1109, stop from a callback).
TEST(StressFindings, StopFromACancellationCallbackDuringStopReturns) {
  auto* srv = new server_t(bs::serving<item_t, item_t>([](std::span<const item_t> xs) {
                             std::this_thread::sleep_for(300ms);
                             return std::vector<item_t>(xs.begin(), xs.end());
                           }),
                           {.batch_size = 1, .batch_timeout = 0us, .shutdown_timeout = 0ms});
  srv->dispatch_async(1, [](bs::result<item_t>) {});  // executes for 300 ms
  auto x_answered = std::make_shared<std::atomic<bool>>(false);
  // X, queued: stop() answers it shutting_down, running its callback (100 ms).
  srv->dispatch_async(2, [x_answered](bs::result<item_t>) {
    x_answered->store(true);
    std::this_thread::sleep_for(100ms);
  });
  // Y, queued behind X, cancelled by thread B while stop() is in X's callback.
  auto cancel = std::make_shared<std::stop_source>();
  srv->dispatch_async(3, {.stop_token = cancel->get_token()},
                      [srv](bs::result<item_t>) { srv->stop(); });
  std::thread([x_answered, cancel] {
    while (!x_answered->load()) std::this_thread::sleep_for(1ms);
    cancel->request_stop();
  }).detach();
  std::this_thread::sleep_for(20ms);
  stop_and_delete_or_report_deadlock(srv);
}

// ---- found by the fuzz target (tests/fuzz) ---------------------------------------

namespace {
// Holds its execution until the test lets it go.
struct held_execution {
  std::atomic<bool> running{false};
  std::atomic<bool> release{false};
  bs::serving<int, int> serving() {
    return bs::serving<int, int>([this](std::span<const int> xs) {
      running = true;
      while (!release) std::this_thread::sleep_for(100us);
      return std::vector<int>(xs.begin(), xs.end());
    });
  }
};

// Lives in the callback object, which lives in the call.
struct alive_flag {
  bool alive = true;
  alive_flag() = default;
  alive_flag(const alive_flag&) = default;
  alive_flag(alive_flag&& other) noexcept : alive(other.alive) {}
  alive_flag& operator=(const alive_flag&) = default;
  alive_flag& operator=(alive_flag&&) = default;
  ~alive_flag() { alive = false; }
};
}  // namespace

// A running call cancelled by request_stop(): its completion callback runs
// inside request_stop() and stops the server, which drops the partition's
// and the timer's references. The stop callback held none of its own, so the
// call (and the callback object) were destroyed under the running callback:
// use-after-free, which ASan reports; here the flag it reads says so.
TEST(StressFindings, ACancelledCallOutlivesItsCallbackThatStopsTheServer) {
  held_execution held;
  bs::server<int, int> srv(held.serving(),
                           {.batch_size = 1, .batch_timeout = 0us, .shutdown_timeout = 10s});
  std::stop_source source;
  std::atomic<bool> destroyed_while_running{false};
  srv.dispatch_async(1, {.timeout = 10s, .stop_token = source.get_token()},
                     [&, flag = alive_flag{}](bs::result<int>) {
                       held.release = true;  // the execution finishes
                       srv.stop();           // drains, then stops the deadline timer
                       if (!flag.alive) destroyed_while_running = true;
                     });
  while (!held.running) std::this_thread::sleep_for(100us);
  source.request_stop();  // cancels the running call; its callback runs here
  EXPECT_FALSE(destroyed_while_running);
}

// The same with the deadline passing while the cancelled call's callback
// runs: the timer thread dropped the last reference and its ~stop_callback
// waited for the callback, whose stop() joined the timer thread. Deadlock.
TEST(StressFindings, StopInTheCallbackOfACancelledCallDoesNotWaitForTheTimer) {
  held_execution held;
  auto* srv = new server_t(bs::serving<item_t, item_t>([&held](std::span<const item_t> xs) {
                             held.running = true;
                             while (!held.release) std::this_thread::sleep_for(100us);
                             return std::vector<item_t>(xs.begin(), xs.end());
                           }),
                           {.batch_size = 1, .batch_timeout = 0us, .shutdown_timeout = 10s});
  auto source = std::make_shared<std::stop_source>();
  srv->dispatch_async(1, {.timeout = 50ms, .stop_token = source->get_token()},
                      [srv, &held](bs::result<item_t>) {
                        held.release = true;                   // the execution finishes
                        std::this_thread::sleep_for(200ms);   // and the deadline passes
                        srv->stop();
                      });
  while (!held.running) std::this_thread::sleep_for(100us);
  const bool returned = returns_within(5s, [source] { source->request_stop(); });
  ASSERT_TRUE(returned) << "deadlock: the cancelled call's callback never returned from stop()";
  delete srv;
}
