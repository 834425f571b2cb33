// Streaming over Redis: a streaming serving with a hook behind a real
// redis_worker, called through a redis_client against a private
// redis-server (events in the local order, per-caller slices, concurrent
// callers, deadlines, hook payload types), and a scripted worker that writes
// answer entries by hand: events out of order, duplicates, malformed ones,
// and a call run twice (two attempts).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "batch_serving/batch_serving.hpp"
#include "batch_serving/detail/redis_connection.hpp"
#include "batch_serving/detail/wire.hpp"
#include "batch_serving/redis_client.hpp"
#include "batch_serving/redis_worker.hpp"
#include "redis/support/redis_server.hpp"

namespace bs = batch_serving;
namespace wire = batch_serving::detail::wire;
using namespace std::chrono_literals;
using bs::detail::redis_connection;
using bs::detail::redis_reply;

namespace {

using clock_type = std::chrono::steady_clock;
using values = std::vector<std::int64_t>;

// x -> 10x; the hook "progress" carries, per item, the item itself.
auto tens_serving() {
  return bs::serving<std::int64_t, std::int64_t>([](std::span<const std::int64_t> xs,
                                                    bs::execution_context& ctx) {
           ctx.emit("progress", values(xs.begin(), xs.end()));
           values out;
           out.reserve(xs.size());
           for (std::int64_t x : xs) out.push_back(10 * x);
           return out;
         })
      .streaming({.hooks = {"progress"}});
}

// One event as the tests compare them: kind, values (batch, item or hook
// payload), hook name, error code.
struct seen_event {
  bs::event_kind kind = bs::event_kind::end;
  values data;
  std::string hook;
  std::optional<bs::errc> code;
  friend bool operator==(const seen_event&, const seen_event&) = default;
};

std::ostream& operator<<(std::ostream& out, const seen_event& e) {
  out << static_cast<int>(e.kind) << " " << e.hook << " [";
  for (std::int64_t v : e.data) out << v << " ";
  return out << "]";
}

seen_event describe(const bs::event<std::int64_t>& ev) {
  seen_event e{.kind = ev.kind(), .data = {}, .hook = {}, .code = std::nullopt};
  switch (ev.kind()) {
    case bs::event_kind::batch: e.data = ev.batch(); break;
    case bs::event_kind::item: e.data = {ev.item()}; break;
    case bs::event_kind::hook: {
      e.hook = ev.hook();
      const auto payload = ev.payload<std::int64_t>();
      e.data.assign(payload.begin(), payload.end());
      break;
    }
    case bs::event_kind::error: e.code = ev.error().code(); break;
    case bs::event_kind::end: break;
  }
  return e;
}

std::vector<seen_event> read_all(bs::event_stream<std::int64_t> events) {
  std::vector<seen_event> all;
  while (auto ev = events.next()) all.push_back(describe(*ev));
  return all;
}

class RedisStreamingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!bs::test::require_redis_server()) GTEST_SKIP();
    redis_.emplace();
  }

  bs::redis_worker_options worker_options() const { return {.endpoint = redis_->tcp_endpoint()}; }
  bs::redis_client_options client_options(std::string serving) const {
    return {.endpoint = redis_->tcp_endpoint(), .serving = std::move(serving)};
  }

  std::optional<bs::test::redis_server> redis_;
};

