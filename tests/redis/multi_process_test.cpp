// The Redis transport with real worker and client processes (test_node,
// tests/redis/nodes/): what only separate processes can show — a worker
// killed with SIGKILL or stopped with SIGSTOP while it holds calls, Redis
// restarted under running processes — and the other promises, here
// across processes (the in-process forms: redis_worker_test.cpp,
// redis_end_to_end_test.cpp). Workers log every item they execute and
// clients write every answer they get, so the test counts executions and
// answers per input.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "batch_serving/detail/redis_connection.hpp"
#include "batch_serving/detail/wire.hpp"
#include "batch_serving/error.hpp"
#include "redis/nodes/node_process.hpp"
#include "redis/support/redis_server.hpp"

namespace {

namespace bs = batch_serving;
namespace wire = batch_serving::detail::wire;
using namespace std::chrono_literals;
using bs::detail::redis_connection;
using bs::detail::redis_reply;
using bs::detail::redis_reply_view;
using bs::test::node_process;
using clock_type = std::chrono::steady_clock;

// Generous: CI is a loaded 2-core machine, and sanitizers slow every process.
constexpr auto start_patience = 30s;
constexpr auto run_patience = 90s;

// The workers' liveness settings: a dead worker's calls wait at most
// heartbeat_expiry + claim_interval (redis_worker.hpp).
constexpr auto heartbeat_interval = 200ms;
constexpr auto heartbeat_expiry = 600ms;
constexpr auto claim_interval = 200ms;

// After a worker is killed or stopped, Redis may still run the commands it
// had sent (an XACK, an XREADGROUP): wait this long before counting what it
// holds. Well under the earliest claim (heartbeat_expiry - heartbeat_interval).
constexpr auto redis_drain = 100ms;

std::string ms(std::chrono::milliseconds value) { return std::to_string(value.count()); }

// One line of a client's answers file.
struct answer {
  std::int64_t input = 0;
  bool ok = false;
  std::int64_t value = 0;  // when ok
  std::string code;        // when not ok: the errc name
  std::int64_t latency_ms = 0;
};

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

// KEY=VALUE pairs of a node's "stats ..." line.
std::map<std::string, std::uint64_t> parse_stats(const std::string& line) {
  std::map<std::string, std::uint64_t> stats;
  std::istringstream words(line);
  std::string word;
  while (words >> word) {
    const auto equals = word.find('=');
    if (equals == std::string::npos) continue;
    stats[word.substr(0, equals)] = std::stoull(word.substr(equals + 1));
  }
  return stats;
}

class MultiProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!bs::test::require_redis_server()) GTEST_SKIP();
    start_redis({});
    std::string pattern = (std::filesystem::temp_directory_path() / "bs-multi-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp " + pattern);
    dir_ = pattern;
  }

  void TearDown() override {
    // Every node still up stops cleanly: a crash or a sanitizer report in any
    // of them (an exit code of its own) fails the test.
    for (const auto& node : nodes_) {
      if (!node->running()) continue;
      EXPECT_EQ(node->terminate(30s), std::optional<int>(0))
          << node->name() << " did not exit cleanly (see its stderr below)";
    }
    if (HasFailure()) {
      for (const auto& node : nodes_) {
        std::cerr << "--- " << node->name() << " stdout:\n"
                  << node->output() << "--- " << node->name() << " stderr:\n"
                  << node->errors();
      }
      if (redis_) std::cerr << "--- redis log:\n" << redis_->log_tail();
    }
    nodes_.clear();
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }

  void start_redis(bs::test::redis_server_options options) {
    redis_.reset();
    redis_.emplace(std::move(options));
  }
  bs::test::redis_server& redis() { return *redis_; }

  node_process& start(std::string name, std::vector<std::string> args) {
    nodes_.push_back(std::make_unique<node_process>(node_process::executable(), std::move(name),
                                                    args, dir_));
    return *nodes_.back();
  }

  // A worker of `serving` running x -> scale * x + offset, attached and
  // heartbeating when this returns; `extra` overrides the defaults.
  node_process& start_worker(const std::string& name, const std::string& serving,
                             std::int64_t scale, std::int64_t offset,
                             std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"worker",
                                     "--port",
                                     std::to_string(redis().port()),
                                     "--serving",
                                     serving,
                                     "--id",
                                     name,
                                     "--log",
                                     log_path(name),
                                     "--scale",
                                     std::to_string(scale),
                                     "--offset",
                                     std::to_string(offset),
                                     "--heartbeat-interval-ms",
                                     ms(heartbeat_interval),
                                     "--heartbeat-expiry-ms",
                                     ms(heartbeat_expiry),
                                     "--claim-interval-ms",
                                     ms(claim_interval)};
    args.insert(args.end(), extra.begin(), extra.end());
    node_process& worker = start(name, std::move(args));
    if (!worker.wait_for_line("ready", start_patience)) {
      throw std::runtime_error("worker " + name + " did not attach:\n" + worker.errors());
    }
    return worker;
  }

  // A client dispatching inputs first .. first + count - 1 to `serving`.
  node_process& start_client(const std::string& name, const std::string& serving,
                             std::int64_t first, std::int64_t count,
                             std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"client",
                                     "--port",
                                     std::to_string(redis().port()),
                                     "--serving",
                                     serving,
                                     "--out",
                                     answers_path(name),
                                     "--first",
                                     std::to_string(first),
                                     "--count",
                                     std::to_string(count)};
    args.insert(args.end(), extra.begin(), extra.end());
    return start(name, std::move(args));
  }

  std::string log_path(const std::string& worker) const { return dir_ + "/" + worker + ".log"; }
  std::string answers_path(const std::string& client) const {
    return dir_ + "/" + client + ".answers";
  }

  // Waits for the client to exit 0 and returns its answers, checking that
  // every input of its range got exactly one (none lost, none twice, none
  // foreign).
  std::map<std::int64_t, answer> answers_of(node_process& client, std::int64_t first,
                                            std::int64_t count) {
    std::map<std::int64_t, answer> answers;
    const std::optional<int> status = client.wait_exit(run_patience);
    EXPECT_EQ(status, std::optional<int>(0)) << client.name() << " did not finish cleanly";
    if (status != 0) return answers;
    for (const std::string& line : lines_of(answers_path(client.name()))) {
      std::istringstream fields(line);
      answer a;
      std::string kind;
      fields >> a.input >> kind;
      a.ok = kind == "ok";
      if (a.ok) {
        fields >> a.value;
      } else {
        fields >> a.code;
      }
      fields >> a.latency_ms;
      EXPECT_TRUE(fields && (kind == "ok" || kind == "error")) << "bad line: " << line;
      EXPECT_TRUE(a.input >= first && a.input < first + count)
          << client.name() << " got an answer to an input it never sent: " << line;
      EXPECT_TRUE(answers.emplace(a.input, a).second)
          << client.name() << " got a second answer to " << a.input << ": " << line;
    }
    EXPECT_EQ(answers.size(), static_cast<std::size_t>(count))
        << client.name() << ": some calls got no answer";
    return answers;
  }

  // Every answer of `answers` is ok with scale * input + offset.
  static void expect_all_correct(const std::map<std::int64_t, answer>& answers, std::int64_t scale,
                                 std::int64_t offset) {
    std::size_t wrong = 0;
    for (const auto& [input, a] : answers) {
      if (a.ok && a.value == scale * input + offset) continue;
      if (++wrong <= 5) {
        ADD_FAILURE() << "input " << input << ": "
                      << (a.ok ? "result " + std::to_string(a.value) : "error " + a.code)
                      << ", expected " << scale * input + offset;
      }
    }
    EXPECT_EQ(wrong, 0U);
  }

  // How many times each input appears in the logs of `workers`: its executions.
  std::map<std::int64_t, int> executions(const std::vector<std::string>& workers) const {
    std::map<std::int64_t, int> counts;
    for (const std::string& worker : workers) {
      for (const std::string& line : lines_of(log_path(worker))) ++counts[std::stoll(line)];
    }
    return counts;
  }
  std::size_t executed_items(const std::string& worker) const {
    return lines_of(log_path(worker)).size();
  }

  // SIGTERM, and the "stats" line it printed on its way out (exit 0).
  static std::map<std::string, std::uint64_t> stop_and_read_stats(node_process& node) {
    const std::optional<int> status = node.terminate(30s);
    EXPECT_EQ(status, std::optional<int>(0)) << node.name() << " did not stop cleanly";
    const std::optional<std::string> line = node.wait_for_line("stats", 1s);
    EXPECT_TRUE(line.has_value()) << node.name() << " printed no stats";
    return line ? parse_stats(*line) : std::map<std::string, std::uint64_t>{};
  }
  static std::map<std::string, std::uint64_t> stats_of_finished(node_process& node) {
    const std::optional<std::string> line = node.wait_for_line("stats", run_patience);
    EXPECT_TRUE(line.has_value()) << node.name() << " printed no stats";
    return line ? parse_stats(*line) : std::map<std::string, std::uint64_t>{};
  }

  redis_connection connect() const {
    bs::redis_endpoint endpoint = redis_->tcp_endpoint();
    endpoint.password = password_;
    bs::result<redis_connection> conn = redis_connection::connect(endpoint);
    if (!conn.ok()) throw std::runtime_error(conn.error().to_string());
    return std::move(*conn);
  }

  // Entries of `serving`'s group pending for `consumer` (read, not acknowledged).
  static long long pending_for(redis_connection& conn, const std::string& serving,
                               const std::string& consumer) {
    const wire::serving_keys keys = wire::serving_keys::make(serving).value();
    bs::result<redis_reply> reply =
        conn.command({"XPENDING", keys.request_stream(), wire::consumer_group});
    if (!reply.ok() || !reply->is_array() || reply->size() < 4 || !(*reply)[3].is_array()) {
      return 0;
    }
    for (redis_reply_view row : (*reply)[3]) {
      if (row[0].text() == consumer) return std::stoll(std::string(row[1].text()));
    }
    return 0;
  }
  static long long pending_total(redis_connection& conn, const std::string& serving) {
    const wire::serving_keys keys = wire::serving_keys::make(serving).value();
    bs::result<redis_reply> reply =
        conn.command({"XPENDING", keys.request_stream(), wire::consumer_group});
    if (!reply.ok() || !reply->is_array() || reply->size() < 1) return -1;
    return (*reply)[0].integer();
  }

  // Waits until `worker` has run `min_items` items and holds entries of
  // `serving` (read, not acknowledged), then kills it with SIGKILL.
  ::testing::AssertionResult kill_while_holding(node_process& worker, redis_connection& conn,
                                                const std::string& serving,
                                                std::size_t min_items) const {
    if (!eventually([&] {
          return executed_items(worker.name()) >= min_items &&
                 pending_for(conn, serving, worker.name()) > 0;
        })) {
      return ::testing::AssertionFailure() << worker.name() << " never held calls";
    }
    worker.signal(SIGKILL);
    if (worker.wait_exit(10s) != std::optional<int>(128 + SIGKILL)) {
      return ::testing::AssertionFailure() << worker.name() << " did not die of SIGKILL";
    }
    return ::testing::AssertionSuccess();
  }

  // Waits until `condition` holds (true) or `within` passes (false).
  template <class Condition>
  static bool eventually(Condition condition, std::chrono::milliseconds within = run_patience) {
    const auto until = clock_type::now() + within;
    while (!condition()) {
      if (clock_type::now() > until) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }

  std::optional<bs::test::redis_server> redis_;
  std::string password_;
  std::string dir_;
  std::vector<std::unique_ptr<node_process>> nodes_;
};

