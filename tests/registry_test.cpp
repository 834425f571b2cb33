// Dispatch by name through the process-wide registry: every dispatch form,
// plain and streaming, unknown and stopped names, wrong element types, and
// name ownership.
//
// Tests in this binary share the registry: each uses names derived from its
// own test name.
#include "batch_serving/registry.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <latch>
#include <mutex>
#include <optional>
#include <ostream>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "batch_serving/error.hpp"
#include "batch_serving/result.hpp"
#include "batch_serving/server.hpp"
#include "batch_serving/serving.hpp"
#include "batch_serving/streaming.hpp"
#include "batch_serving/streaming_server.hpp"

#include "support/callback_record.hpp"

namespace batch_serving {
// Lets GoogleTest print codes by name in failure messages.
inline void PrintTo(errc code, std::ostream* os) { *os << to_string(code); }
}  // namespace batch_serving

namespace bs = batch_serving;
using bs::testing::callback_record;
using bs::testing::gate;
using namespace std::chrono_literals;

namespace {

::testing::AssertionResult contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\" does not contain \"" << part << "\"";
}

// A name no other test uses: "registry_test.<TestName>[.suffix]".
std::string unique_name(const std::string& suffix = "") {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string("registry_test.") + info->name();
  if (!suffix.empty()) name += "." + suffix;
  return name;
}

std::vector<int> squares_of(std::span<const int> xs) {
  std::vector<int> out;
  for (int x : xs) out.push_back(x * x);
  return out;
}

bs::serving<int, int> squares() { return bs::serving<int, int>(squares_of); }

// A serving that tells which server answered: x + tag.
bs::serving<int, int> adds(int tag) {
  return bs::serving<int, int>([tag](std::span<const int> xs) {
    std::vector<int> out;
    for (int x : xs) out.push_back(x + tag);
    return out;
  });
}

bs::server_options named(const std::string& name) {
  return {.name = name, .batch_size = 4, .batch_timeout = 0ms};
}

struct point {
  int x;
  int y;
};

}  // namespace

// ---- every dispatch form by name --------------------------------------------------

TEST(RegistryTest, DispatchByNameReachesTheNamedServer) {
  const auto name = unique_name();
  bs::server srv(squares(), named(name));
  auto r = bs::dispatch<int, int>(name, 3);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r.value(), 9);
  EXPECT_EQ(srv.stats().calls_accepted, 1u);
}

TEST(RegistryTest, DispatchManyByNameGivesAllResultsInOrder) {
  const auto name = unique_name();
  bs::server srv(squares(), named(name));
  auto from_list = bs::dispatch_many<int, int>(name, {2, 3});
  ASSERT_TRUE(from_list.ok()) << from_list.error().to_string();
  EXPECT_EQ(from_list.value(), (std::vector<int>{4, 9}));

  const std::vector<int> items{1, 2, 3, 4, 5, 6};
  auto from_span = bs::dispatch_many<int, int>(name, std::span<const int>(items));
  ASSERT_TRUE(from_span.ok()) << from_span.error().to_string();
  EXPECT_EQ(from_span.value(), (std::vector<int>{1, 4, 9, 16, 25, 36}));
}

TEST(RegistryTest, DispatchAsyncByNameReturnsAFutureForTheValue) {
  const auto name = unique_name();
  bs::server srv(squares(), named(name));
  bs::future<int> f = bs::dispatch_async<int, int>(name, 4);
  ASSERT_TRUE(f.valid());
  EXPECT_EQ(f.get().value(), 16);
}

TEST(RegistryTest, DispatchManyAsyncByNameReturnsAFutureForAllResults) {
  const auto name = unique_name();
  bs::server srv(squares(), named(name));
  bs::future<std::vector<int>> f = bs::dispatch_many_async<int, int>(name, {5, 6, 7});
  EXPECT_EQ(f.get().value(), (std::vector<int>{25, 36, 49}));
}

