// redis_worker against a private redis-server (tests/redis/support). The
// test plays the client with raw Redis commands: it XADDs request entries
// made by wire::encode_request (or garbage) and reads the answers with XREAD
// on its reply stream, parsed by wire::parse_answer.
#include "batch_serving/redis_worker.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "batch_serving/detail/redis_connection.hpp"
#include "batch_serving/detail/wire.hpp"
#include "batch_serving/error.hpp"
#include "batch_serving/redis_endpoint.hpp"
#include "batch_serving/server.hpp"
#include "batch_serving/serving.hpp"
#include "redis/support/redis_server.hpp"

namespace {

using namespace std::chrono_literals;
namespace bs = batch_serving;
namespace wire = batch_serving::detail::wire;
using bs::errc;
using bs::detail::redis_connection;
using bs::detail::redis_reply;
using bs::detail::redis_reply_view;
using clock_type = std::chrono::steady_clock;

constexpr std::string_view serving_name = "squares";
constexpr auto patience = 15s;  // generous: a loaded 2-core machine

// Polls `condition` every 5 ms until it holds or `patience` runs out.
bool eventually(const std::function<bool()>& condition,
                std::chrono::milliseconds within = patience) {
  const auto until = clock_type::now() + within;
  while (!condition()) {
    if (clock_type::now() > until) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

std::string msgpack_of_strings(const std::vector<std::string>& values) {
  return wire::encode_items(std::span<const std::string>(values), wire::limits{}).value();
}

// A gate the batch function may wait at, and counts of what it ran.
struct batch_log {
  std::mutex mu;
  std::condition_variable cv;
  bool closed = false;  // guarded by mu: executions wait while closed
  std::atomic<int> started{0};
  std::atomic<std::chrono::milliseconds::rep> delay_ms{0};

  void close() {
    std::lock_guard lock(mu);
    closed = true;
  }
  void open() {
    {
      std::lock_guard lock(mu);
      closed = false;
    }
    cv.notify_all();
  }
  std::vector<int> run(std::span<const int> xs) {
    started.fetch_add(1);
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return !closed; });
    }
    if (const auto ms = delay_ms.load(); ms > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    std::vector<int> out;
    out.reserve(xs.size());
    for (int x : xs) out.push_back(x * x);
    return out;
  }
};

// The client side, by hand: one connection, one client id, one reply stream.
class raw_client {
 public:
  raw_client(const bs::redis_endpoint& endpoint, std::string client_id)
      : conn_(redis_connection::connect(endpoint).value()),
        keys_(wire::serving_keys::make(serving_name).value()),
        client_id_(std::move(client_id)),
        reply_stream_(keys_.reply_stream(client_id_).value()) {}

  const wire::serving_keys& keys() const { return keys_; }
  const std::string& reply_stream() const { return reply_stream_; }
  redis_connection& conn() { return conn_; }

  // Creates the group as a worker would (at id 0, with the stream): true
  // when Redis accepted it.
  bool create_group() {
    auto reply = conn_.command({"XGROUP", "CREATE", keys_.request_stream(), wire::consumer_group,
                                "0", "MKSTREAM"});
    return reply.ok() && !reply->is_error();
  }

  // XADDs a request; returns its call id.
  std::string send(wire::call_form form, const std::vector<int>& items,
                   std::optional<std::uint64_t> budget_us = std::nullopt) {
    return send_items(form, wire::encode_items(std::span<const int>(items), wire::limits{}).value(),
                      items.size(), budget_us);
  }
  std::string send_items(wire::call_form form, std::string items, std::size_t count,
                         std::optional<std::uint64_t> budget_us = std::nullopt) {
    wire::request_entry request;
    request.call_id = wire::make_call_id(client_id_, ++sequence_);
    request.reply_stream = reply_stream_;
    request.form = form;
    request.budget_us = budget_us;
    request.items = std::move(items);
    request.item_count = count;
    request.pack_bytes = pack_bytes_;
    std::string call_id = request.call_id;
    std::vector<wire::field> fields =
        wire::encode_request(keys_, std::move(request), wire::limits{}).value();
    std::vector<std::pair<std::string, std::string>> raw(fields.begin(), fields.end());
    add_raw(raw);
    return call_id;
  }
  // XADDs any fields to the request stream; returns the entry id.
  std::string add_raw(const std::vector<std::pair<std::string, std::string>>& fields) {
    std::vector<std::string_view> argv{"XADD", keys_.request_stream(), "*"};
    for (const auto& [name, value] : fields) {
      argv.emplace_back(name);
      argv.emplace_back(value);
    }
    redis_reply reply = conn_.command(argv).value();
    EXPECT_EQ(reply.kind(), bs::detail::redis_reply_kind::string) << reply.describe();
    return std::string(reply.text());
  }
  std::string next_call_id() const { return wire::make_call_id(client_id_, sequence_ + 1); }
  // Later requests say that this client reads answer packs of up to `bytes`.
  void read_packs(std::size_t bytes) { pack_bytes_ = bytes; }
  // Entries read from the reply stream (an answer pack counts once).
  std::size_t entries_read() const { return entries_read_; }