TEST_F(MultiProcessTest, AWorkerKilledInTheMiddleOfItsBatchesLosesNoCall) {
  const std::vector<std::string> batches = {"--delay-ms", "20", "--batch-size", "8"};
  node_process& victim = start_worker("w1", "affine", 3, 1, batches);
  node_process& second = start_worker("w2", "affine", 3, 1, batches);
  node_process& third = start_worker("w3", "affine", 3, 1, batches);
  const std::vector<std::string> load = {"--threads",    "4",    "--window", "4",
                                         "--timeout-ms", "30000"};
  node_process& c1 = start_client("c1", "affine", 0, 600, load);
  node_process& c2 = start_client("c2", "affine", 1'000'000, 600, load);

  // Kill w1 once it has run a few batches and while it holds entries.
  redis_connection conn = connect();
  ASSERT_TRUE(kill_while_holding(victim, conn, "affine", 24));
  std::this_thread::sleep_for(redis_drain);
  const long long held_at_death = pending_for(conn, "affine", "w1");
  EXPECT_GT(held_at_death, 0) << "w1 answered everything before the kill: the test proves nothing";

  expect_all_correct(answers_of(c1, 0, 600), 3, 1);
  expect_all_correct(answers_of(c2, 1'000'000, 600), 3, 1);
  const auto s2 = stop_and_read_stats(second);
  const auto s3 = stop_and_read_stats(third);
  EXPECT_GE(s2.at("claimed") + s3.at("claimed"), static_cast<std::uint64_t>(held_at_death))
      << "the dead worker's entries were not taken over";
  EXPECT_EQ(pending_total(conn, "affine"), 0);
}

