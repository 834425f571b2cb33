// redis_client against a private redis-server and a test-only fake worker
// (the real worker is built separately): a thread that reads the request
// stream with XREADGROUP, answers x -> 2x + 1, and can misbehave.
#include "batch_serving/redis_client.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "batch_serving/coroutine.hpp"
#include "batch_serving/detail/mutex.hpp"
#include "batch_serving/detail/redis_connection.hpp"
#include "batch_serving/detail/wire.hpp"
#include "batch_serving/error.hpp"
#include "batch_serving/redis_endpoint.hpp"
#include "redis/support/redis_server.hpp"
#include "support/sanitizers.hpp"
#include "support/test_task.hpp"

namespace {

using namespace std::chrono_literals;
using batch_serving::call_options;
using batch_serving::errc;
using batch_serving::redis_client;
using batch_serving::redis_client_options;
using batch_serving::redis_endpoint;
using batch_serving::detail::redis_connection;
using batch_serving::detail::redis_reply;
using batch_serving::test::redis_server;
namespace wire = batch_serving::detail::wire;
using clock_type = std::chrono::steady_clock;

constexpr std::string_view serving_name = "double-plus-one";

enum class behaviour {
  correct,       // answers 2x + 1
  twice,         // answers every call twice
  foreign,       // answers another client's call id and a sequence never issued
  garbage,       // writes an entry parse_answer refuses
  wrong_count,   // one result too many
  wrong_type,    // strings instead of ints
  never_answer,  // reads and acknowledges, never answers
};

std::chrono::milliseconds since(clock_type::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start);
}

// Registers in the live-workers set with a heartbeat expiring `heartbeat`
// from Redis's now (negative: expired already).
void register_worker(redis_connection& conn, const wire::serving_keys& keys,
                     std::string_view consumer, std::chrono::milliseconds heartbeat) {
  const std::string offset = std::to_string(heartbeat.count());
  redis_reply r = conn.command({"EVAL",
                                "local t = redis.call('TIME') "
                                "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / "
                                "1000) "
                                "return redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), "
                                "ARGV[1])",
                                "1", keys.workers_set(), consumer, offset})
                      .value();
  ASSERT_FALSE(r.is_error()) << r.describe();
}

class fake_worker {
 public:
  fake_worker(const redis_endpoint& endpoint, behaviour how, std::string consumer = "w1",
              std::chrono::milliseconds heartbeat = 60s)
      : keys_(wire::serving_keys::make(serving_name).value()),
        how_(how),
        consumer_(std::move(consumer)),
        conn_(redis_connection::connect(endpoint).value()) {
    redis_reply group =
        conn_.command({"XGROUP", "CREATE", keys_.request_stream(), "workers", "0", "MKSTREAM"})
            .value();
    EXPECT_TRUE(!group.is_error() || group.error_code() == "BUSYGROUP") << group.describe();
    register_worker(conn_, keys_, consumer_, heartbeat);
    thread_ = std::jthread([this](const std::stop_token& stop) { run(stop); });
  }
  fake_worker(const fake_worker&) = delete;
  fake_worker& operator=(const fake_worker&) = delete;
  ~fake_worker() {
    thread_.request_stop();
    thread_.join();
  }

  int requests() const { return requests_.load(); }
  std::optional<std::uint64_t> last_budget() {
    batch_serving::detail::lock_guard<batch_serving::detail::mutex> lock(mu_);
    return last_budget_;
  }
  bool budget_seen() {
    batch_serving::detail::lock_guard<batch_serving::detail::mutex> lock(mu_);
    return budget_seen_;
  }

 private:
  void run(const std::stop_token& stop) {
    while (!stop.stop_requested() && !conn_.broken()) {
      auto read = conn_.command({"XREADGROUP", "GROUP", "workers", consumer_, "COUNT", "256",
                                 "BLOCK", "20", "STREAMS", keys_.request_stream(), ">"},
                                20ms);
      if (!read.ok() || !read->is_array()) continue;
      for (const auto stream : *read) {
        for (const auto entry : stream[1]) {
          std::vector<wire::field_view> fields;
          const auto pairs = entry[1];
          for (std::size_t i = 0; i + 1 < pairs.size(); i += 2) {
            fields.emplace_back(pairs[i].text(), pairs[i + 1].text());
          }
          wire::parsed_request parsed = wire::parse_request(keys_, fields, wire::limits{});
          requests_.fetch_add(1);
          if (parsed.request.ok()) {
            batch_serving::detail::lock_guard<batch_serving::detail::mutex> lock(mu_);
            last_budget_ = parsed.request->budget_us;
            budget_seen_ = true;
          }
          if (parsed.request.ok()) answer(*parsed.request);
          conn_.append({"XACK", keys_.request_stream(), "workers", entry[0].text()});
        }
      }
      (void)conn_.read_replies();
    }
  }