  // Reads answers until `done()` holds (or patience runs out).
  void read_until(const std::function<bool()>& done) {
    const auto until = clock_type::now() + patience;
    while (!done() && clock_type::now() < until) {
      redis_reply reply = conn_
                              .command({"XREAD", "COUNT", "100", "BLOCK", "100", "STREAMS",
                                        reply_stream_, last_id_},
                                       100ms)
                              .value();
      if (!reply.is_array()) continue;
      for (redis_reply_view stream : reply) {
        for (redis_reply_view entry : stream[1]) {
          last_id_ = std::string(entry[0].text());
          std::vector<wire::field_view> fields;
          for (std::size_t i = 0; i + 1 < entry[1].size(); i += 2) {
            fields.emplace_back(entry[1][i].text(), entry[1][i + 1].text());
          }
          ++entries_read_;
          for (bs::result<wire::answer_entry>& answer :
               wire::parse_answers(fields, wire::limits{})) {
            EXPECT_TRUE(answer.ok()) << answer.error().to_string();
            if (!answer.ok()) continue;
            EXPECT_EQ(answers_.count(answer->call_id), 0U)
                << "a second answer to " << answer->call_id;
            answers_.emplace(answer->call_id, std::move(*answer));
          }
        }
      }
    }
  }
  // The answer to `call_id`, waiting for it.
  wire::answer_entry answer(const std::string& call_id) {
    read_until([&] { return answers_.count(call_id) != 0; });
    EXPECT_EQ(answers_.count(call_id), 1U) << "no answer to " << call_id;
    return answers_.count(call_id) != 0 ? answers_.at(call_id) : wire::answer_entry{};
  }

  // Entries of the group pending (taken, not acknowledged), per consumer.
  std::map<std::string, long long> pending() {
    std::map<std::string, long long> out;
    redis_reply reply =
        conn_.command({"XPENDING", keys_.request_stream(), wire::consumer_group}).value();
    if (!reply.is_array() || reply.size() < 4 || !reply[3].is_array()) return out;
    for (redis_reply_view row : reply[3]) {
      out[std::string(row[0].text())] = std::stoll(std::string(row[1].text()));
    }
    return out;
  }
  std::uint64_t redis_now_ms() {
    redis_reply t = conn_.command({"TIME"}).value();
    return std::stoull(std::string(t[0].text())) * 1000 +
           std::stoull(std::string(t[1].text())) / 1000;
  }
  std::optional<double> worker_score(std::string_view consumer) {
    redis_reply r = conn_.command({"ZSCORE", keys_.workers_set(), consumer}).value();
    if (r.is_nil()) return std::nullopt;
    return std::stod(std::string(r.text()));
  }

 private:
  redis_connection conn_;
  wire::serving_keys keys_;
  std::string client_id_;
  std::string reply_stream_;
  std::uint64_t sequence_ = 0;
  std::optional<std::size_t> pack_bytes_;
  std::size_t entries_read_ = 0;
  std::string last_id_ = "0";
  std::map<std::string, wire::answer_entry> answers_;
};

std::vector<int> results_of(const wire::answer_entry& answer) {
  bs::result<std::vector<int>> r = wire::decode_results<int>(answer, wire::limits{});
  EXPECT_TRUE(r.ok()) << r.error().to_string();
  return r.ok() ? *r : std::vector<int>{};
}

using int_server = bs::server<int, int>;
using int_worker = bs::redis_worker<int, int, int, int>;

class RedisWorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!bs::test::require_redis_server()) GTEST_SKIP();
    redis_.emplace();
  }

  bs::test::redis_server& redis() { return *redis_; }

  // Quick intervals: tests wait for heartbeats and claims.
  bs::redis_worker_options quick_options() const {
    return {.endpoint = redis_->tcp_endpoint(),
            .block_time = 50ms,
            .heartbeat_interval = 100ms,
            .heartbeat_expiry = 500ms,
            .claim_interval = 100ms,
            .shutdown_timeout = 5s,
            .reconnect = {.min_delay = 20ms, .max_delay = 200ms}};
  }

  std::unique_ptr<int_server> start_server(std::size_t batch_size = 8,
                                           std::chrono::microseconds batch_timeout = 5ms) {
    return std::make_unique<int_server>(serving_,
                                        bs::server_options{.batch_size = batch_size,
                                                           .batch_timeout = batch_timeout});
  }

  raw_client client(std::string id = "client-1") {
    return raw_client(redis_->tcp_endpoint(), std::move(id));
  }

  batch_log log_;
  bs::serving<int, int> serving_{[this](std::span<const int> xs) { return log_.run(xs); }};
  std::optional<bs::test::redis_server> redis_;
};