TEST_F(RedisStreamingTest, EventsArriveInTheLocalOrderWithTheirHookSlices) {
  const auto serving = tens_serving();
  bs::server reference(serving, {.batch_size = 3});
  bs::server local(serving, {.batch_size = 3});
  bs::redis_worker worker(local, "tens", worker_options(), bs::hook_payload_type<std::int64_t>{});
  bs::redis_client<std::int64_t, std::int64_t> client(client_options("tens"));

  const values items = {1, 2, 3, 4, 5, 6, 7};
  const auto expected = read_all(reference.dispatch_many(items));
  // Per slice of at most 3 (with hooks an explicit batch is cut so): hook, batch.
  ASSERT_EQ(expected.size(), 6U);
  EXPECT_EQ(expected[0], (seen_event{bs::event_kind::hook, {1, 2, 3}, "progress", std::nullopt}));
  EXPECT_EQ(expected[1], (seen_event{bs::event_kind::batch, {10, 20, 30}, "", std::nullopt}));

  const auto remote = read_all(client.dispatch_many_stream<std::int64_t>(items, {.timeout = 20s}));
  EXPECT_EQ(remote, expected);

  // One item: its hook event, then an item event.
  const auto one = read_all(client.dispatch_stream<std::int64_t>(9, {.timeout = 20s}));
  EXPECT_EQ(one, read_all(reference.dispatch(9)));
  ASSERT_EQ(one.size(), 2U);
  EXPECT_EQ(one[1], (seen_event{bs::event_kind::item, {90}, "", std::nullopt}));

  // collect() skips the hooks.
  auto all = client.dispatch_many_stream<std::int64_t>({4, 5}, {.timeout = 20s}).collect();
  ASSERT_TRUE(all.ok()) << all.error().to_string();
  EXPECT_EQ(*all, (values{40, 50}));

  // The callback form: every event in order, the end last.
  std::atomic<bool> done{false};
  std::vector<seen_event> pushed;
  client.dispatch_many_stream_async<std::int64_t>(
      std::span<const std::int64_t>(items), {.timeout = 20s}, [&](bs::event<std::int64_t> ev) {
        pushed.push_back(describe(ev));
        if (ev.kind() == bs::event_kind::end || ev.kind() == bs::event_kind::error) {
          done.store(true);
        }
      });
  const auto until = clock_type::now() + 20s;
  while (!done.load() && clock_type::now() < until) std::this_thread::sleep_for(2ms);
  ASSERT_TRUE(done.load());
  ASSERT_EQ(pushed.size(), expected.size() + 1);
  EXPECT_EQ(pushed.back().kind, bs::event_kind::end);
  pushed.pop_back();
  EXPECT_EQ(pushed, expected);

  // Each stream's final event acknowledged its entry: nothing stays pending.
  const auto until_acked = clock_type::now() + 20s;
  while (worker.stats().entries_acked < 4 && clock_type::now() < until_acked) {
    std::this_thread::sleep_for(2ms);
  }
  EXPECT_EQ(worker.stats().entries_acked, 4U);
  EXPECT_EQ(worker.stats().answered_results, 4U);
}

TEST_F(RedisStreamingTest, TheEntryIsAcknowledgedOnlyAfterTheStreamsLastEvent) {
  std::atomic<bool> release{false};
  auto held = bs::serving<std::int64_t, std::int64_t>([&](std::span<const std::int64_t> xs,
                                                          bs::execution_context& ctx) {
                ctx.emit("progress", values(xs.begin(), xs.end()));
                const auto until = clock_type::now() + 20s;
                while (!release.load() && clock_type::now() < until) {
                  std::this_thread::sleep_for(1ms);
                }
                return values(xs.begin(), xs.end());
              }).streaming({.hooks = {"progress"}});
  bs::server local(held, {.batch_size = 4});
  bs::redis_worker worker(local, "held", worker_options(), bs::hook_payload_type<std::int64_t>{});
  bs::redis_client<std::int64_t, std::int64_t> client(client_options("held"));
  auto conn = redis_connection::connect(redis_->tcp_endpoint()).value();
  const auto keys = wire::serving_keys::make("held").value();
  auto pending = [&] {
    return conn.command({"XPENDING", keys.request_stream(), "workers"}).value()[0].integer();
  };

  auto events = client.dispatch_many_stream<std::int64_t>({1, 2}, {.timeout = 30s});
  auto hook = events.next();  // written while the batch function still runs
  ASSERT_TRUE(hook.has_value());
  ASSERT_EQ(hook->kind(), bs::event_kind::hook);
  EXPECT_FALSE(release.load());
  EXPECT_EQ(pending(), 1) << "acknowledged before the stream's end";
  release.store(true);
  auto batch = events.next();
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(batch->kind(), bs::event_kind::batch);
  EXPECT_FALSE(events.next().has_value());
  const auto until = clock_type::now() + 20s;
  while (pending() != 0 && clock_type::now() < until) std::this_thread::sleep_for(2ms);
  EXPECT_EQ(pending(), 0);
}