  void add(const std::string& reply_stream, std::vector<wire::field> fields) {
    std::vector<std::string_view> argv{"XADD", reply_stream, "*"};
    for (const auto& [name, value] : fields) {
      argv.emplace_back(name);
      argv.emplace_back(value);
    }
    conn_.append(argv);
  }
  void add(const std::string& reply_stream, wire::answer_entry a) {
    add(reply_stream, wire::encode_answer(std::move(a), wire::limits{}).value());
  }

  void answer(const wire::request_entry& request) {
    std::vector<int> items =
        wire::decode_items<int>(request.items, wire::limits{}, request.item_count).value();
    std::vector<int> results;
    for (int x : items) results.push_back(2 * x + 1);
    auto results_for = [&](std::string call_id, const std::vector<int>& values) {
      return wire::results_answer<int>(std::move(call_id), values, wire::limits{}).value();
    };
    switch (how_) {
      case behaviour::correct:
        add(request.reply_stream, results_for(request.call_id, results));
        break;
      case behaviour::twice:
        add(request.reply_stream, results_for(request.call_id, results));
        add(request.reply_stream, results_for(request.call_id, results));
        break;
      case behaviour::foreign: {
        const auto id = wire::parse_call_id(request.call_id).value();
        add(request.reply_stream,
            results_for(wire::make_call_id("someone-else", id.sequence), results));
        add(request.reply_stream,
            results_for(wire::make_call_id(id.client_id, id.sequence + 1'000'000), results));
        break;
      }
      case behaviour::garbage:
        add(request.reply_stream,
            std::vector<wire::field>{{"v", "1"}, {"id", request.call_id}, {"kind", "nonsense"}});
        add(request.reply_stream, std::vector<wire::field>{{"junk", "\xff\xfe"}});
        break;
      case behaviour::wrong_count: {
        std::vector<int> more = results;
        more.push_back(0);
        add(request.reply_stream, results_for(request.call_id, more));
        break;
      }
      case behaviour::wrong_type: {
        std::vector<std::string> words(results.size(), "not an int");
        add(request.reply_stream,
            wire::results_answer<std::string>(request.call_id, words, wire::limits{}).value());
        break;
      }
      case behaviour::never_answer: break;
    }
  }

  wire::serving_keys keys_;
  behaviour how_;
  std::string consumer_;
  redis_connection conn_;
  std::atomic<int> requests_{0};
  batch_serving::detail::mutex mu_;
  std::optional<std::uint64_t> last_budget_ BATCH_SERVING_GUARDED_BY(mu_);
  bool budget_seen_ BATCH_SERVING_GUARDED_BY(mu_) = false;
  std::jthread thread_;
};

class RedisClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!batch_serving::test::require_redis_server()) GTEST_SKIP();
    redis_.emplace();
  }

  redis_client_options options() const {
    return {.endpoint = redis_->tcp_endpoint(),
            .serving = std::string(serving_name),
            .reconnect = {.min_delay = 20ms, .max_delay = 200ms}};
  }

  long long xlen() {
    auto conn = redis_connection::connect(redis_->tcp_endpoint()).value();
    const auto keys = wire::serving_keys::make(serving_name).value();
    return conn.command({"XLEN", keys.request_stream()}).value().integer();
  }

  // Polls `condition` until it holds or a generous deadline passes.
  template <class F>
  static bool eventually(F condition, std::chrono::milliseconds limit = 10s) {
    const auto until = clock_type::now() + limit;
    while (clock_type::now() < until) {
      if (condition()) return true;
      std::this_thread::sleep_for(5ms);
    }
    return condition();
  }

  std::optional<redis_server> redis_;
};