TEST_F(RedisWorkerTest, AnswersOneAndManyItemCalls) {
  auto local = start_server();
  int_worker worker(*local, serving_name, quick_options());
  raw_client c = client();
  const std::string one = c.send(wire::call_form::one, {7});
  const std::string many = c.send(wire::call_form::many, {1, 2, 3});
  EXPECT_EQ(results_of(c.answer(one)), std::vector<int>{49});
  EXPECT_EQ(results_of(c.answer(many)), (std::vector<int>{1, 4, 9}));
  ASSERT_TRUE(eventually([&] { return worker.stats().entries_acked == 2; }));
  EXPECT_TRUE(c.pending().empty());
  const bs::redis_worker_stats s = worker.stats();
  EXPECT_EQ(s.entries_read, 2U);
  EXPECT_EQ(s.calls_dispatched, 2U);
  EXPECT_EQ(s.answered_results, 2U);
  EXPECT_EQ(s.answered(), 2U);
}

TEST_F(RedisWorkerTest, CallsOfSeveralClientsWrittenBeforeItStartedShareOneExecution) {
  // Batches run only when full (6 items) or after 10 s: one execution means
  // the three clients' calls were batched together.
  auto local = start_server(6, 10s);
  raw_client a = client("client-a");
  raw_client b = client("client-b");
  raw_client c = client("client-c");
  const std::string call_a = a.send(wire::call_form::many, {1, 2});
  const std::string call_b = b.send(wire::call_form::many, {3, 4, 5});
  const std::string call_c = c.send(wire::call_form::one, {6});
  int_worker worker(*local, serving_name, quick_options());  // the group starts at id 0
  EXPECT_EQ(results_of(a.answer(call_a)), (std::vector<int>{1, 4}));
  EXPECT_EQ(results_of(b.answer(call_b)), (std::vector<int>{9, 16, 25}));
  EXPECT_EQ(results_of(c.answer(call_c)), std::vector<int>{36});
  EXPECT_EQ(local->stats().executions, 1U);
  EXPECT_EQ(local->stats().items_executed, 6U);
}

TEST_F(RedisWorkerTest, PacksTheAnswersToAClientThatReadsPacksAndOnlyThose) {
  // One execution of 64 calls: 48 of a client that reads packs, 16 of one that
  // does not. The writer takes what is queued when it wakes, so the first
  // client's answers share entries (not one entry each); the second client
  // gets one entry per answer, as an older client needs.
  auto local = start_server(64, 10s);
  raw_client packed = client("client-packed");
  raw_client plain = client("client-plain");
  packed.read_packs(wire::min_entry_bytes);
  std::vector<std::pair<std::string, int>> calls_packed;
  std::vector<std::pair<std::string, int>> calls_plain;
  for (int i = 1; i <= 64; ++i) {
    auto& calls = i % 4 == 0 ? calls_plain : calls_packed;
    calls.emplace_back((i % 4 == 0 ? plain : packed).send(wire::call_form::one, {i}), i);
  }
  int_worker worker(*local, serving_name, quick_options());
  for (const auto& [call, x] : calls_packed) {
    EXPECT_EQ(results_of(packed.answer(call)), std::vector<int>{x * x}) << call;
  }
  for (const auto& [call, x] : calls_plain) {
    EXPECT_EQ(results_of(plain.answer(call)), std::vector<int>{x * x}) << call;
  }
  EXPECT_EQ(local->stats().executions, 1U);
  EXPECT_LT(packed.entries_read(), calls_packed.size());
  EXPECT_EQ(plain.entries_read(), calls_plain.size());
  ASSERT_TRUE(eventually([&] { return worker.stats().entries_acked == 64; }));
  EXPECT_EQ(worker.stats().answered_results, 64U);
}

TEST_F(RedisWorkerTest, AnswersAMalformedEntryThatNamesItsReplyStreamInvalidArgument) {
  auto local = start_server();
  int_worker worker(*local, serving_name, quick_options());
  raw_client c = client();
  const std::string call_id = c.next_call_id();
  c.add_raw({{"v", "1"},
             {"id", call_id},
             {"reply", c.reply_stream()},
             {"form", "sideways"},
             {"items", wire::encode_items(std::span<const int>(std::vector<int>{1}), {}).value()}});
  const wire::answer_entry answer = c.answer(call_id);
  EXPECT_EQ(answer.kind, wire::answer_kind::error);
  EXPECT_EQ(answer.error_code, errc::invalid_argument);
  EXPECT_NE(answer.error_message.find("form"), std::string::npos) << answer.error_message;
  ASSERT_TRUE(eventually([&] { return worker.stats().entries_acked == 1; }));
  EXPECT_EQ(worker.stats().answered_error(errc::invalid_argument), 1U);
  EXPECT_EQ(local->stats().executions, 0U);
}

TEST_F(RedisWorkerTest, SkipsAndCountsGarbageWithoutReplyAddressAndKeepsServing) {
  auto local = start_server();
  int_worker worker(*local, serving_name, quick_options());
  raw_client c = client();
  c.add_raw({{"garbage", "\xff\x00\x01"}});
  c.add_raw({{"v", "1"}, {"id", "not a call id"}, {"reply", "bs:{squares}:replies:x"}});
  // A reply stream of another client than the call id's: not answerable.
  c.add_raw({{"v", "1"},
             {"id", "client-9/1"},
             {"reply", "bs:{squares}:replies:other"},
             {"form", "one"},
             {"items", "\x91\x01"}});
  const std::string good = c.send(wire::call_form::one, {5});
  EXPECT_EQ(results_of(c.answer(good)), std::vector<int>{25});
  ASSERT_TRUE(eventually([&] { return worker.stats().entries_acked == 4; }));
  EXPECT_EQ(worker.stats().skipped_malformed, 3U);
  EXPECT_EQ(worker.stats().answered(), 1U);
  EXPECT_TRUE(c.pending().empty());
}