TEST(RegistryTest, DispatchAsyncByNameWithACallbackRunsItOnceWithTheResult) {
  const auto name = unique_name();
  callback_record<int> rec;
  {
    bs::server srv(squares(), named(name));
    bs::dispatch_async<int, int>(name, 5, rec.callback());
    rec.done.wait();
    EXPECT_EQ(rec.only().value(), 25);
  }
  EXPECT_EQ(rec.calls.load(), 1);
}

TEST(RegistryTest, DispatchAsyncByNameAcceptsAPlainLambda) {
  const auto name = unique_name();
  bs::server srv(squares(), named(name));
  std::atomic<int> got{0};
  gate done;
  bs::dispatch_async<int, int>(name, 6, [&](bs::result<int> r) {
    got.store(r.value_or(-1));
    done.open();
  });
  done.wait();
  EXPECT_EQ(got.load(), 36);
}

TEST(RegistryTest, DispatchManyAsyncByNameWithACallbackRunsItOnceWithAllResults) {
  const auto name = unique_name();
  callback_record<std::vector<int>> rec;
  {
    bs::server srv(squares(), named(name));
    bs::dispatch_many_async<int, int>(name, {1, 2, 3}, rec.callback());
    rec.done.wait();
    EXPECT_EQ(rec.only().value(), (std::vector<int>{1, 4, 9}));
  }
  EXPECT_EQ(rec.calls.load(), 1);
}

TEST(RegistryTest, DispatchByNameFromManyThreadsGivesEachCallerItsOwnResult) {
  const auto name = unique_name();
  bs::server srv(squares(), {.name = name, .batch_size = 8, .batch_timeout = 1ms});
  constexpr int threads = 4;
  constexpr int per_thread = 50;
  std::latch start(threads);
  std::vector<int> wrong(threads, 0);
  std::vector<std::thread> callers;
  for (int t = 0; t < threads; ++t) {
    callers.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < per_thread; ++i) {
        const int x = t * 1000 + i;
        auto r = bs::dispatch<int, int>(name, x);
        if (!r.ok() || *r != x * x) ++wrong[static_cast<std::size_t>(t)];
      }
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(wrong, std::vector<int>(threads, 0));
}

TEST(RegistryTest, ServerReportsItsName) {
  const auto name = unique_name();
  bs::server srv(squares(), named(name));
  EXPECT_EQ(srv.name(), name);
}

TEST(RegistryTest, AMappedServerIsDispatchedWithItsCallerFacingTypes) {
  const auto name = unique_name();
  const auto by_point = squares().map_inputs([](const point& p) { return p.x; });
  const auto as_text = by_point.map_results([](int v) { return std::to_string(v); });
  bs::server srv(as_text, named(name));
  auto one = bs::dispatch<point, std::string>(name, point{3, 0});
  ASSERT_TRUE(one.ok()) << one.error().to_string();
  EXPECT_EQ(one.value(), "9");
  auto many = bs::dispatch_many<point, std::string>(name, {point{1, 0}, point{2, 0}});
  ASSERT_TRUE(many.ok()) << many.error().to_string();
  EXPECT_EQ(many.value(), (std::vector<std::string>{"1", "4"}));
  EXPECT_EQ((bs::dispatch_async<point, std::string>(name, point{4, 0}).get().value()), "16");

  // The batch types are not the caller-facing types.
  auto as_batch_types = bs::dispatch<int, int>(name, 3);
  ASSERT_FALSE(as_batch_types.ok());
  EXPECT_EQ(as_batch_types.error().code(), bs::errc::invalid_argument);
}

TEST(RegistryTest, AnEmptyDispatchManyByNameIsInvalidArgument) {
  const auto name = unique_name();
  bs::server srv(squares(), named(name));
  auto r = bs::dispatch_many<int, int>(name, std::span<const int>());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), bs::errc::invalid_argument);
  auto f = bs::dispatch_many_async<int, int>(name, std::vector<int>{});
  EXPECT_TRUE(f.ready());
  EXPECT_EQ(f.get().error().code(), bs::errc::invalid_argument);
}