TEST_F(RedisClientTest, AnswersOneAndManyItemsWithTheCallersOwnResults) {
  fake_worker worker(redis_->tcp_endpoint(), behaviour::correct);
  redis_client<int, int> client(options());
  EXPECT_EQ(client.dispatch(3).value(), 7);
  EXPECT_EQ(client.dispatch_many({1, 2, 3}).value(), (std::vector<int>{3, 5, 7}));
  auto later = client.dispatch_async(10);
  auto many_later = client.dispatch_many_async({4, 5});
  std::atomic<int> many_called{0};
  client.dispatch_many_async({6, 7}, {}, [&](batch_serving::result<std::vector<int>> r) {
    if (r.ok() && *r == std::vector<int>{13, 15}) many_called.fetch_add(1);
  });
  std::atomic<int> called{0};
  std::atomic<int> seen{0};
  client.dispatch_async(20, {}, [&](batch_serving::result<int> r) {
    seen = r.value_or(-1);
    called.fetch_add(1);
  });
  EXPECT_EQ(later.get().value(), 21);
  EXPECT_EQ(many_later.get().value(), (std::vector<int>{9, 11}));
  EXPECT_TRUE(eventually([&] { return called.load() == 1; }));
  EXPECT_EQ(seen.load(), 41);
  EXPECT_TRUE(eventually([&] { return many_called.load() == 1; }));
  const auto stats = client.stats();
  EXPECT_EQ(stats.calls_sent, 6U);
  EXPECT_EQ(stats.answers_delivered, 6U);
  EXPECT_EQ(stats.duplicates_dropped + stats.foreign_dropped + stats.malformed_dropped, 0U);
}

TEST_F(RedisClientTest, CoroutinesAwaitTheClientWhereverTheyAskToResume) {
  fake_worker worker(redis_->tcp_endpoint(), behaviour::correct);
  redis_client<int, int> client(options());
  batch_serving::resume_pool pool(1);
  std::optional<batch_serving::result<int>> one;
  std::optional<batch_serving::result<std::vector<int>>> many;
  std::optional<batch_serving::result<int>> late;
  // Where it may go on: on the pool, or, when the answer was there before it
  // suspended, in the thread that started it; never on the client's own thread.
  const auto starter = std::this_thread::get_id();
  bool resumed_where_asked = false;
  auto body = [&]() -> batch_serving::testing::task {
    one.emplace(co_await batch_serving::co_dispatch(client, 3, pool));
    resumed_where_asked = pool.owns_this_thread() || std::this_thread::get_id() == starter;
    std::vector<int> items{1, 2, 3};
    many.emplace(co_await batch_serving::co_dispatch_many(client, std::move(items),
                                                          batch_serving::resume_inline));
    late.emplace(co_await batch_serving::co_dispatch(client, 5, call_options{.timeout = 10s}));
  };
  batch_serving::testing::task t = body();
  t.start();
  t.wait();
  EXPECT_EQ(one->value(), 7);
  EXPECT_TRUE(resumed_where_asked);
  EXPECT_EQ(many->value(), (std::vector<int>{3, 5, 7}));
  EXPECT_EQ(late->value(), 11);
}

TEST_F(RedisClientTest, SixtyFourThreadsShareRoundTrips) {
  fake_worker worker(redis_->tcp_endpoint(), behaviour::correct);
  redis_client<int, int> client(options());
  constexpr int threads = 64;
  constexpr int calls = 100;
  std::atomic<int> wrong{0};
  {
    std::vector<std::jthread> callers;
    for (int t = 0; t < threads; ++t) {
      callers.emplace_back([&, t] {
        for (int i = 0; i < calls; ++i) {
          const int x = t * 1000 + i;
          auto r = client.dispatch(x, {.timeout = 30s});
          if (!r.ok() || *r != 2 * x + 1) wrong.fetch_add(1);
        }
      });
    }
  }
  EXPECT_EQ(wrong.load(), 0);
  const auto stats = client.stats();
  EXPECT_EQ(stats.calls_sent, static_cast<std::uint64_t>(threads) * calls);
  // 64 blocking callers and one sender thread: each pipeline carries the
  // calls queued while the previous one was in flight (about 10 per round
  // trip measured in a Release build, about 2 under TSan).
  EXPECT_LT(stats.round_trips, stats.calls_sent);
#if !defined(BATCH_SERVING_TEST_SANITIZED)
  // Sanitizers slow the callers more than the sender: ~2 calls a trip there.
  EXPECT_LT(stats.round_trips * 2, stats.calls_sent);
#endif
  std::cout << "[ pipeline ] " << stats.calls_sent << " calls in " << stats.round_trips
            << " round trips: "
            << static_cast<double>(stats.calls_sent) / static_cast<double>(stats.round_trips)
            << " calls per round trip\n";
}

