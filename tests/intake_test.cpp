// The admission seam (detail/intake.hpp): callers reach an engine through an
// intake alone, and the caller side works over any intake. What a remote
// transport relies on.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <span>
#include <stop_token>
#include <string>
#include <vector>

#include "batch_serving/call_options.hpp"
#include "batch_serving/detail/call_kinds.hpp"
#include "batch_serving/detail/client.hpp"
#include "batch_serving/detail/core_options.hpp"
#include "batch_serving/detail/engine.hpp"
#include "batch_serving/detail/handlers.hpp"
#include "batch_serving/detail/intake.hpp"
#include "batch_serving/detail/serving_definition.hpp"
#include "batch_serving/detail/stream_client.hpp"
#include "support/callback_record.hpp"
#include "support/test_call.hpp"

namespace bs = batch_serving;
namespace detail = batch_serving::detail;
using namespace std::chrono_literals;
using bs::testing::recording_observer;

namespace {
// An intake that is not an engine: answers every call at once, in the
// submitting thread, with ten times each item, and refuses calls that carry
// a timeout (as a transport might refuse what it cannot honour).
class answering_intake final : public detail::intake<int, int> {
 public:
  int submitted = 0;
  void submit(detail::call<int, int>& c, const bs::call_options& options) override {
    ++submitted;
    if (options.timeout) {
      if (c.fail(bs::error(bs::errc::invalid_argument, "no timeouts here"))) c.complete();
      return;
    }
    std::vector<int> out;
    for (int x : c.inputs()) out.push_back(10 * x);
    if (c.deliver(0, out)) c.complete();
  }
  bool cancel(detail::call_base&) noexcept override { return false; }
};

using definition = detail::serving_definition<int, int, int, int>;
using client_t = detail::client<int, int, int, int>;

std::shared_ptr<const definition> identity_definition() {
  auto def = std::make_shared<definition>();
  auto fn =
      std::make_shared<std::vector<int> (*)(std::span<const int>)>([](std::span<const int> xs) {
        return std::vector<int>(xs.begin(), xs.end());
      });
  def->factory = [fn](const bs::partition_info&) {
    return std::make_unique<detail::function_handler<int, int, decltype(fn)::element_type>>(fn);
  };
  return def;
}

// A started engine, known to the test only as an intake.
struct engine_under_test {
  std::shared_ptr<detail::engine<int, int>> engine;
  detail::intake<int, int>& intake;

  explicit engine_under_test(detail::core_options options)
      : engine(std::make_shared<detail::engine<int, int>>(identity_definition()->factory,
                                                          std::move(options))),
        intake(*engine) {
    engine->start();
  }
  ~engine_under_test() { engine->stop(); }
};

// Submits one item through `in` alone and waits for its answer.
bs::result<int> submit_and_wait(detail::intake<int, int>& in, int item,
                                const bs::call_options& options = {}) {
  auto* c = new detail::waiting_call<int, int, false>(item);
  in.submit(*c, options);
  c->wait();
  auto answer = c->take_answer();
  c->release();
  return answer;
}

detail::core_options eager_options() {
  detail::core_options o;
  o.batch_size = 4;
  o.batch_timeout = detail::clock::duration::zero();
  return o;
}
}  // namespace

TEST(IntakeTest, TheClientNeedsNothingButAnIntake) {
  auto fake = std::make_shared<answering_intake>();
  auto client = std::make_shared<client_t>(identity_definition(), fake);
  EXPECT_EQ(client->dispatch(1, {}).value(), 10);
  EXPECT_EQ(client->dispatch_many(std::vector<int>{1, 2}, {}).value(), (std::vector<int>{10, 20}));
  EXPECT_EQ(client->dispatch_async(3, {}).get().value(), 30);
  EXPECT_EQ(client->dispatch_many_async({4, 5}, {}).get().value(), (std::vector<int>{40, 50}));
  bs::testing::callback_record<int> record;
  client->dispatch_async(6, {}, record.callback());
  EXPECT_EQ(record.only().value(), 60);
  EXPECT_EQ(fake->submitted, 5);
}

TEST(IntakeTest, ARefusalReachesEveryCallFormThroughItsCompletion) {
  auto fake = std::make_shared<answering_intake>();
  auto client = std::make_shared<client_t>(identity_definition(), fake);
  const bs::call_options timed{.timeout = 1s};
  EXPECT_EQ(client->dispatch(1, timed).error().message(), "no timeouts here");
  EXPECT_EQ(client->dispatch_async(2, timed).get().error().message(), "no timeouts here");
  bs::testing::callback_record<int> record;
  client->dispatch_async(3, timed, record.callback());
  EXPECT_EQ(record.only().error().message(), "no timeouts here");
  EXPECT_EQ(record.calls.load(), 1);
}