// ---- unknown and stopped names --------------------------------------------------------

TEST(RegistryTest, AnUnknownNameIsNoServingForEveryForm) {
  const auto name = unique_name("never_started");
  EXPECT_FALSE(bs::is_running(name));

  auto one = bs::dispatch<int, int>(name, 3);
  ASSERT_FALSE(one.ok());
  EXPECT_EQ(one.error().code(), bs::errc::no_serving);
  EXPECT_TRUE(contains(one.error().message(), name));

  auto many = bs::dispatch_many<int, int>(name, {1, 2});
  ASSERT_FALSE(many.ok());
  EXPECT_EQ(many.error().code(), bs::errc::no_serving);

  auto f = bs::dispatch_async<int, int>(name, 3);
  ASSERT_TRUE(f.valid());
  EXPECT_TRUE(f.ready());  // answered at once
  EXPECT_EQ(f.get().error().code(), bs::errc::no_serving);

  auto fm = bs::dispatch_many_async<int, int>(name, {1, 2});
  EXPECT_TRUE(fm.ready());
  EXPECT_EQ(fm.get().error().code(), bs::errc::no_serving);
}

TEST(RegistryTest, AnUnknownNameCallsTheCallbackOnceInThisThreadWithNoServing) {
  const auto name = unique_name("never_started");
  callback_record<int> one;
  bs::dispatch_async<int, int>(name, 3, one.callback());
  EXPECT_EQ(one.calls.load(), 1);  // before dispatch_async returned
  EXPECT_EQ(one.only().error().code(), bs::errc::no_serving);
  {
    std::lock_guard lock(one.mu);
    EXPECT_EQ(one.thread, std::this_thread::get_id());
  }

  callback_record<std::vector<int>> many;
  bs::dispatch_many_async<int, int>(name, {1, 2}, many.callback());
  EXPECT_EQ(many.calls.load(), 1);
  EXPECT_EQ(many.only().error().code(), bs::errc::no_serving);
}

TEST(RegistryTest, AThrowingCallbackForAnUnknownNameDoesNotEscape) {
  const auto name = unique_name("never_started");
  EXPECT_NO_THROW((bs::dispatch_async<int, int>(name, 3, [](bs::result<int>) {
    throw std::runtime_error("callback failure");
  })));
  EXPECT_NO_THROW((bs::dispatch_many_async<int, int>(name, {1}, [](bs::result<std::vector<int>>) {
    throw std::runtime_error("callback failure");
  })));
}

TEST(RegistryTest, IsRunningFollowsTheServersLifetime) {
  const auto name = unique_name();
  EXPECT_FALSE(bs::is_running(name));
  {
    bs::server srv(squares(), named(name));
    EXPECT_TRUE(bs::is_running(name));
    EXPECT_FALSE(bs::is_running(name + ".other"));
  }
  EXPECT_FALSE(bs::is_running(name));
}

TEST(RegistryTest, AStoppedServerIsNoServingByName) {
  const auto name = unique_name();
  bs::server srv(squares(), named(name));
  ASSERT_EQ((bs::dispatch<int, int>(name, 2).value()), 4);
  srv.stop();
  EXPECT_FALSE(bs::is_running(name));

  auto one = bs::dispatch<int, int>(name, 2);
  ASSERT_FALSE(one.ok());
  EXPECT_EQ(one.error().code(), bs::errc::no_serving);

  auto many = bs::dispatch_many<int, int>(name, {1, 2});
  ASSERT_FALSE(many.ok());
  EXPECT_EQ(many.error().code(), bs::errc::no_serving);

  auto f = bs::dispatch_async<int, int>(name, 2);
  EXPECT_TRUE(f.ready());
  EXPECT_EQ(f.get().error().code(), bs::errc::no_serving);

  callback_record<int> rec;
  bs::dispatch_async<int, int>(name, 2, rec.callback());
  EXPECT_EQ(rec.calls.load(), 1);
  EXPECT_EQ(rec.only().error().code(), bs::errc::no_serving);
}

