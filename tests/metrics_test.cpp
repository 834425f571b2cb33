// The metrics registry (metrics.hpp): what servers report to it, and its
// Prometheus text, checked by Prometheus' own promtool when it is installed.
#include "batch_serving/metrics.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "batch_serving/server.hpp"
#include "support/controlled_function.hpp"
#include "support/squares.hpp"

namespace bs = batch_serving;
using namespace std::chrono_literals;

namespace {

bs::serving<int, int> squares() { return bs::testing::squares_failing_on_negatives(); }

// Sample name with labels -> value, from the text format.
std::map<std::string, double> samples_of(const std::string& text) {
  std::map<std::string, double> samples;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    samples[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return samples;
}

double sample(const std::map<std::string, double>& samples, const std::string& key) {
  auto found = samples.find(key);
  if (found == samples.end()) {
    ADD_FAILURE() << "no sample " << key;
    return -1;
  }
  return found->second;
}

}  // namespace

TEST(Metrics, CountsCallsItemsExecutionsAndErrorsPerServing) {
  bs::metrics_registry registry;
  {
    bs::server<int, int> srv(squares(), {.name = "sq",
                                         .batch_size = 4,
                                         .batch_timeout = std::chrono::seconds(10),
                                         .metrics = &registry});
    auto a = srv.dispatch_many_async(std::vector<int>{1, 2, 3, 4});  // a full batch
    EXPECT_TRUE(a.get().ok());
    auto b = srv.dispatch_many_async(std::vector<int>{-1, 2, 3, 4});  // a full batch that throws
    EXPECT_EQ(b.get().error().code(), bs::errc::execution_failed);
    auto c = srv.dispatch_async(5);  // waits for company; shutdown drains it
    srv.stop();
    EXPECT_EQ(c.get().value(), 25);
    EXPECT_EQ(srv.dispatch(6).error().code(), bs::errc::no_serving);
  }
  const auto s = samples_of(registry.render());
  EXPECT_EQ(sample(s, R"(batch_serving_calls_total{serving="sq"})"), 3);
  EXPECT_EQ(sample(s, R"(batch_serving_items_total{serving="sq"})"), 9);
  EXPECT_EQ(sample(s, R"(batch_serving_executions_total{serving="sq",trigger="full"})"), 2);
  EXPECT_EQ(sample(s, R"(batch_serving_executions_total{serving="sq",trigger="drain"})"), 1);
  EXPECT_EQ(sample(s, R"(batch_serving_executions_total{serving="sq",trigger="timeout"})"), 0);
  EXPECT_EQ(sample(s, R"(batch_serving_failed_executions_total{serving="sq"})"), 1);
  EXPECT_EQ(sample(s, R"(batch_serving_failed_calls_total{serving="sq",code="execution_failed"})"),
            1);
  EXPECT_EQ(sample(s, R"(batch_serving_refused_calls_total{serving="sq",code="no_serving"})"), 1);
  EXPECT_EQ(sample(s, R"(batch_serving_refused_calls_total{serving="sq",code="overloaded"})"), 0);
  // Batch sizes 4, 4, 1: buckets are cumulative, and the last is batch_size itself.
  EXPECT_EQ(sample(s, R"(batch_serving_batch_size_bucket{serving="sq",le="1"})"), 1);
  EXPECT_EQ(sample(s, R"(batch_serving_batch_size_bucket{serving="sq",le="2"})"), 1);
  EXPECT_EQ(sample(s, R"(batch_serving_batch_size_bucket{serving="sq",le="4"})"), 3);
  EXPECT_EQ(sample(s, R"(batch_serving_batch_size_bucket{serving="sq",le="+Inf"})"), 3);
  EXPECT_EQ(sample(s, R"(batch_serving_batch_size_sum{serving="sq"})"), 9);
  EXPECT_EQ(sample(s, R"(batch_serving_batch_size_count{serving="sq"})"), 3);
  EXPECT_EQ(sample(s, R"(batch_serving_batch_fill_ratio_bucket{serving="sq",le="0.25"})"), 1);
  EXPECT_EQ(sample(s, R"(batch_serving_batch_fill_ratio_bucket{serving="sq",le="1"})"), 3);
  EXPECT_EQ(sample(s, R"(batch_serving_execution_seconds_count{serving="sq"})"), 3);
  EXPECT_EQ(sample(s, R"(batch_serving_queue_wait_seconds_count{serving="sq"})"), 3);
  EXPECT_EQ(sample(s, R"(batch_serving_call_latency_seconds_count{serving="sq"})"), 3);
  EXPECT_EQ(sample(s, R"(batch_serving_queued_items{serving="sq"})"), 0);
  EXPECT_EQ(sample(s, R"(batch_serving_executions_in_flight{serving="sq"})"), 0);
}

TEST(Metrics, GaugesShowWhatWaitsAndWhatRunsNow) {
  bs::metrics_registry registry;
  bs::testing::controlled_function fn;
  bs::server<int, int> srv(bs::testing::serving_of(fn), {.name = "gauged",
                                                         .batch_size = 1,
                                                         .batch_timeout = 0ms,
                                                         .metrics = &registry});
  bs::testing::open_on_exit release{fn.released};
  auto blocker = bs::testing::block_executor(srv, fn);
  auto queued = srv.dispatch_many_async(std::vector<int>{1, 2, 3});
  auto s = samples_of(registry.render());
  EXPECT_EQ(sample(s, R"(batch_serving_queued_items{serving="gauged"})"), 3);
  EXPECT_EQ(sample(s, R"(batch_serving_executions_in_flight{serving="gauged"})"), 1);
  fn.released.open();
  EXPECT_TRUE(queued.get().ok());
  EXPECT_TRUE(blocker.get().ok());
  s = samples_of(registry.render());
  EXPECT_EQ(sample(s, R"(batch_serving_queued_items{serving="gauged"})"), 0);
}

TEST(Metrics, SeriesOutliveTheirServersAndServersOfOneNameAddUp) {
  bs::metrics_registry registry;
  for (int round = 0; round < 2; ++round) {
    bs::server<int, int> srv(squares(),
                             {.name = "again", .batch_timeout = 0ms, .metrics = &registry});
    EXPECT_TRUE(srv.dispatch(1).ok());
  }
  { bs::server<int, int> other(squares(), {.name = "a \"quoted\"\\name", .metrics = &registry}); }
  const std::string text = registry.render();
  const auto s = samples_of(text);
  EXPECT_EQ(sample(s, R"(batch_serving_calls_total{serving="again"})"), 2);
  // Label values escape quotes and backslashes; servings come in name order.
  EXPECT_EQ(sample(s, R"(batch_serving_calls_total{serving="a \"quoted\"\\name"})"), 0);
  EXPECT_LT(text.find(R"(serving="a \"quoted)"), text.find(R"(serving="again")"));
  // One HELP and one TYPE per family, whatever the number of servings.
  std::size_t helps = 0;
  for (std::size_t at = text.find("# HELP batch_serving_calls_total"); at != std::string::npos;
       at = text.find("# HELP batch_serving_calls_total", at + 1)) {
    ++helps;
  }
  EXPECT_EQ(helps, 1u);
}

TEST(Metrics, AServerWithoutARegistryReportsNothingThere) {
  bs::metrics_registry registry;
  bs::server<int, int> srv(squares(), {.name = "unreported", .batch_timeout = 0ms});
  EXPECT_TRUE(srv.dispatch(1).ok());
  EXPECT_EQ(registry.render().find("unreported"), std::string::npos);
}

// promtool (Debian package prometheus) is the reference parser and linter.
TEST(Metrics, PromtoolAcceptsTheText) {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): system, this test runs no other thread meanwhile
  const bool have_promtool = std::system("command -v promtool >/dev/null 2>&1") == 0;
  if (!have_promtool) {
    // NOLINTNEXTLINE(concurrency-mt-unsafe): getenv, nobody sets the environment
    if (std::getenv("CI") != nullptr) {
      FAIL() << "promtool is not installed, and CI is set: apt-get install prometheus "
                "(scripts/install-deps.sh does)";
    }
    GTEST_SKIP() << "promtool is not installed: apt-get install prometheus to run this check";
  }
  bs::metrics_registry registry;
  {
    bs::server<int, int> srv(squares(), {.name = "linted",
                                         .batch_size = 64,
                                         .batch_timeout = 1ms,
                                         .metrics = &registry});
    for (int i = 0; i < 20; ++i) EXPECT_TRUE(srv.dispatch(i).ok());
    EXPECT_FALSE(srv.dispatch(-1).ok());
  }
  const std::string path =
      ::testing::TempDir() + "metrics_test_" + std::to_string(::getpid()) + ".prom";
  {
    std::ofstream out(path);
    out << registry.render();
  }
  const std::string command = "promtool check metrics < '" + path + "' 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string said;
  char buf[512];
  while (std::fgets(buf, sizeof buf, pipe) != nullptr) said += buf;
  const int status = ::pclose(pipe);
  std::remove(path.c_str());
  EXPECT_EQ(status, 0) << "promtool check metrics:\n" << said;
  EXPECT_EQ(said, "") << "promtool has remarks:\n" << said;
}