TEST(IntakeTest, TheStreamingClientNeedsNothingButAnIntakeEither) {
  auto fake = std::make_shared<answering_intake>();
  detail::stream_client<int, int, int, int> streams(identity_definition(), fake, 0);
  EXPECT_EQ(streams.dispatch_many(std::vector<int>{1, 2}, {}, {}).collect().value(),
            (std::vector<int>{10, 20}));
  auto refused = streams.dispatch(3, {.timeout = 1s}, {}).collect();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message(), "no timeouts here");
}

TEST(IntakeTest, AnEngineServesCallsSubmittedThroughItsIntake) {
  engine_under_test e(eager_options());
  EXPECT_EQ(submit_and_wait(e.intake, 7).value(), 7);
}

TEST(IntakeTest, TheIntakeRefusesAtTheDoorWithTheReason) {
  auto options = eager_options();
  options.max_queue = 2;
  engine_under_test e(std::move(options));
  EXPECT_EQ(submit_and_wait(e.intake, 1, {.timeout = -1us}).error().code(),
            bs::errc::invalid_argument);
  std::stop_source stopped;
  stopped.request_stop();
  EXPECT_EQ(submit_and_wait(e.intake, 1, {.stop_token = stopped.get_token()}).error().code(),
            bs::errc::cancelled);
  EXPECT_EQ(submit_and_wait(e.intake, 1, {.deadline = detail::clock::now() - 1ms}).error().code(),
            bs::errc::timeout);
  auto* too_big = new detail::waiting_call<int, int, true>(std::vector<int>{1, 2, 3});
  e.intake.submit(*too_big, {});
  too_big->wait();
  EXPECT_EQ(too_big->take_answer().error().code(), bs::errc::invalid_argument);
  too_big->release();
  e.engine->stop();
  EXPECT_EQ(submit_and_wait(e.intake, 1).error().code(), bs::errc::no_serving);
}

TEST(IntakeTest, TheDefaultTimeoutIsTheIntakesToApply) {
  auto options = eager_options();
  options.default_timeout = detail::clock::duration::zero();
  engine_under_test e(std::move(options));
  EXPECT_EQ(submit_and_wait(e.intake, 1).error().code(), bs::errc::timeout);
  EXPECT_TRUE(submit_and_wait(e.intake, 1, {.timeout = 10s}).ok()) << "the call's own wins";
}

TEST(IntakeTest, CancellingThroughTheIntakeDropsAQueuedCallsItems) {
  auto options = eager_options();
  options.batch_timeout = std::chrono::hours(1);  // nothing runs unless the test says so
  options.batch_size = 100;
  engine_under_test e(std::move(options));
  auto* c = new detail::waiting_call<int, int, false>(1);
  e.intake.submit(*c, {});
  EXPECT_TRUE(e.intake.cancel(*c));
  EXPECT_FALSE(e.intake.cancel(*c)) << "answered once";
  c->wait();
  EXPECT_EQ(c->take_answer().error().code(), bs::errc::cancelled);
  c->release();
  EXPECT_EQ(e.engine->stats().items_executed, 0u);
}

TEST(IntakeTest, AnObserverPluggedIntoTheEngineSeesWhatTheCountersSee) {
  auto observer = std::make_shared<recording_observer>();
  auto options = eager_options();
  options.max_queue = 1;
  options.extra_observer = observer;
  engine_under_test e(std::move(options));
  ASSERT_TRUE(submit_and_wait(e.intake, 1).ok());
  ASSERT_TRUE(submit_and_wait(e.intake, 2).ok());
  std::stop_source stopped;
  stopped.request_stop();
  (void)submit_and_wait(e.intake, 3, {.stop_token = stopped.get_token()});
  e.engine->stop();
  const auto seen = observer->seen();
  const auto stats = e.engine->stats();
  EXPECT_EQ(seen.calls_queued, 2u);
  EXPECT_EQ(seen.calls_queued, stats.calls_accepted);
  EXPECT_EQ(seen.items_queued, stats.items_accepted);
  EXPECT_EQ(seen.refused, (std::vector<bs::errc>{bs::errc::cancelled}));
  EXPECT_EQ(stats.calls_cancelled, 1u);
  std::size_t items = 0;
  for (const auto& run : seen.runs) items += run.items;
  EXPECT_EQ(seen.runs.size(), stats.executions);
  EXPECT_EQ(items, stats.items_executed);
}