TEST(RegistryTest, ADestroyedServerIsNoServingByName) {
  const auto name = unique_name();
  {
    bs::server srv(squares(), named(name));
    ASSERT_EQ((bs::dispatch<int, int>(name, 2).value()), 4);
  }
  auto r = bs::dispatch<int, int>(name, 2);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), bs::errc::no_serving);
  auto f = bs::dispatch_many_async<int, int>(name, {1});
  EXPECT_TRUE(f.ready());
  EXPECT_EQ(f.get().error().code(), bs::errc::no_serving);
}

TEST(RegistryTest, AnUnnamedServerIsNotRegistered) {
  bs::server srv(squares(), {.batch_size = 1, .batch_timeout = 0ms});
  EXPECT_TRUE(srv.name().empty());
  EXPECT_FALSE(bs::is_running(""));
  auto r = bs::dispatch<int, int>("", 2);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), bs::errc::no_serving);
}

TEST(RegistryTest, AMovedServerStaysRegisteredUntilTheNewOwnerStops) {
  const auto name = unique_name();
  std::optional<bs::server<int, int>> owner;
  {
    bs::server srv(adds(100), named(name));
    owner.emplace(std::move(srv));
  }  // the moved-from server is destroyed here
  EXPECT_TRUE(bs::is_running(name));
  EXPECT_EQ((bs::dispatch<int, int>(name, 1).value()), 101);
  owner.reset();
  EXPECT_FALSE(bs::is_running(name));
}

// ---- wrong element types ------------------------------------------------------------------

TEST(RegistryTest, AWrongInputTypeIsInvalidArgumentNamingBothSignatures) {
  const auto name = unique_name();
  bs::server srv(squares(), named(name));
  auto r = bs::dispatch<std::string, int>(name, std::string("3"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), bs::errc::invalid_argument);
  const std::string& message = r.error().message();
  EXPECT_TRUE(contains(message, name));
  EXPECT_TRUE(contains(message, "int -> int"));          // what the server serves
  EXPECT_TRUE(contains(message, "std::string -> int"));  // what the call was made for
  EXPECT_EQ(srv.stats().calls_accepted, 0u);
}

TEST(RegistryTest, AWrongResultTypeIsInvalidArgumentNamingBothSignatures) {
  const auto name = unique_name();
  bs::server srv(squares(), named(name));
  auto r = bs::dispatch<int, double>(name, 3);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), bs::errc::invalid_argument);
  EXPECT_TRUE(contains(r.error().message(), "serves int -> int"));
  EXPECT_TRUE(contains(r.error().message(), "int -> double"));
}

TEST(RegistryTest, WrongTypesAreInvalidArgumentForEveryForm) {
  const auto name = unique_name();
  bs::server srv(squares(), named(name));

  auto many = bs::dispatch_many<long, int>(name, {1L, 2L});
  ASSERT_FALSE(many.ok());
  EXPECT_EQ(many.error().code(), bs::errc::invalid_argument);
  EXPECT_TRUE(contains(many.error().message(), "long -> int"));

  auto f = bs::dispatch_async<int, long>(name, 1);
  EXPECT_TRUE(f.ready());
  auto fr = f.get();
  ASSERT_FALSE(fr.ok());
  EXPECT_EQ(fr.error().code(), bs::errc::invalid_argument);

  auto fm = bs::dispatch_many_async<unsigned, int>(name, {1u});
  EXPECT_TRUE(fm.ready());
  EXPECT_EQ(fm.get().error().code(), bs::errc::invalid_argument);

  callback_record<std::string> one;
  bs::dispatch_async<int, std::string>(name, 1, one.callback());
  EXPECT_EQ(one.calls.load(), 1);
  EXPECT_EQ(one.only().error().code(), bs::errc::invalid_argument);

  callback_record<std::vector<int>> batch;
  bs::dispatch_many_async<short, int>(name, {short{1}}, batch.callback());
  EXPECT_EQ(batch.calls.load(), 1);
  EXPECT_EQ(batch.only().error().code(), bs::errc::invalid_argument);

  // Nothing reached the server, and it still serves the right types.
  EXPECT_EQ(srv.stats().calls_accepted, 0u);
  EXPECT_EQ((bs::dispatch<int, int>(name, 3).value()), 9);
}