// A streaming call whose worker dies mid-stream is run again by another
// worker: its caller sees every event of one run in order, or, when part of
// the dead run was delivered already, an unavailable end: never a mix.
TEST_F(MultiProcessTest, AWorkerKilledInTheMiddleOfItsStreamsMixesNoStream) {
  const std::vector<std::string> batches = {"--delay-ms", "20",          "--batch-size",
                                            "8",          "--streaming", "1"};
  node_process& victim = start_worker("w1", "streams", 3, 1, batches);
  node_process& survivor = start_worker("w2", "streams", 3, 1, batches);
  const std::vector<std::string> load = {"--threads", "4", "--window", "2", "--timeout-ms", "30000",
                                         "--scale",   "3", "--offset", "1", "--streaming",  "1"};
  node_process& client = start_client("c1", "streams", 0, 300, load);

  redis_connection conn = connect();
  ASSERT_TRUE(kill_while_holding(victim, conn, "streams", 32));

  std::size_t whole = 0;
  std::size_t unavailable = 0;
  for (const auto& [input, a] : answers_of(client, 0, 300)) {
    if (a.ok && a.value == 1) {
      ++whole;
    } else if (!a.ok && a.code == "unavailable") {
      ++unavailable;
    } else {
      ADD_FAILURE() << "stream " << input << ": " << (a.ok ? "bad value" : a.code);
    }
  }
  EXPECT_GT(whole, 0U);
  const auto stats = stop_and_read_stats(survivor);
  EXPECT_GT(stats.at("claimed"), 0U) << "the dead worker's streams were not taken over";
  EXPECT_EQ(pending_total(conn, "streams"), 0);
}

