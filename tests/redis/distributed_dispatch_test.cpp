// By-name dispatch across processes (distributed.hpp): a local server first,
// then the serving's workers over Redis; the explicit routes; configure and
// reset, also racing with calls and from a remote call's callback; and a
// redis_client destroyed from its own callback.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "batch_serving/batch_serving.hpp"
#include "batch_serving/coroutine.hpp"
#include "batch_serving/distributed.hpp"
#include "batch_serving/redis_client.hpp"
#include "batch_serving/redis_worker.hpp"
#include "redis/support/redis_server.hpp"
#include "support/test_task.hpp"

namespace bs = batch_serving;
namespace dist = batch_serving::distributed;
using namespace std::chrono_literals;

namespace {

using value = std::int64_t;
using target = dist::target<value, value>;

// The free forms for value -> value (a template's comma would split a gtest macro).
bs::result<value> by_name(std::string_view serving, value x, const bs::call_options& o = {}) {
  return dist::dispatch<value, value>(serving, x, o);
}
bs::result<std::vector<value>> many_by_name(std::string_view serving, std::vector<value> xs) {
  return dist::dispatch_many<value, value>(serving, std::span<const value>(xs));
}
bs::future<value> async_by_name(std::string_view serving, value x) {
  return dist::dispatch_async<value, value>(serving, x);
}
bs::future<std::vector<value>> many_async_by_name(std::string_view serving, std::vector<value> xs) {
  return dist::dispatch_many_async<value, value>(serving, std::move(xs));
}

bs::serving<value, value> affine(value scale, value offset) {
  return bs::serving<value, value>([scale, offset](std::span<const value> xs) {
    std::vector<value> out;
    out.reserve(xs.size());
    for (value x : xs) out.push_back(scale * x + offset);
    return out;
  });
}

class DistributedDispatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dist::reset();
    if (!bs::test::require_redis_server()) GTEST_SKIP();
    redis_.emplace();
  }
  void TearDown() override { dist::reset(); }

  bs::redis_worker_options worker_options() const { return {.endpoint = redis_->tcp_endpoint()}; }
  bs::redis_client_options remote_defaults() const {
    return {.endpoint = redis_->tcp_endpoint(),
            .reconnect = {.min_delay = 20ms, .max_delay = 200ms}};
  }

  std::optional<bs::test::redis_server> redis_;
};

TEST_F(DistributedDispatchTest, WithoutRedisByNameCallsStayLocal) {
  EXPECT_FALSE(dist::configured());
  bs::server local(affine(2, 0), {.name = "double"});
  EXPECT_EQ(by_name("double", 4).value(), 8);
  EXPECT_EQ(by_name("triple", 4).error().code(), bs::errc::no_serving);
  auto remote = target("double", dist::route::remote_only).dispatch(4);
  ASSERT_FALSE(remote.ok());
  EXPECT_EQ(remote.error().code(), bs::errc::invalid_argument);
  EXPECT_NE(remote.error().message().find("no Redis is configured"), std::string::npos)
      << remote.error().to_string();
}

TEST_F(DistributedDispatchTest, ConfigureRefusesOptionsItCannotUse) {
  auto refused = [](const bs::redis_client_options& options, const std::string& names) {
    try {
      dist::configure(options);
    } catch (const bs::serving_error& e) {
      EXPECT_EQ(e.code(), bs::errc::invalid_argument);
      EXPECT_NE(std::string(e.what()).find(names), std::string::npos) << e.what();
      return true;
    }
    return false;
  };
  auto options = remote_defaults();
  options.serving = "double";
  EXPECT_TRUE(refused(options, "serving"));
  options = remote_defaults();
  options.client_id = "fixed";
  EXPECT_TRUE(refused(options, "client_id"));
  options = remote_defaults();
  options.endpoint.port = 0;
  options.endpoint.host = "";
  EXPECT_TRUE(refused(options, "endpoint"));
  EXPECT_FALSE(dist::configured());
}