// ---- name ownership ------------------------------------------------------------------------

TEST(RegistryTest, StartingASecondServerWithATakenNameThrowsInvalidArgument) {
  const auto name = unique_name();
  bs::server first(adds(100), named(name));
  try {
    bs::server second(adds(200), named(name));
    FAIL() << "a second server took the name '" << name << "'";
  } catch (const bs::serving_error& ex) {
    EXPECT_EQ(ex.code(), bs::errc::invalid_argument);
    EXPECT_TRUE(contains(ex.error().message(), name));
  }
  // The failed start left the first server registered and serving.
  EXPECT_TRUE(bs::is_running(name));
  EXPECT_EQ((bs::dispatch<int, int>(name, 1).value()), 101);
}

TEST(RegistryTest, ATakenNameIsTakenEvenForAServerOfOtherTypes) {
  const auto name = unique_name();
  bs::server first(squares(), named(name));
  const bs::serving<std::string, std::string> echo([](std::span<const std::string> xs) {
    return std::vector<std::string>(xs.begin(), xs.end());
  });
  EXPECT_THROW(bs::server second(echo, named(name)), bs::serving_error);
  EXPECT_EQ((bs::dispatch<int, int>(name, 3).value()), 9);
}

TEST(RegistryTest, AfterTheFirstServerIsDestroyedTheNameCanBeReused) {
  const auto name = unique_name();
  {
    bs::server first(adds(100), named(name));
    EXPECT_EQ((bs::dispatch<int, int>(name, 1).value()), 101);
  }
  bs::server second(adds(200), named(name));
  EXPECT_TRUE(bs::is_running(name));
  EXPECT_EQ((bs::dispatch<int, int>(name, 1).value()), 201);
}

TEST(RegistryTest, AfterTheFirstServerIsStoppedTheNameCanBeReused) {
  const auto name = unique_name();
  std::optional<bs::server<int, int>> first;
  first.emplace(adds(100), named(name));
  first->stop();
  bs::server second(adds(200), named(name));
  EXPECT_EQ((bs::dispatch<int, int>(name, 1).value()), 201);
  // Destroying the stopped first server must not unregister the second.
  first.reset();
  EXPECT_TRUE(bs::is_running(name));
  EXPECT_EQ((bs::dispatch<int, int>(name, 1).value()), 201);
}

TEST(RegistryTest, ANameCanBeReusedWithOtherElementTypes) {
  const auto name = unique_name();
  { bs::server first(squares(), named(name)); }
  const bs::serving<std::string, std::size_t> lengths([](std::span<const std::string> xs) {
    std::vector<std::size_t> out;
    for (const auto& x : xs) out.push_back(x.size());
    return out;
  });
  bs::server second(lengths, named(name));
  EXPECT_EQ((bs::dispatch<std::string, std::size_t>(name, std::string("four")).value()), 4u);
  EXPECT_EQ((bs::dispatch<int, int>(name, 2).error().code()), bs::errc::invalid_argument);
}