TEST_F(RedisClientTest, AnswersNoServingFastWithoutALiveWorker) {
  redis_client<int, int> client(options());
  const auto start = clock_type::now();
  auto r = client.dispatch(1, {.timeout = 10s});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), errc::no_serving) << r.error().to_string();
  EXPECT_LT(since(start), 2s);
  // The cached count answers the next call at once.
  auto again = client.dispatch(2);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), errc::no_serving);
  EXPECT_EQ(xlen(), 0);
}

TEST_F(RedisClientTest, AnExpiredHeartbeatIsNoLiveWorker) {
  fake_worker worker(redis_->tcp_endpoint(), behaviour::correct, "stale", -5s);
  redis_client<int, int> client(options());
  auto r = client.dispatch(1, {.timeout = 10s});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), errc::no_serving) << r.error().to_string();
  EXPECT_EQ(worker.requests(), 0);
}

TEST_F(RedisClientTest, DeliversADuplicatedAnswerOnce) {
  fake_worker worker(redis_->tcp_endpoint(), behaviour::twice);
  redis_client<int, int> client(options());
  std::atomic<int> answers{0};
  for (int i = 0; i < 5; ++i) {
    client.dispatch_async(i, {}, [&](batch_serving::result<int> r) {
      if (r.ok()) answers.fetch_add(1);
    });
  }
  EXPECT_TRUE(eventually([&] { return client.stats().duplicates_dropped == 5; }));
  EXPECT_EQ(answers.load(), 5);
  EXPECT_EQ(client.stats().answers_delivered, 5U);
}

struct dropped_case {
  behaviour how;
  const char* name;
};

void PrintTo(const dropped_case& c, std::ostream* out) { *out << c.name; }

class DroppedAnswerTest : public RedisClientTest,
                          public ::testing::WithParamInterface<dropped_case> {};

TEST_P(DroppedAnswerTest, DropsAndCountsItThenAnswersTimeoutByTheDeadline) {
  fake_worker worker(redis_->tcp_endpoint(), GetParam().how);
  redis_client<int, int> client(options());
  const auto start = clock_type::now();
  auto r = client.dispatch(4, {.timeout = 400ms});
  const auto took = since(start);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), errc::timeout) << r.error().to_string();
  EXPECT_GE(took, 400ms);
  EXPECT_LT(took, 3s);
  const auto stats = client.stats();
  if (GetParam().how == behaviour::foreign) {
    EXPECT_EQ(stats.foreign_dropped, 2U);
  } else {
    EXPECT_GE(stats.malformed_dropped, 1U);
  }
  EXPECT_EQ(stats.answers_delivered, 0U);
  EXPECT_EQ(stats.timeouts, 1U);
}

INSTANTIATE_TEST_SUITE_P(Answers, DroppedAnswerTest,
                         ::testing::Values(dropped_case{behaviour::foreign, "Foreign"},
                                           dropped_case{behaviour::garbage, "Malformed"},
                                           dropped_case{behaviour::wrong_count, "WrongCount"}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST_F(RedisClientTest, AResultThatDoesNotDecodeIsInvalidArgument) {
  fake_worker worker(redis_->tcp_endpoint(), behaviour::wrong_type);
  redis_client<int, int> client(options());
  auto r = client.dispatch(4, {.timeout = 10s});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), errc::invalid_argument) << r.error().to_string();
  EXPECT_EQ(client.dispatch(5, {.timeout = 10s}).error().code(), errc::invalid_argument);
}