TEST_F(RedisWorkerTest, AnswersItemsThatDoNotDecodeInvalidArgumentWithoutRunning) {
  auto local = start_server();
  int_worker worker(*local, serving_name, quick_options());
  raw_client c = client();
  const std::string bad = c.send_items(wire::call_form::many, msgpack_of_strings({"x", "y"}), 2);
  const wire::answer_entry answer = c.answer(bad);
  EXPECT_EQ(answer.kind, wire::answer_kind::error);
  EXPECT_EQ(answer.error_code, errc::invalid_argument);
  EXPECT_NE(answer.error_message.find("item 0"), std::string::npos) << answer.error_message;
  const std::string good = c.send(wire::call_form::one, {3});
  EXPECT_EQ(results_of(c.answer(good)), std::vector<int>{9});
  EXPECT_EQ(local->stats().items_executed, 1U);
}

TEST_F(RedisWorkerTest, APlainServersWorkerAnswersStreamingFormsInvalidArgument) {
  auto local = start_server();
  int_worker worker(*local, serving_name, quick_options());
  raw_client c = client();
  const std::string call_id = c.send(wire::call_form::stream_many, {1, 2});
  const wire::answer_entry answer = c.answer(call_id);
  EXPECT_EQ(answer.error_code, errc::invalid_argument);
  EXPECT_NE(answer.error_message.find("is not a streaming serving on this worker"),
            std::string::npos)
      << answer.error_message;
  EXPECT_FALSE(answer.seq.has_value());
  EXPECT_EQ(local->stats().executions, 0U);
}