TEST(RegistryTest, AServerWhoseInitThrowsLeavesItsNameFree) {
  struct failing_module {
    explicit failing_module(const bs::partition_info&) { throw std::runtime_error("no model"); }
    std::vector<int> handle_batch(std::span<const int> xs, bs::execution_context&) {
      return std::vector<int>(xs.begin(), xs.end());
    }
  };
  const auto name = unique_name();
  EXPECT_THROW(bs::server bad(bs::serving<int, int>::from_module<failing_module>(), named(name)),
               std::runtime_error);
  EXPECT_FALSE(bs::is_running(name));
  EXPECT_EQ((bs::dispatch<int, int>(name, 1).error().code()), bs::errc::no_serving);
  bs::server good(adds(5), named(name));
  EXPECT_EQ((bs::dispatch<int, int>(name, 1).value()), 6);
}

// The name is registered before the partitions' init runs. A call that finds
// it then must not be told the server is shutting down: it is starting. It
// may be queued until the server runs, or refused as no_serving.
TEST(RegistryTest, ADispatchByNameWhileTheServerIsStartingIsNotToldItIsShuttingDown) {
  struct slow_init_module {
    slow_init_module(const bs::partition_info&, gate* entered, gate* release) {
      entered->open();
      release->wait();
    }
    std::vector<int> handle_batch(std::span<const int> xs, bs::execution_context&) {
      return squares_of(xs);
    }
  };
  const auto name = unique_name();
  gate entered;
  gate release;
  std::optional<bs::server<int, int>> srv;
  std::thread starter([&] {
    srv.emplace(bs::serving<int, int>::from_module<slow_init_module>(&entered, &release),
                named(name));
  });
  entered.wait();  // the constructor is inside start(): the server is starting

  auto during_start = bs::dispatch_async<int, int>(name, 3);
  callback_record<int> rec;
  bs::dispatch_async<int, int>(name, 4, rec.callback());
  release.open();
  starter.join();
  ASSERT_TRUE(srv.has_value());

  auto r = during_start.get();
  if (!r.ok()) {
    EXPECT_EQ(r.error().code(), bs::errc::no_serving) << r.error().to_string();
  } else {
    EXPECT_EQ(r.value(), 9);
  }
  rec.done.wait();
  if (!rec.only().ok()) {
    EXPECT_EQ(rec.only().error().code(), bs::errc::no_serving) << rec.only().error().to_string();
  } else {
    EXPECT_EQ(rec.only().value(), 16);
  }
  // Once the constructor returned, the server serves by name.
  EXPECT_EQ((bs::dispatch<int, int>(name, 2).value()), 4);
}

TEST(RegistryTest, DistinctNamesReachDistinctServers) {
  const auto a = unique_name("a");
  const auto b = unique_name("b");
  bs::server first(adds(100), named(a));
  bs::server second(adds(200), named(b));
  EXPECT_EQ((bs::dispatch<int, int>(a, 1).value()), 101);
  EXPECT_EQ((bs::dispatch<int, int>(b, 1).value()), 201);
}

TEST(RegistryTest, ACallbackMayDispatchByNameToAnotherServer) {
  const auto outer_name = unique_name("outer");
  const auto inner_name = unique_name("inner");
  bs::server inner(adds(1000), named(inner_name));
  bs::server outer(squares(), named(outer_name));
  callback_record<int> rec;
  gate outer_done;
  bs::dispatch_async<int, int>(outer_name, 3, [&](bs::result<int> r) {
    bs::dispatch_async<int, int>(inner_name, r.value_or(0), rec.callback());
    outer_done.open();
  });
  outer_done.wait();
  rec.done.wait();
  EXPECT_EQ(rec.only().value(), 1009);
}

// ---- streaming servers by name ---------------------------------------------

namespace {
bs::streaming_serving<int, int> streaming_squares() { return squares().streaming({}); }

std::vector<int> values_of(bs::event_stream<int> stream) {
  auto all = stream.collect();
  return all.ok() ? *all : std::vector<int>{};
}
}  // namespace