TEST_F(RedisClientTest, AnswersTimeoutByTheDeadlineWhenNoWorkerAnswersAndSendsTheBudget) {
  fake_worker worker(redis_->tcp_endpoint(), behaviour::never_answer);
  redis_client<int, int> client(options());
  const auto start = clock_type::now();
  auto r = client.dispatch(1, {.timeout = 300ms});
  const auto took = since(start);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), errc::timeout);
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 2s);
  ASSERT_TRUE(eventually([&] { return worker.budget_seen(); }));
  const auto budget = worker.last_budget();
  ASSERT_TRUE(budget.has_value());
  EXPECT_LE(*budget, 300'000U);
  EXPECT_GT(*budget, 0U);
  // A call without a deadline carries no budget.
  auto f = client.dispatch_async(2);
  ASSERT_TRUE(eventually([&] { return worker.requests() == 2; }));
  EXPECT_FALSE(worker.last_budget().has_value());
}

// "No live worker: no_serving, not a hang" also for a call already sent:
// its only worker stops heartbeating (killed) and nobody will claim it.
TEST_F(RedisClientTest, ASentCallWithoutADeadlineIsAnsweredNoServingOnceNoWorkerIsLive) {
  fake_worker worker(redis_->tcp_endpoint(), behaviour::never_answer, "w1", 600ms);
  auto opts = options();
  opts.worker_check_interval = 50ms;
  redis_client<int, int> client(opts);
  std::atomic<bool> answered{false};
  std::optional<batch_serving::error> failure;
  batch_serving::detail::mutex mu;
  client.dispatch_async(1, [&](batch_serving::result<int> r) {
    {
      batch_serving::detail::lock_guard<batch_serving::detail::mutex> lock(mu);
      if (!r.ok()) failure = r.error();
    }
    answered.store(true);
  });
  ASSERT_TRUE(eventually([&] { return worker.requests() == 1; }));
  ASSERT_TRUE(eventually([&] { return answered.load(); }));
  batch_serving::detail::lock_guard<batch_serving::detail::mutex> lock(mu);
  ASSERT_TRUE(failure.has_value());
  EXPECT_EQ(failure->code(), errc::no_serving) << failure->to_string();
  EXPECT_NE(failure->message().find(serving_name), std::string::npos) << failure->message();
}

// Dead, not slow: a live worker that takes its time keeps its calls.
TEST_F(RedisClientTest, ASentCallWaitsForALiveWorkerThatHasNotAnsweredYet) {
  fake_worker worker(redis_->tcp_endpoint(), behaviour::never_answer);
  auto opts = options();
  opts.worker_check_interval = 20ms;
  redis_client<int, int> client(opts);
  std::atomic<bool> answered{false};
  client.dispatch_async(1, [&](batch_serving::result<int>) { answered.store(true); });
  ASSERT_TRUE(eventually([&] { return worker.requests() == 1; }));
  std::this_thread::sleep_for(500ms);  // 25 worker checks
  EXPECT_FALSE(answered.load());
  client.stop();
  EXPECT_TRUE(answered.load());
}

TEST_F(RedisClientTest, AStopTokenOrCancelAnswersCancelled) {
  fake_worker worker(redis_->tcp_endpoint(), behaviour::never_answer);
  redis_client<int, int> client(options());
  std::stop_source source;
  auto f = client.dispatch_async(1, {.stop_token = source.get_token()});
  ASSERT_TRUE(eventually([&] { return worker.requests() == 1; }));
  source.request_stop();
  ASSERT_TRUE(f.wait_for(5s));
  EXPECT_EQ(f.get().error().code(), errc::cancelled);
  auto g = client.dispatch_async(2);
  EXPECT_TRUE(g.cancel());
  EXPECT_EQ(g.get().error().code(), errc::cancelled);
  // Already stopped: answered at once, not sent.
  auto h = client.dispatch(3, {.stop_token = source.get_token()});
  EXPECT_EQ(h.error().code(), errc::cancelled);
}

TEST_F(RedisClientTest, RefusesAnOversizedRequestAtOnceAndSendsNothing) {
  fake_worker worker(redis_->tcp_endpoint(), behaviour::correct);
  redis_client<std::string, int> client(options());
  const std::string huge(2U << 20U, 'x');
  auto r = client.dispatch(huge);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), errc::invalid_argument);
  EXPECT_NE(r.error().message().find("max_entry_bytes"), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find(std::to_string(1U << 20U)), std::string::npos);
  EXPECT_EQ(xlen(), 0);
  EXPECT_EQ(client.stats().calls_sent, 0U);
}