// With no worker left to claim them, calls without a deadline are not left
// waiting: every one is answered, its results or no_serving.
TEST_F(MultiProcessTest, TheOnlyWorkerKilledLeavesNoCallWithoutADeadlineWaiting) {
  node_process& victim =
      start_worker("w1", "affine", 3, 1, {"--delay-ms", "20", "--batch-size", "8"});
  node_process& client = start_client("c1", "affine", 0, 400,
                                      {"--threads", "4", "--window", "4", "--timeout-ms", "0"});
  redis_connection conn = connect();
  ASSERT_TRUE(kill_while_holding(victim, conn, "affine", 24));

  std::size_t no_serving = 0;
  std::size_t wrong = 0;
  for (const auto& [input, a] : answers_of(client, 0, 400)) {
    if (!a.ok && a.code == "no_serving") {
      ++no_serving;
    } else if (!a.ok || a.value != 3 * input + 1) {
      if (++wrong <= 5)
        ADD_FAILURE() << "input " << input << ": " << (a.ok ? "wrong result" : a.code);
    }
  }
  EXPECT_EQ(wrong, 0U);
  EXPECT_GT(no_serving, 0U) << "no call was left when w1 died: the test proves nothing";
}

TEST_F(MultiProcessTest, AStoppedWorkersCallsAreAnsweredByAnotherAndNotAgainWhenItResumes) {
  const std::vector<std::string> batches = {"--delay-ms", "20", "--batch-size", "8"};
  node_process& victim = start_worker("w1", "affine", 5, -2, batches);
  node_process& second = start_worker("w2", "affine", 5, -2, batches);
  node_process& third = start_worker("w3", "affine", 5, -2, batches);
  // The clients stay up after their calls (linger) so that whatever the
  // resumed worker writes reaches a live client that must drop it.
  const std::vector<std::string> load = {"--threads",    "4",     "--window",    "4",
                                         "--timeout-ms", "20000", "--linger-ms", "2000"};
  node_process& c1 = start_client("c1", "affine", 0, 400, load);
  node_process& c2 = start_client("c2", "affine", 500'000, 400, load);

  redis_connection conn = connect();
  long long held = 0;
  clock_type::time_point stopped_at;
  for (int attempt = 0; attempt < 20 && held == 0; ++attempt) {
    ASSERT_TRUE(eventually([&] {
      return executed_items("w1") >= 16 && pending_for(conn, "affine", "w1") > 0;
    })) << "w1 never held calls";
    victim.pause();
    stopped_at = clock_type::now();
    std::this_thread::sleep_for(redis_drain);
    held = pending_for(conn, "affine", "w1");
    if (held == 0) victim.resume();  // it had just answered everything: try again
  }
  ASSERT_GT(held, 0) << "w1 never held calls when stopped";

  // Its entries move to another worker once its heartbeat expires.
  ASSERT_TRUE(eventually([&] { return pending_for(conn, "affine", "w1") == 0; }, 30s));
  const auto taken_over_after =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - stopped_at);
  std::cout << "a stopped worker's " << held << " entries were taken over after "
            << taken_over_after.count() << " ms (heartbeat_expiry + claim_interval: "
            << (heartbeat_expiry + claim_interval).count() << " ms)\n";
  // The documented bound, with room for a loaded machine (not a performance figure).
  EXPECT_LT(taken_over_after, heartbeat_expiry + claim_interval + 5s);

  // Every call is answered while w1 is still stopped...
  ASSERT_TRUE(c1.wait_for_line("done", run_patience)) << "c1 waited for the stopped worker";
  ASSERT_TRUE(c2.wait_for_line("done", run_patience)) << "c2 waited for the stopped worker";
  EXPECT_TRUE(victim.running());
  // ...and when it resumes, whatever it still writes for them is dropped:
  // each caller saw exactly one answer (checked per input by answers_of).
  victim.resume();
  const auto a1 = answers_of(c1, 0, 400);
  const auto a2 = answers_of(c2, 500'000, 400);
  expect_all_correct(a1, 5, -2);
  expect_all_correct(a2, 5, -2);
  for (const auto& answers : {a1, a2}) {
    for (const auto& [input, a] : answers) {
      EXPECT_LT(a.latency_ms, (heartbeat_expiry + claim_interval + 10s).count())
          << "input " << input;
    }
  }
  const auto cs1 = stats_of_finished(c1);
  const auto cs2 = stats_of_finished(c2);
  EXPECT_EQ(cs1.at("delivered"), 400U);
  EXPECT_EQ(cs2.at("delivered"), 400U);
  std::cout << "late duplicates dropped by the clients: "
            << cs1.at("duplicates") + cs2.at("duplicates") << "\n";

  // The resumed worker serves on (a new client's calls; it may or may not
  // get some of them, so only the answers are checked).
  node_process& c3 = start_client("c3", "affine", 900'000, 100, {"--timeout-ms", "20000"});
  expect_all_correct(answers_of(c3, 900'000, 100), 5, -2);
  const auto s2 = stop_and_read_stats(second);
  const auto s3 = stop_and_read_stats(third);
  EXPECT_GE(s2.at("claimed") + s3.at("claimed"), static_cast<std::uint64_t>(held));
  stop_and_read_stats(victim);
}

TEST_F(MultiProcessTest, ASlowLiveWorkerIsNotRobbedOfItsEntries) {
  // Each of its batches runs twice the heartbeat expiry; it heartbeats all
  // along, so the other worker must not claim (and run again) what it holds.
  node_process& slow =
      start_worker("slow", "affine", 2, 3,
                   {"--delay-ms", "1200", "--batch-size", "4", "--batch-timeout-ms", "50"});
  // More calls outstanding than the slow worker takes (8): the fast one gets the rest.
  node_process& client = start_client("c1", "affine", 0, 40,
                                      {"--threads", "2", "--window", "8", "--timeout-ms", "60000"});
  ASSERT_TRUE(eventually([&] { return executed_items("slow") > 0; }));
  node_process& fast = start_worker("fast", "affine", 2, 3);
  expect_all_correct(answers_of(client, 0, 40), 2, 3);

  const std::map<std::int64_t, int> runs = executions({"slow", "fast"});
  EXPECT_EQ(runs.size(), 40U);
  for (const auto& [input, times] : runs) EXPECT_EQ(times, 1) << "input " << input;
  EXPECT_GT(executed_items("slow"), 0U);
  const auto fast_stats = stop_and_read_stats(fast);
  EXPECT_EQ(fast_stats.at("claimed"), 0U);
  stop_and_read_stats(slow);
}

TEST_F(MultiProcessTest, TwoServingsOnDifferentWorkersNeverReceiveEachOthersCalls) {
  // The same inputs to both servings: a call that reached the other serving
  // would come back with the other offset.
  start_worker("plus1", "plus", 1, 1000);
  start_worker("plus2", "plus", 1, 1000);
  start_worker("minus1", "minus", 1, -1000);
  const std::vector<std::string> load = {"--threads", "4", "--window", "8"};
  node_process& to_plus = start_client("to-plus", "plus", 0, 400, load);
  node_process& to_minus = start_client("to-minus", "minus", 0, 400, load);
  expect_all_correct(answers_of(to_plus, 0, 400), 1, 1000);
  expect_all_correct(answers_of(to_minus, 0, 400), 1, -1000);

  const std::map<std::int64_t, int> plus_runs = executions({"plus1", "plus2"});
  const std::map<std::int64_t, int> minus_runs = executions({"minus1"});
  EXPECT_EQ(plus_runs.size(), 400U);
  EXPECT_EQ(minus_runs.size(), 400U);
  for (const auto& runs : {plus_runs, minus_runs}) {
    for (const auto& [input, times] : runs) EXPECT_EQ(times, 1) << "input " << input;
  }
}

TEST_F(MultiProcessTest, AWorkerStartedLaterTakesWork) {
  start_worker("early", "affine", 7, 0, {"--delay-ms", "30", "--batch-size", "4"});
  // Paced so that the run outlasts the second worker's start.
  node_process& client =
      start_client("c1", "affine", 0, 600,
                   {"--threads", "4", "--window", "2", "--pause-ms", "5", "--timeout-ms", "30000"});
  ASSERT_TRUE(eventually([&] { return executed_items("early") >= 40; }));
  start_worker("late", "affine", 7, 0, {"--delay-ms", "30", "--batch-size", "4"});
  ASSERT_TRUE(client.running()) << "the run ended before the late worker started";
  expect_all_correct(answers_of(client, 0, 600), 7, 0);
  EXPECT_GT(executed_items("late"), 0U) << "the worker started later took no work";
  EXPECT_EQ(executions({"early", "late"}).size(), 600U);
}

TEST_F(MultiProcessTest, RedisRestartedMidRunAnswersEveryCallInTimeAndServingGoesOn) {
  const std::vector<std::string> batches = {"--delay-ms", "5"};
  start_worker("w1", "affine", 3, 0, batches);
  start_worker("w2", "affine", 3, 0, batches);
  constexpr std::int64_t timeout_ms = 3000;
  const std::vector<std::string> load = {"--threads",    "4",
                                         "--window",     "2",
                                         "--pause-ms",   "5",
                                         "--timeout-ms", std::to_string(timeout_ms)};
  node_process& c1 = start_client("c1", "affine", 0, 1000, load);
  node_process& c2 = start_client("c2", "affine", 100'000, 1000, load);
  ASSERT_TRUE(eventually([&] { return executed_items("w1") + executed_items("w2") >= 100; }));
  redis().restart();  // SIGKILL and start again, empty: no streams, no group, no heartbeats

  for (auto [client, first] : {std::pair{&c1, std::int64_t{0}}, {&c2, std::int64_t{100'000}}}) {
    const std::map<std::int64_t, answer> answers = answers_of(*client, first, 1000);
    std::size_t ok = 0;
    for (const auto& [input, a] : answers) {
      if (a.ok) {
        EXPECT_EQ(a.value, 3 * input) << "input " << input;
        ++ok;
      } else {
        // unavailable: in flight when Redis went; no_serving: sent before
        // the workers' first heartbeat in the new Redis; timeout: lost
        // with the old Redis's streams, answered by its deadline.
        EXPECT_TRUE(a.code == "unavailable" || a.code == "timeout" || a.code == "no_serving")
            << "input " << input << ": " << a.code;
      }
      EXPECT_LT(a.latency_ms, timeout_ms + 5000) << "input " << input << " hung past its deadline";
    }
    EXPECT_GT(ok, 0U);
    // Serving went on after the restart: the client's last calls succeeded.
    const std::vector<std::string> lines = lines_of(answers_path(client->name()));
    ASSERT_GE(lines.size(), 20U);
    for (std::size_t i = lines.size() - 20; i < lines.size(); ++i) {
      EXPECT_NE(lines[i].find(" ok "), std::string::npos)
          << client->name() << " still failing at the end: " << lines[i];
    }
  }
  // A new client, and both workers, serve as before.
  node_process& c3 = start_client("c3", "affine", 200'000, 200, {"--timeout-ms", "20000"});
  expect_all_correct(answers_of(c3, 200'000, 200), 3, 0);
  for (const char* worker : {"w1", "w2"}) {
    auto it = std::find_if(nodes_.begin(), nodes_.end(),
                           [&](const auto& node) { return node->name() == worker; });
    ASSERT_NE(it, nodes_.end());
    EXPECT_GE(stop_and_read_stats(**it).at("reconnects"), 1U) << worker;
  }
}

TEST_F(MultiProcessTest, GarbageInTheRequestStreamIsAnsweredOrSkippedAndWorkersServeOn) {
  node_process& w1 = start_worker("w1", "affine", 1, 1);
  node_process& w2 = start_worker("w2", "affine", 1, 1);
  node_process& c1 = start_client("c1", "affine", 0, 300, {"--threads", "2", "--pause-ms", "2"});

  // Written by hand while c1 runs: three entries without a usable reply
  // address (skipped and counted), two that name one (answered
  // invalid_argument on it).
  const wire::serving_keys keys = wire::serving_keys::make("affine").value();
  const std::string client_id = "garbage-writer";
  const std::string reply_stream = keys.reply_stream(client_id).value();
  redis_connection conn = connect();
  auto add = [&](std::initializer_list<std::string_view> fields) {
    std::vector<std::string_view> argv{"XADD", keys.request_stream(), "*"};
    argv.insert(argv.end(), fields.begin(), fields.end());
    bs::result<redis_reply> reply = conn.command(argv);
    ASSERT_TRUE(reply.ok() && !reply->is_error());
  };
  const std::string bad_form_call = wire::make_call_id(client_id, 1);
  const std::string bad_items_call = wire::make_call_id(client_id, 2);
  add({"garbage", std::string_view("\xff\x00\x01", 3)});
  add({"v", "1", "id", "not a call id", "reply", reply_stream});
  add({"v", "1", "id", "someone-else/1", "reply", reply_stream, "form", "one", "items",
       "\x91\x01"});  // the reply stream is not the call's client's
  add({"v", "1", "id", bad_form_call, "reply", reply_stream, "form", "sideways", "items",
       "\x91\x01"});
  add({"v", "1", "id", bad_items_call, "reply", reply_stream, "form", "one", "items",
       "\x91\xa1x"});  // one item, a string: not an int64

  std::map<std::string, wire::answer_entry> answers;
  std::string last_id = "0";
  ASSERT_TRUE(eventually([&] {
    bs::result<redis_reply> reply =
        conn.command({"XREAD", "COUNT", "10", "BLOCK", "100", "STREAMS", reply_stream, last_id},
                     100ms);
    if (!reply.ok() || !reply->is_array()) return answers.size() >= 2;
    for (redis_reply_view stream : *reply) {
      for (redis_reply_view entry : stream[1]) {
        last_id = std::string(entry[0].text());
        std::vector<wire::field_view> fields;
        for (std::size_t i = 0; i + 1 < entry[1].size(); i += 2) {
          fields.emplace_back(entry[1][i].text(), entry[1][i + 1].text());
        }
        bs::result<wire::answer_entry> answer = wire::parse_answer(fields, wire::limits{});
        EXPECT_TRUE(answer.ok()) << answer.error().to_string();
        if (answer.ok()) {
          EXPECT_TRUE(answers.emplace(answer->call_id, *answer).second)
              << "a second answer to " << answer->call_id;
        }
      }
    }
    return answers.size() >= 2;
  }));
  for (const std::string& call : {bad_form_call, bad_items_call}) {
    ASSERT_EQ(answers.count(call), 1U) << call;
    EXPECT_EQ(answers.at(call).kind, wire::answer_kind::error) << call;
    EXPECT_EQ(answers.at(call).error_code, bs::errc::invalid_argument) << call;
  }
  EXPECT_EQ(answers.size(), 2U);

  expect_all_correct(answers_of(c1, 0, 300), 1, 1);
  // The workers still serve a client that starts after the garbage.
  node_process& c2 = start_client("c2", "affine", 1000, 100);
  expect_all_correct(answers_of(c2, 1000, 100), 1, 1);
  const auto s1 = stop_and_read_stats(w1);
  const auto s2 = stop_and_read_stats(w2);
  EXPECT_EQ(s1.at("skipped") + s2.at("skipped"), 3U);
  EXPECT_EQ(s1.at("invalid_argument") + s2.at("invalid_argument"), 2U);
  EXPECT_EQ(pending_total(conn, "affine"), 0);
}

TEST_F(MultiProcessTest, AWrongPasswordIsAClearErrorAtConnectInWorkerAndClientProcesses) {
  start_redis({.password = "right-pw"});
  password_ = "right-pw";
  const std::string wrong = "wrong-pw-123";
  node_process& worker = start("bad-worker", {"worker", "--port", std::to_string(redis().port()),
                                              "--password", wrong, "--serving", "affine", "--id",
                                              "bad-worker", "--log", log_path("bad-worker")});
  node_process& client = start_client("bad-client", "affine", 0, 10, {"--password", wrong});
  for (node_process* node : {&worker, &client}) {
    EXPECT_EQ(node->wait_exit(start_patience), std::optional<int>(2)) << node->name();
    const std::string errors = node->errors();
    EXPECT_NE(errors.find("error invalid_argument"), std::string::npos) << errors;
    EXPECT_NE(errors.find("127.0.0.1:" + std::to_string(redis().port())), std::string::npos)
        << "the error does not name the endpoint: " << errors;
    EXPECT_EQ(errors.find(wrong), std::string::npos) << "the password is printed: " << errors;
  }
  EXPECT_EQ(executed_items("bad-worker"), 0U);

  // The right password works, in both processes.
  start_worker("good-worker", "affine", 1, 0, {"--password", "right-pw"});
  node_process& good_client =
      start_client("good-client", "affine", 0, 50, {"--password", "right-pw"});
  expect_all_correct(answers_of(good_client, 0, 50), 1, 0);
}

}  // namespace