TEST(RegistryTest, DispatchStreamByNameReachesANamedStreamingServer) {
  const auto name = unique_name();
  bs::server srv(streaming_squares(), named(name));
  EXPECT_EQ(values_of(bs::dispatch_stream<int, int>(name, 3)), (std::vector<int>{9}));
  EXPECT_EQ(values_of(bs::dispatch_many_stream<int, int>(name, {1, 2, 3})),
            (std::vector<int>{1, 4, 9}));
  const std::vector<int> items{4, 5};
  EXPECT_EQ(values_of(bs::dispatch_many_stream<int, int>(name, std::span<const int>(items))),
            (std::vector<int>{16, 25}));
}

TEST(RegistryTest, DispatchStreamByNameCallbackFormsEndWithAnEndEvent) {
  const auto name = unique_name();
  bs::server srv(streaming_squares(), named(name));
  std::mutex mu;
  std::vector<int> values;
  gate ended;
  auto on_event = [&](bs::event<int> ev) {
    std::lock_guard lock(mu);
    if (ev.kind() == bs::event_kind::item) values.push_back(ev.item());
    if (ev.kind() == bs::event_kind::batch)
      values.insert(values.end(), ev.batch().begin(), ev.batch().end());
    if (ev.kind() == bs::event_kind::end) ended.open();
  };
  bs::dispatch_stream_async<int, int>(name, 2, on_event);
  ended.wait();
  gate ended_many;
  const std::vector<int> items{3, 4};
  bs::dispatch_many_stream_async<int, int>(name, items, {}, [&](bs::event<int> ev) {
    on_event(ev);
    if (ev.kind() == bs::event_kind::end) ended_many.open();
  });
  ended_many.wait();
  std::lock_guard lock(mu);
  EXPECT_EQ(values, (std::vector<int>{4, 9, 16}));
}

TEST(RegistryTest, DispatchStreamByNameTakesCallOptions) {
  const auto name = unique_name();
  bs::server srv(streaming_squares(), named(name));
  auto late =
      bs::dispatch_stream<int, int>(name, 3, {.deadline = std::chrono::steady_clock::now()});
  auto all = late.collect();
  ASSERT_FALSE(all.ok());
  EXPECT_EQ(all.error().code(), bs::errc::timeout);
}

TEST(RegistryTest, APlainDispatchToAStreamingServerIsInvalidArgumentNamingBoth) {
  const auto name = unique_name();
  bs::server srv(streaming_squares(), named(name));
  auto r = bs::dispatch<int, int>(name, 3);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), bs::errc::invalid_argument);
  EXPECT_TRUE(contains(r.error().message(), "serves int -> int (streaming)"));
  EXPECT_TRUE(contains(r.error().message(), "made for int -> int"));
  EXPECT_TRUE(contains(r.error().message(), "with dispatch_stream"));
}

TEST(RegistryTest, AStreamDispatchToAPlainServerIsInvalidArgumentNamingBoth) {
  const auto name = unique_name();
  bs::server srv(squares(), named(name));
  auto all = bs::dispatch_stream<int, int>(name, 3).collect();
  ASSERT_FALSE(all.ok());
  EXPECT_EQ(all.error().code(), bs::errc::invalid_argument);
  EXPECT_TRUE(contains(all.error().message(), "serves int -> int, but"));
  EXPECT_TRUE(contains(all.error().message(), "made for int -> int (streaming)"));
  EXPECT_TRUE(contains(all.error().message(), "with dispatch)"));
}

TEST(RegistryTest, AnUnknownNameIsANoServingErrorEventForStreamsAnsweredInThisThread) {
  const auto name = unique_name();
  auto all = bs::dispatch_stream<int, int>(name, 3).collect();
  ASSERT_FALSE(all.ok());
  EXPECT_EQ(all.error().code(), bs::errc::no_serving);
  std::thread::id ran_on;
  bs::errc code{};
  bs::dispatch_stream_async<int, int>(name, 3, [&](bs::event<int> ev) {
    ran_on = std::this_thread::get_id();
    if (ev.kind() == bs::event_kind::error) code = ev.error().code();
  });
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  EXPECT_EQ(code, bs::errc::no_serving);
}