TEST_F(RedisWorkerTest, AnswersAnExpiredBudgetTimeoutWithoutRunningTheBatch) {
  auto local = start_server();
  raw_client c = client();
  const std::string spent = c.send(wire::call_form::one, {2}, 0);
  // 20 ms of budget, then at least 60 ms in the stream before a worker exists.
  const std::string waited_too_long = c.send(wire::call_form::one, {3}, 20'000);
  const std::uint64_t written = c.redis_now_ms();
  ASSERT_TRUE(eventually([&] { return c.redis_now_ms() >= written + 60; }));
  const std::string ample = c.send(wire::call_form::one, {4}, 60'000'000);
  int_worker worker(*local, serving_name, quick_options());
  EXPECT_EQ(c.answer(spent).error_code, errc::timeout);
  EXPECT_EQ(c.answer(waited_too_long).error_code, errc::timeout);
  EXPECT_EQ(c.answer(waited_too_long).kind, wire::answer_kind::error);
  EXPECT_EQ(results_of(c.answer(ample)), std::vector<int>{16});
  EXPECT_EQ(local->stats().items_executed, 1U);  // only the ample one ran
  ASSERT_TRUE(eventually([&] { return worker.stats().answered() == 3; }));
  EXPECT_EQ(worker.stats().answered_error(errc::timeout), 2U);
}

TEST_F(RedisWorkerTest, AcknowledgesAnEntryOnlyAfterItsAnswerIsWritten) {
  auto local = start_server(1, 1ms);
  int_worker worker(*local, serving_name, quick_options());
  raw_client c = client();
  log_.close();
  const std::string call_id = c.send(wire::call_form::one, {9});
  ASSERT_TRUE(eventually([&] { return log_.started.load() == 1; }));
  // Running: taken by this worker, not acknowledged, not answered.
  EXPECT_EQ(c.pending(), (std::map<std::string, long long>{{worker.consumer_id(), 1}}));
  EXPECT_EQ(worker.stats().answered(), 0U);
  log_.open();
  EXPECT_EQ(results_of(c.answer(call_id)), std::vector<int>{81});
  ASSERT_TRUE(eventually([&] { return worker.stats().entries_acked == 1; }));
  EXPECT_TRUE(c.pending().empty());
  // Acknowledged, then deleted: the request stream keeps no answered call.
  EXPECT_TRUE(eventually([&] {
    return c.conn().command({"XLEN", c.keys().request_stream()})->integer() == 0;
  }));
}

TEST_F(RedisWorkerTest, ABusyWorkerReadsNoMoreThanItsRoom) {
  auto local = start_server(1, 1ms);
  bs::redis_worker_options options = quick_options();
  options.max_in_flight_items = 1;
  int_worker worker(*local, serving_name, options);
  raw_client c = client();
  log_.close();
  const std::string first = c.send(wire::call_form::one, {1});
  const std::string second = c.send(wire::call_form::one, {2});
  const std::string third = c.send(wire::call_form::one, {3});
  ASSERT_TRUE(eventually([&] { return log_.started.load() == 1; }));
  // Give it a few read rounds' time to take more than it has room for.
  const std::uint64_t since = c.redis_now_ms();
  ASSERT_TRUE(eventually([&] { return c.redis_now_ms() >= since + 200; }));
  EXPECT_EQ(c.pending(), (std::map<std::string, long long>{{worker.consumer_id(), 1}}));
  EXPECT_EQ(worker.stats().entries_read, 1U);
  log_.open();
  EXPECT_EQ(results_of(c.answer(first)), std::vector<int>{1});
  EXPECT_EQ(results_of(c.answer(second)), std::vector<int>{4});
  EXPECT_EQ(results_of(c.answer(third)), std::vector<int>{9});
}

TEST_F(RedisWorkerTest, HeartbeatsWithAFutureScoreAndLeavesTheSetOnStop) {
  auto local = start_server();
  int_worker worker(*local, serving_name, quick_options());
  raw_client c = client();
  const std::optional<double> first = c.worker_score(worker.consumer_id());
  ASSERT_TRUE(first.has_value());
  EXPECT_GT(*first, static_cast<double>(c.redis_now_ms()));
  EXPECT_LE(*first, static_cast<double>(c.redis_now_ms() + 500));
  ASSERT_TRUE(eventually([&] { return c.worker_score(worker.consumer_id()) > first; }));
  EXPECT_GT(*c.worker_score(worker.consumer_id()), static_cast<double>(c.redis_now_ms()));
  worker.stop();
  EXPECT_FALSE(c.worker_score(worker.consumer_id()).has_value());
  EXPECT_TRUE(c.conn()
                  .command({"EXISTS", c.keys().heartbeat_key(worker.consumer_id()).value()})
                  ->integer() == 0);
}

TEST_F(RedisWorkerTest, ClaimsAndAnswersTheEntriesOfADeadWorker) {
  auto local = start_server();
  raw_client c = client();
  redis_connection& conn = c.conn();
  ASSERT_TRUE(c.create_group());
  const std::string first = c.send(wire::call_form::one, {4});
  const std::string second = c.send(wire::call_form::many, {5, 6});
  // A worker took both and died: its heartbeat expired a second ago.
  ASSERT_TRUE(conn.command({"XREADGROUP", "GROUP", "workers", "dead-worker", "COUNT", "10",
                            "STREAMS", c.keys().request_stream(), ">"})
                  ->is_array());
  ASSERT_EQ(c.pending(), (std::map<std::string, long long>{{"dead-worker", 2}}));
  const std::string expired = std::to_string(c.redis_now_ms() - 1000);
  ASSERT_FALSE(conn.command({"ZADD", c.keys().workers_set(), expired, "dead-worker"})->is_error());

  int_worker worker(*local, serving_name, quick_options());
  EXPECT_EQ(results_of(c.answer(first)), std::vector<int>{16});
  EXPECT_EQ(results_of(c.answer(second)), (std::vector<int>{25, 36}));
  EXPECT_EQ(worker.stats().entries_claimed, 2U);
  // Its pending list empty, the dead worker leaves the set and the group.
  ASSERT_TRUE(eventually([&] { return worker.stats().dead_workers_removed == 1; }));
  EXPECT_FALSE(c.worker_score("dead-worker").has_value());
  EXPECT_TRUE(c.pending().empty());
  redis_reply consumers =
      conn.command({"XINFO", "CONSUMERS", c.keys().request_stream(), "workers"}).value();
  for (redis_reply_view consumer : consumers) EXPECT_NE(consumer[1].text(), "dead-worker");
}

TEST_F(RedisWorkerTest, NeverClaimsFromALiveWorkerHoweverLongItsEntriesWait) {
  auto local = start_server();
  raw_client c = client();
  redis_connection& conn = c.conn();
  ASSERT_TRUE(c.create_group());
  c.send(wire::call_form::one, {1});
  ASSERT_TRUE(conn.command({"XREADGROUP", "GROUP", "workers", "slow-worker", "COUNT", "1",
                            "STREAMS", c.keys().request_stream(), ">"})
                  ->is_array());
  const std::string of_dead = c.send(wire::call_form::one, {2});
  ASSERT_TRUE(conn.command({"XREADGROUP", "GROUP", "workers", "dead-worker", "COUNT", "1",
                            "STREAMS", c.keys().request_stream(), ">"})
                  ->is_array());
  // The slow worker's entry has been idle for ten minutes, its heartbeat is
  // good for another minute; the dead one's heartbeat has expired.
  const std::map<std::string, long long> taken = c.pending();
  ASSERT_EQ(taken, (std::map<std::string, long long>{{"dead-worker", 1}, {"slow-worker", 1}}));
  redis_reply slow_entries = conn.command({"XPENDING", c.keys().request_stream(), "workers", "-",
                                           "+", "10", "slow-worker"})
                                 .value();
  ASSERT_EQ(slow_entries.size(), 1U);
  const std::string slow_id(slow_entries[0][0].text());
  ASSERT_TRUE(conn.command({"XCLAIM", c.keys().request_stream(), "workers", "slow-worker", "0",
                            slow_id, "IDLE", "600000"})
                  ->is_array());
  const std::uint64_t now = c.redis_now_ms();
  ASSERT_FALSE(conn.command({"ZADD", c.keys().workers_set(), std::to_string(now + 60'000),
                             "slow-worker", std::to_string(now - 1000), "dead-worker"})
                   ->is_error());

  int_worker worker(*local, serving_name, quick_options());
  EXPECT_EQ(results_of(c.answer(of_dead)), std::vector<int>{4});
  // Removing the dead worker takes a second look after the claim: by then
  // the slow worker's entry has been passed over at least twice.
  ASSERT_TRUE(eventually([&] { return worker.stats().dead_workers_removed == 1; }));
  EXPECT_EQ(c.pending(), (std::map<std::string, long long>{{"slow-worker", 1}}));
  EXPECT_EQ(worker.stats().entries_claimed, 1U);
  EXPECT_TRUE(c.worker_score("slow-worker").has_value());
}

TEST_F(RedisWorkerTest, ClaimsFromAConsumerMissingFromTheSetOnlyOnceIdleForTheExpiry) {
  auto local = start_server();
  raw_client c = client();
  redis_connection& conn = c.conn();
  ASSERT_TRUE(c.create_group());
  const std::string lost = c.send(wire::call_form::one, {3});
  ASSERT_TRUE(conn.command({"XREADGROUP", "GROUP", "workers", "lost-worker", "COUNT", "1",
                            "STREAMS", c.keys().request_stream(), ">"})
                  ->is_array());
  c.send(wire::call_form::one, {5});
  ASSERT_TRUE(conn.command({"XREADGROUP", "GROUP", "workers", "fresh-worker", "COUNT", "1",
                            "STREAMS", c.keys().request_stream(), ">"})
                  ->is_array());
  // Neither ever heartbeats. lost-worker does nothing more; fresh-worker
  // keeps reading (its own history, which takes nothing new): alive.
  auto fresh_reads = [&] {
    EXPECT_TRUE(conn.command({"XREADGROUP", "GROUP", "workers", "fresh-worker", "COUNT", "1",
                              "STREAMS", c.keys().request_stream(), "0"})
                    ->is_array());
  };
  bs::redis_worker_options options = quick_options();
  options.heartbeat_expiry = 1s;
  const auto start = clock_type::now();
  int_worker worker(*local, serving_name, options);
  ASSERT_TRUE(eventually([&] {
    fresh_reads();
    return worker.stats().dead_workers_removed == 1;  // claimed, then removed on a later look
  }));
  EXPECT_GE(clock_type::now() - start, 900ms);  // not before it was idle for the expiry
  EXPECT_EQ(results_of(c.answer(lost)), std::vector<int>{9});
  EXPECT_EQ(worker.stats().entries_claimed, 1U);
  EXPECT_EQ(c.pending(), (std::map<std::string, long long>{{"fresh-worker", 1}}));
}

TEST_F(RedisWorkerTest, TakesBackItsOwnPendingEntriesWhenRestartedUnderItsId) {
  auto local = start_server();
  raw_client c = client();
  redis_connection& conn = c.conn();
  ASSERT_TRUE(c.create_group());
  const std::string call_id = c.send(wire::call_form::one, {11});
  // A previous life of worker "w-7" took it and was restarted before answering.
  ASSERT_TRUE(conn.command({"XREADGROUP", "GROUP", "workers", "w-7", "COUNT", "1", "STREAMS",
                            c.keys().request_stream(), ">"})
                  ->is_array());
  bs::redis_worker_options options = quick_options();
  options.consumer_id = "w-7";
  int_worker worker(*local, serving_name, options);
  EXPECT_EQ(results_of(c.answer(call_id)), std::vector<int>{121});
  ASSERT_TRUE(eventually([&] { return c.pending().empty(); }));
  EXPECT_EQ(worker.stats().entries_claimed, 0U);
}

TEST_F(RedisWorkerTest, RunsAnEntryWhoseDeliveryToItWasLost) {
  auto local = start_server(1, 1ms);
  bs::redis_worker_options options = quick_options();
  options.max_in_flight_items = 1;  // busy with the first call: reads nothing more
  options.endpoint.command_timeout = 300ms;  // lost after 300 + 50 + 100 ms idle
  int_worker worker(*local, serving_name, options);
  raw_client c = client();
  log_.close();
  const std::string first = c.send(wire::call_form::one, {1});
  ASSERT_TRUE(eventually([&] { return log_.started.load() == 1; }));
  // Delivered to the worker's consumer, but the reply went nowhere (as when a
  // hung Redis resumes and runs a read whose sender has given up).
  const std::string lost = c.send(wire::call_form::one, {2});
  ASSERT_TRUE(c.conn()
                  .command({"XREADGROUP", "GROUP", "workers", worker.consumer_id(), "COUNT", "1",
                            "STREAMS", c.keys().request_stream(), ">"})
                  ->is_array());
  ASSERT_EQ(c.pending(), (std::map<std::string, long long>{{worker.consumer_id(), 2}}));
  ASSERT_TRUE(eventually([&] { return worker.stats().entries_recovered == 1; }));
  log_.open();
  EXPECT_EQ(results_of(c.answer(first)), std::vector<int>{1});
  EXPECT_EQ(results_of(c.answer(lost)), std::vector<int>{4});
  EXPECT_EQ(worker.stats().entries_read, 1U);
  ASSERT_TRUE(eventually([&] { return c.pending().empty(); }));
  EXPECT_EQ(worker.stats().entries_recovered, 1U);  // the running one was never taken again
}

TEST_F(RedisWorkerTest, StopIsPromptAnswersWhatItTookAndLeavesTheRest) {
  auto local = start_server(8, 1ms);
  int_worker worker(*local, serving_name, quick_options());
  raw_client c = client();
  log_.delay_ms = 300;
  const std::string a = c.send(wire::call_form::one, {1});
  const std::string b = c.send(wire::call_form::many, {2, 3});
  ASSERT_TRUE(eventually([&] { return worker.stats().calls_dispatched == 2; }));
  const auto start = clock_type::now();
  worker.stop();
  const auto took = clock_type::now() - start;
  EXPECT_LT(took, 2s) << "stop took "
                      << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                      << " ms";
  EXPECT_EQ(worker.stats().answered_results, 2U);  // written before stop returned
  EXPECT_EQ(results_of(c.answer(a)), std::vector<int>{1});
  EXPECT_EQ(results_of(c.answer(b)), (std::vector<int>{4, 9}));
  EXPECT_TRUE(c.pending().empty());
  EXPECT_FALSE(c.worker_score(worker.consumer_id()).has_value());
  // Written after the stop: left in the stream for other workers.
  c.send(wire::call_form::one, {4});
  worker.stop();  // idempotent
  EXPECT_TRUE(c.pending().empty());
  EXPECT_EQ(worker.stats().entries_read, 2U);
  redis_reply groups = c.conn().command({"XINFO", "GROUPS", c.keys().request_stream()}).value();
  ASSERT_EQ(groups.size(), 1U);
}

TEST_F(RedisWorkerTest, AStopOutOfTimeLeavesWhatItHoldsToAnotherWorker) {
  auto first_server = start_server(1, 1ms);
  bs::redis_worker_options options = quick_options();
  options.shutdown_timeout = 200ms;
  int_worker first(*first_server, serving_name, options);
  raw_client c = client();
  log_.close();
  const std::string call_id = c.send(wire::call_form::one, {6});
  ASSERT_TRUE(eventually([&] { return log_.started.load() == 1; }));
  first.stop();  // gives up on the running call: its entry stays pending
  EXPECT_EQ(c.pending(), (std::map<std::string, long long>{{first.consumer_id(), 1}}));
  EXPECT_EQ(c.worker_score(first.consumer_id()), 0.0);  // expired at once, not removed
  log_.open();
  auto second_server = start_server(1, 1ms);
  bs::redis_worker second(*second_server, serving_name, quick_options());  // deduced types
  EXPECT_EQ(results_of(c.answer(call_id)), std::vector<int>{36});
  EXPECT_EQ(second.stats().entries_claimed, 1U);
  ASSERT_TRUE(eventually([&] { return second.stats().dead_workers_removed == 1; }));
  EXPECT_FALSE(c.worker_score(first.consumer_id()).has_value());
  EXPECT_EQ(first.stats().answered(), 0U);
}

TEST_F(RedisWorkerTest, ConcurrentStopsAndTheDestructorAgree) {
  auto local = start_server();
  auto worker = std::make_unique<int_worker>(*local, serving_name, quick_options());
  std::thread other([&] { worker->stop(); });
  worker->stop();
  other.join();
  worker.reset();
  raw_client c = client();
  EXPECT_EQ(c.conn().command({"ZCARD", c.keys().workers_set()})->integer(), 0);
}

TEST_F(RedisWorkerTest, SurvivesRedisKilledAndServesAgainOnceItIsBack) {
  auto local = start_server();
  int_worker worker(*local, serving_name, quick_options());
  {
    raw_client c = client();
    const std::string before = c.send(wire::call_form::one, {2});
    EXPECT_EQ(results_of(c.answer(before)), std::vector<int>{4});
  }
  redis().kill();
  redis().restart();  // empty: persistence is off
  raw_client c = client("client-2");
  // The worker creates the group again and takes entries written meanwhile.
  const std::string after = c.send(wire::call_form::many, {3, 4});
  EXPECT_EQ(results_of(c.answer(after)), (std::vector<int>{9, 16}));
  EXPECT_GE(worker.stats().reconnects, 1U);
  ASSERT_TRUE(eventually([&] { return c.worker_score(worker.consumer_id()).has_value(); }));
  worker.stop();
  EXPECT_FALSE(c.worker_score(worker.consumer_id()).has_value());
}

TEST_F(RedisWorkerTest, WritesAnAnswerThatFoundRedisGoneOnceItIsBack) {
  auto local = start_server(1, 1ms);
  int_worker worker(*local, serving_name, quick_options());
  std::string call_id;
  {
    raw_client c = client();
    log_.close();
    call_id = c.send(wire::call_form::many, {7, 8});
    ASSERT_TRUE(eventually([&] { return log_.started.load() == 1; }));
  }
  redis().kill();
  log_.open();  // the answer is ready while Redis is gone
  ASSERT_TRUE(eventually([&] { return local->stats().items_executed == 2; }));
  redis().restart();
  raw_client c = client();  // the same client id and reply stream
  EXPECT_EQ(results_of(c.answer(call_id)), (std::vector<int>{49, 64}));
  ASSERT_TRUE(eventually([&] { return worker.stats().answered_results == 1; }));
  EXPECT_GE(worker.stats().reconnects, 1U);
}

TEST_F(RedisWorkerTest, StopIsBoundedWhenRedisIsGoneWithAnswersOutstanding) {
  auto local = start_server(1, 1ms);
  bs::redis_worker_options options = quick_options();
  options.shutdown_timeout = 300ms;
  int_worker worker(*local, serving_name, options);
  raw_client c = client();
  log_.close();
  c.send(wire::call_form::one, {5});
  ASSERT_TRUE(eventually([&] { return log_.started.load() == 1; }));
  redis().kill();
  log_.open();  // its answer now has nowhere to go
  const auto start = clock_type::now();
  worker.stop();
  const auto took = clock_type::now() - start;
  // shutdown_timeout, plus the goodbye's connect attempt (refused at once).
  EXPECT_LT(took, 2s) << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                      << " ms";
  EXPECT_EQ(worker.stats().answered(), 0U);
}

TEST_F(RedisWorkerTest, StopIsBoundedWhileRedisIsHungAndServingResumesAfter) {
  auto local = start_server();
  bs::redis_worker_options options = quick_options();
  options.endpoint.connect_timeout = 300ms;
  options.endpoint.command_timeout = 300ms;
  options.shutdown_timeout = 300ms;
  auto worker = std::make_unique<int_worker>(*local, serving_name, options);
  redis().pause();  // SIGSTOP: sockets accept, nothing answers
  // Long enough for every thread's command to time out and to reconnect.
  const auto paused_at = clock_type::now();
  ASSERT_TRUE(eventually([&] { return clock_type::now() - paused_at > 700ms; }));
  redis().resume();
  raw_client c = client();
  EXPECT_EQ(results_of(c.answer(c.send(wire::call_form::one, {12}))), std::vector<int>{144});
  redis().pause();
  const auto start = clock_type::now();
  worker->stop();
  const auto took = clock_type::now() - start;
  redis().resume();
  // shutdown_timeout, then the goodbye: at worst two command and two connect timeouts.
  EXPECT_LT(took, 2500ms) << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                          << " ms";
}

TEST_F(RedisWorkerTest, RefusesAWrongPasswordWithAClearError) {
  redis_.reset();
  redis_.emplace(bs::test::redis_server_options{.password = "right-pw"});
  auto local = start_server();
  bs::redis_worker_options options = quick_options();
  options.endpoint.password = "wrong-pw-123";
  try {
    int_worker worker(*local, serving_name, options);
    ADD_FAILURE() << "connected with a wrong password";
  } catch (const bs::serving_error& e) {
    EXPECT_EQ(e.code(), errc::invalid_argument);
    EXPECT_EQ(std::string(e.what()).find("wrong-pw-123"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(redis().tcp_endpoint().host), std::string::npos)
        << e.what();
  }
  options.endpoint.password = "right-pw";
  int_worker worker(*local, serving_name, options);
  raw_client c(options.endpoint, "client-1");
  EXPECT_EQ(results_of(c.answer(c.send(wire::call_form::one, {8}))), std::vector<int>{64});
}

TEST_F(RedisWorkerTest, RefusesBadNamesOptionsAndAnUnreachableRedis) {
  auto local = start_server();
  auto code_of = [&](const std::string& name, const bs::redis_worker_options& options,
                     std::string* message = nullptr) {
    try {
      int_worker worker(*local, name, options);
    } catch (const bs::serving_error& e) {
      if (message) *message = e.what();
      return std::optional<errc>(e.code());
    }
    return std::optional<errc>();
  };
  EXPECT_EQ(code_of("bad{name}", quick_options()), errc::invalid_argument);
  EXPECT_EQ(code_of("", quick_options()), errc::invalid_argument);
  std::string message;
  bs::redis_worker_options bad = quick_options();
  bad.heartbeat_expiry = bad.heartbeat_interval;
  EXPECT_EQ(code_of("squares", bad, &message), errc::invalid_argument);
  EXPECT_NE(message.find("heartbeat_expiry must exceed heartbeat_interval"), std::string::npos)
      << message;
  bad = quick_options();
  bad.block_time = 0ms;
  EXPECT_EQ(code_of("squares", bad, &message), errc::invalid_argument);
  EXPECT_NE(message.find("block_time"), std::string::npos) << message;
  bad = quick_options();
  bad.consumer_id = "has space";
  EXPECT_EQ(code_of("squares", bad, &message), errc::invalid_argument);
  EXPECT_NE(message.find("consumer_id"), std::string::npos) << message;
  bad = quick_options();
  bad.claim_count = 0;
  EXPECT_EQ(code_of("squares", bad), errc::invalid_argument);
  bs::redis_worker_options gone = quick_options();
  redis().stop();
  EXPECT_EQ(code_of("squares", gone, &message), errc::unavailable);
}

}  // namespace