TEST_F(RedisClientTest, AnswersOverloadedPastMaxOutstanding) {
  fake_worker worker(redis_->tcp_endpoint(), behaviour::never_answer);
  auto opts = options();
  opts.max_outstanding = 2;
  redis_client<int, int> client(opts);
  auto a = client.dispatch_async(1);
  auto b = client.dispatch_async(2);
  const auto start = clock_type::now();
  auto c = client.dispatch(3);
  EXPECT_LT(since(start), 1s);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code(), errc::overloaded);
  EXPECT_NE(c.error().message().find("max_outstanding is 2"), std::string::npos);
  EXPECT_TRUE(a.cancel());
  EXPECT_EQ(client.dispatch_async(4).wait_for(50ms), false);  // room again: accepted
}

TEST_F(RedisClientTest, RedisKilledMidCallAnswersUnavailableAndRecovers) {
  auto worker = std::make_unique<fake_worker>(redis_->tcp_endpoint(), behaviour::never_answer);
  redis_client<int, int> client(options());
  auto f = client.dispatch_async(1);  // no deadline: only the broken connection answers it
  ASSERT_TRUE(eventually([&] { return worker->requests() == 1; }));
  redis_->kill();
  ASSERT_TRUE(f.wait_for(10s));
  auto r = f.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), errc::unavailable) << r.error().to_string();
  EXPECT_NE(r.error().message().find("may or may not have run"), std::string::npos);
  // While Redis is down: unavailable, at once or by the deadline, never a hang.
  const auto start = clock_type::now();
  auto down = client.dispatch(2, {.timeout = 2s});
  EXPECT_FALSE(down.ok());
  EXPECT_LT(since(start), 5s);
  worker.reset();
  redis_->restart();
  fake_worker fresh(redis_->tcp_endpoint(), behaviour::correct);
  EXPECT_TRUE(eventually([&] {
    auto ok = client.dispatch(5, {.timeout = 1s});
    return ok.ok() && *ok == 11;
  }));
  EXPECT_GE(client.stats().reconnects, 2U);
}

TEST_F(RedisClientTest, AWrongPasswordIsAClearErrorAtConstruction) {
  redis_.reset();
  redis_.emplace(batch_serving::test::redis_server_options{.password = "right-password"});
  auto opts = options();
  opts.endpoint.password = "wrong-password";
  try {
    redis_client<int, int> client(opts);
    FAIL() << "constructed with a wrong password";
  } catch (const batch_serving::serving_error& e) {
    EXPECT_EQ(e.code(), errc::invalid_argument);
    EXPECT_EQ(std::string(e.what()).find("wrong-password"), std::string::npos) << e.what();
  }
}

TEST_F(RedisClientTest, TheDestructorAnswersOutstandingCalls) {
  fake_worker worker(redis_->tcp_endpoint(), behaviour::never_answer);
  std::vector<batch_serving::future<int>> pending;
  auto client = std::make_unique<redis_client<int, int>>(options());
  for (int i = 0; i < 10; ++i) pending.push_back(client->dispatch_async(i));
  ASSERT_TRUE(eventually([&] { return worker.requests() == 10; }));
  const auto start = clock_type::now();
  client.reset();
  EXPECT_LT(since(start), 3s);
  for (auto& f : pending) {
    ASSERT_TRUE(f.ready());
    EXPECT_EQ(f.get().error().code(), errc::shutting_down);
  }
}

TEST_F(RedisClientTest, RefusesBadOptionsNamingTheField) {
  auto opts = options();
  opts.client_id = "has a space";
  EXPECT_THROW((redis_client<int, int>{opts}), batch_serving::serving_error);
  opts = options();
  opts.serving = "bad{name}";
  EXPECT_THROW((redis_client<int, int>{opts}), batch_serving::serving_error);
  opts = options();
  opts.reply_block = 0ms;
  try {
    redis_client<int, int> client(opts);
    FAIL();
  } catch (const batch_serving::serving_error& e) {
    EXPECT_NE(std::string(e.what()).find("reply_block"), std::string::npos);
  }
}