TEST_F(DistributedDispatchTest, NoLocalServerGoesToTheWorkersOverRedis) {
  bs::server unnamed(affine(2, 1));  // not in the registry: reachable only through its worker
  bs::redis_worker worker(unnamed, "double", worker_options());
  dist::configure(remote_defaults());
  ASSERT_TRUE(dist::configured());

  EXPECT_EQ(by_name("double", 4).value(), 9);
  EXPECT_EQ(many_by_name("double", {1, 2, 3}).value(), (std::vector<value>{3, 5, 7}));
  EXPECT_EQ(async_by_name("double", 10).get().value(), 21);
  EXPECT_EQ(many_async_by_name("double", {5, 6}).get().value(), (std::vector<value>{11, 13}));

  target twice("double");
  std::promise<bs::result<value>> one;
  twice.dispatch_async(7, {}, [&](bs::result<value> r) { one.set_value(std::move(r)); });
  EXPECT_EQ(one.get_future().get().value(), 15);
  std::promise<bs::result<std::vector<value>>> many;
  twice.dispatch_many_async({8, 9}, {}, [&](bs::result<std::vector<value>> r) {
    many.set_value(std::move(r));
  });
  EXPECT_EQ(many.get_future().get().value(), (std::vector<value>{17, 19}));
  EXPECT_EQ(worker.stats().calls_dispatched, 6U);
}

TEST_F(DistributedDispatchTest, ACoroutineAwaitsATargetOnItsWorkers) {
  bs::server unnamed(affine(2, 1));
  bs::redis_worker worker(unnamed, "double", worker_options());
  dist::configure(remote_defaults());
  target twice("double", dist::route::remote_only);
  bs::resume_pool pool(1);
  std::optional<bs::result<value>> one;
  std::optional<bs::result<std::vector<value>>> many;
  // Where it may go on: on the pool, or, when the answer was there before it
  // suspended, in the thread that started it; never on the client's own thread.
  const auto starter = std::this_thread::get_id();
  bool resumed_where_asked = false;
  auto body = [&]() -> bs::testing::task {
    one.emplace(co_await bs::co_dispatch(twice, 7, pool));
    std::vector<value> items{8, 9};
    many.emplace(co_await bs::co_dispatch_many(twice, std::move(items), pool));
    resumed_where_asked = pool.owns_this_thread() || std::this_thread::get_id() == starter;
  };
  bs::testing::task t = body();
  t.start();
  t.wait();
  EXPECT_EQ(one->value(), 15);
  EXPECT_EQ(many->value(), (std::vector<value>{17, 19}));
  EXPECT_TRUE(resumed_where_asked);
  EXPECT_EQ(worker.stats().calls_dispatched, 2U);
}

TEST_F(DistributedDispatchTest, ALocalServerOfTheNameComesFirstAndTheRoutesChoose) {
  bs::server remote_side(affine(1, 1000));
  bs::redis_worker worker(remote_side, "shared", worker_options());
  dist::configure(remote_defaults());
  {
    bs::server here(affine(1, 0), {.name = "shared"});
    EXPECT_EQ(by_name("shared", 5).value(), 5);
    EXPECT_EQ(target("shared", dist::route::local_only).dispatch(5).value(), 5);
    EXPECT_EQ(target("shared", dist::route::remote_only).dispatch(5).value(), 1005);
    EXPECT_EQ(worker.stats().calls_dispatched, 1U);
  }
  // The local server is gone: the next call finds the workers.
  EXPECT_EQ(by_name("shared", 5).value(), 1005);
  auto local_only = target("shared", dist::route::local_only).dispatch(5);
  ASSERT_FALSE(local_only.ok());
  EXPECT_EQ(local_only.error().code(), bs::errc::no_serving);
}