TEST_F(RedisStreamingTest, ConcurrentStreamingCallersNeverSeeEachOthersResults) {
  const auto serving = tens_serving();
  bs::server local(serving, {.batch_size = 4, .batch_timeout = 2ms});
  bs::redis_worker worker(local, "tens", worker_options(), bs::hook_payload_type<std::int64_t>{});
  bs::redis_client<std::int64_t, std::int64_t> client(client_options("tens"));

  constexpr std::int64_t threads = 8;
  constexpr std::int64_t calls_per_thread = 25;
  std::atomic<int> wrong{0};
  std::vector<std::thread> callers;
  for (std::int64_t t = 0; t < threads; ++t) {
    callers.emplace_back([&, t] {
      for (std::int64_t c = 0; c < calls_per_thread; ++c) {
        // 1..6 items, distinct across every caller.
        values items;
        const std::int64_t n = 1 + (c % 6);
        for (std::int64_t i = 0; i < n; ++i) items.push_back(t * 1'000'000 + c * 100 + i);
        values results;
        values hooked;
        bool ended = false;
        for (auto& ev : client.dispatch_many_stream<std::int64_t>(items, {.timeout = 30s})) {
          if (ev.kind() == bs::event_kind::batch) {
            results.insert(results.end(), ev.batch().begin(), ev.batch().end());
          } else if (ev.kind() == bs::event_kind::hook) {
            const auto p = ev.payload<std::int64_t>();
            hooked.insert(hooked.end(), p.begin(), p.end());
            // A hook slice comes before the batch of the same items.
            if (hooked.size() <= results.size()) wrong.fetch_add(1);
          } else {
            ended = ev.kind() == bs::event_kind::error;
          }
        }
        values expected;
        for (std::int64_t x : items) expected.push_back(10 * x);
        if (ended || results != expected || hooked != items) wrong.fetch_add(1);
      }
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(client.stats().foreign_dropped, 0U);
}

TEST_F(RedisStreamingTest, ADeadlineEndsTheStreamWithATimeoutErrorEvent) {
  // The execution lasts until the test is done (20 s at most).
  std::atomic<bool> release{false};
  auto slow = bs::serving<std::int64_t, std::int64_t>([&](std::span<const std::int64_t> xs,
                                                          bs::execution_context& ctx) {
                ctx.emit("progress", values(xs.begin(), xs.end()));
                const auto until = clock_type::now() + 20s;
                while (!release.load() && clock_type::now() < until) {
                  std::this_thread::sleep_for(1ms);
                }
                return values(xs.begin(), xs.end());
              }).streaming({.hooks = {"progress"}});
  bs::server local(slow, {.batch_size = 4});
  bs::redis_worker worker(local, "slow", worker_options(), bs::hook_payload_type<std::int64_t>{});
  bs::redis_client<std::int64_t, std::int64_t> client(client_options("slow"));

  const auto start = clock_type::now();
  const auto events =
      read_all(client.dispatch_many_stream<std::int64_t>({1, 2}, {.timeout = 100ms}));
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().kind, bs::event_kind::error);
  EXPECT_EQ(events.back().code, bs::errc::timeout);
  // Whichever comes first says timeout: the client's timer, or the worker's
  // local server (the request carried the budget).
  EXPECT_LT(clock_type::now() - start, 15s) << "the timeout waited for the execution";
  release.store(true);
}

TEST_F(RedisStreamingTest, HookPayloadTypesAreCheckedOnBothSides) {
  const auto serving = tens_serving();
  bs::server local(serving, {.batch_size = 8});
  // The worker knows the hook type; a client stream without one still gets
  // the results, and its hook events say how to read them.
  {
    bs::redis_worker worker(local, "tens", worker_options(), bs::hook_payload_type<std::int64_t>{});
    bs::redis_client<std::int64_t, std::int64_t> client(client_options("tens"));
    auto events = client.dispatch_many_stream({1, 2}, {.timeout = 20s});
    auto hook = events.next();
    ASSERT_TRUE(hook.has_value());
    ASSERT_EQ(hook->kind(), bs::event_kind::hook);
    EXPECT_EQ(hook->hook(), "progress");
    try {
      (void)hook->payload<std::int64_t>();
      ADD_FAILURE() << "an undecoded payload was readable";
    } catch (const bs::serving_error& e) {
      EXPECT_EQ(e.code(), bs::errc::invalid_argument);
      EXPECT_NE(std::string(e.what()).find("dispatch_many_stream<P>"), std::string::npos)
          << e.what();
    }
    auto batch = events.next();
    ASSERT_TRUE(batch.has_value());
    ASSERT_EQ(batch->kind(), bs::event_kind::batch);
    EXPECT_EQ(batch->batch(), (values{10, 20}));
    EXPECT_FALSE(events.next().has_value());

    // A hook payload type the entries do not decode as.
    auto strings = client.dispatch_many_stream<std::string>({3}, {.timeout = 20s});
    auto wrong = strings.next();
    ASSERT_TRUE(wrong.has_value());
    ASSERT_EQ(wrong->kind(), bs::event_kind::hook);
    try {
      (void)wrong->payload<std::string>();
      ADD_FAILURE() << "int64 entries read as strings";
    } catch (const bs::serving_error& e) {
      EXPECT_EQ(e.code(), bs::errc::invalid_argument);
      EXPECT_NE(std::string(e.what()).find("do not decode as"), std::string::npos) << e.what();
    }
    worker.stop();
  }
  // A worker without a hook payload type ends hooked streams with an error.
  bs::redis_worker worker(local, "tens", worker_options());
  bs::redis_client<std::int64_t, std::int64_t> client(client_options("tens"));
  const auto events = read_all(client.dispatch_many_stream<std::int64_t>({1}, {.timeout = 20s}));
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(events[0].code, bs::errc::execution_failed);
  // And plain forms reach a streaming worker only to be told so.
  auto plain = client.dispatch(1, {.timeout = 20s});
  ASSERT_FALSE(plain.ok());
  EXPECT_EQ(plain.error().code(), bs::errc::invalid_argument);
  EXPECT_NE(plain.error().message().find("dispatch_stream"), std::string::npos)
      << plain.error().message();
}

TEST_F(RedisStreamingTest, APlainWorkerRefusesStreamingForms) {
  auto plain = bs::serving<std::int64_t, std::int64_t>([](std::span<const std::int64_t> xs) {
    return values(xs.begin(), xs.end());
  });
  bs::server local(plain, {.batch_size = 8});
  bs::redis_worker worker(local, "plain", worker_options());
  bs::redis_client<std::int64_t, std::int64_t> client(client_options("plain"));
  const auto events = read_all(client.dispatch_stream(1, {.timeout = 20s}));
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(events[0].code, bs::errc::invalid_argument);
}

// ---------------------------------------------------------------- scripted worker

constexpr std::string_view scripted_serving = "scripted";

// Takes requests off the stream by hand and writes whatever answers a test
// scripts, in that order.
class scripted_worker {
 public:
  explicit scripted_worker(const bs::redis_endpoint& endpoint)
      : keys_(wire::serving_keys::make(scripted_serving).value()),
        conn_(redis_connection::connect(endpoint).value()) {
    redis_reply group =
        conn_.command({"XGROUP", "CREATE", keys_.request_stream(), "workers", "0", "MKSTREAM"})
            .value();
    EXPECT_TRUE(!group.is_error() || group.error_code() == "BUSYGROUP") << group.describe();
    constexpr std::string_view live_for_ten_minutes =
        "local t = redis.call('TIME') "
        "return redis.call('ZADD', KEYS[1], tonumber(t[1]) * 1000 + 600000, ARGV[1])";
    redis_reply live =
        conn_.command({"EVAL", live_for_ten_minutes, "1", keys_.workers_set(), "scripted-worker"})
            .value();
    EXPECT_FALSE(live.is_error()) << live.describe();
  }

  // The next request (waits up to 20 s).
  wire::request_entry next_request() {
    const auto until = clock_type::now() + 20s;
    while (clock_type::now() < until) {
      auto read = conn_.command({"XREADGROUP", "GROUP", "workers", "scripted-worker", "COUNT", "1",
                                 "BLOCK", "100", "STREAMS", keys_.request_stream(), ">"},
                                1s);
      if (!read.ok() || !read->is_array()) continue;
      const auto entry = (*read)[0][1][0];
      std::vector<wire::field_view> fields;
      const auto pairs = entry[1];
      for (std::size_t i = 0; i + 1 < pairs.size(); i += 2) {
        fields.emplace_back(pairs[i].text(), pairs[i + 1].text());
      }
      wire::parsed_request parsed = wire::parse_request(keys_, fields, wire::limits{});
      (void)conn_.command({"XACK", keys_.request_stream(), "workers", entry[0].text()});
      return std::move(parsed.request).value();
    }
    ADD_FAILURE() << "no request came";
    return {};
  }

  void write(const wire::request_entry& to, std::vector<wire::field> fields) {
    std::vector<std::string_view> argv{"XADD", to.reply_stream, "*"};
    for (const auto& [name, value] : fields) {
      argv.emplace_back(name);
      argv.emplace_back(value);
    }
    redis_reply r = conn_.command(argv).value();
    EXPECT_FALSE(r.is_error()) << r.describe();
  }
  void write(const wire::request_entry& to, wire::answer_entry answer) {
    write(to, wire::encode_answer(std::move(answer), wire::limits{}).value());
  }

  static wire::answer_entry batch(const wire::request_entry& to, std::uint64_t seq,
                                  std::string attempt, const values& results) {
    wire::answer_entry a =
        wire::results_answer<std::int64_t>(to.call_id, results, wire::limits{}, seq).value();
    a.attempt = std::move(attempt);
    return a;
  }
  static wire::answer_entry end(const wire::request_entry& to, std::uint64_t seq,
                                std::string attempt) {
    wire::answer_entry a = wire::end_event(to.call_id, seq);
    a.attempt = std::move(attempt);
    return a;
  }

 private:
  wire::serving_keys keys_;
  redis_connection conn_;
};

class RedisStreamScriptTest : public RedisStreamingTest {
 protected:
  bs::redis_client_options scripted_options() const {
    return client_options(std::string(scripted_serving));
  }
};

TEST_F(RedisStreamScriptTest, EventsOutOfOrderAreReorderedAndDuplicatesDropped) {
  scripted_worker worker(redis_->tcp_endpoint());
  bs::redis_client<std::int64_t, std::int64_t> client(scripted_options());
  auto events = client.dispatch_many_stream({1, 2, 3}, {.timeout = 20s});
  const wire::request_entry request = worker.next_request();
  EXPECT_EQ(request.form, wire::call_form::stream_many);
  worker.write(request, scripted_worker::end(request, 2, "a"));
  worker.write(request, scripted_worker::batch(request, 1, "a", {3}));
  worker.write(request, scripted_worker::batch(request, 1, "a", {3}));  // duplicate, early
  worker.write(request, scripted_worker::batch(request, 0, "a", {1, 2}));
  worker.write(request, scripted_worker::batch(request, 0, "a", {1, 2}));  // duplicate, late
  EXPECT_EQ(read_all(std::move(events)),
            (std::vector<seen_event>{{bs::event_kind::batch, {1, 2}, "", std::nullopt},
                                     {bs::event_kind::batch, {3}, "", std::nullopt}}));
  const auto until = clock_type::now() + 20s;
  while (client.stats().duplicates_dropped < 2 && clock_type::now() < until) {
    std::this_thread::sleep_for(2ms);
  }
  EXPECT_EQ(client.stats().duplicates_dropped, 2U);
  EXPECT_EQ(client.stats().answers_delivered, 3U);
}

TEST_F(RedisStreamScriptTest, AMalformedEventIsDroppedAndCounted) {
  scripted_worker worker(redis_->tcp_endpoint());
  bs::redis_client<std::int64_t, std::int64_t> client(scripted_options());
  auto events = client.dispatch_stream(7, {.timeout = 20s});
  const wire::request_entry request = worker.next_request();
  EXPECT_EQ(request.form, wire::call_form::stream_one);
  // A batch event without seq, then one whose results are not a MessagePack array.
  worker.write(request, std::vector<wire::field>{{"v", "1"},
                                                 {"id", request.call_id},
                                                 {"kind", "batch"},
                                                 {"results", "\x91\x07"}});
  worker.write(request, std::vector<wire::field>{{"v", "1"},
                                                 {"id", request.call_id},
                                                 {"kind", "batch"},
                                                 {"seq", "0"},
                                                 {"attempt", "a"},
                                                 {"results", "\xc1"}});
  // A plain results answer is no stream event either.
  worker.write(
      request,
      wire::results_answer<std::int64_t>(request.call_id, values{70}, wire::limits{}).value());
  worker.write(request, scripted_worker::batch(request, 0, "a", {70}));
  worker.write(request, scripted_worker::end(request, 1, "a"));
  EXPECT_EQ(read_all(std::move(events)),
            (std::vector<seen_event>{{bs::event_kind::item, {70}, "", std::nullopt}}));
  EXPECT_EQ(client.stats().malformed_dropped, 3U);
}

TEST_F(RedisStreamScriptTest, ASecondAttemptAfterDeliveredEventsEndsTheStreamUnavailable) {
  scripted_worker worker(redis_->tcp_endpoint());
  bs::redis_client<std::int64_t, std::int64_t> client(scripted_options());
  auto events = client.dispatch_many_stream({1, 2, 3}, {.timeout = 20s});
  const wire::request_entry request = worker.next_request();
  worker.write(request, scripted_worker::batch(request, 0, "first", {1}));
  // The first worker died; another runs the call again, cut differently.
  worker.write(request, scripted_worker::batch(request, 0, "second", {1, 2}));
  worker.write(request, scripted_worker::batch(request, 1, "second", {3}));
  worker.write(request, scripted_worker::end(request, 2, "second"));

  auto first = events.next();
  ASSERT_TRUE(first.has_value());
  ASSERT_EQ(first->kind(), bs::event_kind::batch);
  EXPECT_EQ(first->batch(), (values{1}));
  auto lost = events.next();
  ASSERT_TRUE(lost.has_value());
  ASSERT_EQ(lost->kind(), bs::event_kind::error);
  EXPECT_EQ(lost->error().code(), bs::errc::unavailable);
  EXPECT_NE(lost->error().message().find("lost after 1 events"), std::string::npos)
      << lost->error().message();
  EXPECT_NE(lost->error().message().find("may have run twice"), std::string::npos);
  EXPECT_FALSE(events.next().has_value());
}

TEST_F(RedisStreamScriptTest, ASecondAttemptBeforeAnyDeliveredEventReplacesTheFirst) {
  scripted_worker worker(redis_->tcp_endpoint());
  bs::redis_client<std::int64_t, std::int64_t> client(scripted_options());
  auto events = client.dispatch_many_stream({1, 2, 3}, {.timeout = 20s});
  const wire::request_entry request = worker.next_request();
  // The first attempt's seq 1 arrives (waiting for seq 0, so not delivered).
  worker.write(request, scripted_worker::batch(request, 1, "first", {3}));
  worker.write(request, scripted_worker::batch(request, 0, "second", {1, 2}));
  // A late event of the attempt given up is dropped, not an error.
  worker.write(request, scripted_worker::batch(request, 0, "first", {1, 2}));
  worker.write(request, scripted_worker::batch(request, 1, "second", {3}));
  worker.write(request, scripted_worker::end(request, 2, "second"));
  EXPECT_EQ(read_all(std::move(events)),
            (std::vector<seen_event>{{bs::event_kind::batch, {1, 2}, "", std::nullopt},
                                     {bs::event_kind::batch, {3}, "", std::nullopt}}));
}

TEST_F(RedisStreamScriptTest, AnErrorWithoutSeqEndsTheStream) {
  scripted_worker worker(redis_->tcp_endpoint());
  bs::redis_client<std::int64_t, std::int64_t> client(scripted_options());
  auto events = client.dispatch_many_stream({1}, {.timeout = 20s});
  const wire::request_entry request = worker.next_request();
  worker.write(request, wire::error_answer(request.call_id,
                                           bs::error(bs::errc::invalid_argument, "unreadable")));
  const auto all = read_all(std::move(events));
  ASSERT_EQ(all.size(), 1U);
  EXPECT_EQ(all[0].code, bs::errc::invalid_argument);
}

TEST_F(RedisStreamScriptTest, AbandoningAStreamStopsFollowingTheCall) {
  scripted_worker worker(redis_->tcp_endpoint());
  bs::redis_client<std::int64_t, std::int64_t> client(scripted_options());
  {
    auto events = client.dispatch_many_stream({1}, {.timeout = 20s});
    (void)worker.next_request();
  }
  // A new call still works, and the abandoned one no longer counts.
  auto events = client.dispatch_many_stream({2}, {.timeout = 20s});
  const wire::request_entry request = worker.next_request();
  worker.write(request, scripted_worker::batch(request, 0, "a", {2}));
  worker.write(request, scripted_worker::end(request, 1, "a"));
  auto all = events.collect();
  ASSERT_TRUE(all.ok()) << all.error().to_string();
  EXPECT_EQ(*all, (values{2}));
}

}  // namespace