TEST_F(RedisClientTest, GeneratesDistinctClientIdsAndExpiresTheReplyStream) {
  fake_worker worker(redis_->tcp_endpoint(), behaviour::correct);
  redis_client<int, int> a(options());
  redis_client<int, int> b(options());
  EXPECT_NE(a.client_id(), b.client_id());
  EXPECT_FALSE(wire::check_client_id(a.client_id()).has_value());
  EXPECT_EQ(a.dispatch(1).value(), 3);
  auto conn = redis_connection::connect(redis_->tcp_endpoint()).value();
  EXPECT_TRUE(eventually([&] {
    return conn.command({"PTTL", a.reply_stream()}).value().integer() > 0 &&
           conn.command({"XLEN", a.reply_stream()}).value().integer() == 0;
  }));
}

}  // namespace

namespace {

TEST_F(RedisClientTest, StopAnswersOutstandingCallsAndRefusesLaterOnes) {
  fake_worker worker(redis_->tcp_endpoint(), behaviour::never_answer);
  redis_client<int, int> client(options());
  std::atomic<int> stopped{0};
  client.dispatch_many_async(std::vector<int>{1, 2}, {}, [&](auto r) {
    if (!r.ok() && r.error().code() == errc::shutting_down) stopped.fetch_add(1);
  });
  ASSERT_TRUE(eventually([&] { return worker.requests() == 1; }));
  client.stop();
  EXPECT_EQ(stopped.load(), 1);
  EXPECT_EQ(client.dispatch(3).error().code(), errc::shutting_down);
  client.stop();  // idempotent
}

TEST_F(RedisClientTest, StartsWithoutRedisAnswersUnavailableAtOnceThenConnects) {
  redis_->stop();
  redis_client<int, int> client(options());
  const auto start = clock_type::now();
  auto r = client.dispatch(1, {.timeout = 5s});
  EXPECT_LT(since(start), 1s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), errc::unavailable) << r.error().to_string();
  redis_->restart();
  fake_worker worker(redis_->tcp_endpoint(), behaviour::correct);
  EXPECT_TRUE(eventually([&] {
    auto ok = client.dispatch(5, {.timeout = 1s});
    return ok.ok() && *ok == 11;
  }));
}

}  // namespace

namespace {

TEST_F(RedisClientTest, ABurstOfAsyncCallsFromOneThreadSharesRoundTrips) {
  fake_worker worker(redis_->tcp_endpoint(), behaviour::correct);
  redis_client<int, int> client(options());
  ASSERT_EQ(client.dispatch(0).value(), 1);  // connected, workers counted
  std::vector<batch_serving::future<int>> futures;
  constexpr int calls = 2000;
  // Redis paused holds the sender in its first round trip while the burst
  // queues, so the figure does not hang on how fast this thread submits
  // (under AddressSanitizer and a loaded host it was once 3 calls a trip).
  redis_->pause();
  for (int i = 0; i < calls; ++i) futures.push_back(client.dispatch_async(i, {.timeout = 30s}));
  redis_->resume();
  for (int i = 0; i < calls; ++i) EXPECT_EQ(futures[i].get().value(), 2 * i + 1);
  const auto stats = client.stats();
  std::cout << "[ pipeline ] burst: " << stats.calls_sent << " calls in " << stats.round_trips
            << " round trips\n";
  // Everything queued behind the held round trip goes in pipelines of up to
  // 1,024: a handful of trips, far fewer than one per four calls.
  EXPECT_LT(stats.round_trips * 4, stats.calls_sent);
}

}  // namespace

namespace {

TEST_F(RedisClientTest, AHungRedisNeverHoldsACallPastItsDeadlineNorTheDestructor) {
  fake_worker worker(redis_->tcp_endpoint(), behaviour::correct);
  auto client = std::make_unique<redis_client<int, int>>(options());
  ASSERT_EQ(client->dispatch(1).value(), 3);
  redis_->pause();
  const auto start = clock_type::now();
  auto r = client->dispatch(2, {.timeout = 300ms});
  const auto took = since(start);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), errc::timeout) << r.error().to_string();
  EXPECT_LT(took, 1500ms);
  auto pending = client->dispatch_async(3);  // no deadline
  const auto stopping = clock_type::now();
  client.reset();
  EXPECT_LT(since(stopping), 3s);
  ASSERT_TRUE(pending.ready());
  EXPECT_FALSE(pending.get().ok());
  redis_->resume();
}

}  // namespace