TEST_F(DistributedDispatchTest, ALocalServerOfOtherTypesIsAnErrorNotARedirection) {
  bs::server remote_side(affine(1, 0));
  bs::redis_worker worker(remote_side, "typed", worker_options());
  dist::configure(remote_defaults());
  bs::serving<double, double> halves([](std::span<const double> xs) {
    std::vector<double> out;
    for (double x : xs) out.push_back(x / 2);
    return out;
  });
  bs::server here(halves, {.name = "typed"});
  auto r = by_name("typed", 3);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), bs::errc::invalid_argument) << r.error().to_string();
  EXPECT_EQ(worker.stats().calls_dispatched, 0U);
}

TEST_F(DistributedDispatchTest, NoLiveWorkerIsNoServingAndABadNameIsInvalid) {
  dist::configure(remote_defaults());
  auto none = by_name("nobody", 1, {.timeout = 5s});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code(), bs::errc::no_serving) << none.error().to_string();
  auto bad = by_name("not a name {}", 1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), bs::errc::invalid_argument) << bad.error().to_string();
}

TEST_F(DistributedDispatchTest, ResetStopsTheClientsAndCallsAreLocalAgain) {
  bs::server remote_side(affine(1, 1));
  bs::redis_worker worker(remote_side, "inc", worker_options());
  dist::configure(remote_defaults());
  EXPECT_EQ(by_name("inc", 1).value(), 2);
  dist::reset();
  EXPECT_FALSE(dist::configured());
  EXPECT_EQ(by_name("inc", 1).error().code(), bs::errc::no_serving);
  dist::configure(remote_defaults());
  EXPECT_EQ(by_name("inc", 2).value(), 3);
}

TEST_F(DistributedDispatchTest, ResetFromARemoteCallsCallbackNeitherHangsNorCrashes) {
  bs::server remote_side(affine(1, 1));
  bs::redis_worker worker(remote_side, "inc", worker_options());
  dist::configure(remote_defaults());
  std::promise<bs::result<value>> answered;
  target("inc").dispatch_async(41, {}, [&](bs::result<value> r) {
    dist::reset();  // destroys the client whose receiver runs this callback
    answered.set_value(std::move(r));
  });
  auto got = answered.get_future();
  ASSERT_EQ(got.wait_for(20s), std::future_status::ready);
  EXPECT_EQ(got.get().value(), 42);
  EXPECT_FALSE(dist::configured());
}

TEST_F(DistributedDispatchTest, AClientDestroyedFromItsOwnCallbackAnswersItsOtherCalls) {
  bs::server remote_side(affine(1, 1));
  bs::redis_worker worker(remote_side, "inc", worker_options());
  auto options = remote_defaults();
  options.serving = "inc";
  auto client = std::make_unique<bs::redis_client<value, value>>(options);
  ASSERT_EQ(client->dispatch(1).value(), 2);
  redis_->pause();  // the second call stays outstanding
  auto outstanding = client->dispatch_async(2);
  std::promise<bool> destroyed;
  const auto test_thread = std::this_thread::get_id();
  client->dispatch_async(3, {.timeout = 300ms}, [&](const bs::result<value>&) {
    const bool own_thread = std::this_thread::get_id() != test_thread;
    if (own_thread) client.reset();  // from the client's thread that answers this call
    destroyed.set_value(own_thread);
  });
  auto done = destroyed.get_future();
  ASSERT_EQ(done.wait_for(20s), std::future_status::ready);
  ASSERT_TRUE(done.get()) << "the call was answered at once, not by one of the client's threads";
  redis_->resume();
  auto r = outstanding.get();
  ASSERT_FALSE(r.ok());
  // shutting_down from the destruction; unavailable only if the paused
  // Redis tripped the command timeout (2 s) first on a very slow host.
  EXPECT_TRUE(r.error().code() == bs::errc::shutting_down ||
              r.error().code() == bs::errc::unavailable)
      << r.error().to_string();
}

// x -> 10x with a hook "progress" carrying each item, as a streaming serving.
auto tens_streaming() {
  return bs::serving<value, value>([](std::span<const value> xs, bs::execution_context& ctx) {
           ctx.emit("progress", std::vector<value>(xs.begin(), xs.end()));
           std::vector<value> out;
           for (value x : xs) out.push_back(10 * x);
           return out;
         })
      .streaming({.hooks = {"progress"}});
}

// The stream's events as "hook:1,2 batch:10,20 " (payloads read as value).
std::string describe(bs::event_stream<value> events) {
  std::string seen;
  while (auto ev = events.next()) {
    auto list = [&](std::span<const value> xs) {
      std::string out;
      for (value x : xs) {
        if (!out.empty()) out += ',';
        out += std::to_string(x);
      }
      return out;
    };
    switch (ev->kind()) {
      case bs::event_kind::hook: seen += "hook:" + list(ev->payload<value>()) + " "; break;
      case bs::event_kind::batch: seen += "batch:" + list(ev->batch()) + " "; break;
      case bs::event_kind::item: seen += "item:" + std::to_string(ev->item()) + " "; break;
      case bs::event_kind::error: seen += "error:" + ev->error().to_string() + " "; break;
      case bs::event_kind::end: break;
    }
  }
  return seen;
}

TEST_F(DistributedDispatchTest, StreamsByNameHereFirstThenOverRedis) {
  const auto serving = tens_streaming();
  bs::server remote_side(serving, {.batch_size = 4, .batch_timeout = 1ms});
  bs::redis_worker worker(remote_side, "tens", worker_options(), bs::hook_payload_type<value>{});
  dist::configure(remote_defaults());
  const std::vector<value> items = {1, 2};
  const target tens("tens");
  EXPECT_EQ(describe(tens.dispatch_many_stream<value>(std::span<const value>(items))),
            "hook:1,2 batch:10,20 ");
  EXPECT_EQ(describe(tens.dispatch_stream<value>(3)), "hook:3 item:30 ");
  EXPECT_EQ(worker.stats().calls_dispatched, 2U);
  {
    bs::server here(serving, {.name = "tens", .batch_size = 4, .batch_timeout = 1ms});
    EXPECT_EQ(describe(tens.dispatch_stream(4)), "hook:4 item:40 ");
    EXPECT_EQ(worker.stats().calls_dispatched, 2U);  // taken here
    // A plain call by name to a streaming server is refused, not sent away.
    auto plain = tens.dispatch(4);
    ASSERT_FALSE(plain.ok());
    EXPECT_EQ(plain.error().code(), bs::errc::invalid_argument) << plain.error().to_string();
  }
  EXPECT_EQ(describe(target("nobody", dist::route::local_only).dispatch_stream(1))
                .rfind("error:no_serving", 0),
            0U);
}

// Calls from several threads while another configures and resets: each is
// answered, correctly or with an error, and nothing hangs or races.
TEST_F(DistributedDispatchTest, CallsRacingConfigureAndResetAreEachAnsweredOnce) {
  bs::server remote_side(affine(3, 0));
  bs::redis_worker worker(remote_side, "triple", worker_options());
  dist::configure(remote_defaults());
  std::atomic<bool> running{true};
  std::atomic<int> wrong{0};
  std::atomic<int> right{0};
  std::vector<std::jthread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&, t] {
      for (value i = 0; running.load(); ++i) {
        const value x = static_cast<value>(t) * 1'000'000 + i;
        auto r = by_name("triple", x, {.timeout = 10s});
        if (r.ok()) {
          (*r == 3 * x ? right : wrong).fetch_add(1);
        } else if (r.error().code() == bs::errc::timeout) {
          wrong.fetch_add(1);  // nothing here is slow enough to time out
        }
      }
    });
  }
  for (int round = 0; round < 5; ++round) {
    std::this_thread::sleep_for(50ms);
    dist::reset();
    std::this_thread::sleep_for(10ms);
    dist::configure(remote_defaults());
  }
  // Configured for good now: some call must get through (generously bounded).
  const auto until = std::chrono::steady_clock::now() + 20s;
  const int before = right.load();
  while (right.load() == before && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(10ms);
  }
  running = false;
  callers.clear();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(right.load(), before) << "no call got through once configured for good";
}

}  // namespace
